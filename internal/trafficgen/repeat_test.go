package trafficgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"raterd/record"
)

func repeatOptions(count, distinct, variants int) Options {
	return Options{Seed: 1, Count: count, DistinctPrompts: distinct, ZipfS: 1.1, ExactRepeats: true, AnswerVariants: variants}
}

// decodeAll decodes lines that must all be valid records.
func decodeAll(t *testing.T, lines [][]byte) []record.Record {
	t.Helper()
	recs := make([]record.Record, len(lines))
	for i, line := range lines {
		if reason := classify(line); reason != "" {
			t.Fatalf("line %d is invalid (%s): %.200s", i+1, reason, line)
		}
		if err := json.Unmarshal(line, &recs[i]); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
	}
	return recs
}

func TestRepeatDeterministic(t *testing.T) {
	opts := repeatOptions(3000, 500, 3)
	a, b := Generate(opts), Generate(opts)
	if !equalLines(a, b) {
		t.Fatal("Generate returned different output for equal options")
	}
	var buf bytes.Buffer
	if err := Write(&buf, opts); err != nil {
		t.Fatal(err)
	}
	if want := append(bytes.Join(a, []byte("\n")), '\n'); !bytes.Equal(buf.Bytes(), want) {
		t.Fatal("Write's output differs from Generate's lines joined by newlines")
	}
	opts.Seed = 2
	if c := Generate(opts); equalLines(a, c) {
		t.Fatal("a different seed gave the same output")
	}
}

// TestRepeatPureFunctionOfRank checks that the prompt of rank k and its answers depend only on
// the seed and k, not on the other options or on the order in which ranks are first used.
func TestRepeatPureFunctionOfRank(t *testing.T) {
	g1 := newGenerator(repeatOptions(10, 300, 1))
	g2 := newGenerator(repeatOptions(50000, 20000, 5))
	for range 2000 {
		g2.next() // g2 builds its ranks in the order the traffic asks for them
	}
	for _, k := range []int{250, 0, 1, 17, 299, 42} { // g1 builds them on demand, out of order
		p1, p2 := g1.rep.prompt(k), g2.rep.prompt(k)
		if p1.text() != p2.text() || p1.reference != p2.reference || p1.app != p2.app {
			t.Errorf("rank %d: the prompt depends on options other than the seed", k)
		}
		if a1, a2 := g1.rep.answer(k, 0), g2.rep.answer(k, 0); a1 != a2 {
			t.Errorf("rank %d: answer 0 depends on options other than the seed: %q vs %q", k, a1.text, a2.text)
		}
		if a1, a2 := g1.rep.answer(k, 3), g2.rep.answer(k, 3); a1 != a2 {
			t.Errorf("rank %d: answer 3 depends on the order of use", k)
		}
	}
	g3 := newGenerator(Options{Seed: 2, ExactRepeats: true})
	if g3.rep.prompt(0).text() == g1.rep.prompt(0).text() {
		t.Error("seeds 1 and 2 gave the same prompt of rank 0")
	}
}

func TestRepeatZipfHeadIsHeavy(t *testing.T) {
	const n, distinct = 20000, 10000
	recs := decodeAll(t, Generate(repeatOptions(n, distinct, 1)))
	counts := map[string]int{}
	responses := map[string]string{}
	for _, rec := range recs {
		p := rec.PromptText()
		counts[p]++
		if r, ok := responses[p]; ok && r != rec.Response {
			t.Fatalf("with one answer variant, a prompt got two answers:\n%.200s\n---\n%.200s", r, rec.Response)
		}
		responses[p] = rec.Response
	}
	freq := make([]int, 0, len(counts))
	for _, c := range counts {
		freq = append(freq, c)
	}
	slices.Sort(freq)
	slices.Reverse(freq)
	top, median := freq[0], freq[len(freq)/2]
	share := float64(top) / n
	t.Logf("s=1.1, n=%d, Distinct=%d: %d distinct prompts seen, top-1 %d (%.1f%%), top-10 %v, median %d", n, distinct, len(freq), top, 100*share, freq[:10], median)
	if share <= 0.02 {
		t.Errorf("the most frequent prompt has %.2f%% of the traffic, want > 2%%", 100*share)
	}
	if len(freq) >= distinct {
		t.Errorf("%d distinct prompts seen, want fewer than %d", len(freq), distinct)
	}
	if top < 50*median {
		t.Errorf("top prompt %d times, median %d: the head is not heavy", top, median)
	}
	if prompts, pairs := DistinctKeys(Generate(repeatOptions(n, distinct, 1))); prompts != len(freq) || pairs != prompts {
		t.Errorf("DistinctKeys = %d prompts, %d pairs; want %d and as many pairs (one answer each)", prompts, pairs, len(freq))
	}
}

func TestRepeatAnswerVariants(t *testing.T) {
	const variants = 4
	recs := decodeAll(t, Generate(repeatOptions(20000, 2000, variants)))
	answers := map[string]map[string]int{}
	for _, rec := range recs {
		p := rec.PromptText()
		if answers[p] == nil {
			answers[p] = map[string]int{}
		}
		answers[p][rec.Response]++
	}
	pairs, full := 0, 0
	for _, as := range answers {
		pairs += len(as)
		if len(as) > variants {
			t.Fatalf("a prompt got %d distinct answers, want at most %d", len(as), variants)
		}
		if len(as) == variants {
			full++
		}
	}
	if full == 0 || pairs <= len(answers) {
		t.Errorf("%d prompts, %d pairs, %d prompts with all %d answers: answers do not vary", len(answers), pairs, full, variants)
	}
	// Answers are Zipf-distributed too: the favourite answer of a popular prompt dominates.
	var top map[string]int
	for _, as := range answers {
		if sum(as) > sum(top) {
			top = as
		}
	}
	counts := make([]int, 0, len(top))
	for _, c := range top {
		counts = append(counts, c)
	}
	slices.Sort(counts)
	slices.Reverse(counts)
	t.Logf("%d prompts, %d pairs; answer counts of the top prompt: %v", len(answers), pairs, counts)
	if len(counts) < 2 || counts[0] < 2*counts[len(counts)-1] {
		t.Errorf("answer counts of the top prompt %v: want a skew to the first answer", counts)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

func TestRepeatSizesAndShape(t *testing.T) {
	opts := repeatOptions(20000, 10000, 3)
	g := newGenerator(opts)
	lines := make([][]byte, 0, opts.Count)
	for range opts.Count {
		lines = append(lines, g.next())
	}
	recs := decodeAll(t, lines)
	inBounds := func(s string, lo, hi int) bool { return utf8.RuneCountInString(s) >= lo && len(s) <= hi }
	minP, maxP, minR, maxR := 1<<30, 0, 1<<30, 0
	seenModels, seenApps, templates, cands := map[string]bool{}, map[string]bool{}, map[string]bool{}, 0
	for i, rec := range recs {
		p := rec.PromptText()
		if !inBounds(p, 200, 4000) {
			t.Errorf("line %d: prompt of %d bytes, want 200–4,000 characters", i+1, len(p))
		}
		if !inBounds(rec.Response, 200, 2000) {
			t.Errorf("line %d: response of %d bytes, want 200–2,000 characters", i+1, len(rec.Response))
		}
		for _, c := range rec.Candidates {
			cands++
			if !inBounds(c.Response, 200, 2000) || c.Model == rec.Model || !models[c.Model] {
				t.Errorf("line %d: candidate %s of %d bytes for model %s", i+1, c.Model, len(c.Response), rec.Model)
			}
		}
		if want := fmt.Sprintf("req-%06d", i+1); rec.ID != want {
			t.Errorf("line %d: id %q, want %q", i+1, rec.ID, want)
		}
		if !models[rec.Model] || !apps[rec.App] {
			t.Errorf("line %d: model %q app %q", i+1, rec.Model, rec.App)
		}
		minP, maxP = min(minP, len(p)), max(maxP, len(p))
		minR, maxR = min(minR, len(rec.Response)), max(maxR, len(rec.Response))
		seenModels[rec.Model], seenApps[rec.App] = true, true
		if rec.Metadata != nil {
			templates[strings.TrimSuffix(rec.Metadata["prompt_template"], ".chat")] = true
		}
	}
	var mix []string
	for b, n := range g.behaviours {
		if n > 0 {
			mix = append(mix, fmt.Sprintf("%s %.1f%%", behaviour(b), 100*float64(n)/float64(opts.Count)))
		}
	}
	t.Logf("prompts %d..%d bytes, responses %d..%d bytes; %d models, %d apps, %d templates, %d candidates; behaviours: %s",
		minP, maxP, minR, maxR, len(seenModels), len(seenApps), len(templates), cands, strings.Join(mix, ", "))
	if len(seenModels) < 4 || len(seenApps) < 5 || len(templates) < 15 || cands == 0 {
		t.Error("want several models, apps and prompt templates, and some candidates")
	}
	if g.behaviours[bGood] < opts.Count/2 || g.behaviours[bPII] == 0 || g.behaviours[bTruncated] == 0 {
		t.Errorf("behaviours %v: want mostly good answers and some bad ones", g.behaviours)
	}
}

// TestRepeatPairDecidesInputs checks that every field an evaluator can read, other than
// metadata, repeats with the prompt+response pair, so DistinctKeys' pairs is exact for them.
func TestRepeatPairDecidesInputs(t *testing.T) {
	recs := decodeAll(t, Generate(repeatOptions(10000, 1000, 3)))
	type inputs struct {
		reference, candidate string
		hasCandidate         bool
	}
	byPair := map[[2]string]inputs{}
	for i, rec := range recs {
		in := inputs{reference: rec.Reference}
		if len(rec.Candidates) > 0 {
			in.candidate, in.hasCandidate = rec.Candidates[0].Response, true
		}
		key := [2]string{rec.PromptText(), rec.Response}
		if prev, ok := byPair[key]; ok && prev != in {
			t.Fatalf("line %d: reference or candidate differ for a repeated prompt+response pair", i+1)
		}
		byPair[key] = in
	}
}

func TestRepeatInvalidLines(t *testing.T) {
	for _, share := range []float64{0, 0.05} {
		opts := repeatOptions(2000, 300, 1)
		opts.InvalidShare = share
		n := 0
		for _, line := range Generate(opts) {
			if classify(line) != "" {
				n++
			}
		}
		if want := int(float64(opts.Count)*share + 0.5); n != want {
			t.Errorf("InvalidShare %g: %d invalid lines, want %d", share, n, want)
		}
	}
}

// bruteForceKeys counts distinct prompts and pairs by comparing every accepted record with
// every earlier one.
func bruteForceKeys(t *testing.T, lines [][]byte) (prompts, pairs int) {
	t.Helper()
	var recs []record.Record
	for _, line := range lines {
		if classify(line) != "" {
			continue
		}
		var rec record.Record
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	for i := range recs {
		newPrompt, newPair := true, true
		for j := range i {
			if recs[j].PromptText() == recs[i].PromptText() {
				newPrompt = false
				if recs[j].Response == recs[i].Response {
					newPair = false
					break
				}
			}
		}
		if newPrompt {
			prompts++
		}
		if newPair {
			pairs++
		}
	}
	return prompts, pairs
}

func TestDistinctKeysMatchesBruteForce(t *testing.T) {
	mixed := DefaultOptions()
	mixed.Count = 1500
	withInvalid := repeatOptions(1500, 400, 3)
	withInvalid.InvalidShare = 0.05
	for name, lines := range map[string][][]byte{
		"repeat one answer":          Generate(repeatOptions(1500, 400, 1)),
		"repeat three answers":       Generate(repeatOptions(1500, 400, 3)),
		"repeat with invalid":        Generate(withInvalid),
		"mixed traffic":              Generate(mixed),
		"empty":                      nil,
		"only invalid and hand-made": {[]byte(`not json`), []byte(`{"model":"m","prompt":"p","response":"r"}`), []byte(`{"model":"m","messages":[{"role":"user","content":"p"}],"response":"r"}`), []byte(`{"model":"m","prompt":"user: p","response":"r"}`), []byte(`{"model":"","prompt":"p","response":"x"}`), []byte(`{"model":"m","prompt":"p"}`), []byte("{\"model\":\"m\",\"prompt\":\"p\",\"response\":\"\xff\"}"), []byte(`{"model":"m","prompt":"p","response":""}`)},
	} {
		t.Run(name, func(t *testing.T) {
			prompts, pairs := DistinctKeys(lines)
			wantPrompts, wantPairs := bruteForceKeys(t, lines)
			if prompts != wantPrompts || pairs != wantPairs {
				t.Errorf("DistinctKeys = %d prompts, %d pairs; brute force %d, %d", prompts, pairs, wantPrompts, wantPairs)
			}
			t.Logf("%d lines: %d distinct prompts, %d distinct pairs", len(lines), prompts, pairs)
		})
	}
}

func TestRepeatValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		key  string
	}{
		{"repeat defaults", Options{ExactRepeats: true}, ""},
		{"variants", Options{ExactRepeats: true, AnswerVariants: 7}, ""},
		{"negative variants", Options{ExactRepeats: true, AnswerVariants: -1}, "answer_variants"},
		{"variants without repeats", Options{AnswerVariants: 2}, "answer_variants"},
		{"zipf 1", Options{ExactRepeats: true, ZipfS: 1}, "zipf_s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.key)
			}
		})
	}
	// Generate falls back to defaults for out-of-range options.
	if got := Generate(Options{Count: 20, ExactRepeats: true, AnswerVariants: -3}); len(got) != 20 {
		t.Errorf("%d lines, want 20", len(got))
	}
}

func TestRepeatSmallDistinct(t *testing.T) {
	prompts, pairs := DistinctKeys(Generate(Options{Count: 200, DistinctPrompts: 1, ExactRepeats: true, AnswerVariants: 1}))
	if prompts != 1 || pairs != 1 {
		t.Errorf("DistinctPrompts 1, one answer: %d prompts, %d pairs, want 1 and 1", prompts, pairs)
	}
}

// A line the consumer dead-letters for its timestamp is never judged, so it adds no key.
func TestDistinctKeysSkipsBadTimestamps(t *testing.T) {
	lines := [][]byte{
		[]byte(`{"model":"m","prompt":"p","response":"r","timestamp":"2026-11-28T12:00:00Z"}`),
		[]byte(`{"model":"m","prompt":"q","response":"r","timestamp":"yesterday"}`),
		[]byte(`{"model":"m","prompt":"p","response":"s","timestamp":"2200-01-01T00:00:00Z"}`),
	}
	if prompts, pairs := DistinctKeys(lines); prompts != 1 || pairs != 1 {
		t.Errorf("DistinctKeys = %d prompts, %d pairs; want 1 and 1 (two lines dead-lettered for their timestamp)", prompts, pairs)
	}
}
