package judgesim

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"testing"
)

func postJSON(t *testing.T, sim http.Handler, path string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	rec := do(context.Background(), sim, http.MethodPost, path, b)
	if rec.Code == http.StatusOK && (rec.Header().Get("X-Judgesim-Queue-Time") == "" || rec.Header().Get("X-Judgesim-Service-Time") == "") {
		t.Fatalf("%s: no timing headers: %v", path, rec.Header())
	}
	return rec.Code, rec.Body.Bytes()
}

func TestPooling(t *testing.T) {
	sim := newSim(t, fast(Config{Model: "rm"}))
	type resp struct {
		Object string `json:"object"`
		Model  string `json:"model"`
		Data   []struct {
			Index  int       `json:"index"`
			Object string    `json:"object"`
			Data   []float64 `json:"data"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}
	read := func(input any) resp {
		t.Helper()
		code, body := postJSON(t, sim, "/pooling", map[string]any{"model": "rm", "input": input})
		var r resp
		if code != http.StatusOK || json.Unmarshal(body, &r) != nil || r.Object != "list" || r.Model != "rm" || r.Usage.PromptTokens <= 0 {
			t.Fatalf("pooling %v: %d %s", input, code, body)
		}
		for i, d := range r.Data {
			if d.Index != i || d.Object != "pooling" || len(d.Data) != 1 || d.Data[0] < -5 || d.Data[0] > 5 {
				t.Fatalf("item %d: %+v", i, d)
			}
		}
		return r
	}
	if r := read(goodAnswer); len(r.Data) != 1 {
		t.Fatalf("single: %+v", r)
	}
	r := read([]string{"User: hi\n\nAssistant: " + goodAnswer, "User: hi\n\nAssistant: ", refusal})
	if len(r.Data) != 3 || !(r.Data[0].Data[0] > r.Data[1].Data[0] && r.Data[0].Data[0] > r.Data[2].Data[0]) {
		t.Fatalf("rewards do not follow quality: %+v", r.Data)
	}
	if again := read([]string{"User: hi\n\nAssistant: " + goodAnswer}); again.Data[0].Data[0] != r.Data[0].Data[0] {
		t.Fatalf("same item, another reward: %g, %g", again.Data[0].Data[0], r.Data[0].Data[0])
	}
	for _, bad := range []any{nil, []string{}, []int{1, 2}, map[string]string{"x": "y"}} {
		if code, body := postJSON(t, sim, "/pooling", map[string]any{"input": bad}); code != http.StatusBadRequest {
			t.Errorf("input %v: %d %s", bad, code, body)
		}
	}

	// The chat form (raterd's reward.input messages): one conversation, one reward.
	chat := map[string]any{"model": "rm", "messages": []map[string]string{{"role": "user", "content": "hi"}, {"role": "assistant", "content": goodAnswer}}}
	code, body := postJSON(t, sim, "/pooling", chat)
	var cr resp
	if code != http.StatusOK || json.Unmarshal(body, &cr) != nil || len(cr.Data) != 1 || len(cr.Data[0].Data) != 1 {
		t.Fatalf("pooling messages: %d %s", code, body)
	}
	for _, bad := range []map[string]any{{"messages": []any{}}, {"messages": chat["messages"], "input": "x"}} {
		if code, body := postJSON(t, sim, "/pooling", bad); code != http.StatusBadRequest {
			t.Errorf("messages %v: %d %s", bad, code, body)
		}
	}
	if code, body := postJSON(t, sim, "/classify", chat); code != http.StatusBadRequest {
		t.Errorf("classify with messages: %d %s", code, body)
	}
}

func TestClassify(t *testing.T) {
	for _, labels := range [][]string{nil, {"bad", "ok", "good"}} {
		sim := newSim(t, fast(Config{ClassifyLabels: labels}))
		want := sim.Config().ClassifyLabels
		type resp struct {
			Object string `json:"object"`
			Data   []struct {
				Index      int       `json:"index"`
				Label      string    `json:"label"`
				Probs      []float64 `json:"probs"`
				NumClasses int       `json:"num_classes"`
			} `json:"data"`
		}
		for _, input := range []any{goodAnswer, []string{goodAnswer, "", "Fine, I guess."}} {
			code, body := postJSON(t, sim, "/classify", map[string]any{"model": "m", "input": input})
			var r resp
			if code != http.StatusOK || json.Unmarshal(body, &r) != nil || r.Object != "list" {
				t.Fatalf("classify: %d %s", code, body)
			}
			for i, d := range r.Data {
				sum, best := 0.0, 0
				for j, p := range d.Probs {
					sum += p
					if p > d.Probs[best] {
						best = j
					}
				}
				if d.Index != i || d.NumClasses != len(want) || len(d.Probs) != len(want) || math.Abs(sum-1) > 1e-9 || d.Label != want[best] {
					t.Fatalf("item %d: %+v", i, d)
				}
			}
			if r.Data[0].Label != want[len(want)-1] {
				t.Errorf("good answer classified %q", r.Data[0].Label)
			}
			if len(r.Data) > 1 && r.Data[1].Label != want[0] {
				t.Errorf("empty answer classified %q", r.Data[1].Label)
			}
		}
	}
}

func TestPredict(t *testing.T) {
	sim := newSim(t, fast(Config{ClassifyLabels: []string{"neg", "pos"}}))
	type pred struct {
		Label string  `json:"label"`
		Score float64 `json:"score"`
	}
	check := func(ps []pred, raw bool) {
		t.Helper()
		sum := 0.0
		for i, p := range ps {
			if i > 0 && p.Score > ps[i-1].Score {
				t.Fatalf("not sorted: %+v", ps)
			}
			sum += p.Score
		}
		if len(ps) != 2 || (!raw && math.Abs(sum-1) > 1e-9) {
			t.Fatalf("predictions %+v", ps)
		}
	}
	// A string, an array of one string and a pair are single inputs.
	for _, inputs := range []any{goodAnswer, []string{goodAnswer}, []string{"How do I reset my password?", goodAnswer}} {
		code, body := postJSON(t, sim, "/predict", map[string]any{"inputs": inputs})
		var ps []pred
		if code != http.StatusOK || json.Unmarshal(body, &ps) != nil {
			t.Fatalf("single %v: %d %s", inputs, code, body)
		}
		check(ps, false)
		if ps[0].Label != "pos" {
			t.Errorf("good answer predicted %+v", ps)
		}
	}
	// A batch of singles and pairs.
	for _, raw := range []bool{false, true} {
		code, body := postJSON(t, sim, "/predict", map[string]any{"inputs": [][]string{{goodAnswer}, {"q", ""}, {"q", goodAnswer}}, "raw_scores": raw})
		var batch [][]pred
		if code != http.StatusOK || json.Unmarshal(body, &batch) != nil || len(batch) != 3 {
			t.Fatalf("batch: %d %s", code, body)
		}
		for _, ps := range batch {
			check(ps, raw)
		}
		if batch[1][0].Label != "neg" || batch[2][0].Label != "pos" {
			t.Errorf("batch predictions %+v", batch)
		}
	}
	for _, bad := range []any{nil, []string{}, []string{"a", "b", "c"}, [][]string{{"a", "b", "c"}}, []any{"a", []string{"b"}}, 5} {
		code, body := postJSON(t, sim, "/predict", map[string]any{"inputs": bad})
		var e struct {
			Error     string `json:"error"`
			ErrorType string `json:"error_type"`
		}
		if code != http.StatusUnprocessableEntity || json.Unmarshal(body, &e) != nil || e.Error == "" || e.ErrorType != "validation" {
			t.Errorf("inputs %v: %d %s", bad, code, body)
		}
	}
}

// TestRewardFaults: reward endpoints share the fault injection; a malformed answer
// breaks the API's shape.
func TestRewardFaults(t *testing.T) {
	sim := newSim(t, fast(Config{MalformedRate: 1}))
	for _, path := range []string{"/pooling", "/classify"} {
		for _, input := range []any{"one", []string{"a", "b", "c"}} {
			code, body := postJSON(t, sim, path, map[string]any{"input": input})
			var r struct {
				Data []json.RawMessage `json:"data"`
			}
			if code != http.StatusOK {
				t.Fatalf("%s: %d", path, code)
			}
			if err := json.Unmarshal(body, &r); err == nil && len(r.Data) == len(toSlice(input)) {
				t.Errorf("%s %v: malformed answer is well formed: %s", path, input, body)
			}
		}
	}
	code, body := postJSON(t, sim, "/predict", map[string]any{"inputs": [][]string{{"a"}, {"b"}}})
	var batch [][]map[string]any
	if err := json.Unmarshal(body, &batch); code != http.StatusOK || (err == nil && len(batch) == 2) {
		t.Errorf("predict: malformed answer is well formed: %d %s", code, body)
	}
	if st := sim.Stats(); st.Malformed != 5 {
		t.Fatalf("stats %+v", st)
	}
	sim = newSim(t, fast(Config{ErrorRate: 1}))
	if code, _ := postJSON(t, sim, "/classify", map[string]any{"input": "x"}); code != http.StatusInternalServerError {
		t.Fatalf("classify with error rate 1: %d", code)
	}
	code, body = postJSON(t, sim, "/predict", map[string]any{"inputs": "x"})
	if code != http.StatusInternalServerError || !json.Valid(body) {
		t.Fatalf("predict with error rate 1: %d %s", code, body)
	}
}

func toSlice(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	return v.([]string)
}
