// Package simulator is a GPU scoring-pool SIMULATOR: an HTTP server that speaks the
// OpenAI chat-completions API the way vLLM, SGLang or TGI serving a judge model would, but
// runs no model. It stands in for the GPU pool in tests, demos and benchmarks wherever no
// GPU is present. cmd/judgesim serves it as a binary; raterd's demo and tests run it
// in-process (it is an http.Handler).
//
// # Latency model
//
// The simulator processes at most MaxSeqs sequences at once (like vLLM's max_num_seqs).
// A request takes a free slot, or waits in a FIFO queue of at most QueueLimit requests
// (beyond that it is answered 429 at once). Holding its slot, it then sleeps
//
//	service = FixedCost + tokens × PerTokenCost
//
// where tokens = prompt tokens + answer tokens, both estimated as bytes/4, and answers.
// So a saturated simulator completes about
//
//	throughput ≈ MaxSeqs / (FixedCost + tokens × PerTokenCost)   requests per second,
//
// e.g. with the defaults (32, 20ms, 20µs) and 1,000-token requests, 32/40ms = 800 req/s,
// and a request's latency is its service time plus its queueing time. Unlike a real GPU,
// a request does not slow down as the batch fills; the model is meant to be simple enough
// for a benchmark to reason about, not faithful.
//
// # Answers
//
// Answers are deterministic: the same request content always gets the same answer. The
// simulator finds the judged text in the user message (the <<<RESPONSE>>> block that
// raterd's openai judge writes, else the <<<PROMPT>>> block, else the whole message), reads
// the scale from the "Score: <integer from MIN to MAX>" line (default 1–5), and scores
// with simple quality signals — empty or very short text and refusals score low, long
// and lexically varied text scores high — plus a stable hash of the content for spread.
// It answers in raterd's pointwise grammar: "Reasoning: …\nScore: N".
//
// ErrorRate makes a share of requests fail with HTTP 500. Whether one fails is also
// deterministic: the k-th request with the same content always gets the same outcome, so
// a client's retry of a failed request may succeed, as with a real flaky server.
package simulator

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Config configures a Simulator. The zero value gets the defaults.
type Config struct {
	// MaxSeqs is how many requests are processed at once (vLLM's max_num_seqs).
	// Default 32.
	MaxSeqs int
	// FixedCost is the service time every request pays (prefill and scheduling overhead).
	// Default 20ms; negative means none.
	FixedCost time.Duration
	// PerTokenCost is the service time per prompt or answer token, tokens being estimated
	// as bytes/4. Default 20µs; negative means none.
	PerTokenCost time.Duration
	// QueueLimit is how many requests may wait for a slot beyond the MaxSeqs running;
	// requests over it are answered 429. Default 1024; negative means no queue.
	QueueLimit int
	// ErrorRate is the share of requests answered 500, chosen deterministically from the
	// content, in [0,1]. Default 0.
	ErrorRate float64
	// Model is the model name reported in answers and by /v1/models. Requests may name
	// any model. Default "judgesim".
	Model string
	// Seed salts the content hashes: another seed gives other score spreads and other
	// failing requests. Default 0.
	Seed uint64
}

// Defaults of Config.
const (
	DefaultMaxSeqs      = 32
	DefaultFixedCost    = 20 * time.Millisecond
	DefaultPerTokenCost = 20 * time.Microsecond
	DefaultQueueLimit   = 1024
	DefaultModel        = "judgesim"
)

// Validate rejects values that defaults cannot mend.
func (c Config) Validate() error {
	if c.MaxSeqs < 0 {
		return fmt.Errorf("max-seqs: %d is negative", c.MaxSeqs)
	}
	if !(c.ErrorRate >= 0 && c.ErrorRate <= 1) {
		return fmt.Errorf("error-rate: %g is not in [0,1]", c.ErrorRate)
	}
	return nil
}

// WithDefaults returns c with zero fields set to their defaults and negative costs and
// queue limits set to zero.
func (c Config) WithDefaults() Config {
	if c.MaxSeqs <= 0 {
		c.MaxSeqs = DefaultMaxSeqs
	}
	switch {
	case c.FixedCost == 0:
		c.FixedCost = DefaultFixedCost
	case c.FixedCost < 0:
		c.FixedCost = 0
	}
	switch {
	case c.PerTokenCost == 0:
		c.PerTokenCost = DefaultPerTokenCost
	case c.PerTokenCost < 0:
		c.PerTokenCost = 0
	}
	switch {
	case c.QueueLimit == 0:
		c.QueueLimit = DefaultQueueLimit
	case c.QueueLimit < 0:
		c.QueueLimit = 0
	}
	if !(c.ErrorRate > 0) { // also NaN
		c.ErrorRate = 0
	}
	c.ErrorRate = min(c.ErrorRate, 1)
	if c.Model == "" {
		c.Model = DefaultModel
	}
	return c
}

// ServiceTime is the time a request of the given prompt+answer tokens holds its slot.
func (c Config) ServiceTime(tokens int) time.Duration {
	c = c.WithDefaults()
	return c.FixedCost + time.Duration(tokens)*c.PerTokenCost
}

// Throughput is the requests per second a saturated simulator completes when every
// request has the given prompt+answer tokens: MaxSeqs / ServiceTime(tokens).
func (c Config) Throughput(tokens int) float64 {
	c = c.WithDefaults()
	st := c.ServiceTime(tokens)
	if st <= 0 {
		return math.Inf(1)
	}
	return float64(c.MaxSeqs) / st.Seconds()
}

// Stats counts what a Simulator did since New.
type Stats struct {
	Requests         int64         `json:"requests"`          // chat-completion requests received
	Completed        int64         `json:"completed"`         // answered 200
	Rejected         int64         `json:"rejected"`          // answered 429: the queue was full
	Failed           int64         `json:"failed"`            // answered 500 through ErrorRate
	BadRequests      int64         `json:"bad_requests"`      // answered 4xx other than 429
	Canceled         int64         `json:"canceled"`          // the client left before the answer
	Running          int64         `json:"running"`           // holding a slot now
	Queued           int64         `json:"queued"`            // waiting for a slot now
	MaxRunning       int64         `json:"max_running"`       // most running at once; never above MaxSeqs
	MaxQueued        int64         `json:"max_queued"`        // most waiting at once; never above QueueLimit
	BusyTime         time.Duration `json:"busy_ns"`           // slot-time used: sum over requests of time spent holding a slot
	PromptTokens     int64         `json:"prompt_tokens"`     // estimated, completed requests
	CompletionTokens int64         `json:"completion_tokens"` // estimated, completed requests
}

// Simulator is the http.Handler of the GPU scoring-pool simulator. It serves
// POST /v1/chat/completions, GET /v1/models, GET /healthz and GET /stats (Stats as JSON).
// It is safe for concurrent use.
type Simulator struct {
	cfg     Config
	mux     *http.ServeMux
	slots   chan struct{}
	started time.Time

	// sleep waits for the service time; tests replace it to hold requests in their slots.
	sleep func(ctx context.Context, d time.Duration) error

	requests, completed, rejected, failed, badRequests, canceled atomic.Int64
	running, queued, maxRunning, maxQueued                       atomic.Int64
	busyNanos, promptTokens, completionTokens                    atomic.Int64

	seenMu sync.Mutex
	seen   map[[8]byte]uint32 // occurrences per content, for ErrorRate; bounded
}

// maxSeen bounds the occurrence map; it is cleared when full, which restarts the
// occurrence counts (still deterministic for any run that sees fewer distinct contents).
const maxSeen = 1 << 16

// maxRequestBytes bounds a request body.
const maxRequestBytes = 16 << 20

// New returns a simulator for cfg (zero fields get their defaults).
func New(cfg Config) *Simulator {
	cfg = cfg.WithDefaults()
	s := &Simulator{
		cfg:     cfg,
		mux:     http.NewServeMux(),
		slots:   make(chan struct{}, cfg.MaxSeqs),
		started: time.Now(),
		sleep:   sleepCtx,
		seen:    make(map[[8]byte]uint32),
	}
	s.mux.HandleFunc("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "BadRequestError", r.Method+" is not allowed; use POST")
			return
		}
		s.chatCompletions(w, r)
	})
	s.mux.HandleFunc("GET /v1/models", s.models)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	s.mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFoundError", "judgesim (a GPU scoring-pool simulator) does not serve "+r.URL.Path)
	})
	return s
}

// Config returns the configuration in use, defaults filled.
func (s *Simulator) Config() Config { return s.cfg }

// ServeHTTP serves the simulator's endpoints.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Stats returns the counters so far.
func (s *Simulator) Stats() Stats {
	return Stats{
		Requests:         s.requests.Load(),
		Completed:        s.completed.Load(),
		Rejected:         s.rejected.Load(),
		Failed:           s.failed.Load(),
		BadRequests:      s.badRequests.Load(),
		Canceled:         s.canceled.Load(),
		Running:          s.running.Load(),
		Queued:           s.queued.Load(),
		MaxRunning:       s.maxRunning.Load(),
		MaxQueued:        s.maxQueued.Load(),
		BusyTime:         time.Duration(s.busyNanos.Load()),
		PromptTokens:     s.promptTokens.Load(),
		CompletionTokens: s.completionTokens.Load(),
	}
}

type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	MaxTokens           *int          `json:"max_tokens"`
	MaxCompletionTokens *int          `json:"max_completion_tokens"`
	Stream              bool          `json:"stream"`
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

func (s *Simulator) chatCompletions(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	// Read the whole body: it also lets net/http notice a client that leaves.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		s.badRequests.Add(1)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "BadRequestError", fmt.Sprintf("request body over %d bytes", maxRequestBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "BadRequestError", "read request: "+err.Error())
		return
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.badRequests.Add(1)
		writeError(w, http.StatusBadRequest, "BadRequestError", "request is not valid JSON: "+err.Error())
		return
	}
	if req.Stream {
		s.badRequests.Add(1)
		writeError(w, http.StatusBadRequest, "BadRequestError", "stream=true is not supported by judgesim")
		return
	}
	if len(req.Messages) == 0 {
		s.badRequests.Add(1)
		writeError(w, http.StatusBadRequest, "BadRequestError", "messages: at least one message is required")
		return
	}
	h := sha256.New()
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], s.cfg.Seed)
	h.Write(seed[:])
	promptBytes, user := 0, ""
	for i, m := range req.Messages {
		text, err := m.text()
		if err != nil {
			s.badRequests.Add(1)
			writeError(w, http.StatusBadRequest, "BadRequestError", fmt.Sprintf("messages[%d]: %v", i, err))
			return
		}
		writeField(h, m.Role)
		writeField(h, text)
		promptBytes += len(text)
		if m.Role == "user" {
			user = text
		}
	}
	if user == "" {
		user, _ = req.Messages[len(req.Messages)-1].text()
	}
	var contentHash [32]byte
	h.Sum(contentHash[:0])

	if s.injectFailure(contentHash) {
		s.failed.Add(1)
		writeError(w, http.StatusInternalServerError, "InternalServerError", "judgesim: simulated server failure (error-rate)")
		return
	}

	answer := s.judge(user, contentHash)
	finish := "stop"
	limit := req.MaxTokens
	if req.MaxCompletionTokens != nil {
		limit = req.MaxCompletionTokens
	}
	if limit != nil && *limit > 0 && tokens(len(answer)) > *limit {
		answer = answer[:*limit*4]
		finish = "length"
	}
	promptTokens, completionTokens := tokens(promptBytes), tokens(len(answer))

	if !s.admit(r.Context(), w) {
		return
	}
	start := time.Now()
	n := s.running.Add(1)
	storeMax(&s.maxRunning, n)
	err = s.sleep(r.Context(), s.cfg.FixedCost+time.Duration(promptTokens+completionTokens)*s.cfg.PerTokenCost)
	s.running.Add(-1)
	<-s.slots
	s.busyNanos.Add(int64(time.Since(start)))
	if err != nil {
		s.canceled.Add(1)
		return // the client is gone
	}

	s.completed.Add(1)
	s.promptTokens.Add(int64(promptTokens))
	s.completionTokens.Add(int64(completionTokens))
	writeJSON(w, http.StatusOK, map[string]any{
		"id":      "chatcmpl-sim-" + hex.EncodeToString(contentHash[:12]),
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   s.cfg.Model,
		"choices": []map[string]any{{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": answer},
			"finish_reason": finish,
		}},
		"usage": map[string]int{
			"prompt_tokens":     promptTokens,
			"completion_tokens": completionTokens,
			"total_tokens":      promptTokens + completionTokens,
		},
	})
}

// admit takes a slot, queueing within QueueLimit. It answers 429 when the queue is full
// and reports false, also when the client leaves while queued.
func (s *Simulator) admit(ctx context.Context, w http.ResponseWriter) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	q := s.queued.Add(1)
	if q > int64(s.cfg.QueueLimit) {
		s.queued.Add(-1)
		s.rejected.Add(1)
		writeError(w, http.StatusTooManyRequests, "RateLimitError",
			fmt.Sprintf("judgesim: all %d sequences busy and %d requests queued", s.cfg.MaxSeqs, s.cfg.QueueLimit))
		return false
	}
	storeMax(&s.maxQueued, q)
	defer s.queued.Add(-1)
	select {
	case s.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		s.canceled.Add(1)
		return false
	}
}

// injectFailure decides, from the content and how often it was seen, whether this
// request fails.
func (s *Simulator) injectFailure(content [32]byte) bool {
	if s.cfg.ErrorRate <= 0 {
		return false
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
	return unit(sum[:8]) < s.cfg.ErrorRate
}

// Prompt layout shared with raterd's openai judge (scorer/openai.go).
var scaleLine = regexp.MustCompile(`Score: <integer from (-?\d{1,6}) to (-?\d{1,6})>`)

func block(user, name string) (string, bool) {
	open, end := "<<<"+name+">>>\n", "\n<<<END "+name+">>>"
	i := strings.Index(user, open)
	if i < 0 {
		return "", false
	}
	rest := user[i+len(open):]
	j := strings.Index(rest, end)
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

// scale reads the last "Score: <integer from MIN to MAX>" of the prompt (the output
// format comes last, after the judged text), or 1–5.
func scale(user string) (lo, hi int) {
	all := scaleLine.FindAllStringSubmatch(user, -1)
	if len(all) == 0 {
		return 1, 5
	}
	m := all[len(all)-1]
	lo, err1 := strconv.Atoi(m[1])
	hi, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil || hi <= lo || hi-lo > 1000 {
		return 1, 5
	}
	return lo, hi
}

var refusalPhrases = []string{
	"i can't help", "i cannot help", "i can't assist", "i cannot assist", "i can't provide",
	"i cannot provide", "i'm sorry, but", "i am sorry, but", "i'm unable to", "i am unable to",
	"i'm not able to", "i am not able to", "as an ai language model", "i won't be able to",
	"i can’t help", "i can’t assist", "i’m sorry, but", "i’m unable to",
}

// judge writes the deterministic answer for a user message.
func (s *Simulator) judge(user string, content [32]byte) string {
	lo, hi := scale(user)
	subject := "RESPONSE"
	text, ok := block(user, "RESPONSE")
	if !ok {
		subject = "PROMPT"
		if text, ok = block(user, "PROMPT"); !ok {
			subject, text = "message", user
		}
	}
	q, notes := quality(text)
	span := float64(hi - lo)
	score := lo
	if q > 0 {
		// Spread: a stable offset of up to ±half a step (±5% of wide scales).
		jitter := (unit(content[8:16]) - 0.5) * max(1, span/10)
		score = int(math.Round(float64(lo) + q*span + jitter))
		score = min(max(score, lo), hi)
	}
	return fmt.Sprintf("Reasoning: Simulated judgement by judgesim (a GPU scoring-pool simulator, no model): the %s %s.\nScore: %d",
		subject, strings.Join(notes, "; "), score)
}

// quality maps text to [0,1] with cheap signals that correlate with real judge scores,
// and says why.
func quality(text string) (float64, []string) {
	t := strings.TrimSpace(text)
	if t == "" {
		return 0, []string{"is empty"}
	}
	words := strings.Fields(t)
	n := len(words)
	sample := words[:min(n, 300)]
	uniq := make(map[string]struct{}, len(sample))
	for _, w := range sample {
		uniq[strings.ToLower(strings.TrimFunc(w, unicode.IsPunct))] = struct{}{}
	}
	diversity := float64(len(uniq)) / float64(len(sample))
	length := min(1, math.Log1p(float64(n))/math.Log1p(120))
	ending := 0.5
	if last, _ := utf8.DecodeLastRuneInString(t); strings.ContainsRune(".!?)`\"'*]}", last) || unicode.IsDigit(last) {
		ending = 1
	}
	q := length*(0.6+0.3*diversity) + 0.1*ending // diversity counts for as much text as there is
	notes := []string{fmt.Sprintf("has %d words with lexical diversity %.2f", n, diversity)}
	if n < 5 {
		q = min(q, 0.2)
		notes = append(notes, "is very short")
	}
	if diversity < 0.3 && n >= 20 {
		q *= 0.5
		notes = append(notes, "repeats itself")
	}
	if ending < 1 {
		notes = append(notes, "looks cut off")
	}
	lower := strings.ToLower(t)
	for _, p := range refusalPhrases {
		if strings.Contains(lower, p) {
			q *= 0.25
			notes = append(notes, "reads as a refusal")
			break
		}
	}
	return min(max(q, 0.01), 1), notes
}

// unit maps 8 hash bytes to [0,1).
func unit(b []byte) float64 {
	return float64(binary.BigEndian.Uint64(b)>>11) / (1 << 53)
}

func tokens(bytes int) int { return (bytes + 3) / 4 }

func writeField(h io.Writer, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	_, _ = h.Write(n[:])
	_, _ = io.WriteString(h, s)
}

func storeMax(m *atomic.Int64, v int64) {
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Simulator) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data": []map[string]any{{
			"id":       s.cfg.Model,
			"object":   "model",
			"created":  s.started.Unix(),
			"owned_by": "judgesim",
		}},
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers in the OpenAI error shape.
func writeError(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code}})
}
