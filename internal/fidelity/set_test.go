package fidelity

import (
	"bytes"
	"strings"
	"testing"
)

func TestBuiltinSet(t *testing.T) {
	s, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	pw, pt := s.Counts()
	if pw != 24 || pt != 16 {
		t.Fatalf("built-in set has %d pairwise and %d pointwise items; sets/README.md says 24 and 16", pw, pt)
	}
	subsets := map[string]int{}
	for _, it := range s.Items {
		subsets[it.Subset]++
		if it.Pairwise() && it.Chosen == it.Rejected {
			t.Errorf("%s: chosen and rejected are the same text", it.ID)
		}
	}
	for _, sub := range []string{"chat", "chat-hard", "safety", "reasoning"} {
		if subsets[sub] != 6 {
			t.Errorf("subset %s has %d items, want 6", sub, subsets[sub])
		}
	}
}

func TestReadSet(t *testing.T) {
	good := `{"id": 7, "prompt": "p", "chosen": "a", "rejected": "b", "chosen_model": "x"}

{"prompt": "q", "response": "r", "score": 4.5}
`
	s, err := ReadSet(strings.NewReader(good), "good.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Items) != 2 || s.Items[0].ID != "7" || s.Items[0].Subset != "all" || !s.Items[0].Pairwise() {
		t.Errorf("first item = %+v", s.Items[0])
	}
	if it := s.Items[1]; it.ID != "line-3" || it.Pairwise() || it.Score != 4.5 || it.Response != "r" {
		t.Errorf("second item = %+v", it)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "\n\n", "bad.jsonl: no items"},
		{"not json", `{"prompt": `, "bad.jsonl:1: not a JSON object"},
		{"array", `["prompt"]`, "bad.jsonl:1: not a JSON object"},
		{"no prompt", `{"chosen": "a", "rejected": "b"}`, `bad.jsonl:1: field "prompt": missing or empty`},
		{"no rejected", `{"prompt": "p", "chosen": "a"}`, `bad.jsonl:1: field "rejected": missing or empty`},
		{"empty chosen", `{"prompt": "p", "chosen": " ", "rejected": "b"}`, `bad.jsonl:1: field "chosen": missing or empty`},
		{"no score", `{"prompt": "p", "response": "a"}`, `bad.jsonl:1: field "score": missing`},
		{"no response", `{"prompt": "p", "score": 3}`, `bad.jsonl:1: field "response": missing`},
		{"off scale", `{"prompt": "p", "response": "a", "score": 7}`, `bad.jsonl:1: field "score": 7 is not on the 1–5 scale`},
		{"both kinds", `{"prompt": "p", "response": "a", "score": 3, "chosen": "c", "rejected": "d"}`, "bad.jsonl:1: both pairwise fields"},
		{"neither", `{"prompt": "p"}`, `bad.jsonl:1: neither "chosen"/"rejected"`},
		{"bad id", `{"id": [1], "prompt": "p", "response": "a", "score": 3}`, `bad.jsonl:1: field "id": [1] is neither`},
		{"duplicate id", "{\"id\": \"x\", \"prompt\": \"p\", \"response\": \"a\", \"score\": 3}\n{\"id\": \"x\", \"prompt\": \"p\", \"response\": \"a\", \"score\": 3}", `bad.jsonl:2: id "x": already used on line 1`},
		{"bad utf-8", "{\"prompt\": \"\xff\", \"response\": \"a\", \"score\": 3}", "bad.jsonl:1: not valid UTF-8"},
		{"long line", `{"prompt": "` + strings.Repeat("x", MaxLineBytes) + `"}`, "bad.jsonl:1: line longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSet(strings.NewReader(tc.in), "bad.jsonl")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadSet error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzReadSet: any input gives a set or an error, never a panic; a set's items are each
// either a complete pairwise item or a pointwise one on the scale.
func FuzzReadSet(f *testing.F) {
	f.Add([]byte(builtinSet))
	f.Add([]byte(`{"id": 1, "prompt": "p", "chosen": "a", "rejected": "b"}`))
	f.Add([]byte(`{"prompt": "q", "response": "", "score": 1}` + "\n" + `{"prompt": "q", "response": "r", "score": 5}`))
	f.Add([]byte(`{"prompt": "q", "response": "r", "score": 1e309}`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadSet(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		for _, it := range s.Items {
			switch {
			case it.Prompt == "":
				t.Fatalf("item %s without a prompt", it.ID)
			case it.Pairwise() && (it.Chosen == "" || it.Rejected == ""):
				t.Fatalf("pairwise item %s without chosen or rejected", it.ID)
			case !it.Pairwise() && (it.Score < ScaleMin || it.Score > ScaleMax):
				t.Fatalf("pointwise item %s scored %v", it.ID, it.Score)
			}
		}
	})
}
