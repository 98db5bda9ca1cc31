package scorer

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"raterd/internal/telemetry"
	"raterd/record"
	"raterd/scorer/cache"
	"raterd/scorer/format"
	"raterd/scorer/pool"
)

type topLP = struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
}

// tok is a token with its probability and alternatives (token → probability).
func tok(text string, p float64, alts map[string]float64) openaiTokenLogprob {
	t := openaiTokenLogprob{Token: text, Logprob: math.Log(p)}
	for _, a := range sortedKeys(alts) {
		t.TopLogprobs = append(t.TopLogprobs, topLP{a, math.Log(alts[a])})
	}
	return t
}

func sortedKeys(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out { // small maps: insertion sort keeps the helper dependency-free
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// unusedCounter reads raterd.judge.logprobs.unused by reason.
func unusedCounter(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "raterd.judge.logprobs.unused" {
				continue
			}
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				reason, _ := p.Attributes.Value(attribute.Key("reason"))
				out[reason.AsString()] += p.Value
			}
		}
	}
	return out
}

// logprobsJudge is a logprobs judge over a FAKE chat server answering text with lp, and a
// reader of its metrics.
func logprobsJudge(t *testing.T, text string, lp []openaiTokenLogprob) (*OpenAIJudge, *sdkmetric.ManualReader) {
	t.Helper()
	f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) { return http.StatusOK, text, lp })
	reader := sdkmetric.NewManualReader()
	cfg := OpenAIConfig{Model: "judge-model", Logprobs: true}
	cfg.Endpoints = []pool.Endpoint{{URL: f.srv.URL + "/v1"}}
	cfg.MaxAttempts = 1
	j, err := NewOpenAIJudge(cfg, JudgeSettings{Key: "judges.test", Telemetry: telemetry.Settings{
		Logger: slog.New(slog.DiscardHandler), MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close(context.Background()) })
	return j, reader
}

func scaleEvaluator(t *testing.T, lo, hi float64) *Evaluator {
	e := testEvaluator()
	e.Scale = Scale{Min: lo, Max: hi}
	return preparedModelEvaluator(t, e)
}

// The finding of issue 16: on 1–10, a written 9 with half the mass on " 1" scored 5.0,
// counting " 1" as the score 1 though it may begin 10. That mass cannot be split, so the
// score is the 9 written, under the plain identity, counted as ambiguous.
func TestGEvalPrefixOfALongerScoreIsNotCountedAsTheShorterOne(t *testing.T) {
	text := "Reasoning: good.\nScore: 9"
	lp := []openaiTokenLogprob{tok("Reasoning: good.\nScore:", 1, nil), tok(" 9", 0.5, map[string]float64{" 9": 0.5, " 1": 0.5})}
	j, reader := logprobsJudge(t, text, lp)
	v := judgeOne(t, j, scaleEvaluator(t, 1, 10), testRecord("r1"))
	if v.Status != record.StatusOK || v.Value != 9 || v.Judge != "openai:judge-model" || math.Abs(v.Confidence-0.5) > 1e-12 {
		t.Fatalf("verdict %+v: want the written 9, confidence 0.5, under openai:judge-model", v)
	}
	if got := unusedCounter(t, reader); got["ambiguous"] != 1 {
		t.Fatalf("raterd.judge.logprobs.unused = %v, want ambiguous 1", got)
	}
}

// The continuation's alternatives split "1" from "10": P(1) = P(" 1")·P(end | " 1"),
// P(10) = P(" 1")·P("0" | " 1").
func TestGEvalContinuationSplitsAPrefix(t *testing.T) {
	text := "Reasoning: meh.\nScore: 1\n"
	lp := []openaiTokenLogprob{
		tok("Reasoning: meh.\nScore:", 1, nil),
		tok(" 1", 0.6, map[string]float64{" 1": 0.6, " 2": 0.4}),
		tok("\n", 0.5, map[string]float64{"\n": 0.5, "0": 0.5}),
	}
	j, reader := logprobsJudge(t, text, lp)
	v := judgeOne(t, j, scaleEvaluator(t, 1, 10), testRecord("r1"))
	want := 0.3*1 + 0.3*10 + 0.4*2
	if v.Status != record.StatusOK || math.Abs(v.Value-want) > 1e-9 || v.Judge != "" || math.Abs(v.Confidence-0.6) > 1e-12 {
		t.Fatalf("verdict %+v: want %v weighted, under the +logprobs identity", v, want)
	}
	if got := unusedCounter(t, reader); len(got) != 0 {
		t.Fatalf("raterd.judge.logprobs.unused = %v, want nothing", got)
	}
}

// Byte-fallback tokens whose strings do not spell the answer are aligned by their bytes.
func TestGEvalBytesAlignByteFallbackTokens(t *testing.T) {
	text := "Reasoning: très bien.\nScore: 4"
	// "è" is two bytes, sent as two byte tokens whose strings are escapes.
	lp := []openaiTokenLogprob{
		{Token: "Reasoning: tr", Bytes: bytesOf("Reasoning: tr")},
		{Token: "\\xc3", Bytes: []int{0xc3}},
		{Token: "\\xa8", Bytes: []int{0xa8}},
		{Token: "s bien.\nScore:", Bytes: bytesOf("s bien.\nScore:")},
		tok(" 4", 0.5, map[string]float64{" 4": 0.5, " 5": 0.5}),
	}
	lp[4].Bytes = bytesOf(" 4")
	j, reader := logprobsJudge(t, text, lp)
	v := judgeOne(t, j, scaleEvaluator(t, 1, 5), testRecord("r1"))
	if v.Status != record.StatusOK || v.Value != 4.5 || v.Judge != "" {
		t.Fatalf("verdict %+v: want 4.5 weighted by logprobs read through their bytes", v)
	}
	if got := unusedCounter(t, reader); len(got) != 0 {
		t.Fatalf("raterd.judge.logprobs.unused = %v, want nothing", got)
	}
}

func bytesOf(s string) []int {
	out := make([]int, len(s))
	for i := range len(s) {
		out[i] = int(s[i])
	}
	return out
}

// Logprobs that cannot be used — missing, or neither strings nor bytes spelling the
// answer — leave the written score, confidence 1, the plain identity, and a count.
func TestGEvalUnusableLogprobsAreMarkedAndCounted(t *testing.T) {
	text := "Reasoning: ok\nScore: 4"
	for _, tc := range []struct {
		name   string
		lp     []openaiTokenLogprob
		reason string
	}{
		{"missing", nil, "missing"},
		{"misaligned", []openaiTokenLogprob{tok("Reasoning: ok\nScore", 1, nil), tok(" 4", 0.5, map[string]float64{" 4": 0.5, " 5": 0.5})}, "misaligned"},
		{"bytes misaligned", []openaiTokenLogprob{{Token: "\\xff", Bytes: []int{0xff}}, {Token: " 4", Bytes: bytesOf(" 4")}}, "misaligned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, reader := logprobsJudge(t, text, tc.lp)
			v := judgeOne(t, j, scaleEvaluator(t, 1, 5), testRecord("r1"))
			if v.Status != record.StatusOK || v.Value != 4 || v.Confidence != 1 || v.Judge != "openai:judge-model" {
				t.Fatalf("verdict %+v: want 4, confidence 1, under openai:judge-model", v)
			}
			if got := unusedCounter(t, reader); got[tc.reason] != 1 || len(got) != 1 {
				t.Fatalf("raterd.judge.logprobs.unused = %v, want %s 1", got, tc.reason)
			}
		})
	}
}

// A row scored without logprobs never carries the +logprobs identity, from the judge or
// from the cache.
func TestGEvalRowOfAScoreWithoutLogprobsHasThePlainIdentity(t *testing.T) {
	j, _ := logprobsJudge(t, "Reasoning: ok\nScore: 4", nil)
	ev := scaleEvaluator(t, 1, 5)
	ev.Judge = "j"
	mem := cache.NewMemory(1 << 20)
	s, err := New([]*Evaluator{ev}, map[string]Judge{"j": j}, Options{Cache: mem})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // the second round is answered from the cache
		rows, _, err := s.ScoreBatch(context.Background(), []*record.Record{testRecord("r1")})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].Judge != "openai:judge-model" || rows[0].Cached != (round == 1) {
			t.Fatalf("round %d: rows %+v, want one row under openai:judge-model", round, rows)
		}
	}
}

// gevalScales are the scales the property tests run over.
var gevalScales = [][2]int{{1, 5}, {1, 7}, {1, 10}, {0, 100}}

// gevalCase is a generated answer: the text, its tokens, and the written score.
type gevalCase struct {
	text    string
	lp      []openaiTokenLogprob
	written int
	spec    format.Spec
	parsed  format.Parsed
	// pathLevels are the token indexes of the written score's digits after the first.
	pathTokens []int
}

// genGEval writes "Score: <s><end>" with s cut into tokens at random, a leading space
// on the first, and at each digit token random alternatives with random probabilities
// (adding up to at most 1) — numbers up to 119 at the first, digits, spaces and
// terminators after it. When certain, every token is certain and has no other
// alternative; when continuing, the digit tokens after the first list only digits
// (continuation evidence that the number goes on past the prefix before them).
func genGEval(rng *rand.Rand, lo, hi int, certain, continuing bool) gevalCase {
	s := lo + rng.IntN(hi-lo+1)
	digits := fmt.Sprint(s)
	c := gevalCase{written: s, spec: format.Spec{Task: format.TaskPointwise, Min: lo, Max: hi}}
	prefix := "Reasoning: x.\nScore:"
	c.lp = append(c.lp, tok(prefix, 1, nil))
	var cuts []string
	for rest := digits; rest != ""; {
		n := 1 + rng.IntN(len(rest))
		cuts = append(cuts, rest[:n])
		rest = rest[n:]
	}
	cuts[0] = " " + cuts[0]
	end := []string{"", "\n", "/", ".", " out of"}[rng.IntN(5)]
	if continuing && end == "" {
		end = "\n"
	}
	for i, cut := range cuts {
		if certain {
			c.lp = append(c.lp, tok(cut, 1, nil))
			continue
		}
		c.lp = append(c.lp, tok(cut, 1, nil)) // probabilities below
		mass := 0.2 + 0.8*rng.Float64()
		chosenP := mass * rng.Float64()
		alts := map[string]float64{cut: chosenP}
		left := mass - chosenP
		for range rng.IntN(6) {
			var a string
			switch {
			case i == 0:
				a = " " + fmt.Sprint(rng.IntN(120))
			case continuing:
				a = fmt.Sprint(rng.IntN(10))
			default:
				a = []string{"0", "5", "9", "\n", ".", "/", " ", "00"}[rng.IntN(8)]
			}
			if _, dup := alts[a]; dup || strings.TrimLeft(a, " ") == strings.TrimLeft(cut, " ") {
				continue
			}
			p := left * rng.Float64()
			alts[a], left = p, left-p
		}
		c.lp[len(c.lp)-1] = tok(cut, chosenP, alts)
		if i > 0 {
			c.pathTokens = append(c.pathTokens, len(c.lp)-1)
		}
	}
	if end != "" {
		c.lp = append(c.lp, tok(end, 1, nil))
	}
	c.text = prefix + " " + digits + end
	c.parsed = format.Parsed{Result: digits, ResultStart: len(prefix) + 1}
	return c
}

// Properties of the prefix-aware G-Eval over 1–5, 1–7, 1–10 and 0–100, on seeded random
// token sequences: a weighted score is on the scale; all mass on the written score gives
// it exactly; and a prefix of the written score never counts as a score of its own when
// the continuation's alternatives say the number goes on.
func TestGEvalProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 4))
	for _, sc := range gevalScales {
		lo, hi := sc[0], sc[1]
		used := 0
		for range 3000 {
			c := genGEval(rng, lo, hi, false, false)
			probs, resultP, hasP, st := readLogprobs(c.lp, c.text, c.parsed, c.spec)
			if !hasP || resultP < 0 || resultP > 1 {
				t.Fatalf("%d–%d %q: resultP %v hasP %v", lo, hi, c.text, resultP, hasP)
			}
			if st != lpUsed {
				if st != lpAmbiguous && st != lpInvalid {
					t.Fatalf("%d–%d %q: status %v", lo, hi, c.text, st)
				}
				continue
			}
			used++
			mean, ok := weightedMean(probs)
			if !ok || mean < float64(lo)-1e-9 || mean > float64(hi)+1e-9 {
				t.Fatalf("%d–%d %q: weighted score %v (ok %v) off the scale; probs %v", lo, hi, c.text, mean, ok, probs)
			}
			for k := range probs {
				if n, err := parseInt(k); err != nil || n < int64(lo) || n > int64(hi) {
					t.Fatalf("%d–%d: probability on %q, not a score of the scale", lo, hi, k)
				}
			}
		}
		if used == 0 {
			t.Errorf("%d–%d: no generated answer was weighted", lo, hi)
		}

		for range 500 {
			c := genGEval(rng, lo, hi, true, false)
			probs, _, _, st := readLogprobs(c.lp, c.text, c.parsed, c.spec)
			mean, ok := weightedMean(probs)
			if st != lpUsed || !ok || mean != float64(c.written) {
				t.Fatalf("%d–%d %q: all mass on %d gave %v (status %v)", lo, hi, c.text, c.written, mean, st)
			}
		}

		checked := 0
		for range 1000 {
			c := genGEval(rng, lo, hi, false, true)
			texts, ok := alignTokens(c.lp, c.text)
			if !ok {
				t.Fatalf("generated tokens do not spell %q", c.text)
			}
			first := 1
			dist, st := scoreDistribution(c.lp, texts, first, " ", format.Choices(c.spec), float64(hi-lo))
			if st != lpUsed {
				continue
			}
			// The written score's prefixes: the token after each lists only digits, so
			// none of them ends there.
			acc := strings.TrimPrefix(texts[first], " ")
			for _, k := range c.pathTokens {
				if p := dist[acc]; p != 0 {
					// acc is a prefix followed on the path by the digit token k: the
					// continuation lists digits only, so acc never ends there.
					t.Fatalf("%d–%d %q: prefix %s counted as a score (%v)", lo, hi, c.text, acc, p)
				}
				acc += texts[k]
				checked++
			}
		}
		if hi >= 10 && checked == 0 {
			t.Errorf("%d–%d: no multi-token score was checked for its prefixes", lo, hi)
		}
	}
}
