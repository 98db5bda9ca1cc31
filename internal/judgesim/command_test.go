package judgesim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startCommand runs Command with args until the test ends and returns the ready line's
// endpoints.
func startCommand(t *testing.T, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	code := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		code <- Command(ctx, args, pw, &stderr)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		if c := <-code; c != 0 {
			t.Errorf("exit status %d", c)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("ready line: %v (stderr %s)", err, stderr.String())
	}
	var r Ready
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	return r.Endpoints
}

// TestCommandEndpoints: -endpoints 3 on ephemeral ports prints one ready line with three
// distinct URLs, each a simulator with the profile and its speed, and /stats counts work.
func TestCommandEndpoints(t *testing.T) {
	urls := startCommand(t, "-profile", "vllm-h100-8b", "-endpoints", "3", "-listen", "127.0.0.1:0", "-speeds", "1,0.5", "-step-base", "1ms", "-step-per-seq", "10us", "-prefill-per-token", "1us")
	if len(urls) != 3 || urls[0] == urls[1] || urls[1] == urls[2] || urls[0] == urls[2] {
		t.Fatalf("endpoints %q", urls)
	}
	ctx := context.Background()
	for i, u := range urls {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Fatalf("endpoint %q", u)
		}
		st, err := FetchStats(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		want := []float64{1, 0.5, 1}[i]
		if st.Speed != want || st.MaxSeqs != 256 || st.KVBlocks != 27648 || st.Requests != 0 {
			t.Fatalf("endpoint %d: stats %+v, want speed %g and the profile", i, st, want)
		}
	}
	body := chatBody(flamePrompt("pointwise", 1, 5, nil, goodAnswer, ""), nil)
	resp, err := http.Post(urls[1]+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	st, err := FetchStats(ctx, urls[1])
	if err != nil {
		t.Fatal(err)
	}
	if st.Completed != 1 || st.Finished != 1 || st.PrefillTokens != st.PromptTokens || st.DecodeTokens != st.CompletionTokens ||
		st.PeakKVBlocksUsed < 1 || st.KVBlocksUsed != 0 || st.Preemptions != 0 {
		t.Fatalf("stats after one request: %+v", st)
	}
	if other, _ := FetchStats(ctx, urls[0]); other.Requests != 0 {
		t.Fatalf("endpoint 0 saw %d requests", other.Requests)
	}
}

// TestCommandFlagsOverrideProfile: explicit flags win over the profile; without a
// profile the engine model is off.
func TestCommandFlagsOverrideProfile(t *testing.T) {
	u := startCommand(t, "-profile", "vllm-h100-8b", "-max-seqs", "7", "-kv-cache-tokens", "1600", "-listen", "127.0.0.1:0")[0]
	st, err := FetchStats(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	if st.MaxSeqs != 7 || st.KVBlocks != 100 || st.Speed != 1 {
		t.Fatalf("stats %+v", st)
	}
	u = startCommand(t, "-listen", "127.0.0.1:0")[0]
	if st, _ = FetchStats(context.Background(), u); st.MaxSeqs != DefaultMaxSeqs || st.KVBlocks != 0 {
		t.Fatalf("no profile: %+v", st)
	}
}

func TestCommandErrors(t *testing.T) {
	for args, want := range map[string]string{
		"-profile nope":       "unknown",
		"-speeds 0":           "speeds",
		"-speeds 1,x":         "speeds",
		"-endpoints 0":        "endpoints",
		"-prefix-caching":     "prefix-caching",
		"-kv-cache-tokens -1": "kv-cache-tokens",
		"-answer-min-tokens 9 -answer-max-tokens 3": "answer-min-tokens",
		"-listen nope": "listen",
	} {
		var stderr bytes.Buffer
		err := Run(context.Background(), strings.Fields(args), io.Discard, &stderr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", args, err, want)
		}
		if code := Command(context.Background(), strings.Fields(args), io.Discard, &stderr); code != 1 {
			t.Errorf("%s: exit status %d", args, code)
		}
	}
	var stderr bytes.Buffer
	if err := Run(context.Background(), []string{"-h"}, io.Discard, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, fl := range []string{"-profile", "-endpoints", "-speeds", "-kv-cache-tokens", "-max-batched-tokens", "-prefix-caching", "-answer-median-tokens", "-answer-sigma", "-answer-min-tokens", "-answer-max-tokens", `{"endpoints":[`} {
		if !strings.Contains(stderr.String(), fl) {
			t.Errorf("-h lacks %s", fl)
		}
	}
	var out bytes.Buffer
	if code := Command(context.Background(), []string{"-version"}, &out, &stderr); code != 0 || !strings.HasPrefix(out.String(), "judgesim ") {
		t.Fatalf("-version: %d %q", code, out.String())
	}
}

func TestFetchStatsErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := FetchStats(ctx, "http://127.0.0.1:1"); err == nil {
		t.Fatal("no error for a closed port")
	}
	sim := newSim(t, Config{})
	rec := do(ctx, sim, http.MethodGet, "/stats", nil)
	var st Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.MaxSeqs != DefaultMaxSeqs || st.Speed != 1 {
		t.Fatalf("stats %s: %v", rec.Body, err)
	}
}

func TestParseSpeeds(t *testing.T) {
	got, err := ParseSpeeds(" 1, 0.8 ,0.6")
	if err != nil || len(got) != 3 || got[0] != 1 || got[1] != 0.8 || got[2] != 0.6 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "1,", "0", "-1", "NaN", "inf", "2e6", "a"} {
		if _, err := ParseSpeeds(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzParseSpeeds(f *testing.F) {
	for _, s := range []string{"1", "1,0.8,0.6", " 2 , 3", "", ",", "0", "1e6", "NaN", "0x1p-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSpeeds(s)
		if err != nil {
			return
		}
		if len(v) != strings.Count(s, ",")+1 {
			t.Fatalf("%q: %d speeds", s, len(v))
		}
		for _, x := range v {
			if !(x > 0 && x <= 1e6) {
				t.Fatalf("%q: speed %g", s, x)
			}
		}
	})
}

// TestAnswerPadding: padded answers keep the result and everything after the
// explanation, grow to the size asked, and are deterministic.
func TestAnswerPadding(t *testing.T) {
	s := newSim(t, Config{})
	prompts := []string{
		flamePrompt("pointwise", 1, 5, nil, goodAnswer, ""),
		flamePrompt("classification", 0, 0, []string{"good", "bad"}, goodAnswer, ""),
		flamePrompt("pairwise", 0, 0, nil, goodAnswer, "short"),
	}
	for _, user := range prompts {
		p := parsePrompt(user)
		ph := s.promptHash(user)
		plain := s.judge(p, ph, 0)
		for _, size := range []int{0, len(plain.text) - 5, len(plain.text) + 1, 400, 1601} {
			a := s.judgeLen(p, ph, 0, size)
			if a.text[a.resStart:a.resEnd] != plain.text[plain.resStart:plain.resEnd] || a.text[a.resStart:] != plain.text[plain.resStart:] {
				t.Fatalf("size %d: result %q, want %q", size, a.text[a.resStart:], plain.text[plain.resStart:])
			}
			if want := max(size, len(plain.text)); len(a.text) != want {
				t.Fatalf("size %d: %d bytes, want %d:\n%s", size, len(a.text), want, a.text)
			}
			if again := s.judgeLen(p, ph, 0, size); again.text != a.text {
				t.Fatal("not deterministic")
			}
		}
	}
}

// TestChatAnswerLengths: over HTTP the answer has the drawn length (tokens = bytes/4),
// capped by max_tokens, with finish_reason stop.
func TestChatAnswerLengths(t *testing.T) {
	sim := newSim(t, Config{StepBase: time.Microsecond, AnswerMedianTokens: 200, AnswerMinTokens: 100, AnswerMaxTokens: 400, AnswerSigma: 0.35})
	for i := range 20 {
		user := flamePrompt("pointwise", 1, 5, nil, goodAnswer+strings.Repeat(" more", i), "")
		code, cr := post(t, sim, chatBody(user, nil))
		if code != http.StatusOK || cr.Usage.CompletionTokens < 100 || cr.Usage.CompletionTokens > 400 {
			t.Fatalf("status %d, usage %+v", code, cr.Usage)
		}
		if want := answerTokens(sim.Config(), subHash(sim.promptHash(user), "answer-length", 0), 0); cr.Usage.CompletionTokens != want {
			t.Fatalf("completion tokens %d, drawn %d", cr.Usage.CompletionTokens, want)
		}
		code, cr = post(t, sim, chatBody(user, map[string]any{"max_tokens": 120}))
		if code != http.StatusOK || cr.Usage.CompletionTokens > 120 || cr.Choices[0].FinishReason != "stop" {
			t.Fatalf("max_tokens 120: %d %+v", code, cr)
		}
	}
}

// TestPrefixCachingOverHTTP: the same judge prompt twice computes its prefix once.
func TestPrefixCachingOverHTTP(t *testing.T) {
	sim := newSim(t, Config{StepBase: time.Microsecond, KVCacheTokens: 1 << 16, PrefixCaching: true})
	body := chatBody(flamePrompt("pointwise", 1, 5, nil, goodAnswer, ""), nil)
	for range 2 {
		if code, _ := post(t, sim, body); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	st := sim.Stats()
	if st.PrefillSavedTokens == 0 || st.PrefillTokens+st.PrefillSavedTokens < st.PromptTokens {
		t.Fatalf("stats %+v", st)
	}
}

// TestPreemptionOverHTTP: two requests (about 9 blocks each) that do not fit a KV cache
// of 16 blocks together: the
// newer one is preempted, prefills again, and both are answered in full.
func TestPreemptionOverHTTP(t *testing.T) {
	sim, steps := manual(t, Config{MaxSeqs: 2, StepBase: time.Millisecond, KVCacheTokens: 16 * BlockTokens})
	codes := make(chan int, 2)
	for i := range 2 {
		go func() { code, _ := post(t, sim, chatBody(fmt.Sprintf("%d %s", i, goodAnswer), nil)); codes <- code }()
	}
	waitFor(t, "both requests holding slots", func() bool { return sim.Stats().Running == 2 })
	steps.until(t, "both answered", func() bool { return len(codes) == 2 })
	for range 2 {
		if code := <-codes; code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	st := sim.Stats()
	if st.Preemptions < 1 || st.PrefillTokens <= st.PromptTokens || st.DecodeTokens != st.CompletionTokens ||
		st.PeakKVBlocksUsed > 16 || st.KVBlocksUsed != 0 || st.Finished != 2 {
		t.Fatalf("stats %+v", st)
	}
}
