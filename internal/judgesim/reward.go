package judgesim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"
)

// rewardItem is one input of a reward request: a text, or a pair (TEI) whose second
// text is the judged one.
type rewardItem struct {
	text, second string
	pair         bool
}

func (it rewardItem) judged() string {
	if it.pair {
		return it.second
	}
	// A reward model reads the whole conversation; judge the assistant's turn.
	t := it.text
	for _, marker := range []string{"Assistant:", "<|assistant|>", "<|im_start|>assistant", "[/INST]"} {
		if i := strings.LastIndex(t, marker); i >= 0 {
			return t[i+len(marker):]
		}
	}
	return t
}

func (it rewardItem) bytes() int { return len(it.text) + len(it.second) }

// itemHash is the content hash of one item.
func (s *Simulator) itemHash(it rewardItem) [32]byte {
	h := sha256.New()
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], s.cfg.Seed)
	h.Write(seed[:])
	writeField(h, it.text)
	if it.pair {
		writeField(h, it.second)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// requestHash is the content hash of a reward request (endpoint and items), for the
// fault picks.
func (s *Simulator) requestHash(path string, items []rewardItem) [32]byte {
	h := sha256.New()
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], s.cfg.Seed)
	h.Write(seed[:])
	writeField(h, path)
	for _, it := range items {
		ih := s.itemHash(it)
		h.Write(ih[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// reward is an item's reward in [-5,5]: 10 × (quality − 0.5) plus a stable jitter.
func (s *Simulator) reward(it rewardItem) float64 {
	q, _ := quality(it.judged())
	h := s.itemHash(it)
	r := 10*(q-0.5) + (unit(h[8:16])-0.5)*0.5
	return math.Round(min(max(r, -5), 5)*1e4) / 1e4
}

// classLogits are an item's logits over ClassifyLabels (worst first): peaked at the
// position quality × (n − 1), with a stable jitter.
func (s *Simulator) classLogits(it rewardItem) []float64 {
	q, _ := quality(it.judged())
	h := s.itemHash(it)
	n := len(s.cfg.ClassifyLabels)
	pos := q*float64(n-1) + (unit(h[16:24])-0.5)*0.1
	logits := make([]float64, n)
	for i := range logits {
		d := float64(i) - pos
		logits[i] = math.Round(-4*d*d*1e4) / 1e4
	}
	return logits
}

func softmax(logits []float64) []float64 {
	m := math.Inf(-1)
	for _, l := range logits {
		m = max(m, l)
	}
	out := make([]float64, len(logits))
	var sum float64
	for i, l := range logits {
		out[i] = math.Exp(l - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// decodeVLLMInput reads vLLM's "input": a string or an array of strings.
func decodeVLLMInput(raw json.RawMessage) ([]rewardItem, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("input: required")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []rewardItem{{text: one}}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, errors.New("input: neither a string nor an array of strings (token ids are not supported by judgesim)")
	}
	if len(many) == 0 {
		return nil, errors.New("input: empty array")
	}
	items := make([]rewardItem, len(many))
	for i, t := range many {
		items[i] = rewardItem{text: t}
	}
	return items, nil
}

// decodeTEIInputs reads TEI's "inputs" as TEI does: a string; an array of one string (a
// single input) or two (a pair); or a batch of arrays of one or two strings. It reports
// whether the input was a batch.
func decodeTEIInputs(raw json.RawMessage) ([]rewardItem, bool, error) {
	const expect = "inputs: expected a string, a pair of strings [string, string] or a batch of mixed strings and pairs [[string], [string, string], ...]"
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, errors.New("inputs: required")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []rewardItem{{text: one}}, false, nil
	}
	var flat []string
	if err := json.Unmarshal(raw, &flat); err == nil {
		switch len(flat) {
		case 1:
			return []rewardItem{{text: flat[0]}}, false, nil
		case 2:
			return []rewardItem{{text: flat[0], second: flat[1], pair: true}}, false, nil
		}
		return nil, false, fmt.Errorf("%s; got %d strings (a batch is [[string], ...])", expect, len(flat))
	}
	var batch [][]string
	if err := json.Unmarshal(raw, &batch); err != nil || len(batch) == 0 {
		return nil, false, errors.New(expect)
	}
	items := make([]rewardItem, len(batch))
	for i, seq := range batch {
		switch len(seq) {
		case 1:
			items[i] = rewardItem{text: seq[0]}
		case 2:
			items[i] = rewardItem{text: seq[0], second: seq[1], pair: true}
		default:
			return nil, false, fmt.Errorf("%s; item %d has %d strings", expect, i, len(seq))
		}
	}
	return items, true, nil
}

// scoreItems runs a reward request's items through the scheduler (one sequence of one
// step each) with the fault injection. It reports the fate and whether to answer 200.
func (s *Simulator) scoreItems(w http.ResponseWriter, r *http.Request, path string, items []rewardItem, tei bool) (fate, int, bool) {
	if len(items) > s.cfg.MaxSeqs+s.cfg.QueueLimit {
		s.badRequest(w, tei, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d inputs: more than max-seqs + queue-limit = %d can ever be admitted", len(items), s.cfg.MaxSeqs+s.cfg.QueueLimit))
		return fate{}, 0, false
	}
	f := s.fate(s.requestHash(path, items))
	if f.hang {
		s.hangRequest(w, r, tei)
		return f, 0, false
	}
	if f.fail {
		s.fail(w, tei)
		return f, 0, false
	}
	prompts, needs := make([]int, len(items)), make([]int, len(items))
	total := 0
	for i, it := range items {
		prompts[i] = max(tokens(it.bytes()), 1)
		needs[i] = 1
		if f.slow {
			needs[i] = slowSteps(1, f.slowFactor)
		}
		total += prompts[i]
	}
	if f.slow {
		s.slowed.Add(1)
	}
	g := newGroup(prompts, needs)
	if s.cfg.PrefixCaching {
		for i, it := range items {
			g.seqs[i].chain = promptChain(it.text + it.second)
		}
	}
	if !s.serve(w, r, g, tei) {
		return f, 0, false
	}
	s.completed.Add(1)
	s.promptTokens.Add(int64(total))
	if f.malformed {
		s.malformed.Add(1)
	}
	return f, total, true
}

type vllmRewardRequest struct {
	Model string          `json:"model"`
	Input json.RawMessage `json:"input"`
	// Messages is /pooling's chat form (vLLM's PoolingChatRequest): one conversation.
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
}

// decodeVLLM reads a vLLM /pooling or /classify request; chat allows /pooling's chat
// form, whose conversation judgesim scores as its "role: content" lines (vLLM would
// apply the model's chat template).
func (s *Simulator) decodeVLLM(w http.ResponseWriter, r *http.Request, chat bool) ([]rewardItem, bool) {
	body, ok := s.readBody(w, r, false)
	if !ok {
		return nil, false
	}
	var req vllmRewardRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.badRequest(w, false, http.StatusBadRequest, "request is not valid JSON: "+err.Error())
		return nil, false
	}
	if req.Messages != nil {
		if !chat || len(req.Input) > 0 || len(req.Messages) == 0 {
			s.badRequest(w, false, http.StatusBadRequest, "messages: only /pooling takes them, not empty and not together with input")
			return nil, false
		}
		lines := make([]string, len(req.Messages))
		for i, m := range req.Messages {
			lines[i] = m.Role + ": " + m.Content
		}
		return []rewardItem{{text: strings.Join(lines, "\n")}}, true
	}
	items, err := decodeVLLMInput(req.Input)
	if err != nil {
		s.badRequest(w, false, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return items, true
}

// pooling serves vLLM's POST /pooling: one reward per input, or one for the
// conversation of its chat form.
func (s *Simulator) pooling(w http.ResponseWriter, r *http.Request) {
	items, ok := s.decodeVLLM(w, r, true)
	if !ok {
		return
	}
	f, total, ok := s.scoreItems(w, r, "/pooling", items, false)
	if !ok {
		return
	}
	data := make([]map[string]any, len(items))
	for i, it := range items {
		data[i] = map[string]any{"index": i, "object": "pooling", "data": []float64{s.reward(it)}}
	}
	h := s.requestHash("/pooling", items)
	s.writeReward(w, f, h, map[string]any{
		"id":      "pool-sim-" + hex.EncodeToString(h[:12]),
		"object":  "list",
		"created": time.Now().Unix(),
		"model":   s.cfg.Model,
		"data":    data,
		"usage":   map[string]int{"prompt_tokens": total, "total_tokens": total, "completion_tokens": 0},
	}, len(data))
}

// classify serves vLLM's POST /classify: class probabilities per input.
func (s *Simulator) classify(w http.ResponseWriter, r *http.Request) {
	items, ok := s.decodeVLLM(w, r, false)
	if !ok {
		return
	}
	f, total, ok := s.scoreItems(w, r, "/classify", items, false)
	if !ok {
		return
	}
	labels := s.cfg.ClassifyLabels
	data := make([]map[string]any, len(items))
	for i, it := range items {
		probs := softmax(s.classLogits(it))
		best := 0
		for j, p := range probs {
			if p > probs[best] {
				best = j
			}
		}
		data[i] = map[string]any{"index": i, "label": labels[best], "probs": probs, "num_classes": len(labels)}
	}
	h := s.requestHash("/classify", items)
	s.writeReward(w, f, h, map[string]any{
		"id":      "classify-sim-" + hex.EncodeToString(h[:12]),
		"object":  "list",
		"created": time.Now().Unix(),
		"model":   s.cfg.Model,
		"data":    data,
		"usage":   map[string]int{"prompt_tokens": total, "total_tokens": total, "completion_tokens": 0},
	}, len(data))
}

type teiPredictRequest struct {
	Inputs    json.RawMessage `json:"inputs"`
	Truncate  bool            `json:"truncate"`
	RawScores bool            `json:"raw_scores"`
}

type prediction struct {
	Score float64 `json:"score"`
	Label string  `json:"label"`
}

// predict serves TEI's POST /predict: [{label, score}] per input, best first.
func (s *Simulator) predict(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r, true)
	if !ok {
		return
	}
	var req teiPredictRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.badRequest(w, true, http.StatusUnprocessableEntity, "request is not valid JSON: "+err.Error())
		return
	}
	items, batch, err := decodeTEIInputs(req.Inputs)
	if err != nil {
		s.badRequest(w, true, http.StatusUnprocessableEntity, err.Error())
		return
	}
	f, _, ok := s.scoreItems(w, r, "/predict", items, true)
	if !ok {
		return
	}
	preds := make([][]prediction, len(items))
	for i, it := range items {
		scores := s.classLogits(it)
		if !req.RawScores {
			scores = softmax(scores)
		}
		ps := make([]prediction, len(scores))
		for j, sc := range scores {
			ps[j] = prediction{Score: sc, Label: s.cfg.ClassifyLabels[j]}
		}
		sort.SliceStable(ps, func(a, b int) bool { return ps[a].Score > ps[b].Score })
		preds[i] = ps
	}
	h := s.requestHash("/predict", items)
	if batch {
		s.writeReward(w, f, h, preds, len(preds))
		return
	}
	s.writeReward(w, f, h, preds[0], -1)
}

// writeReward answers a reward request, or — picked by MalformedRate — a 200 whose body
// breaks the API's shape: cut mid-JSON, or (for a batch of n > 1) one result short.
func (s *Simulator) writeReward(w http.ResponseWriter, f fate, h [32]byte, v any, n int) {
	if !f.malformed {
		writeJSON(w, http.StatusOK, v)
		return
	}
	b, _ := json.Marshal(v)
	if n > 1 && h[5]&1 == 1 {
		// One result short.
		switch x := v.(type) {
		case map[string]any:
			data := x["data"].([]map[string]any)
			x["data"] = data[:len(data)-1]
		case [][]prediction:
			v = x[:len(x)-1]
		}
		b, _ = json.Marshal(v)
	} else {
		b = b[:len(b)/2]
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
