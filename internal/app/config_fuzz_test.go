package app

import (
	"os"
	"testing"
)

// FuzzParseConfig: arbitrary bytes never crash the config parser, and anything it accepts
// is fully validated (defaults filled, every evaluator prepared against a defined judge).
func FuzzParseConfig(f *testing.F) {
	if data, err := os.ReadFile("starter.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(validConfig))
	f.Add([]byte(demoConfig))
	f.Add([]byte("kafka: {brokers: [a:1], topics: [t]}\njudges: {c: {type: heuristic}}\nevaluators: [{name: x, judge: c, check: pii}]\n"))
	f.Add([]byte("evaluators: [{name: x, judge: c, sample_rate: .nan}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, func(string) string { return "" })
		if err != nil {
			return
		}
		if cfg.Kafka.GroupID == "" || cfg.Kafka.Batch.MaxRecords < 1 || len(cfg.Evaluators) == 0 {
			t.Fatalf("accepted config lacks defaults: %+v", cfg.Kafka)
		}
		for _, e := range cfg.Evaluators {
			if e.RubricVersion() == "" || cfg.Judges[e.Judge] == nil || e.SampleRate == nil || !(*e.SampleRate >= 0 && *e.SampleRate <= 1) {
				t.Fatalf("accepted evaluator is not valid: %+v", e)
			}
		}
	})
}
