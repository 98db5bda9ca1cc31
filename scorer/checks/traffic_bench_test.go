package checks

import (
	"encoding/json"
	"testing"

	"raterd/internal/trafficgen"
	"raterd/record"
)

// benchTrafficInputs returns the check inputs of the first n records of the traffic
// `raterd bench` generates by default (trafficgen's exact-repeat traffic, seed 1, 10,000
// distinct prompts drawn with Zipf exponent 1.1), prompt included. The benchmark then
// makes every record unique with a short reference that changes no check's verdict;
// that is left out here.
func benchTrafficInputs(tb testing.TB, n int) []Input {
	tb.Helper()
	var ins []Input
	for _, line := range trafficgen.Generate(trafficgen.Options{Seed: 1, Count: n, ExactRepeats: true, DistinctPrompts: 10000, ZipfS: 1.1}) {
		var rec record.Record
		if json.Unmarshal(line, &rec) == nil && rec.Model != "" {
			ins = append(ins, Input{Response: rec.Response, Prompt: rec.PromptText(), HasPrompt: true})
		}
	}
	if len(ins) == 0 {
		tb.Fatal("trafficgen gave no valid record")
	}
	return ins
}

// BenchmarkTraffic runs each built-in check, and all six (all), over the records of the
// traffic `raterd bench` generates; one op is one record. It is the per-record cost the
// end-to-end benchmark's heuristic judge pays, without the scorer around it.
func BenchmarkTraffic(b *testing.B) {
	set := New()
	ins := benchTrafficInputs(b, 5000)
	for _, name := range append(Names(), "all") {
		b.Run(name, func(b *testing.B) {
			var cs []*Check
			for _, n := range Names() {
				if name == "all" || n == name {
					c, _ := set.Lookup(n)
					cs = append(cs, c)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				in := ins[i%len(ins)]
				for _, c := range cs {
					if r := c.Run(in); r.Label == "" {
						b.Fatalf("%s: incomplete result %+v", c.Name, r)
					}
				}
				i++
			}
		})
	}
}
