package fidelity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"raterd/internal/app"
	"raterd/scorer"
)

// fakeJudgeServer is a fake OpenAI-compatible chat-completions server for unit tests: it
// answers every request with what answer returns for the rendered prompt (the first user
// message). The real engine is met in fidelity_llamacpp_integration_test.go.
func fakeJudgeServer(t *testing.T, answer func(prompt string) (int, string)) (url string, requests *atomic.Int64) {
	t.Helper()
	requests = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		var req struct {
			Messages []struct{ Role, Content string } `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		prompt := "" // the first user message: a format reminder comes after it
		for _, m := range req.Messages {
			if m.Role == "user" {
				prompt = m.Content
				break
			}
		}
		status, content := answer(prompt)
		w.Header().Set("Content-Type", "application/json")
		if status != http.StatusOK {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":{"message":"fake refusal %d"}}`, status)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "chat.completion", "choices": []any{
			map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": content}}}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1", requests
}

// oracle answers as a perfect judge of set would, in the flame format or, when the prompt
// asks for "[RESULT]", in prometheus2's: the chosen response in whichever position it is
// shown, the labelled score of a rated response.
func oracle(set *Set) func(string) (int, string) {
	flame := oracleFlame(set)
	return func(prompt string) (int, string) {
		status, ans := flame(prompt)
		if strings.Contains(prompt, "[RESULT]") {
			result := ans[strings.LastIndex(ans, ": ")+2:] // "A", "B" or a score
			return status, "Feedback: as labelled. [RESULT] " + result
		}
		return status, ans
	}
}

// oracleFlame is oracle in the flame format.
func oracleFlame(set *Set) func(string) (int, string) {
	return func(prompt string) (int, string) {
		for _, it := range set.Items {
			if !it.Pairwise() || !strings.Contains(prompt, it.Prompt) {
				continue
			}
			c, r := strings.Index(prompt, it.Chosen), strings.Index(prompt, it.Rejected)
			if c < 0 || r < 0 {
				continue
			}
			if c < r {
				return http.StatusOK, "Reasoning: A is right.\nPreference: A"
			}
			return http.StatusOK, "Reasoning: B is right.\nPreference: B"
		}
		for _, it := range set.Items {
			if !it.Pairwise() && strings.Contains(prompt, it.Prompt) && strings.Contains(prompt, it.Response) {
				return http.StatusOK, fmt.Sprintf("Reasoning: as labelled.\nScore: %d", int(it.Score))
			}
		}
		return http.StatusOK, "no idea"
	}
}

// testSet is a small set with both kinds of item. Responses are not substrings of one
// another, so the oracle can tell where each is.
func testSet(t *testing.T) *Set {
	t.Helper()
	s, err := ReadSet(strings.NewReader(`{"id":"a","subset":"chat","prompt":"Capital of France?","chosen":"Paris.","rejected":"Lyon."}
{"id":"b","subset":"chat","prompt":"2+2?","chosen":"Four.","rejected":"Five."}
{"id":"c","subset":"reasoning","prompt":"Is 9 prime?","chosen":"No, 3 x 3.","rejected":"Yes, it is odd."}
{"id":"d","prompt":"Boiling point of water?","response":"100 C at sea level.","score":5}
{"id":"e","prompt":"Boiling point of water?","response":"About 90 C.","score":1}
{"id":"f","prompt":"Name a colour.","response":"Blue, for example.","score":4}
`), "test.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runFake runs the set against a fake server answering with answer.
func runFake(t *testing.T, set *Set, answer func(string) (int, string)) (*Report, error) {
	t.Helper()
	url, _ := fakeJudgeServer(t, answer)
	name, jc, err := cmd{getenv: func(string) string { return "" }}.judgeConfig(flags{endpoint: url, model: "fake-judge"})
	if err != nil {
		t.Fatal(err)
	}
	jc.MaxAttempts = 1
	judges, err := scorer.NewJudges(map[string]*scorer.JudgeConfig{name: jc}, scorer.JudgeSettings{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { scorer.CloseJudges(context.Background(), judges) })
	return Run(context.Background(), judges[name], jc, set, Options{Chunk: 2})
}

func near(got Figure, want float64) bool { return math.Abs(float64(got)-want) < 1e-9 }

func TestRunOracleAgreesFully(t *testing.T) {
	set := testSet(t)
	rep, err := runFake(t, set, oracle(set))
	if err != nil {
		t.Fatal(err)
	}
	p, q := rep.Pairwise, rep.Pointwise
	if p.Items != 3 || p.Scored != 3 || !near(p.Agreement, 1) || !near(p.Consistency, 1) || !near(p.ConsistentCorrect, 1) {
		t.Errorf("pairwise = %+v, want 3 scored, all figures 1", p)
	}
	if q.Items != 3 || q.Scored != 3 || !near(q.Exact, 1) || !near(q.Within1, 1) || !near(q.MeanAbsError, 0) || !near(q.Pearson, 1) {
		t.Errorf("pointwise = %+v, want 3 scored, exact 1, Pearson 1", q)
	}
	if len(rep.Subsets) != 2 || rep.Subsets[0].Subset != "chat" || rep.Subsets[0].Scored != 2 || rep.Subsets[1].Subset != "reasoning" {
		t.Errorf("subsets = %+v", rep.Subsets)
	}
	if rep.Judge != "openai:fake-judge" || rep.Format != "flame" || rep.System != "native" || rep.Guided || rep.FirstFailure != "" {
		t.Errorf("report header = %q %q %q guided %v, first failure %q", rep.Judge, rep.Format, rep.System, rep.Guided, rep.FirstFailure)
	}
}

// TestRunPositionBiasShows: a judge that always prefers the first response shown agrees
// with neither order over the other: half agreement (ties), no position consistency.
func TestRunPositionBiasShows(t *testing.T) {
	set := testSet(t)
	always := func(prompt string) (int, string) {
		if strings.Contains(prompt, "RESPONSE B") {
			return http.StatusOK, "Preference: A"
		}
		return http.StatusOK, "Score: 3"
	}
	rep, err := runFake(t, set, always)
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Pairwise; p.Scored != 3 || !near(p.Agreement, 0.5) || !near(p.Consistency, 0) || !near(p.ConsistentCorrect, 0) {
		t.Errorf("pairwise = %+v, want agreement 0.5 and consistency 0", p)
	}
	// A constant score has no variance: no correlation to report.
	if q := rep.Pointwise; !math.IsNaN(float64(q.Pearson)) || !near(q.Exact, 0) || !near(q.Within1, 1.0/3) {
		t.Errorf("pointwise = %+v, want Pearson NaN, exact 0, within one 1/3", q)
	}
}

// TestRunContrarian: a judge that always prefers the rejected response agrees with none.
func TestRunContrarian(t *testing.T) {
	set := testSet(t)
	good := oracle(set)
	rep, err := runFake(t, set, func(prompt string) (int, string) {
		status, ans := good(prompt)
		switch {
		case strings.HasSuffix(ans, "Preference: A"):
			return status, "Preference: B"
		case strings.HasSuffix(ans, "Preference: B"):
			return status, "Preference: A"
		}
		return status, ans
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Pairwise; !near(p.Agreement, 0) || !near(p.Consistency, 1) {
		t.Errorf("pairwise = %+v, want agreement 0, consistency 1", p)
	}
}

func TestRunCountsFailures(t *testing.T) {
	set := testSet(t)
	good := oracle(set)
	rep, err := runFake(t, set, func(prompt string) (int, string) {
		switch {
		case strings.Contains(prompt, "2+2?"):
			return http.StatusOK, "I refuse to answer in your format."
		case strings.Contains(prompt, "Name a colour."):
			return http.StatusBadRequest, ""
		}
		return good(prompt)
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Pairwise; p.Scored != 2 || p.ParseFailures != 1 || p.JudgeErrors != 0 || !near(p.Agreement, 1) {
		t.Errorf("pairwise = %+v, want 2 scored, 1 parse failure", p)
	}
	if q := rep.Pointwise; q.Scored != 2 || q.JudgeErrors != 1 || q.ParseFailures != 0 {
		t.Errorf("pointwise = %+v, want 2 scored, 1 judge error", q)
	}
	if !strings.Contains(rep.FirstFailure, "I refuse") {
		t.Errorf("first failure = %q, want the unparsed answer", rep.FirstFailure)
	}
}

func TestRunNothingScoredIsAnError(t *testing.T) {
	_, err := runFake(t, testSet(t), func(string) (int, string) { return http.StatusBadRequest, "" })
	if err == nil || !strings.Contains(err.Error(), "the judge scored no item") || !strings.Contains(err.Error(), "fake refusal 400") {
		t.Fatalf("error = %v, want one saying no item was scored, with the server's refusal", err)
	}
}

func TestPearson(t *testing.T) {
	for _, tc := range []struct {
		x, y []float64
		want float64
	}{
		{[]float64{1, 2, 3}, []float64{2, 4, 6}, 1},
		{[]float64{1, 2, 3}, []float64{3, 2, 1}, -1},
		{[]float64{1, 2, 3, 4}, []float64{1, 3, 2, 4}, 0.8},
	} {
		if got := Pearson(tc.x, tc.y); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Pearson(%v, %v) = %v, want %v", tc.x, tc.y, got, tc.want)
		}
	}
	for _, tc := range [][2][]float64{{{1}, {1}}, {{1, 1}, {1, 2}}, {{1, 2}, {1}}} {
		if got := Pearson(tc[0], tc[1]); !math.IsNaN(got) {
			t.Errorf("Pearson(%v, %v) = %v, want NaN", tc[0], tc[1], got)
		}
	}
}

func TestMainFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--endpoint (with --model) or --config is required"},
		{[]string{"--endpoint", "http://x/v1"}, "--model is required with --endpoint"},
		{[]string{"--endpoint", "http://x/v1", "--model", "m", "--config", "r.yaml"}, "--config and --endpoint: give one"},
		{[]string{"--config", "r.yaml", "--logprobs"}, "go with --endpoint"},
		{[]string{"--judge", "j", "--endpoint", "http://x/v1", "--model", "m"}, "give --config too"},
		{[]string{"--endpoint", "http://x/v1", "--model", "m", "--limit", "-1"}, "--limit -1"},
		{[]string{"--endpoint", "http://x/v1", "--model", "m", "--chunk", "0"}, "--chunk 0"},
		{[]string{"--endpoint", "http://x/v1", "--model", "m", "--set", "/nonexistent.jsonl"}, "--set: open /nonexistent.jsonl"},
		{[]string{"--endpoint", "http://x/v1", "--model", "m", "--published", "/nonexistent.yaml"}, "--published: open /nonexistent.yaml"},
		{[]string{"--endpoint", "ftp://x/v1", "--model", "m"}, "the judge made from the flags"},
		{[]string{"--endpoint", "http://x/v1", "--model", "m", "--format", "nope"}, "format"},
		{[]string{"--endpoint", "http://x/v1", "--model", "m", "--guided-decoding", "tgi"}, "guided_decoding"},
	} {
		var stdout, stderr bytes.Buffer
		err := cmd{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}.run(context.Background(), tc.args)
		if got := fmt.Sprint(err) + " " + stderr.String(); err == nil || !strings.Contains(got, tc.want) {
			t.Errorf("fidelity %v: error %v, stderr %q; want %q", tc.args, err, stderr.String(), tc.want)
		}
	}
}

// TestMainJSON runs the command on the built-in set against the fake oracle and reads
// its JSON report, with the published figures of the model named.
func TestMainJSON(t *testing.T) {
	set, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	url, requests := fakeJudgeServer(t, oracle(set))
	var stdout, stderr bytes.Buffer
	err = cmd{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}.run(context.Background(),
		[]string{"--endpoint", url, "--model", "prometheus-eval/prometheus-7b-v2.0", "--format", "prometheus2", "--json"})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var got struct {
		Report
		SetAbout  string      `json:"set_about"`
		Published []Published `json:"published"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if got.Pairwise.Scored != 24 || !near(got.Pairwise.Agreement, 1) || got.Pointwise.Scored != 16 || !near(got.Pointwise.Exact, 1) {
		t.Errorf("report = %+v %+v, want every item scored as labelled", got.Pairwise, got.Pointwise)
	}
	if got.System != "fold" || got.Format != "prometheus2" || got.Set != BuiltinName || got.SetAbout == "" {
		t.Errorf("header = %q %q %q %q", got.Format, got.System, got.Set, got.SetAbout)
	}
	if len(got.Published) != 1 || got.Published[0].Name != "Prometheus 2 (7B)" {
		t.Errorf("published = %+v", got.Published)
	}
	// 24 pairwise items in two orders and 16 pointwise ones.
	if n := requests.Load(); n != 24*2+16 {
		t.Errorf("%d requests, want %d", n, 24*2+16)
	}
	if !strings.Contains(stderr.String(), "40/40 items judged") {
		t.Errorf("no progress line on stderr: %q", stderr.String())
	}
}

// TestMainConfigJudge takes the judge from a raterd.yaml (the starter config, its judge
// pool pointed at the fake): the only openai judge is chosen without --judge, a heuristic
// judge or a missing one is refused by name.
func TestMainConfigJudge(t *testing.T) {
	set, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	url, requests := fakeJudgeServer(t, oracle(set))
	starter := app.StarterConfig()
	if !strings.Contains(starter, "http://127.0.0.1:8000/v1") {
		t.Fatal("the starter config no longer points its judge pool at http://127.0.0.1:8000/v1; update this test")
	}
	path := filepath.Join(t.TempDir(), "raterd.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(starter, "http://127.0.0.1:8000/v1", url, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		err := cmd{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}.run(context.Background(), args)
		return stdout.String() + stderr.String(), err
	}
	out, err := run("--config", path, "--limit", "3")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "judge    openai:judgesim") || !regexp.MustCompile(`agreement with the labels +1\.000`).MatchString(out) {
		t.Errorf("output does not show the starter's judge agreeing fully:\n%s", out)
	}
	if n := requests.Load(); n != 6 {
		t.Errorf("%d requests, want 6 (3 pairs in two orders)", n)
	}
	if _, err := run("--config", path, "--judge", "checks"); err == nil || !strings.Contains(err.Error(), `--judge "checks": a heuristic judge`) {
		t.Errorf("heuristic judge: error %v", err)
	}
	if _, err := run("--config", path, "--judge", "nope"); err == nil || !strings.Contains(err.Error(), "has no judges.nope") {
		t.Errorf("missing judge: error %v", err)
	}
}
