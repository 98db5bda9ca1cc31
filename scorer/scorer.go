package scorer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"raterd/internal/telemetry"
	"raterd/internal/text"
	"raterd/record"
	"raterd/scorer/cache"
)

// DefaultMaxExplanationBytes bounds the explanation stored with a score.
const DefaultMaxExplanationBytes = 1024

// Options configures a Scorer. Zero values mean the documented defaults.
type Options struct {
	// Cache is the verdict cache; nil disables caching.
	Cache cache.Cache
	// CacheTimeout bounds each cache call as a backstop; a cache.Tiered bounds its Redis
	// round trips itself (keep this above its timeout). On timeout or error the batch is
	// scored without the cache. Default 500ms.
	CacheTimeout time.Duration
	// MaxExplanationBytes bounds stored explanations. Default 1024.
	MaxExplanationBytes int
	// Telemetry is where the scorer's logs, metrics (meter raterd/scorer) and spans go;
	// unset fields mean telemetry.Settings.WithDefaults.
	Telemetry telemetry.Settings
	// Now defaults to time.Now.
	Now func() time.Time
}

// BatchStats counts what scoring one batch cost.
type BatchStats struct {
	Tasks int // record × evaluator pairs to score
	// Uncached counts the tasks of uncached judges (UncachedJudge), judged without the
	// cache: Tasks - Uncached is what the cache could answer.
	Uncached     int
	CacheHits    int // tasks answered from the cache
	Deduplicated int // tasks answered by another task of the same batch with the same key
	// InFlightJoins counts tasks answered by another batch that was judging the same key.
	InFlightJoins int
	JudgeCalls    int // tasks sent to a judge
	Failures      int // tasks whose judgement failed (judge errors and parse failures)
	// ParseFailures counts the failures whose answer did not follow the output grammar.
	ParseFailures int
	CacheBypass   bool // the cache was unreachable for this batch
	// JudgeCallsBy splits JudgeCalls by judge name (the key under judges:).
	JudgeCallsBy map[string]int
}

// Scorer turns records into score rows for the configured evaluators.
type Scorer struct {
	evaluators []*Evaluator
	judges     map[string]Judge
	// uncached names the judges whose tasks skip the cache (UncachedJudge).
	uncached map[string]bool
	opts     Options
	tracer   trace.Tracer

	totalsMu sync.Mutex
	totals   BatchStats

	flightsMu sync.Mutex
	flights   map[string]*flight // cache key → judgement in progress

	// answeredMu guards answered: when each judge last returned a verdict, for
	// poisonSuspects' recentAnswerWindow.
	answeredMu sync.Mutex
	answered   map[string]time.Time

	mTasks      metric.Int64Counter
	mCacheHits  metric.Int64Counter
	mJudgeCalls metric.Int64Counter
	mFailures   metric.Int64Counter
	mBypass     metric.Int64Counter
	mJoins      metric.Int64Counter
	mJudgeTime  metric.Float64Histogram
}

// New returns a scorer. Every evaluator must be prepared and name a judge in judges.
func New(evaluators []*Evaluator, judges map[string]Judge, opts Options) (*Scorer, error) {
	for _, e := range evaluators {
		if e.RubricVersion() == "" {
			return nil, fmt.Errorf("evaluator %q: not prepared (call Prepare)", e.Name)
		}
		if judges[e.Judge] == nil {
			return nil, fmt.Errorf("evaluator %q: judge %q: %w", e.Name, e.Judge, ErrUnknownJudge)
		}
	}
	if opts.CacheTimeout == 0 {
		opts.CacheTimeout = 500 * time.Millisecond
	}
	if opts.MaxExplanationBytes == 0 {
		opts.MaxExplanationBytes = DefaultMaxExplanationBytes
	}
	opts.Telemetry = opts.Telemetry.WithDefaults()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Scorer{evaluators: evaluators, judges: judges, opts: opts, tracer: opts.Telemetry.TracerProvider.Tracer("raterd/scorer"),
		flights: make(map[string]*flight), uncached: make(map[string]bool)}
	for name, j := range judges {
		if u, ok := j.(UncachedJudge); ok && u.Uncached() {
			s.uncached[name] = true
		}
	}
	m := opts.Telemetry.MeterProvider.Meter("raterd/scorer")
	var err error
	must := func(e error) {
		if err == nil {
			err = e
		}
	}
	var e error
	s.mTasks, e = m.Int64Counter("raterd.scorer.tasks", metric.WithDescription("record × evaluator pairs to score"))
	must(e)
	s.mCacheHits, e = m.Int64Counter("raterd.scorer.cache.hits", metric.WithDescription("tasks answered from the cache"))
	must(e)
	s.mJudgeCalls, e = m.Int64Counter("raterd.scorer.judge.calls", metric.WithDescription("tasks sent to a judge"))
	must(e)
	s.mFailures, e = m.Int64Counter("raterd.scorer.failures", metric.WithDescription("score rows that are not ok, by status (parse_failure, judge_error), judge and evaluator"))
	must(e)
	s.mJoins, e = m.Int64Counter("raterd.scorer.in_flight_joins", metric.WithDescription("tasks answered by another batch judging the same key"))
	must(e)
	s.mBypass, e = m.Int64Counter("raterd.scorer.cache.bypass", metric.WithDescription("batches scored without the cache because it failed"))
	must(e)
	s.mJudgeTime, e = m.Float64Histogram("raterd.scorer.judge.duration", metric.WithUnit("s"), metric.WithDescription("wall time of one judge call for a batch"))
	must(e)
	if err != nil {
		return nil, fmt.Errorf("scorer metrics: %w", err)
	}
	return s, nil
}

// noteAnswered records that the served judges answered now.
func (s *Scorer) noteAnswered(served map[string]bool) {
	if len(served) == 0 {
		return
	}
	now := s.opts.Now()
	s.answeredMu.Lock()
	defer s.answeredMu.Unlock()
	if s.answered == nil {
		s.answered = map[string]time.Time{}
	}
	for j := range served {
		s.answered[j] = now
	}
}

// recentlyAnswered returns the judges that answered within recentAnswerWindow.
func (s *Scorer) recentlyAnswered() map[string]bool {
	now := s.opts.Now()
	s.answeredMu.Lock()
	defer s.answeredMu.Unlock()
	recent := make(map[string]bool, len(s.answered))
	for j, at := range s.answered {
		if now.Sub(at) <= recentAnswerWindow {
			recent[j] = true
		}
	}
	return recent
}

// Evaluators returns the configured evaluators.
func (s *Scorer) Evaluators() []*Evaluator { return s.evaluators }

// pending is one task of a batch with its cache key.
type pending struct {
	task    Task
	key     string
	verdict Verdict
	cached  bool
	// leader is the index of the task whose verdict this one shares (itself if none).
	leader int
}

// Score judges every applicable record × evaluator pair of the batch and returns the score
// rows; see ScoreBatch.
func (s *Scorer) Score(ctx context.Context, records []*record.Record) ([]record.Score, error) {
	return s.Begin(ctx, records).Wait()
}

// addTotals adds one batch's stats to the running totals.
func (s *Scorer) addTotals(st BatchStats) {
	s.totalsMu.Lock()
	defer s.totalsMu.Unlock()
	s.totals.Tasks += st.Tasks
	s.totals.Uncached += st.Uncached
	s.totals.CacheHits += st.CacheHits
	s.totals.Deduplicated += st.Deduplicated
	s.totals.InFlightJoins += st.InFlightJoins
	s.totals.JudgeCalls += st.JudgeCalls
	s.totals.Failures += st.Failures
	s.totals.ParseFailures += st.ParseFailures
	s.totals.CacheBypass = s.totals.CacheBypass || st.CacheBypass
	for name, n := range st.JudgeCallsBy {
		if s.totals.JudgeCallsBy == nil {
			s.totals.JudgeCallsBy = map[string]int{}
		}
		s.totals.JudgeCallsBy[name] += n
	}
}

// Totals returns the stats summed over every Score call so far; CacheBypass is true when
// any batch ran without the cache.
func (s *Scorer) Totals() BatchStats {
	s.totalsMu.Lock()
	defer s.totalsMu.Unlock()
	t := s.totals
	t.JudgeCallsBy = make(map[string]int, len(s.totals.JudgeCallsBy))
	for k, v := range s.totals.JudgeCallsBy {
		t.JudgeCallsBy[k] = v
	}
	return t
}

// UnavailableError is ScoreBatch's error when judgements could not be made now (it wraps
// ErrJudgeUnavailable). It names the records those judgements belong to, so that a
// pipeline can tell a judge pool that is down (every record of the batch fails) from
// records that keep failing while the others are judged (see consumer.PoisonSuspects).
type UnavailableError struct {
	// Judgements is how many judgements failed; Records are their records.
	Judgements int
	Records    []*record.Record
	// Suspects are the Records one of whose judgements failed on a judge that is up, so
	// that the record itself may be what it cannot handle: the judge answered other live
	// calls of the same batch in the same round, or the server failed this record alone
	// with an error of its own (a 500; see poisonSuspects). A pool that is down or
	// overloaded (refused connections, 429, 503, breakers open) makes no suspects.
	Suspects []*record.Record
	Err      error
}

// Error implements error.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%d judgements of %d records could not be made now: %v", e.Judgements, len(e.Records), e.Err)
}

// Unwrap returns the judge's error (an ErrJudgeUnavailable).
func (e *UnavailableError) Unwrap() error { return e.Err }

// PoisonSuspects returns the Suspects (see consumer.PoisonSuspects).
func (e *UnavailableError) PoisonSuspects() []*record.Record { return e.Suspects }

// ScoreBatch judges every applicable record × evaluator pair of the batch and returns the
// score rows and what they cost. Cached verdicts cost no judge call; a key is judged once
// per batch, and not at all while another batch is judging it. A non-nil error fails the
// batch as a whole (the context ended, a judge call failed, or a judge was unavailable —
// ErrJudgeUnavailable) and means "retry later"; permanent per-task failures are rows with
// a failure status. It is Begin followed by Wait, except that the totals are not counted.
func (s *Scorer) ScoreBatch(ctx context.Context, records []*record.Record) ([]record.Score, BatchStats, error) {
	sc := s.begin(ctx, records)
	return sc.wait()
}

// Scoring is a batch whose judgements are under way: Begin started it, Wait ends it.
type Scoring struct {
	s      *Scorer
	ctx    context.Context
	span   trace.Span
	tasks  []pending
	st     BatchStats
	judged []bool // a verdict came back for this task
	direct []int  // tasks of uncached judges, judged in the first round
	round  int
	// The round under way: the keys it leads and follows with their flights, the tasks
	// it sent to judges, and how to wait for the judges it started.
	lead, follow               []int
	leadFlights, followFlights []*flight
	misses                     []int
	judging                    func() error
	waited                     bool
}

// Begin does the batch's own work in the caller — the cache keys, deduplication, the
// claims on keys, one cache lookup, and the judges that run in-process (the built-in
// checks) — and starts the calls to remote judges (model and reward servers) without
// waiting for them. The caller can then go on with the next batch while the pool works:
// a batch never holds its worker until its slowest judge call returns. Wait returns the
// rows. Every Begin must be followed by exactly one Wait, even when the context ended:
// until then the keys the batch claimed stay claimed, and every other batch with one of
// them waits for it.
func (s *Scorer) Begin(ctx context.Context, records []*record.Record) *Scoring {
	return s.begin(ctx, records)
}

// BeginScore is Begin for a caller that knows only functions (consumer.StreamingScorer):
// it returns the Scoring's Wait.
func (s *Scorer) BeginScore(ctx context.Context, records []*record.Record) func() ([]record.Score, error) {
	return s.Begin(ctx, records).Wait
}

// Wait waits for the judgements Begin started, runs whatever rounds remain (keys another
// batch was judging and did not get a verdict for), and returns the score rows; see
// ScoreBatch. It adds the batch's stats to Totals.
func (sc *Scoring) Wait() ([]record.Score, error) {
	rows, st, err := sc.wait()
	sc.s.addTotals(st)
	return rows, err
}

func (s *Scorer) begin(ctx context.Context, records []*record.Record) *Scoring {
	ctx, span := s.tracer.Start(ctx, "scorer.Score", trace.WithAttributes(attribute.Int("records", len(records))))
	sc := &Scoring{s: s, ctx: ctx, span: span}
	tasks := make([]pending, 0, len(records)*len(s.evaluators))
	for _, r := range records {
		for _, e := range s.evaluators {
			if e.Applies(r) {
				p := pending{task: Task{Evaluator: e, Record: r}}
				if !s.uncached[e.Judge] {
					p.key = CacheKey(e, s.judges[e.Judge].Identity(), r)
				}
				tasks = append(tasks, p)
			}
		}
	}
	sc.tasks = tasks
	sc.st.Tasks = len(tasks)
	s.mTasks.Add(ctx, int64(len(tasks)))
	if len(tasks) == 0 {
		return sc
	}

	// Deduplicate keys within the batch: the first task with a key leads, the rest follow.
	// Tasks of uncached judges have no key: each is judged directly, in the first round.
	leaders := make(map[string]int, len(tasks))
	var uniqueIdx []int
	for i := range tasks {
		tasks[i].leader = i
		if tasks[i].key == "" {
			sc.direct = append(sc.direct, i)
			continue
		}
		if j, ok := leaders[tasks[i].key]; ok {
			tasks[i].leader = j
			sc.st.Deduplicated++
			continue
		}
		leaders[tasks[i].key] = i
		uniqueIdx = append(uniqueIdx, i)
	}
	sc.st.Uncached = len(sc.direct)
	sc.judged = make([]bool, len(tasks))
	sc.startRound(uniqueIdx)
	return sc
}

// startRound begins a round over the keys at todo (and, in the first round, the direct
// tasks). Every key is claimed before anything else: a key another batch is judging right
// now is awaited, not judged again; the claimed ones are looked up in the cache and judged
// on a miss, and stay claimed until their verdict is cached, so no key is judged twice
// while cached or in flight. A key whose leader got no verdict (its judge call failed) is
// claimed once more, then judged here unclaimed. Uncached judges (UncachedJudge: the
// in-process checks) run now; the others are started and awaited in finishRound.
func (sc *Scoring) startRound(todo []int) {
	s, ctx, tasks := sc.s, sc.ctx, sc.tasks
	sc.lead, sc.leadFlights, sc.follow, sc.followFlights = s.claim(tasks, todo, sc.round < 2)
	misses := sc.lead
	if s.opts.Cache != nil && len(sc.lead) > 0 {
		misses = s.lookup(ctx, tasks, sc.lead, &sc.st)
	}
	if sc.round == 0 {
		misses = append(misses, sc.direct...)
	}
	sc.misses = misses
	var local, remote []int
	for _, i := range misses {
		if s.uncached[tasks[i].task.Evaluator.Judge] {
			local = append(local, i)
		} else {
			remote = append(remote, i)
		}
	}
	// Remote calls first, so that the servers work while the checks run here.
	remoteDone := s.startJudges(ctx, tasks, remote, &sc.st, sc.judged, true)
	localErr := s.startJudges(ctx, tasks, local, &sc.st, sc.judged, false)()
	sc.judging = func() error {
		if err := remoteDone(); localErr == nil {
			localErr = err
		}
		return localErr
	}
}

func (sc *Scoring) wait() ([]record.Score, BatchStats, error) {
	s, ctx, tasks := sc.s, sc.ctx, sc.tasks
	if sc.waited {
		return nil, sc.st, errors.New("scorer: Scoring.Wait called twice")
	}
	sc.waited = true
	defer sc.span.End()
	if len(tasks) == 0 {
		return nil, sc.st, nil
	}
	for {
		todo, err := sc.finishRound()
		if err != nil {
			return nil, sc.st, err
		}
		if len(todo) == 0 {
			break
		}
		sc.round++
		sc.startRound(todo)
	}
	st := &sc.st
	s.mJoins.Add(ctx, int64(st.InFlightJoins))

	now := s.opts.Now().UTC()
	rows := make([]record.Score, len(tasks))
	for i := range tasks {
		p := &tasks[i]
		lead := &tasks[p.leader]
		rows[i] = s.row(p.task, lead.verdict, lead.cached || p.leader != i, now)
		if status := rows[i].Status; status != record.StatusOK {
			st.Failures++
			if status == record.StatusParseFailure {
				st.ParseFailures++
			}
			s.mFailures.Add(ctx, 1, metric.WithAttributes(attribute.String("status", status),
				attribute.String("judge", p.task.Evaluator.Judge), attribute.String("evaluator", p.task.Evaluator.Name)))
		}
	}
	sc.span.SetAttributes(attribute.Int("tasks", st.Tasks), attribute.Int("cache_hits", st.CacheHits), attribute.Int("judge_calls", st.JudgeCalls))
	return rows, *st, nil
}

// finishRound waits for the round's judges, shares and stores their verdicts, waits for
// the keys other batches were judging, and returns the keys left to claim again.
func (sc *Scoring) finishRound() ([]int, error) {
	s, ctx, tasks, judged, st, misses := sc.s, sc.ctx, sc.tasks, sc.judged, &sc.st, sc.misses
	err := sc.judging()
	// A verdict that only says the judge was unavailable is no verdict: it is neither
	// shared with followers nor stored, and it fails the batch so that it is retried.
	unavailable := 0
	for _, i := range misses {
		if judged[i] && errors.Is(tasks[i].verdict.Err, ErrJudgeUnavailable) {
			judged[i] = false
			unavailable++
			if err == nil {
				err = tasks[i].verdict.Err
			}
		}
	}
	s.fillCache(ctx, tasks, misses, judged, st)
	s.land(tasks, sc.lead, sc.leadFlights, judged)
	// A judge that answered other live calls in this round is up: the records it
	// failed on are suspects. One that answered none is down or unreachable, unless
	// it answered recently (a lone record's failure; see poisonSuspects).
	served := map[string]bool{}
	for _, i := range misses {
		if judged[i] {
			served[tasks[i].task.Evaluator.Judge] = true
		}
	}
	s.noteAnswered(served)
	if err != nil {
		if unavailable > 0 {
			err = sc.unavailableError(unavailable, served, err)
		}
		return nil, err
	}

	var todo []int
	for n, i := range sc.follow {
		f := sc.followFlights[n]
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.ok {
			tasks[i].verdict, tasks[i].cached = f.verdict, true
			st.InFlightJoins++
		} else {
			todo = append(todo, i)
		}
	}
	return todo, nil
}

// unavailableError names the records whose judgements could not be made, and which of
// them are suspects (see poisonSuspects): a pool that is down or overloaded never makes
// any.
func (sc *Scoring) unavailableError(unavailable int, served map[string]bool, err error) error {
	s, tasks, judged := sc.s, sc.tasks, sc.judged
	ue := &UnavailableError{Judgements: unavailable, Err: err}
	var failed []suspectFailure
	var failedIdx []int
	for _, i := range sc.misses {
		if judged[i] || tasks[i].verdict.Err == nil {
			continue
		}
		failed = append(failed, suspectFailure{judge: tasks[i].task.Evaluator.Judge,
			record: tasks[i].task.Record, scope: scopeOf(tasks[i].verdict.Err)})
		failedIdx = append(failedIdx, i)
	}
	isSuspect := poisonSuspects(failed, served, s.recentlyAnswered())
	seen, suspect := map[*record.Record]bool{}, map[*record.Record]bool{}
	for _, i := range sc.misses {
		r := tasks[i].task.Record
		if judged[i] || seen[r] {
			continue
		}
		seen[r] = true
		ue.Records = append(ue.Records, r)
	}
	for n, i := range failedIdx {
		if r := tasks[i].task.Record; isSuspect[n] && !suspect[r] {
			suspect[r] = true
			ue.Suspects = append(ue.Suspects, r)
		}
	}
	return ue
}

func (s *Scorer) row(t Task, v Verdict, cached bool, now time.Time) record.Score {
	r := t.Record
	status := v.Status
	if status == "" {
		status = record.StatusOK
	}
	expl := v.Explanation
	if v.Err != nil {
		status = record.StatusJudgeError
		expl = t.Evaluator.Redactor().Redact(v.Err.Error())
	}
	row := record.Score{
		EventTime:      r.Timestamp,
		ScoredAt:       now,
		RecordID:       r.ID,
		TraceID:        r.TraceID,
		SpanID:         r.SpanID,
		ConversationID: r.ConversationID,
		Source:         r.Source,
		Model:          r.Model,
		App:            r.App,
		Labels:         r.Metadata,
		Evaluator:      t.Evaluator.Name,
		RubricVersion:  t.Evaluator.RubricVersion(),
		Judge:          cmp.Or(v.Judge, s.judges[t.Evaluator.Judge].Identity()),
		TaskType:       t.Evaluator.Task,
		Value:          v.Value,
		Label:          v.Label,
		Confidence:     v.Confidence,
		Explanation:    text.Clip(expl, s.opts.MaxExplanationBytes),
		Status:         status,
		Cached:         cached,
	}
	if seg := r.Segment; seg != nil {
		// A transcript row says what it judged: its scope and segment.
		row.Scope, row.Version, row.LastOffset, row.Turns, row.CloseReason = RecordScope(r), seg.Version, seg.LastOffset, len(seg.Turns), seg.CloseReason
	}
	if !cached {
		row.JudgeLatency = v.Latency
		row.Attempts = v.Attempts
	}
	return row
}

// flight is a judgement in progress in some batch; other batches wait for it instead of
// paying for the same key again.
type flight struct {
	waiters int           // batches following this flight (for tests and debugging)
	done    chan struct{} // closed when the verdict is known
	verdict Verdict
	ok      bool // verdict is a successful judgement
}

// startJudges sends the tasks at idx to their judges, one call per judge, and returns a
// function that waits for the calls and reports their first error; the calls store the
// verdicts, and judged marks the tasks that got one. An error means a whole judge call
// failed; the other judges' verdicts are kept. With async the calls run concurrently in
// goroutines of their own and startJudges returns at once; without, they run one after
// the other before it returns (in-process judges: their CPU work stays in the caller).
func (s *Scorer) startJudges(ctx context.Context, tasks []pending, idx []int, st *BatchStats, judged []bool, async bool) func() error {
	byJudge := make(map[string][]int)
	for _, i := range idx {
		byJudge[tasks[i].task.Evaluator.Judge] = append(byJudge[tasks[i].task.Evaluator.Judge], i)
	}
	if len(byJudge) == 0 {
		return func() error { return nil }
	}
	if st.JudgeCallsBy == nil {
		st.JudgeCallsBy = make(map[string]int, len(byJudge))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(byJudge))
	for name, idx := range byJudge {
		st.JudgeCalls += len(idx)
		st.JudgeCallsBy[name] += len(idx)
		s.mJudgeCalls.Add(ctx, int64(len(idx)), metric.WithAttributes(attribute.String("judge", name)))
		wg.Add(1)
		call := func() {
			defer wg.Done()
			batch := make([]Task, len(idx))
			for n, i := range idx {
				batch[n] = tasks[i].task
			}
			jctx, span := s.tracer.Start(ctx, "judge", trace.WithAttributes(attribute.String("judge", name), attribute.Int("tasks", len(batch))))
			defer span.End()
			start := s.opts.Now()
			verdicts, err := s.judges[name].Judge(jctx, batch)
			s.mJudgeTime.Record(ctx, s.opts.Now().Sub(start).Seconds(), metric.WithAttributes(attribute.String("judge", name)))
			if err == nil && len(verdicts) != len(batch) {
				err = fmt.Errorf("judge %q returned %d verdicts for %d tasks", name, len(verdicts), len(batch))
			}
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
				errs <- fmt.Errorf("judge %q: %w", name, err)
				return
			}
			for n, i := range idx {
				if rd := tasks[i].task.Evaluator.Redactor(); rd != nil {
					// The judge may quote its input: mask before the cache and the row.
					verdicts[n].Explanation = rd.Redact(verdicts[n].Explanation)
				}
				tasks[i].verdict, judged[i] = verdicts[n], true
			}
		}
		if async {
			go call()
		} else {
			call()
		}
	}
	return func() error {
		wg.Wait()
		close(errs)
		return <-errs
	}
}

// claim registers a flight for each key at idx that no other batch is judging (when
// register is false, it leads every key without registering) and returns the keys this
// batch leads and those it follows, each with its flight.
func (s *Scorer) claim(tasks []pending, idx []int, register bool) (lead []int, leadFlights []*flight, follow []int, followFlights []*flight) {
	if !register {
		return idx, make([]*flight, len(idx)), nil, nil
	}
	s.flightsMu.Lock()
	defer s.flightsMu.Unlock()
	for _, i := range idx {
		if f := s.flights[tasks[i].key]; f != nil {
			f.waiters++
			follow = append(follow, i)
			followFlights = append(followFlights, f)
			continue
		}
		f := &flight{done: make(chan struct{})}
		s.flights[tasks[i].key] = f
		lead = append(lead, i)
		leadFlights = append(leadFlights, f)
	}
	return lead, leadFlights, follow, followFlights
}

// flightWaiters counts the followers of the flights now open.
func (s *Scorer) flightWaiters() int {
	s.flightsMu.Lock()
	defer s.flightsMu.Unlock()
	n := 0
	for _, f := range s.flights {
		n += f.waiters
	}
	return n
}

// lookup answers the tasks at idx from the cache in one round trip and returns those
// that missed. A cache that fails (Redis down) may still return the hits of a tier in
// front of it; the rest are misses, and the batch goes on.
func (s *Scorer) lookup(ctx context.Context, tasks []pending, idx []int, st *BatchStats) []int {
	keys := make([]string, len(idx))
	for n, i := range idx {
		keys[n] = tasks[i].key
	}
	vals, err := s.cacheCall(ctx, "lookup", func(ctx context.Context) ([][]byte, error) { return s.opts.Cache.GetMany(ctx, keys) })
	if err != nil {
		s.noteBypass(ctx, st, "lookup")
		if len(vals) != len(idx) {
			return idx
		}
	}
	var misses []int
	for n, i := range idx {
		if v := vals[n]; v != nil {
			if verdict, ok := decodeVerdict(v); ok {
				tasks[i].verdict, tasks[i].cached = verdict, true
				continue
			}
		}
		misses = append(misses, i)
	}
	hits := len(idx) - len(misses)
	st.CacheHits += hits
	s.mCacheHits.Add(ctx, int64(hits))
	return misses
}

// land publishes the verdicts of the keys this batch led to the batches waiting on them.
// Any verdict that came back is shared (the same input gets the same answer); a key with
// none is left for the followers to claim again.
func (s *Scorer) land(tasks []pending, idx []int, flights []*flight, judged []bool) {
	s.flightsMu.Lock()
	defer s.flightsMu.Unlock()
	for n, i := range idx {
		f := flights[n]
		if f == nil {
			continue // led without a flight (last round)
		}
		if judged[i] || tasks[i].cached {
			f.verdict, f.ok = tasks[i].verdict, true
		}
		delete(s.flights, tasks[i].key)
		close(f.done)
	}
}

// fillCache stores the successful verdicts among idx in one round trip. A cache that
// fails is skipped: the verdicts are in the score rows either way.
func (s *Scorer) fillCache(ctx context.Context, tasks []pending, idx []int, judged []bool, st *BatchStats) {
	if s.opts.Cache == nil || ctx.Err() != nil {
		return
	}
	var fill []cache.Entry
	for _, i := range idx {
		p := &tasks[i]
		if p.key != "" && judged[i] && p.verdict.Err == nil && p.verdict.Status == record.StatusOK {
			if b := encodeVerdict(p.verdict); b != nil {
				fill = append(fill, cache.Entry{Key: p.key, Value: b, TTL: p.task.Evaluator.CacheTTL})
			}
		}
	}
	if len(fill) > 0 {
		if _, err := s.cacheCall(ctx, "fill", func(ctx context.Context) ([][]byte, error) { return nil, s.opts.Cache.SetMany(ctx, fill) }); err != nil {
			s.noteBypass(ctx, st, "fill")
		}
	}
}

// cacheCall runs one bounded cache call. Failures never fail the batch (the cache is
// optional); the cache itself counts its round trips and logs its state changes (see
// cache.Tiered).
func (s *Scorer) cacheCall(ctx context.Context, op string, f func(context.Context) ([][]byte, error)) ([][]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, s.opts.CacheTimeout)
	defer cancel()
	return f(cctx)
}

// noteBypass marks the batch as scored without (part of) the cache, counting each batch
// once; a batch that is ending (shutdown) is not a cache outage.
func (s *Scorer) noteBypass(ctx context.Context, st *BatchStats, op string) {
	if ctx.Err() != nil || st.CacheBypass {
		return
	}
	st.CacheBypass = true
	s.mBypass.Add(ctx, 1, metric.WithAttributes(attribute.String("op", op)))
}

// CacheKey is the cache key of a verdict: a hash of the evaluator's rubric version, the
// judge's identity and exactly the record fields the evaluator reads. A rubric or judge
// change yields a new key, so a stale verdict is never returned.
func CacheKey(e *Evaluator, judgeIdentity string, r *record.Record) string {
	h := sha256.New()
	writeField(h, "cache-key-v3") // v3: values carry their expiry (scorer/cache)
	writeField(h, e.RubricVersion())
	writeField(h, judgeIdentity)
	for _, in := range e.Inputs(r) {
		writeField(h, in.Field)
		writeField(h, in.Text)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cachedVerdict is the compact cache encoding of a verdict (never the record).
type cachedVerdict struct {
	Value       float64 `json:"v"`
	Label       string  `json:"l,omitempty"`
	Confidence  float64 `json:"c"`
	Explanation string  `json:"e,omitempty"`
	Judge       string  `json:"j,omitempty"` // Verdict.Judge, when set
}

// encodeVerdict returns nil for a verdict JSON cannot hold (a NaN or infinite score);
// such a verdict is simply not cached.
func encodeVerdict(v Verdict) []byte {
	b, err := json.Marshal(cachedVerdict{Value: v.Value, Label: v.Label, Confidence: v.Confidence, Explanation: v.Explanation, Judge: v.Judge})
	if err != nil {
		return nil
	}
	return b
}

func decodeVerdict(b []byte) (Verdict, bool) {
	var c cachedVerdict
	if err := json.Unmarshal(b, &c); err != nil {
		return Verdict{}, false // a corrupt entry is a miss, not a failure
	}
	return Verdict{Value: c.Value, Label: c.Label, Confidence: c.Confidence, Explanation: c.Explanation, Judge: c.Judge, Status: record.StatusOK}, true
}
