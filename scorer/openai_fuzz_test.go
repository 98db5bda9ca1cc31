package scorer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"raterd/internal/telemetry"
	"raterd/record"
	"raterd/scorer/format"
	"raterd/scorer/pool"
)

// Fuzz targets for what the openai judge reads back from a chat-completions endpoint: the
// response body (JSON with choices, message content and logprobs) and the verdict built
// from it. Seed corpora: testdata/fuzz/FuzzOpenAIResponse and testdata/fuzz/FuzzOpenAILogprobs.

// fzBodyTransport answers every request with 200 and the body last set: an endpoint
// whose answers the fuzzer writes, without a network.
type fzBodyTransport struct {
	mu   sync.Mutex
	body []byte
}

func (b *fzBodyTransport) set(body []byte) {
	b.mu.Lock()
	b.body = bytes.Clone(body)
	b.mu.Unlock()
}

func (b *fzBodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	b.mu.Lock()
	body := b.body
	b.mu.Unlock()
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}, nil
}

// fzOpenAIEvaluators are the evaluators a fuzz input picks from with its selector byte:
// every format × task, and a wide scale with negative scores.
func fzOpenAIEvaluators(tb testing.TB) []*Evaluator {
	tb.Helper()
	mk := func(name, format, task string, scale Scale, labels ...string) *Evaluator {
		e := &Evaluator{Name: name, Judge: "pool-a", Task: task, Format: format, Criteria: "Is the response helpful and correct?", Scale: scale, Labels: labels}
		if err := e.Prepare("evaluators["+name+"]", KindModel); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		return e
	}
	return []*Evaluator{
		mk("flame-pointwise", FormatFLAMe, TaskPointwise, Scale{}),
		mk("prometheus2-pointwise", FormatPrometheus2, TaskPointwise, Scale{}),
		mk("selene-pointwise", FormatSelene, TaskPointwise, Scale{}),
		mk("flame-classification", FormatFLAMe, TaskClassification, Scale{}, "good", "bad"),
		mk("selene-classification", FormatSelene, TaskClassification, Scale{}, "good", "bad"),
		mk("flame-pairwise", FormatFLAMe, TaskPairwise, Scale{}),
		mk("prometheus2-pairwise", FormatPrometheus2, TaskPairwise, Scale{}),
		mk("selene-pairwise", FormatSelene, TaskPairwise, Scale{}),
		mk("flame-pointwise-wide", FormatFLAMe, TaskPointwise, Scale{Min: -3, Max: 12}),
	}
}

func fzOpenAIRecord() *record.Record {
	return &record.Record{
		ID: "req-fuzz", Model: "support-llm-v7", Prompt: "How do I reset my password?",
		Response:   "Open Settings, choose Security, then click Reset password.",
		Candidates: []record.Candidate{{Model: "support-llm-v6", Response: "Contact support."}},
	}
}

// fzOpenAIJudge is a judge whose only endpoint is tr; one attempt per request, so that a
// fuzz input costs at most four requests (pairwise, each order asked again once).
func fzOpenAIJudge(tb testing.TB, tr http.RoundTripper) *OpenAIJudge {
	tb.Helper()
	cfg := OpenAIConfig{Model: "judge-model", Logprobs: true}
	cfg.Endpoints = []pool.Endpoint{{URL: "http://judge.fuzz.invalid/v1"}}
	cfg.MaxAttempts = 1
	cfg.Timeout = 10 * time.Second
	cfg.Concurrency.Mode = pool.ModeFixed
	j, err := NewOpenAIJudge(cfg, JudgeSettings{Key: "judges.fuzz", HTTPClient: &http.Client{Transport: tr}, Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = j.Close(context.Background()) })
	return j
}

// fzValidStatus lists the statuses a judge may give a verdict.
var fzValidStatus = []string{record.StatusOK, record.StatusParseFailure, record.StatusJudgeError}

// fzCheckModelVerdict asserts the Verdict contract for a model judge's answer on e: a known
// status, an error exactly on judge_error, finite numbers, confidence in [0,1], a value on
// the scale (pointwise), a label among the evaluator's (classification), a preference in
// [0,1] with its agreement label (pairwise), and nothing invented on a parse failure.
func fzCheckModelVerdict(t *testing.T, e *Evaluator, v Verdict) {
	t.Helper()
	if !slices.Contains(fzValidStatus, v.Status) {
		t.Fatalf("status %q is not one of %v: %+v", v.Status, fzValidStatus, v)
	}
	if (v.Err != nil) != (v.Status == record.StatusJudgeError) {
		t.Fatalf("error %v with status %q", v.Err, v.Status)
	}
	if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) || math.IsNaN(v.Confidence) || math.IsInf(v.Confidence, 0) {
		t.Fatalf("non-finite value or confidence: %+v", v)
	}
	if v.Confidence < 0 || v.Confidence > 1 {
		t.Fatalf("confidence %v outside [0,1]: %+v", v.Confidence, v)
	}
	if v.Attempts < 1 && v.Status != record.StatusJudgeError {
		t.Fatalf("verdict without attempts: %+v", v)
	}
	if !utf8.ValidString(v.Explanation) {
		t.Fatalf("explanation is not valid UTF-8: %q", v.Explanation)
	}
	switch v.Status {
	case record.StatusJudgeError:
		if errors.Is(v.Err, ErrJudgeUnavailable) {
			// A bad answer from a live endpoint is a permanent failure of this record:
			// marking it unavailable would retry the batch forever and block later records.
			t.Fatalf("a malformed answer made the judge unavailable: %v", v.Err)
		}
		if msg := v.Err.Error(); !utf8.ValidString(msg) || strings.ContainsAny(msg, "\r\n") || len(msg) > 2000 {
			t.Fatalf("error is not one bounded line of valid UTF-8: %q", msg)
		}
	case record.StatusParseFailure:
		if v.Value != 0 || v.Label != "" || v.Confidence != 0 || v.Explanation == "" {
			t.Fatalf("a parse failure carries a made-up result: %+v", v)
		}
	case record.StatusOK:
		switch e.Task {
		case TaskPointwise:
			if v.Value < e.Scale.Min || v.Value > e.Scale.Max {
				t.Fatalf("score %v is off the scale %v–%v: %+v", v.Value, e.Scale.Min, e.Scale.Max, v)
			}
		case TaskClassification:
			if !slices.Contains(e.Labels, v.Label) {
				t.Fatalf("label %q is not one of %v", v.Label, e.Labels)
			}
			if want := map[bool]float64{true: 1, false: 0}[v.Label == e.PositiveLabel]; v.Value != want {
				t.Fatalf("label %q scores %v, want %v", v.Label, v.Value, want)
			}
		case TaskPairwise:
			if v.Value < 0 || v.Value > 1 {
				t.Fatalf("preference %v outside [0,1]", v.Value)
			}
			if !slices.Contains([]string{"first", "second", "inconsistent"}, v.Label) {
				t.Fatalf("pairwise label %q", v.Label)
			}
		}
	}
}

// fzSameVerdict compares what a score row stores of two verdicts.
func fzSameVerdict(a, b Verdict) bool {
	return a.Status == b.Status && a.Value == b.Value && a.Label == b.Label && a.Confidence == b.Confidence &&
		a.Explanation == b.Explanation && (a.Err == nil) == (b.Err == nil)
}

func fzJudge1(t *testing.T, j *OpenAIJudge, e *Evaluator) Verdict {
	t.Helper()
	vs, err := j.Judge(context.Background(), []Task{{Evaluator: e, Record: fzOpenAIRecord()}})
	if err != nil {
		t.Fatalf("Judge failed as a whole on a live context: %v", err)
	}
	if len(vs) != 1 {
		t.Fatalf("%d verdicts for one task", len(vs))
	}
	return vs[0]
}

// FuzzOpenAIResponse feeds arbitrary bodies as the endpoint's 200 answer.
//
// Decoding (post): it never panics; an accepted body is valid JSON with a choice, and the
// answer and logprobs it yields survive re-encoding as a chat completion; a rejected body
// gets one bounded line of valid UTF-8 as its error; the same body decodes the same way.
//
// Verdict (Judge, every format × task): the Verdict contract (fzCheckModelVerdict), a
// rejected body is a judge_error that does not make the judge unavailable, and the same
// body gives the same verdict.
func FuzzOpenAIResponse(f *testing.F) {
	f.Add(uint8(0), []byte(`{"choices":[{"index":0,"message":{"role":"assistant","content":"Reasoning: fine.\nScore: 4"},"finish_reason":"stop"}]}`))
	f.Add(uint8(5), []byte(`{"choices":[{"message":{"content":"Reasoning: A is right.\nPreference: A"}}]}`))
	f.Add(uint8(3), []byte(`{"choices":[{"message":{"content":"Reasoning: ok\nLabel: good"},"logprobs":{"content":[{"token":"Reasoning: ok\nLabel:","logprob":0},{"token":" good","logprob":-0.1,"top_logprobs":[{"token":" good","logprob":-0.1},{"token":" bad","logprob":-2.4}]}]}}]}`))
	f.Add(uint8(0), []byte(`{"choices":[]}`))
	f.Add(uint8(0), []byte(`{"choices":[{"message":{"content":null}}]}`))
	f.Add(uint8(0), []byte(`{"error":{"message":"model not found"}}`))
	f.Add(uint8(0), []byte("\xff\xfe"))
	f.Add(uint8(0), []byte(``))
	// Issue 16: a 9 with half the mass on " 1" (which may begin 10) on -3..12, and
	// byte-fallback tokens that only their bytes line up with the answer.
	f.Add(uint8(8), []byte(`{"choices":[{"message":{"content":"Reasoning: ok\nScore: 9"},"logprobs":{"content":[{"token":"Reasoning: ok\nScore:","logprob":0},{"token":" 9","logprob":-0.69,"top_logprobs":[{"token":" 9","logprob":-0.69},{"token":" 1","logprob":-0.69}]}]}}]}`))
	f.Add(uint8(0), []byte(`{"choices":[{"message":{"content":"Reasoning: tr\u00e8s\nScore: 4"},"logprobs":{"content":[{"token":"Reasoning: tr","logprob":0,"bytes":[82,101,97,115,111,110,105,110,103,58,32,116,114]},{"token":"\\xc3","logprob":0,"bytes":[195]},{"token":"\\xa8","logprob":0,"bytes":[168]},{"token":"s\nScore:","logprob":0,"bytes":[115,10,83,99,111,114,101,58]},{"token":" 4","logprob":-0.7,"bytes":[32,52],"top_logprobs":[{"token":" 4","logprob":-0.7},{"token":" 5","logprob":-0.7}]}]}}]}`))
	tr := &fzBodyTransport{}
	j := fzOpenAIJudge(f, tr)
	evals := fzOpenAIEvaluators(f)
	const url = "http://judge.fuzz.invalid/v1/chat/completions"
	f.Fuzz(func(t *testing.T, sel uint8, body []byte) {
		if len(body) > 64<<10 {
			return // the decoder bounds bodies at 4 MiB; big inputs only slow the fuzzer
		}
		tr.set(body)
		ctx := context.Background()

		text, lp, err := j.post(ctx, url, body)
		text2, lp2, err2 := j.post(ctx, url, body)
		if (err == nil) != (err2 == nil) || text != text2 || !slices.EqualFunc(lp, lp2, fzSameTokenLogprob) {
			t.Fatalf("decoding the same body twice differs: %q %v / %q %v", text, err, text2, err2)
		}
		if err != nil {
			if msg := err.Error(); !utf8.ValidString(msg) || strings.ContainsAny(msg, "\r\n") || len(msg) > 1000 {
				t.Fatalf("error is not one bounded line of valid UTF-8: %q", msg)
			}
		} else {
			if !json.Valid(body) {
				t.Fatalf("accepted a body that is not JSON: %q", body)
			}
			// Round trip: the answer and logprobs, written back as a chat completion.
			choice := map[string]any{"message": map[string]any{"role": "assistant", "content": text}}
			if lp != nil {
				choice["logprobs"] = map[string]any{"content": lp}
			}
			re, merr := json.Marshal(map[string]any{"choices": []any{choice}})
			if merr != nil {
				t.Fatalf("re-encode: %v", merr)
			}
			rtext, rlp, rerr := j.post(ctx, url, re)
			if rerr != nil || rtext != fzValidUTF8(text) || !slices.EqualFunc(rlp, lp, fzSameTokenLogprob) {
				t.Fatalf("round trip of %q: %q, %d tokens (was %d), %v", text, rtext, len(rlp), len(lp), rerr)
			}
			tr.set(body)
		}

		e := evals[int(sel)%len(evals)]
		v := fzJudge1(t, j, e)
		fzCheckModelVerdict(t, e, v)
		if err != nil && v.Status != record.StatusJudgeError {
			t.Fatalf("a body the decoder rejects gave status %q: %+v", v.Status, v)
		}
		if again := fzJudge1(t, j, e); !fzSameVerdict(v, again) {
			t.Fatalf("the same answer judged twice differs:\n%+v\n%+v", v, again)
		}
	})
}

func fzSameTokenLogprob(a, b openaiTokenLogprob) bool {
	return a.Token == b.Token && a.Logprob == b.Logprob && slices.Equal(a.Bytes, b.Bytes) && slices.Equal(a.TopLogprobs, b.TopLogprobs)
}

// fzValidUTF8 is s as encoding/json writes it: invalid bytes become U+FFFD.
func fzValidUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// FuzzOpenAILogprobs builds well-formed chat completions from an answer text cut into
// tokens (cuts) with logprobs ≤ 0 and alternatives over the evaluator's choices (lps), so
// that the fuzzer spends its time on the logprob logic rather than on JSON syntax.
// Beyond the Verdict contract it checks that logprobs never change whether an answer
// parses, nor the label of a classification, and that a pointwise score with logprobs
// stays on the scale (the probability-weighted mean).
func FuzzOpenAILogprobs(f *testing.F) {
	f.Add(uint8(0), "Reasoning: fine.\nScore: 4", []byte{18, 7, 2}, []byte{3, 40, 1, 90, 200})
	f.Add(uint8(8), "Reasoning: poor.\nScore: -2", []byte{18, 7, 1, 1}, []byte{0, 10, 20, 30})
	f.Add(uint8(8), "Score: 10", []byte{6, 1, 1, 1}, []byte{0, 5, 5, 9, 1})
	f.Add(uint8(3), "Reasoning: ok\nLabel: good", []byte{20, 5}, []byte{1, 2, 3})
	f.Add(uint8(5), "Reasoning: A is right.\nPreference: A", []byte{35, 2}, []byte{0, 64, 128})
	f.Add(uint8(6), "Feedback: B. [RESULT] B", []byte{22, 1}, []byte{255, 0})
	f.Add(uint8(2), "**Reasoning:** x\n\n**Result:** 5", []byte{30, 2}, []byte{})
	// Issue 16: multi-digit scores on -3..12 — a prefix ("1") that may begin 10, 11 or
	// 12, the number ended by the next token, and split over two tokens.
	f.Add(uint8(8), "Score: 1\n", []byte{6, 2, 1}, []byte{0, 3, 9, 27, 1})
	f.Add(uint8(8), "Score: 12", []byte{6, 2, 1}, []byte{5, 3, 90, 2})
	f.Add(uint8(8), "Score: 9", []byte{6, 2}, []byte{22, 22, 0, 1})
	tr := &fzBodyTransport{}
	j := fzOpenAIJudge(f, tr)
	evals := fzOpenAIEvaluators(f)
	f.Fuzz(func(t *testing.T, sel uint8, answer string, cuts, lps []byte) {
		if len(answer) > 4096 || len(cuts) > 256 || len(lps) > 1024 || !utf8.ValidString(answer) {
			return // encoding/json would rewrite invalid UTF-8 and the tokens would not spell the answer
		}
		e := evals[int(sel)%len(evals)]
		spec := formatSpec(e, fzOpenAIRecord(), false)
		choices := format.Choices(spec)
		lpAt := func(i int) float64 {
			if len(lps) == 0 {
				return 0
			}
			return -float64(lps[i%len(lps)]) / 32
		}
		// Cut the answer into tokens on rune boundaries.
		var toks []openaiTokenLogprob
		rest, k := answer, 0
		for i := 0; rest != ""; i++ {
			n := len(rest)
			if i < len(cuts) && int(cuts[i]) > 0 {
				n = min(int(cuts[i]), len(rest))
				for n < len(rest) && !utf8.RuneStart(rest[n]) {
					n++
				}
			}
			tok := openaiTokenLogprob{Token: rest[:n], Logprob: lpAt(k)}
			k++
			for a := 0; a < len(choices) && a < 20; a++ {
				if len(lps) > 0 && lps[(k+a)%len(lps)]%3 == 0 {
					continue // leave some choices out of the alternatives
				}
				alt := struct {
					Token   string  `json:"token"`
					Logprob float64 `json:"logprob"`
				}{Token: " " + choices[a], Logprob: lpAt(k + a)}
				tok.TopLogprobs = append(tok.TopLogprobs, alt)
			}
			toks = append(toks, tok)
			rest = rest[n:]
		}
		body, err := json.Marshal(map[string]any{"choices": []any{map[string]any{
			"message": map[string]any{"role": "assistant", "content": answer}, "logprobs": map[string]any{"content": toks}}}})
		if err != nil {
			t.Fatal(err)
		}
		plain, err := json.Marshal(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": answer}}}})
		if err != nil {
			t.Fatal(err)
		}
		tr.set(body)
		v := fzJudge1(t, j, e)
		fzCheckModelVerdict(t, e, v)
		tr.set(plain)
		w := fzJudge1(t, j, e)
		fzCheckModelVerdict(t, e, w)
		if v.Status != w.Status {
			t.Fatalf("logprobs changed the status: %q with, %q without (answer %q)", v.Status, w.Status, answer)
		}
		if e.Task == TaskClassification && v.Label != w.Label {
			t.Fatalf("logprobs changed the label: %q with, %q without", v.Label, w.Label)
		}
		if v.Status == record.StatusOK && e.Task == TaskPointwise && w.Value != math.Trunc(w.Value) {
			t.Fatalf("a score without logprobs is not the integer written: %v", w.Value)
		}
		// A verdict the logprobs did not shape carries the plain identity, and then a
		// score is the integer written, as without logprobs (issue 16).
		if v.Judge != "" && v.Judge != "openai:judge-model" {
			t.Fatalf("verdict identity %q", v.Judge)
		}
		if v.Status == record.StatusOK && e.Task == TaskPointwise && v.Judge != "" && v.Value != w.Value {
			t.Fatalf("a score under the plain identity is %v, not the %v written", v.Value, w.Value)
		}
	})
}
