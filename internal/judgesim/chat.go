package judgesim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"raterd/internal/text"
)

type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	MaxTokens           *int          `json:"max_tokens"`
	MaxCompletionTokens *int          `json:"max_completion_tokens"`
	N                   *int          `json:"n"`
	Stream              bool          `json:"stream"`
	Logprobs            bool          `json:"logprobs"`
	TopLogprobs         *int          `json:"top_logprobs"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// text returns a message's content: a string, or the text parts of a content array.
func (m chatMessage) text() (string, error) {
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(m.Content, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", errors.New("content is neither a string nor an array of parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String(), nil
}

// decodeChat reads and checks a chat request: the user messages, the prompt bytes, the
// prompt text (the messages as "role\ntext\n" lines, made only for PrefixCaching), the
// content hash (seed, roles and texts) or a message for a 400.
func (s *Simulator) decodeChat(body []byte) (req chatRequest, users []string, promptBytes int, promptText string, content [32]byte, err error) {
	if err = json.Unmarshal(body, &req); err != nil {
		return req, nil, 0, "", content, fmt.Errorf("request is not valid JSON: %w", err)
	}
	switch {
	case req.Stream:
		return req, nil, 0, "", content, errors.New("stream=true is not supported by judgesim")
	case len(req.Messages) == 0:
		return req, nil, 0, "", content, errors.New("messages: at least one message is required")
	case req.N != nil && *req.N != 1:
		return req, nil, 0, "", content, fmt.Errorf("n: %d is not supported by judgesim (only 1)", *req.N)
	case req.TopLogprobs != nil && (*req.TopLogprobs < 0 || *req.TopLogprobs > maxTopLogprobs):
		return req, nil, 0, "", content, fmt.Errorf("top_logprobs: %d is not in 0..%d", *req.TopLogprobs, maxTopLogprobs)
	case req.TopLogprobs != nil && *req.TopLogprobs > 0 && !req.Logprobs:
		return req, nil, 0, "", content, errors.New("top_logprobs: logprobs must be true when top_logprobs is used")
	}
	h := sha256.New()
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], s.cfg.Seed)
	h.Write(seed[:])
	var pt strings.Builder
	for i, m := range req.Messages {
		text, terr := m.text()
		if terr != nil {
			return req, nil, 0, "", content, fmt.Errorf("messages[%d]: %w", i, terr)
		}
		writeField(h, m.Role)
		writeField(h, text)
		promptBytes += len(text)
		if s.cfg.PrefixCaching {
			pt.WriteString(m.Role)
			pt.WriteByte('\n')
			pt.WriteString(text)
			pt.WriteByte('\n')
		}
		if m.Role == "user" {
			users = append(users, text)
		}
	}
	if len(users) == 0 {
		last, _ := req.Messages[len(req.Messages)-1].text()
		users = []string{last}
	}
	h.Sum(content[:0])
	return req, users, promptBytes, pt.String(), content, nil
}

func (s *Simulator) chatCompletions(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r, false)
	if !ok {
		return
	}
	req, users, promptBytes, promptText, content, err := s.decodeChat(body)
	if err != nil {
		s.badRequest(w, false, http.StatusBadRequest, err.Error())
		return
	}
	fate := s.fate(content)
	if fate.hang {
		s.hangRequest(w, r, false)
		return
	}
	if fate.fail {
		s.fail(w, false)
		return
	}

	// The answer depends on the judge prompt alone, not on earlier turns of the
	// conversation (a format reminder gets the same verdict).
	user := pickUser(users)
	ph := s.promptHash(user)
	p := parsePrompt(user)
	limit := req.MaxTokens
	if req.MaxCompletionTokens != nil {
		limit = req.MaxCompletionTokens
	}
	maxTokens := 0
	if limit != nil && *limit > 0 {
		maxTokens = *limit
	}
	ans := s.judgeLen(p, ph, s.faults.Load().PositionBias, 4*s.answerTokens(ph, maxTokens))
	if fate.malformed {
		s.malformed.Add(1)
		ans = malformed(p, ans, ph)
	}
	finish := "stop"
	if limit != nil && *limit > 0 && tokens(len(ans.text)) > *limit {
		ans.text = text.Clip(ans.text, *limit*4)
		finish = "length"
	}
	promptTokens, completionTokens := tokens(promptBytes), max(tokens(len(ans.text)), 1)
	need := completionTokens
	if fate.slow {
		s.slowed.Add(1)
		need = slowSteps(completionTokens, fate.slowFactor)
	}
	g := newGroup([]int{promptTokens}, []int{need})
	if s.cfg.PrefixCaching {
		g.seqs[0].chain = promptChain(promptText)
	}
	if !s.serve(w, r, g, false) {
		return
	}

	s.completed.Add(1)
	s.promptTokens.Add(int64(promptTokens))
	s.completionTokens.Add(int64(completionTokens))
	var lp any // null without logprobs, as vLLM answers
	if req.Logprobs {
		k := 0
		if req.TopLogprobs != nil {
			k = *req.TopLogprobs
		}
		lp = map[string]any{"content": logprobs(ans, ph, k)}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id":      "chatcmpl-sim-" + hex.EncodeToString(content[:12]),
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   s.cfg.Model,
		"choices": []map[string]any{{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": ans.text},
			"logprobs":      lp,
			"finish_reason": finish,
		}},
		"usage": map[string]int{
			"prompt_tokens":     promptTokens,
			"completion_tokens": completionTokens,
			"total_tokens":      promptTokens + completionTokens,
		},
	})
}

// fate is what the fault injection picked for one request.
type fate struct {
	fail, hang, slow, malformed bool
	slowFactor                  float64
}

// fate picks a request's faults from its content and how often that content was seen:
// the k-th request with the same content always gets the same fate.
func (s *Simulator) fate(content [32]byte) fate {
	f := s.faults.Load().Faults
	if f.ErrorRate <= 0 && f.HangRate <= 0 && f.SlowRate <= 0 && f.MalformedRate <= 0 {
		return fate{}
	}
	var key [8]byte
	copy(key[:], content[:8])
	s.seenMu.Lock()
	if len(s.seen) >= maxSeen {
		clear(s.seen)
	}
	k := s.seen[key]
	s.seen[key] = k + 1
	s.seenMu.Unlock()
	var buf [36]byte
	copy(buf[:], content[:])
	binary.BigEndian.PutUint32(buf[32:], k)
	sum := sha256.Sum256(buf[:])
	return fate{
		fail:       unit(sum[0:8]) < f.ErrorRate,
		hang:       unit(sum[8:16]) < f.HangRate,
		slow:       unit(sum[16:24]) < f.SlowRate,
		malformed:  unit(sum[24:32]) < f.MalformedRate,
		slowFactor: f.SlowFactor,
	}
}

// promptHash is the hash of the judge prompt, salted with the seed.
func (s *Simulator) promptHash(user string) [32]byte {
	h := sha256.New()
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], s.cfg.Seed)
	h.Write(seed[:])
	writeField(h, user)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func writeField(h io.Writer, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	_, _ = h.Write(n[:])
	_, _ = io.WriteString(h, s)
}
