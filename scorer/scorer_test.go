package scorer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"raterd/internal/telemetry"
	"raterd/record"
	"raterd/scorer/cache"
)

// countingJudge is a recording fake judge: it scores by response length and counts calls.
type countingJudge struct {
	mu    sync.Mutex
	calls int
	ident string
	fail  bool
}

func (j *countingJudge) Identity() string { return j.ident }

func (j *countingJudge) Judge(_ context.Context, tasks []Task) ([]Verdict, error) {
	j.mu.Lock()
	j.calls += len(tasks)
	j.mu.Unlock()
	out := make([]Verdict, len(tasks))
	for i, t := range tasks {
		out[i] = Verdict{Value: float64(1 + len(t.Record.Response)%5), Status: record.StatusOK, Attempts: 1, Confidence: 1}
		if j.fail {
			out[i].Err = errors.New("boom")
		}
	}
	return out, nil
}

// failingCache fails every call, standing in for an unreachable Redis.
type failingCache struct{}

func (failingCache) GetMany(context.Context, []string) ([][]byte, error) {
	return nil, errors.New("connection refused")
}
func (failingCache) SetMany(context.Context, []cache.Entry) error {
	return errors.New("connection refused")
}

func prepared(t *testing.T, e *Evaluator) *Evaluator {
	t.Helper()
	if err := e.Prepare("evaluators[0]", KindModel); err != nil {
		t.Fatal(err)
	}
	return e
}

func recs(n int, distinct int) []*record.Record {
	out := make([]*record.Record, n)
	for i := range out {
		out[i] = &record.Record{ID: fmt.Sprintf("r%d", i), Model: "m", Prompt: fmt.Sprintf("p%d", i%distinct), Response: fmt.Sprintf("answer %d", i%distinct)}
	}
	return out
}

func TestScorerCachesAndDeduplicates(t *testing.T) {
	judge := &countingJudge{ident: "fake:v1"}
	ev := prepared(t, &Evaluator{Name: "helpful", Judge: "j", Criteria: "be helpful"})
	mem := cache.NewMemory(1 << 20)
	s, err := New([]*Evaluator{ev}, map[string]Judge{"j": judge}, Options{Cache: mem})
	if err != nil {
		t.Fatal(err)
	}
	// 10 records, 4 distinct prompt+response pairs: 4 judge calls, 6 in-batch duplicates.
	rows, st, err := s.ScoreBatch(context.Background(), recs(10, 4))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 10 || judge.calls != 4 || st.Deduplicated != 6 || st.CacheHits != 0 {
		t.Fatalf("rows %d, judge calls %d, stats %+v", len(rows), judge.calls, st)
	}
	// A second batch of the same traffic costs no judge call.
	rows, st, err = s.ScoreBatch(context.Background(), recs(10, 4))
	if err != nil {
		t.Fatal(err)
	}
	if judge.calls != 4 || st.CacheHits != 4 || st.JudgeCalls != 0 {
		t.Fatalf("second batch: judge calls %d, stats %+v", judge.calls, st)
	}
	for _, r := range rows {
		if !r.Cached || r.Status != record.StatusOK || r.RubricVersion != ev.RubricVersion() || r.Judge != "fake:v1" {
			t.Fatalf("row = %+v", r)
		}
	}
}

// TestRowsCarryTheJudgedSpan: a row keeps the record's trace, span and conversation ids,
// which join it back to the judged span (sinks/otlp's score events sit in that span).
func TestRowsCarryTheJudgedSpan(t *testing.T) {
	ev := prepared(t, &Evaluator{Name: "helpful", Judge: "j", Criteria: "be helpful"})
	s, err := New([]*Evaluator{ev}, map[string]Judge{"j": &countingJudge{ident: "fake:v1"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := recs(1, 1)
	in[0].TraceID, in[0].SpanID, in[0].ConversationID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "conv-1"
	rows, _, err := s.ScoreBatch(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].TraceID != in[0].TraceID || rows[0].SpanID != in[0].SpanID || rows[0].ConversationID != "conv-1" {
		t.Fatalf("rows %+v: want the record's trace, span and conversation ids", rows)
	}
}

func TestCacheKeyChangesWithRubricJudgeAndReadFieldsOnly(t *testing.T) {
	r := &record.Record{Prompt: "p", Response: "a", Reference: "ref"}
	base := prepared(t, &Evaluator{Name: "e", Judge: "j", Criteria: "c1"})
	other := prepared(t, &Evaluator{Name: "e", Judge: "j", Criteria: "c2"})
	promptOnly := prepared(t, &Evaluator{Name: "e", Judge: "j", Criteria: "c1", Fields: []string{FieldPrompt}})
	k := CacheKey(base, "judge-a", r)
	if k == CacheKey(other, "judge-a", r) {
		t.Error("criteria change kept the key")
	}
	if k == CacheKey(base, "judge-b", r) {
		t.Error("judge change kept the key")
	}
	if k != CacheKey(base, "judge-a", &record.Record{Prompt: "p", Response: "a", Reference: "other", ID: "x"}) {
		t.Error("a field the evaluator does not read changed the key")
	}
	if CacheKey(promptOnly, "judge-a", r) != CacheKey(promptOnly, "judge-a", &record.Record{Prompt: "p", Response: "different"}) {
		t.Error("a prompt-only evaluator missed on a repeated prompt")
	}
	if k == CacheKey(base, "judge-a", &record.Record{Prompt: "pa", Response: ""}) {
		t.Error("field boundaries are forgeable")
	}
}

func TestScorerBypassesAFailingCache(t *testing.T) {
	judge := &countingJudge{ident: "fake:v1"}
	ev := prepared(t, &Evaluator{Name: "helpful", Judge: "j", Criteria: "be helpful"})
	s, err := New([]*Evaluator{ev}, map[string]Judge{"j": judge}, Options{Cache: failingCache{}})
	if err != nil {
		t.Fatal(err)
	}
	rows, st, err := s.ScoreBatch(context.Background(), recs(5, 5))
	if err != nil {
		t.Fatalf("a cache failure failed the batch: %v", err)
	}
	if len(rows) != 5 || !st.CacheBypass || judge.calls != 5 {
		t.Fatalf("rows %d, stats %+v, calls %d", len(rows), st, judge.calls)
	}
}

func TestScorerRecordsJudgeErrorsPerTask(t *testing.T) {
	judge := &countingJudge{ident: "fake:v1", fail: true}
	ev := prepared(t, &Evaluator{Name: "helpful", Judge: "j", Criteria: "be helpful"})
	mem := cache.NewMemory(1 << 20)
	s, err := New([]*Evaluator{ev}, map[string]Judge{"j": judge}, Options{Cache: mem})
	if err != nil {
		t.Fatal(err)
	}
	rows, st, err := s.ScoreBatch(context.Background(), recs(3, 3))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Status != record.StatusJudgeError || r.Explanation == "" {
			t.Fatalf("row = %+v", r)
		}
	}
	if st.Failures != 3 || mem.Len() != 0 {
		t.Fatalf("failures %d, cached entries %d (failures must not be cached)", st.Failures, mem.Len())
	}
}

func TestSamplingIsDeterministicAndNested(t *testing.T) {
	in10, in50 := 0, 0
	for i := range 10000 {
		id := fmt.Sprintf("req-%d", i)
		a, b := InSample(id, 0.1), InSample(id, 0.5)
		if a != InSample(id, 0.1) {
			t.Fatal("sampling is not deterministic")
		}
		if a && !b {
			t.Fatal("a record in the 10% sample is missing from the 50% sample")
		}
		if a {
			in10++
		}
		if b {
			in50++
		}
	}
	if in10 < 850 || in10 > 1150 || in50 < 4700 || in50 > 5300 {
		t.Fatalf("sample sizes %d (10%%) and %d (50%%) of 10000", in10, in50)
	}
}

// TestSampleRateZeroSwitchesTheEvaluatorOff: an explicit sample_rate 0 judges no record,
// while the negative controls judge some (0.5) and all (unset, the default 1).
func TestSampleRateZeroSwitchesTheEvaluatorOff(t *testing.T) {
	off := prepared(t, &Evaluator{Name: "off", Judge: "j", Criteria: "c", SampleRate: new(0.0)})
	half := prepared(t, &Evaluator{Name: "half", Judge: "j", Criteria: "c", SampleRate: new(0.5)})
	unset := prepared(t, &Evaluator{Name: "unset", Judge: "j", Criteria: "c"})
	if !off.Off() || half.Off() || unset.Off() {
		t.Fatalf("Off() = %v, %v, %v; want true, false, false", off.Off(), half.Off(), unset.Off())
	}
	if unset.SampleRate == nil || *unset.SampleRate != 1 {
		t.Fatalf("unset sample rate prepared to %v, want 1", unset.SampleRate)
	}
	const n = 5000
	counts := map[string]int{}
	for i := range n {
		r := &record.Record{ID: fmt.Sprintf("req-%d", i), Model: "m", Response: "a"}
		for _, e := range []*Evaluator{off, half, unset} {
			if e.Applies(r) {
				counts[e.Name]++
			}
		}
	}
	if counts["off"] != 0 || counts["half"] < n*45/100 || counts["half"] > n*55/100 || counts["unset"] != n {
		t.Fatalf("records judged of %d: %v; want off 0, half about half, unset all", n, counts)
	}

	// Through the scorer: no rows and no judge call for the evaluator that is off.
	judge := &countingJudge{ident: "fake:v1"}
	s, err := New([]*Evaluator{off}, map[string]Judge{"j": judge}, Options{Cache: cache.NewMemory(1 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	rows, st, err := s.ScoreBatch(context.Background(), recs(100, 100))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 0 || judge.calls != 0 || st.JudgeCalls != 0 {
		t.Fatalf("evaluator off: rows %d, judge calls %d, stats %+v", len(rows), judge.calls, st)
	}
}

// TestSampleRateLeavesTheRubricVersion: the rate chooses which records are judged, not
// how, so it is not in the rubric version (nor the cache key): configs written before
// sample_rate became a pointer keep their versions and cached verdicts.
func TestSampleRateLeavesTheRubricVersion(t *testing.T) {
	var versions []string
	for _, rate := range []*float64{nil, new(1.0), new(0.25), new(0.0)} {
		e := &Evaluator{Name: "p", Judge: "c", Check: "pii", SampleRate: rate}
		if err := e.Prepare("evaluators[0]", KindHeuristic); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, e.RubricVersion())
	}
	// The version this evaluator had before the change (SampleRate a float64) was
	// 6f08632d89d45b80; since the pii check learnt IBANs, SSNs and IP addresses (pii@2,
	// checkRubricID) it is this one, whatever the rate.
	const want = "f597a09342f0017d"
	for i, v := range versions {
		if v != want {
			t.Errorf("rate #%d: rubric version %s, want %s", i, v, want)
		}
	}
}

// TestCheckVersionsSeparateChangedChecks: a built-in check whose behaviour changed after it
// shipped gets a new rubric version (pii since issue 15), so its rows before and after do
// not mix in a trend; the other checks keep theirs.
func TestCheckVersionsSeparateChangedChecks(t *testing.T) {
	version := func(check string) string {
		e := &Evaluator{Name: "e", Judge: "c", Check: check}
		if err := e.Prepare("evaluators[0]", KindHeuristic); err != nil {
			t.Fatal(err)
		}
		return e.RubricVersion()
	}
	if v := version("pii"); v == "6f08632d89d45b80" {
		t.Errorf("pii kept its rubric version %s across the change of what it finds", v)
	}
	for _, c := range HeuristicChecks() {
		if c != "pii" && checkRubricID(c) != c {
			t.Errorf("check %s has a version (%s): add it to this test's reason", c, checkRubricID(c))
		}
	}
}

func TestSampleRateOutOfRangeIsRefused(t *testing.T) {
	for _, rate := range []float64{-0.1, 1.5, math.NaN(), math.Inf(1)} {
		e := &Evaluator{Name: "x", Judge: "j", Criteria: "c", SampleRate: new(rate)}
		err := e.Prepare("evaluators[3]", KindModel)
		if err == nil || !strings.Contains(err.Error(), "evaluators[3] (x).sample_rate: ") {
			t.Errorf("sample_rate %g: err = %v, want one naming evaluators[3] (x).sample_rate", rate, err)
		}
	}
}

func TestEvaluatorPrepareNamesTheBadKey(t *testing.T) {
	for _, tt := range []struct {
		e    Evaluator
		want string
	}{
		{Evaluator{Judge: "j", Criteria: "c"}, "evaluators[0].name"},
		{Evaluator{Name: "x", Criteria: "c"}, ".judge"},
		{Evaluator{Name: "x", Judge: "j"}, ".criteria"},
		{Evaluator{Name: "x", Judge: "j", Criteria: "c", Task: "ranking"}, ".task"},
		{Evaluator{Name: "x", Judge: "j", Criteria: "c", SampleRate: new(1.5)}, ".sample_rate"},
		{Evaluator{Name: "x", Judge: "j", Criteria: "c", Fields: []string{"answer"}}, ".fields[0]"},
		{Evaluator{Name: "x", Judge: "j", Criteria: "c", Scale: Scale{Min: 5, Max: 1}}, ".scale"},
		{Evaluator{Name: "x", Judge: "j", Criteria: "c", Match: Match{Models: []string{"[bad"}}}, ".match"},
		{Evaluator{Name: "x", Judge: "j", Criteria: "c", Check: "pii"}, ".check"},
	} {
		err := tt.e.Prepare("evaluators[0]", KindModel)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Prepare(%+v) = %v, want an error naming %q", tt.e, err, tt.want)
		}
	}
}

func TestHeuristicEvaluatorMustReadItsCheckFields(t *testing.T) {
	e := Evaluator{Name: "r", Judge: "checks", Check: "refusal", Fields: []string{FieldPrompt}}
	if err := e.Prepare("evaluators[0]", KindHeuristic); err == nil || !strings.Contains(err.Error(), "evaluators[0] (r).fields") {
		t.Fatalf("Prepare = %v, want an error naming evaluators[0] (r).fields", err)
	}
	ok := Evaluator{Name: "j", Judge: "checks", Check: "json"}
	if err := ok.Prepare("evaluators[1]", KindHeuristic); err != nil || len(ok.Fields) != 2 {
		t.Fatalf("Prepare = %v, fields %v", err, ok.Fields)
	}
	responseOnly := Evaluator{Name: "j", Judge: "checks", Check: "json", Fields: []string{FieldResponse}}
	if err := responseOnly.Prepare("evaluators[2]", KindHeuristic); err != nil {
		t.Fatalf("a response-only json check (always expects JSON) was rejected: %v", err)
	}
}

// brokenJudge fails whole calls, standing in for a judge pool whose context ended.
type brokenJudge struct{}

func (brokenJudge) Identity() string { return "broken:v1" }
func (brokenJudge) Judge(context.Context, []Task) ([]Verdict, error) {
	return nil, errors.New("pool unreachable")
}

func TestScorerKeepsOtherJudgesWorkWhenOneFails(t *testing.T) {
	good := &countingJudge{ident: "fake:v1"}
	evGood := prepared(t, &Evaluator{Name: "good", Judge: "good", Criteria: "c"})
	evBad := prepared(t, &Evaluator{Name: "bad", Judge: "bad", Criteria: "c"})
	mem := cache.NewMemory(1 << 20)
	s, err := New([]*Evaluator{evGood, evBad}, map[string]Judge{"good": good, "bad": brokenJudge{}}, Options{Cache: mem})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ScoreBatch(context.Background(), recs(3, 3)); err == nil {
		t.Fatal("a failed judge call did not fail the batch")
	}
	if mem.Len() != 3 {
		t.Fatalf("cached %d verdicts, want the 3 the working judge produced", mem.Len())
	}
}

// gatedJudge is a recording fake whose calls block until the gate opens, so a test can
// hold a judgement in flight.
type gatedJudge struct {
	countingJudge
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedJudge) Judge(ctx context.Context, tasks []Task) ([]Verdict, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.countingJudge.Judge(ctx, tasks)
}

func TestScorerJoinsJudgementsInFlightInAnotherBatch(t *testing.T) {
	judge := &gatedJudge{countingJudge: countingJudge{ident: "fake:v1"}, entered: make(chan struct{}, 2), gate: make(chan struct{})}
	ev := prepared(t, &Evaluator{Name: "helpful", Judge: "j", Criteria: "be helpful"})
	s, err := New([]*Evaluator{ev}, map[string]Judge{"j": judge}, Options{}) // no cache at all
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		rows []record.Score
		st   BatchStats
		err  error
	}
	first, second := make(chan result, 1), make(chan result, 1)
	go func() {
		rows, st, err := s.ScoreBatch(context.Background(), recs(5, 5))
		first <- result{rows, st, err}
	}()
	<-judge.entered // the first batch is judging its 5 keys now
	go func() {
		rows, st, err := s.ScoreBatch(context.Background(), recs(5, 5))
		second <- result{rows, st, err}
	}()
	// The second batch finds the five flights and waits on them; it must not call the judge.
	for s.flightWaiters() < 5 {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-judge.entered:
		t.Fatal("the second batch called the judge for keys already in flight")
	default:
	}
	close(judge.gate)
	r1, r2 := <-first, <-second
	if r1.err != nil || r2.err != nil {
		t.Fatal(r1.err, r2.err)
	}
	if judge.calls != 5 || r2.st.InFlightJoins != 5 || r2.st.JudgeCalls != 0 || len(r2.rows) != 5 {
		t.Fatalf("judge calls %d, second batch %+v", judge.calls, r2.st)
	}
	for i := range r2.rows {
		if r2.rows[i].Value != r1.rows[i].Value || !r2.rows[i].Cached {
			t.Fatalf("joined row %d = %+v, leader's %+v", i, r2.rows[i], r1.rows[i])
		}
	}
}

// failFirstJudge is a recording fake whose first call blocks until released and then
// fails as a whole (a judge pool that went away); later calls succeed.
type failFirstJudge struct {
	countingJudge
	first   sync.Once
	entered chan struct{}
	release chan struct{}
}

func (f *failFirstJudge) Judge(ctx context.Context, tasks []Task) ([]Verdict, error) {
	failed := false
	f.first.Do(func() {
		f.entered <- struct{}{}
		<-f.release
		failed = true
	})
	if failed {
		return nil, errors.New("pool unreachable")
	}
	return f.countingJudge.Judge(ctx, tasks)
}

func TestScorerFollowersReclaimOnceWhenTheLeaderFails(t *testing.T) {
	judge := &failFirstJudge{countingJudge: countingJudge{ident: "fake:v1"}, entered: make(chan struct{}, 1), release: make(chan struct{})}
	ev := prepared(t, &Evaluator{Name: "helpful", Judge: "j", Criteria: "be helpful"})
	s, err := New([]*Evaluator{ev}, map[string]Judge{"j": judge}, Options{Cache: cache.NewMemory(1 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	leader := make(chan error, 1)
	go func() {
		_, _, err := s.ScoreBatch(context.Background(), recs(1, 1))
		leader <- err
	}()
	<-judge.entered
	followers := make(chan error, 3)
	for range 3 {
		go func() {
			_, _, err := s.ScoreBatch(context.Background(), recs(1, 1))
			followers <- err
		}()
	}
	// Let the followers find the flight before it fails.
	for s.flightWaiters() < 3 {
		time.Sleep(time.Millisecond)
	}
	close(judge.release)
	if err := <-leader; err == nil {
		t.Fatal("the leader's failed judge call did not fail its batch")
	}
	for range 3 {
		if err := <-followers; err != nil {
			t.Fatal(err)
		}
	}
	if judge.calls != 1 {
		t.Fatalf("after the leader failed, the followers made %d judge calls for one key, want 1", judge.calls)
	}
}

func TestScorerTracesJudgeCalls(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ev := prepared(t, &Evaluator{Name: "helpful", Judge: "j", Criteria: "be helpful"})
	s, err := New([]*Evaluator{ev}, map[string]Judge{"j": &countingJudge{ident: "fake:v1"}}, Options{Telemetry: telemetry.Settings{TracerProvider: tp}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Score(context.Background(), recs(3, 3)); err != nil {
		t.Fatal(err)
	}
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, sp := range rec.Ended() {
		spans[sp.Name()] = sp
	}
	root, judge := spans["scorer.Score"], spans["judge"]
	if root == nil || judge == nil || judge.Parent().SpanID() != root.SpanContext().SpanID() {
		t.Fatalf("want a judge span under scorer.Score, got %v", spans)
	}
}

// unavailableJudge is a fake whose tasks all fail transiently, as an unreachable pool does.
type unavailableJudge struct{ calls int }

func (u *unavailableJudge) Identity() string { return "down:v1" }
func (u *unavailableJudge) Judge(_ context.Context, tasks []Task) ([]Verdict, error) {
	u.calls += len(tasks)
	out := make([]Verdict, len(tasks))
	for i := range out {
		out[i] = Verdict{Status: record.StatusJudgeError, Err: fmt.Errorf("connection refused: %w", ErrJudgeUnavailable)}
	}
	return out, nil
}

func TestScorerFailsTheBatchWhenTheJudgeIsUnavailable(t *testing.T) {
	down := &unavailableJudge{}
	up := &countingJudge{ident: "fake:v1"}
	evDown := prepared(t, &Evaluator{Name: "down", Judge: "down", Criteria: "c"})
	evUp := prepared(t, &Evaluator{Name: "up", Judge: "up", Criteria: "c"})
	mem := cache.NewMemory(1 << 20)
	s, err := New([]*Evaluator{evDown, evUp}, map[string]Judge{"down": down, "up": up}, Options{Cache: mem})
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := s.ScoreBatch(context.Background(), recs(4, 4))
	if !errors.Is(err, ErrJudgeUnavailable) || rows != nil {
		t.Fatalf("ScoreBatch = %d rows, %v; want no rows and an ErrJudgeUnavailable (retry later, store no failure)", len(rows), err)
	}
	if mem.Len() != 4 {
		t.Fatalf("cached %d verdicts; the working judge's 4 must be kept for the retry", mem.Len())
	}
	// The retry pays only for the unavailable judge.
	_, _, _ = s.ScoreBatch(context.Background(), recs(4, 4))
	if up.calls != 4 || down.calls != 8 {
		t.Fatalf("calls: up %d (want 4), down %d (want 8)", up.calls, down.calls)
	}
}

func TestGlobsMatchModelNamesWithSlashes(t *testing.T) {
	e := prepared(t, &Evaluator{Name: "p", Judge: "j", Criteria: "c", Task: TaskPairwise,
		Match: Match{Models: []string{"meta-llama/*"}}})
	r := &record.Record{ID: "1", Model: "meta-llama/Llama-3.1-8B", Response: "a",
		Candidates: []record.Candidate{{Model: "mistralai/Mistral-7B", Response: "b"}}}
	if !e.Applies(r) {
		t.Fatal("meta-llama/* does not match meta-llama/Llama-3.1-8B, or the default candidate * skipped mistralai/Mistral-7B")
	}
	e2 := prepared(t, &Evaluator{Name: "p2", Judge: "j", Criteria: "c", Task: TaskPairwise, Candidate: "qwen/*"})
	if e2.Applies(r) {
		t.Fatal("candidate qwen/* matched mistralai/Mistral-7B")
	}
}

func TestRewardClassificationNeedsAPositiveLabel(t *testing.T) {
	e := Evaluator{Name: "c", Judge: "rm", Task: TaskClassification}
	if err := e.Prepare("evaluators[0]", KindReward); err == nil || !strings.Contains(err.Error(), "evaluators[0] (c).positive_label") {
		t.Fatalf("err = %v", err)
	}
	e = Evaluator{Name: "c", Judge: "rm", Task: TaskClassification, PositiveLabel: "LABEL_1"}
	if err := e.Prepare("evaluators[0]", KindReward); err != nil {
		t.Fatal(err)
	}
}

// pickyJudge is a fake that is up but cannot judge the records whose response is in
// refuse: their tasks fail transiently, the others get verdicts.
type pickyJudge struct{ refuse map[string]bool }

func (p *pickyJudge) Identity() string { return "picky:v1" }
func (p *pickyJudge) Judge(_ context.Context, tasks []Task) ([]Verdict, error) {
	out := make([]Verdict, len(tasks))
	for i, t := range tasks {
		out[i] = Verdict{Value: 1, Status: record.StatusOK, Attempts: 1}
		if p.refuse[t.Record.Response] {
			out[i] = Verdict{Status: record.StatusJudgeError, Err: fmt.Errorf("timeout: %w", ErrJudgeUnavailable)}
		}
	}
	return out, nil
}

// TestUnavailableErrorNamesSuspects: records failed by a judge that answered others are
// poison suspects; records failed by a judge that answered nothing are not.
func TestUnavailableErrorNamesSuspects(t *testing.T) {
	batch := recs(4, 4)
	picky := &pickyJudge{refuse: map[string]bool{batch[2].Response: true}}
	ev := prepared(t, &Evaluator{Name: "e", Judge: "picky", Criteria: "c"})
	s, err := New([]*Evaluator{ev}, map[string]Judge{"picky": picky}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.ScoreBatch(context.Background(), batch)
	var ue *UnavailableError
	if !errors.As(err, &ue) || len(ue.Records) != 1 || ue.Records[0] != batch[2] || len(ue.Suspects) != 1 || ue.Suspects[0] != batch[2] {
		t.Fatalf("error %v: want an UnavailableError naming record 2 as failed and suspect", err)
	}

	down := &unavailableJudge{}
	evDown := prepared(t, &Evaluator{Name: "d", Judge: "down", Criteria: "c"})
	s, err = New([]*Evaluator{evDown}, map[string]Judge{"down": down}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.ScoreBatch(context.Background(), recs(4, 4))
	if !errors.As(err, &ue) || len(ue.Records) != 4 || len(ue.Suspects) != 0 {
		t.Fatalf("error %v: want 4 failed records and no suspects (the judge answered nothing)", err)
	}
}

// uncachedJudge is a countingJudge that declares its verdicts not worth caching, like the
// built-in checks.
type uncachedJudge struct{ countingJudge }

func (*uncachedJudge) Uncached() bool { return true }

// recordingCache is a Memory cache that records every key it is asked for or given.
type recordingCache struct {
	*cache.Memory
	mu   sync.Mutex
	keys []string
}

func (r *recordingCache) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	r.mu.Lock()
	r.keys = append(r.keys, keys...)
	r.mu.Unlock()
	return r.Memory.GetMany(ctx, keys)
}

func (r *recordingCache) SetMany(ctx context.Context, entries []cache.Entry) error {
	r.mu.Lock()
	for _, e := range entries {
		r.keys = append(r.keys, e.Key)
	}
	r.mu.Unlock()
	return r.Memory.SetMany(ctx, entries)
}

// An uncached judge's tasks never reach the cache and are judged every time, while a
// cached judge's tasks in the same batch are still deduplicated and cached.
func TestScorerSendsUncachedJudgesTasksStraightToTheJudge(t *testing.T) {
	cheap, model := &uncachedJudge{countingJudge{ident: "cheap:v1"}}, &countingJudge{ident: "model:v1"}
	evCheap := prepared(t, &Evaluator{Name: "cheap", Judge: "cheap", Criteria: "c"})
	evModel := prepared(t, &Evaluator{Name: "model", Judge: "model", Criteria: "m"})
	rc := &recordingCache{Memory: cache.NewMemory(1 << 20)}
	s, err := New([]*Evaluator{evCheap, evModel}, map[string]Judge{"cheap": cheap, "model": model}, Options{Cache: rc})
	if err != nil {
		t.Fatal(err)
	}
	for batch := 1; batch <= 2; batch++ {
		rows, st, err := s.ScoreBatch(context.Background(), recs(10, 4))
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 20 {
			t.Fatalf("batch %d: %d rows, want 20", batch, len(rows))
		}
		for _, r := range rows {
			if r.Evaluator == "cheap" && r.Cached {
				t.Errorf("batch %d: an uncached judge's row is marked cached: %+v", batch, r)
			}
		}
		if cheap.calls != 10*batch {
			t.Errorf("batch %d: the uncached judge judged %d tasks in all, want every task: %d", batch, cheap.calls, 10*batch)
		}
		if model.calls != 4 {
			t.Errorf("batch %d: the cached judge judged %d tasks in all, want the 4 distinct keys once", batch, model.calls)
		}
		if wantHits := map[int]int{1: 0, 2: 4}[batch]; st.CacheHits != wantHits {
			t.Errorf("batch %d: %d cache hits, want %d", batch, st.CacheHits, wantHits)
		}
	}
	for _, k := range rc.keys {
		for _, r := range recs(10, 4) {
			if k == CacheKey(evCheap, cheap.Identity(), r) {
				t.Fatalf("the cache saw the uncached judge's key %s", k)
			}
		}
	}
	if len(rc.keys) == 0 {
		t.Fatal("the cached judge's keys never reached the cache")
	}
}
