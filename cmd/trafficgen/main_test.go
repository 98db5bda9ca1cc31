package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"raterd/internal/trafficgen"
)

func runArgs(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(args, &out, &errOut)
	return out.Bytes(), err
}

func lines(b []byte) [][]byte {
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

// TestDefaultIsGolden checks that the default flags, Zipf repeats off, still write the
// committed sample byte for byte.
func TestDefaultIsGolden(t *testing.T) {
	got, err := runArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../testdata/traffic.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("default output (%d bytes) differs from testdata/traffic.jsonl (%d bytes)", len(got), len(want))
	}
}

func TestZipfRepeats(t *testing.T) {
	out, err := runArgs(t, "-zipf-s", "1.1", "-distinct", "100", "-n", "400")
	if err != nil {
		t.Fatal(err)
	}
	ls := lines(out)
	want := trafficgen.Generate(trafficgen.Options{Seed: 1, Count: 400, DistinctPrompts: 100, ZipfS: 1.1, ExactRepeats: true, AnswerVariants: 1})
	if len(ls) != 400 || !bytes.Equal(out, append(bytes.Join(want, []byte("\n")), '\n')) {
		t.Fatal("-zipf-s output differs from Generate with ExactRepeats and no invalid lines")
	}
	prompts, pairs := trafficgen.DistinctKeys(ls)
	if prompts > 100 || pairs != prompts {
		t.Errorf("%d prompts, %d pairs; want at most 100 prompts, one answer each", prompts, pairs)
	}

	out, err = runArgs(t, "-zipf-s", "1.3", "-distinct", "100", "-answer-variants", "3", "-invalid", "0.1", "-n", "400", "-seed", "7")
	if err != nil {
		t.Fatal(err)
	}
	want = trafficgen.Generate(trafficgen.Options{Seed: 7, Count: 400, DistinctPrompts: 100, ZipfS: 1.3, ExactRepeats: true, AnswerVariants: 3, InvalidShare: 0.1})
	if !bytes.Equal(out, append(bytes.Join(want, []byte("\n")), '\n')) {
		t.Fatal("-zipf-s with -answer-variants and -invalid differs from Generate with those options")
	}
	if prompts, pairs := trafficgen.DistinctKeys(lines(out)); pairs <= prompts {
		t.Errorf("three answer variants: %d prompts, %d pairs; want more pairs than prompts", prompts, pairs)
	}
}

func TestOutputFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zipf.jsonl")
	if _, err := runArgs(t, "-zipf-s", "1.1", "-n", "50", "-o", path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := runArgs(t, "-zipf-s", "1.1", "-n", "50")
	if !bytes.Equal(got, want) {
		t.Error("-o wrote different bytes than stdout")
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"-answer-variants", "2"}, "-answer-variants"},
		{[]string{"-zipf-s", "1.1", "-answer-variants", "0"}, "-answer-variants"},
		{[]string{"-zipf-s", "0.5"}, "-zipf-s"},
		{[]string{"-zipf-s", "-2"}, "-zipf-s"},
		{[]string{"-zipf-s", "1.1", "-zipf", "1.2"}, "-zipf"},
		{[]string{"-zipf-s", "1.1", "-distinct", "-1"}, "distinct_prompts"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-start", "-2x"}, "-start"},
		{[]string{"-start", "yesterday"}, "-start"},
	} {
		_, err := runArgs(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%q: error %v, want one naming %s", tc.args, err, tc.flag)
		}
	}
}

// TestRelativeStart: -start -2h stamps the first record two hours before now, so that
// reports over the last day see the traffic.
func TestRelativeStart(t *testing.T) {
	before := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	out, err := runArgs(t, "-n", "3", "-invalid", "0", "-start", "-2h")
	after := time.Now().Add(-2 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var first struct{ Timestamp time.Time }
	if err := json.Unmarshal(lines(out)[0], &first); err != nil {
		t.Fatal(err)
	}
	if first.Timestamp.Before(before) || first.Timestamp.After(after) {
		t.Errorf("first timestamp %s, want between %s and %s", first.Timestamp, before, after)
	}
}
