package trafficgen

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"raterd/record"
)

var update = flag.Bool("update", false, "rewrite testdata/traffic.jsonl from DefaultOptions")

const goldenPath = "../../testdata/traffic.jsonl"

func TestDeterministic(t *testing.T) {
	opts := DefaultOptions()
	opts.Count = 500
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

func equalLines(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(goldenPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v; generate it with: go run ./cmd/trafficgen -o testdata/traffic.jsonl", err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Fatalf("testdata/traffic.jsonl differs from Write(DefaultOptions()) (%d vs %d bytes); if the generator changed on purpose, regenerate it with:\n\tgo run ./cmd/trafficgen -o testdata/traffic.jsonl\nor: go test ./internal/trafficgen -run TestGolden -update", len(got), buf.Len())
	}
	if len(got) > 4<<20 {
		t.Errorf("testdata/traffic.jsonl is %d bytes; keep it under 4 MiB", len(got))
	}
}

// classify says why a line is invalid for the input record contract, or "" if it is valid.
func classify(line []byte) string {
	if !utf8.Valid(line) {
		return "invalid_utf8"
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return "not_json"
	}
	var model, response *string
	if raw, ok := m["model"]; ok && json.Unmarshal(raw, &model) == nil && model != nil && *model != "" {
	} else {
		return "missing_model"
	}
	if raw, ok := m["response"]; !ok || json.Unmarshal(raw, &response) != nil || response == nil {
		return "missing_response"
	}
	return ""
}

func goldenLines(t *testing.T) [][]byte {
	t.Helper()
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v; generate it with: go run ./cmd/trafficgen -o testdata/traffic.jsonl", err)
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Fatal("testdata/traffic.jsonl does not end with a newline")
	}
	return bytes.Split(data[:len(data)-1], []byte("\n"))
}

var (
	idRE    = regexp.MustCompile(`^req-\d{6}$`)
	traceRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
	models  = map[string]bool{"support-llm-v7": true, "support-llm-v8-canary": true, "code-assist-2": true, "summarizer-xl": true, "gpt-4o-mini": true}
	apps    = map[string]bool{"": true, "helpdesk": true, "billing": true, "ide-plugin": true, "docs-search": true, "email-drafts": true}
	roles   = map[string]bool{"system": true, "user": true, "assistant": true}
)

func TestValidLinesFollowContract(t *testing.T) {
	opts := DefaultOptions()
	lines := goldenLines(t)
	if len(lines) != opts.Count {
		t.Fatalf("%d lines, want %d", len(lines), opts.Count)
	}
	reasons := map[string]int{}
	for i, line := range lines {
		if reason := classify(line); reason != "" {
			reasons[reason]++
			continue
		}
		var rec record.Record
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if rec.Model == "" || !models[rec.Model] {
			t.Errorf("line %d: model %q", i+1, rec.Model)
		}
		if !apps[rec.App] {
			t.Errorf("line %d: app %q", i+1, rec.App)
		}
		if want := fmt.Sprintf("req-%06d", i+1); rec.ID != want || !idRE.MatchString(rec.ID) {
			t.Errorf("line %d: id %q, want %q", i+1, rec.ID, want)
		}
		if want := opts.Start.Add(time.Duration(i) * opts.Interval); !rec.Timestamp.Equal(want) {
			t.Errorf("line %d: timestamp %s, want %s", i+1, rec.Timestamp, want)
		}
		if (rec.Prompt == "") == (len(rec.Messages) == 0) {
			t.Errorf("line %d: want exactly one of prompt and messages", i+1)
		}
		if len(rec.Messages) > 0 {
			if rec.Messages[0].Role != "system" || rec.Messages[len(rec.Messages)-1].Role != "user" {
				t.Errorf("line %d: chat should start with a system and end with a user message: %+v", i+1, rec.Messages)
			}
			for _, m := range rec.Messages {
				if !roles[m.Role] || m.Content == "" {
					t.Errorf("line %d: bad message %+v", i+1, m)
				}
			}
		}
		if rec.TraceID != "" && !traceRE.MatchString(rec.TraceID) {
			t.Errorf("line %d: trace_id %q", i+1, rec.TraceID)
		}
		if rec.Metadata != nil && (rec.Metadata["region"] == "" || rec.Metadata["user_tier"] == "" || rec.Metadata["prompt_template"] == "") {
			t.Errorf("line %d: metadata %v", i+1, rec.Metadata)
		}
		for _, c := range rec.Candidates {
			if !models[c.Model] || c.Model == rec.Model {
				t.Errorf("line %d: candidate model %q", i+1, c.Model)
			}
		}
	}
	want := int(math.Round(float64(opts.Count) * opts.InvalidShare))
	total := 0
	for _, kind := range invalidKindNames {
		total += reasons[kind]
		if reasons[kind] == 0 {
			t.Errorf("no %s lines in testdata/traffic.jsonl", kind)
		}
	}
	if total != want || len(reasons) != len(invalidKindNames) {
		t.Errorf("invalid lines: %v, want %d in all", reasons, want)
	}
	t.Logf("invalid lines: %v", reasons)
}

func TestInvalidShare(t *testing.T) {
	for _, tc := range []struct {
		count int
		share float64
	}{{1000, 0}, {1000, 0.01}, {2000, 0.1}, {500, 1}} {
		opts := DefaultOptions()
		opts.Count, opts.InvalidShare = tc.count, tc.share
		n := 0
		for _, line := range Generate(opts) {
			if classify(line) != "" {
				n++
			}
		}
		if want := int(math.Round(float64(tc.count) * tc.share)); n != want {
			t.Errorf("count %d share %g: %d invalid lines, want %d", tc.count, tc.share, n, want)
		}
	}
}

func TestRepeats(t *testing.T) {
	prompts := map[string]int{}
	pairs := map[string]int{}
	valid := 0
	for _, line := range goldenLines(t) {
		if classify(line) != "" {
			continue
		}
		var rec record.Record
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		valid++
		prompts[rec.PromptText()]++
		pairs[rec.PromptText()+"\x00"+rec.Response]++
	}
	repeatedPairs := 0
	for _, n := range pairs {
		if n > 1 {
			repeatedPairs += n
		}
	}
	t.Logf("%d valid records, %d distinct prompts, %d distinct prompt+response pairs, %d records in repeated pairs", valid, len(prompts), len(pairs), repeatedPairs)
	if len(prompts) >= valid/2 {
		t.Errorf("%d distinct prompts in %d records: too few repeats for a cache", len(prompts), valid)
	}
	if len(prompts) < 200 {
		t.Errorf("only %d distinct prompts: too little variety", len(prompts))
	}
	if repeatedPairs < valid/10 {
		t.Errorf("only %d records repeat an earlier prompt+response pair", repeatedPairs)
	}
}

func TestBehaviourMix(t *testing.T) {
	g := newGenerator(DefaultOptions())
	jsonGood, jsonBroken := 0, 0
	var maxLen int
	for range g.opts.Count {
		g.next()
		l := g.last
		if l.invalid {
			continue
		}
		switch {
		case l.prompt.isJSON && (l.behaviour == bGood):
			jsonGood++
			if !json.Valid([]byte(l.response)) {
				t.Errorf("good answer to a JSON prompt is not valid JSON: %q", l.response)
			}
		case l.behaviour == bBrokenJSON:
			jsonBroken++
			if json.Valid([]byte(l.response)) {
				t.Errorf("broken JSON answer is valid JSON: %q", l.response)
			}
		case l.behaviour == bEmpty:
			if l.response != "" {
				t.Errorf("empty answer %q", l.response)
			}
		case l.behaviour == bTruncated:
			if strings.HasSuffix(l.response, ".") || l.response == "" {
				t.Errorf("truncated answer ends cleanly: %q", l.response)
			}
		case l.behaviour == bRefusal, l.behaviour == bPII, l.behaviour == bLoop, l.behaviour == bLong:
		default:
			if l.response == "" {
				t.Errorf("%s answer is empty", l.behaviour)
			}
		}
		if l.behaviour != bEmpty && l.response == "" {
			t.Errorf("%s answer is empty", l.behaviour)
		}
		maxLen = max(maxLen, len(l.response))
	}
	valid := 0
	for _, n := range g.behaviours {
		valid += n
	}
	var mix []string
	for b, n := range g.behaviours {
		share := float64(n) / float64(valid)
		mix = append(mix, fmt.Sprintf("%s %.1f%%", behaviour(b), 100*share))
		if behaviour(b) == bGood {
			if share < 0.7 {
				t.Errorf("good answers are %.1f%%, want most", 100*share)
			}
		} else if n == 0 || share > 0.08 {
			t.Errorf("%s answers are %.1f%%, want a few percent", behaviour(b), 100*share)
		}
	}
	t.Logf("behaviour mix of %d valid records: %s; JSON prompts: %d good, %d broken; longest response %d bytes", valid, strings.Join(mix, ", "), jsonGood, jsonBroken, maxLen)
	if jsonGood == 0 || jsonBroken == 0 {
		t.Error("want both valid and broken answers to JSON prompts")
	}
	if maxLen < 3000 {
		t.Errorf("longest response is %d bytes, want several KB", maxLen)
	}
}

func TestPIILeaksAreRecognisable(t *testing.T) {
	for _, c := range testCards {
		if !luhn(c) {
			t.Errorf("test card %q fails the Luhn check", c)
		}
	}
	g := newGenerator(DefaultOptions())
	email := regexp.MustCompile(`[a-z0-9.]+@[a-z.]+\.(com|org|net)`)
	phoneRE := regexp.MustCompile(`\+1 415 555 01\d\d|\(212\) 555-01\d\d|\+44 20 7946 0\d{3}|\+1-312-555-01\d\d`)
	found := 0
	for range 2000 {
		g.next()
		if g.last.invalid || g.last.behaviour != bPII {
			continue
		}
		found++
		resp := g.last.response
		hasCard := false
		for _, c := range testCards {
			hasCard = hasCard || strings.Contains(resp, c)
		}
		if !hasCard && !email.MatchString(resp) && !phoneRE.MatchString(resp) && !strings.Contains(resp, "IBAN") {
			t.Errorf("PII answer without recognisable PII: %q", resp)
		}
	}
	if found == 0 {
		t.Error("no PII answers")
	}
}

func luhn(s string) bool {
	sum, n := 0, 0
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c == ' ' {
			continue
		}
		d := int(c - '0')
		if n%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return n >= 12 && sum%10 == 0
}

func TestLengthsVary(t *testing.T) {
	minLen, maxLen := math.MaxInt, 0
	for _, line := range goldenLines(t) {
		if classify(line) != "" {
			continue
		}
		var rec record.Record
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		n := len(rec.PromptText())
		minLen, maxLen = min(minLen, n), max(maxLen, n)
	}
	t.Logf("prompt lengths %d..%d bytes", minLen, maxLen)
	if minLen > 40 || maxLen < 2000 {
		t.Errorf("prompt lengths %d..%d: want a sentence to a few thousand characters", minLen, maxLen)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Options)
		key  string // "" for valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"zero value", func(o *Options) { *o = Options{} }, ""},
		{"negative count", func(o *Options) { o.Count = -1 }, "count"},
		{"negative distinct", func(o *Options) { o.DistinctPrompts = -5 }, "distinct_prompts"},
		{"zipf 1", func(o *Options) { o.ZipfS = 1 }, "zipf_s"},
		{"zipf NaN", func(o *Options) { o.ZipfS = math.NaN() }, "zipf_s"},
		{"share above 1", func(o *Options) { o.InvalidShare = 1.5 }, "invalid_share"},
		{"share NaN", func(o *Options) { o.InvalidShare = math.NaN() }, "invalid_share"},
		{"negative interval", func(o *Options) { o.Interval = -time.Second }, "interval"},
		{"past year 9999", func(o *Options) { o.Interval = 1 << 62 }, "start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.edit(&o)
			err := o.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.key)
			}
			if Write(new(bytes.Buffer), o) == nil {
				t.Error("Write accepted invalid options")
			}
			if len(Generate(o)) != max(o.Count, 0) {
				t.Error("Generate did not fall back to defaults")
			}
		})
	}
}

func TestSmallAndZeroOptions(t *testing.T) {
	if got := Generate(Options{}); len(got) != 0 {
		t.Fatalf("zero Options generated %d lines", len(got))
	}
	lines := Generate(Options{Count: 50, DistinctPrompts: 1, ZipfS: 3})
	if len(lines) != 50 {
		t.Fatalf("%d lines, want 50", len(lines))
	}
	prompts := map[string]bool{}
	for _, line := range lines {
		var rec record.Record
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		prompts[rec.PromptText()] = true
	}
	if len(prompts) != 1 {
		t.Errorf("DistinctPrompts 1 gave %d distinct prompts", len(prompts))
	}
}

func TestTruncateAndLoop(t *testing.T) {
	g := newGenerator(DefaultOptions())
	for _, s := range []string{"Hi! How can I help you today?", "Ünïcödé — tëxt with many multi-byte runes: ßßßß éééé ñññ.", strings.Repeat("word ", 400)} {
		for range 50 {
			tr := truncate(g.r, s)
			if !utf8.ValidString(tr) || tr == "" || len(tr) >= len(s) || !strings.HasPrefix(s, tr) {
				t.Errorf("truncate(%q) = %q", s, tr)
			}
			lp := loop(g.r, s)
			if !utf8.ValidString(lp) || strings.Count(lp, "\ufffd") > 0 || len(lp) < 40 {
				t.Errorf("loop(%q) = %q", s, lp)
			}
		}
	}
}
