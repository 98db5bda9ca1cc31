package fidelity

import (
	"bytes"
	"strings"
	"testing"
)

func TestBuiltinPublished(t *testing.T) {
	all, err := BuiltinPublished()
	if err != nil {
		t.Fatal(err)
	}
	for model, want := range map[string]string{
		"prometheus-eval/prometheus-7b-v2.0":       "Prometheus 2 (7B)",
		"prometheus-eval/prometheus-8x7b-v2.0":     "Prometheus 2 (8x7B)",
		"AtlaAI/Selene-1-Mini-Llama-3.1-8B":        "Atla Selene Mini (Llama 3.1 8B)",
		"google/flame-rm-24b":                      "FLAMe-RM-24B",
		"meta-llama/Llama-3.1-8B-Instruct (plain)": "",
	} {
		got := Lookup(all, model)
		switch {
		case want == "" && len(got) != 0:
			t.Errorf("%s matched %v, want nothing", model, got)
		case want != "" && (len(got) != 1 || got[0].Name != want):
			t.Errorf("%s matched %v, want %s", model, got, want)
		}
	}
}

func TestReadPublishedErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "f.yaml: empty"},
		{"judges: [{name: x, match: [x], figures: [{benchmark: b, value: v, source: s}]}]\nextra: 1", "field extra not found"},
		{"judges: [{match: [x], figures: [{benchmark: b, value: v, source: s}]}]", "f.yaml: judges[0].name: missing"},
		{"judges: [{name: x, figures: [{benchmark: b, value: v, source: s}]}]", "judges[0] (x).match"},
		{"judges: [{name: x, match: [' '], figures: [{benchmark: b, value: v, source: s}]}]", "judges[0] (x).match[0]: empty"},
		{"judges: [{name: x, match: [x]}]", "judges[0] (x).figures: at least one"},
		{"judges: [{name: x, match: [x], figures: [{benchmark: b, value: v}]}]", "judges[0] (x).figures[0]: benchmark, value and source are required"},
	} {
		_, err := ReadPublished(strings.NewReader(tc.in), "f.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadPublished(%q) error = %v, want one containing %q", tc.in, err, tc.want)
		}
	}
}

// FuzzReadPublished: any input gives figures or an error, never a panic, and every
// figure returned has its value and source.
func FuzzReadPublished(f *testing.F) {
	f.Add(builtinPublished)
	f.Add([]byte("judges: []"))
	f.Add([]byte("judges: [{name: x, match: [x], figures: [{benchmark: b, value: v, source: s}]}]"))
	f.Add([]byte("judges: {name: x}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		all, err := ReadPublished(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		for _, p := range all {
			for _, fig := range p.Figures {
				if strings.TrimSpace(fig.Value) == "" || strings.TrimSpace(fig.Source) == "" {
					t.Fatalf("%s: figure without value or source: %+v", p.Name, fig)
				}
			}
		}
	})
}
