package alert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/errgroup"

	"raterd/internal/chsql"
	"raterd/internal/telemetry"
	"raterd/record"
	"raterd/sinks/alert/detect"
	"raterd/sinks/alert/notify"
)

// Options are the Manager's collaborators; every field is optional.
type Options struct {
	// Store holds the alert state; nil keeps it in this process (NewMemoryStore). Give
	// every process of a deployment the same RedisStore to share state.
	Store Store
	// Channels are the notification channels, by the names rules refer to: normally a
	// Deliverer per Notifier, which queues, retries and reports a failing channel.
	Channels map[string]Channel
	// Database is the ClickHouse database the drill-down SQL reads; default "raterd".
	Database string
	// ShutdownTimeout bounds Close's final evaluation; default 10s.
	ShutdownTimeout time.Duration
	// Telemetry's logger receives the lifecycle logs; its meter provider gets the
	// per-series metrics (meter raterd/sinks/alert). Unset fields mean
	// telemetry.Settings.WithDefaults.
	Telemetry telemetry.Settings
	// Now is the clock of the lifecycle; time.Now when nil (tests pass a fake).
	Now func() time.Time
}

// Channel is a notification channel as the Manager sees it: Enqueue hands a notification
// over and never blocks. A Deliverer is one (queued delivery with retries for a Notifier).
type Channel interface {
	Name() string
	Enqueue(n notify.Notification) bool
}

// Manager turns scored rows into alerts: it feeds each rule's detector per series, runs
// the lifecycle (pending → firing → resolved, re-notification, missing data, silences,
// expiry), keeps the state in a Store shared by every raterd process, sends each state
// change to the rule's channels once, and exports per-series metrics.
//
// It sits beside ClickHouse in the score sinks (WriteScores) but never holds scoring up:
// rows are copied into a bounded buffer and WriteScores returns nil at once; rows that do
// not fit are dropped and counted. One goroutine owns everything else: every Interval it
// routes the buffered rows to their series, and applies each series' observations of the
// interval to the shared state in one atomic update (see Store), which is also where the
// time-driven transitions happen — so with several processes, each transition is made,
// and notified, by exactly one of them.
//
// Detectors run on event time (the rows' EventTime), so replays and backlogs judge the
// data as it was; lifecycle timers (for, resolve_after, renotify, no_data_after,
// expire_after) run on the processing clock.
type Manager struct {
	cfg      Config
	rules    []*rule
	byName   map[string]*rule
	store    Store
	channels map[string]Channel
	db       string
	logger   *slog.Logger
	now      func() time.Time
	stopTO   time.Duration

	mu     sync.Mutex // guards buf and closed
	buf    []row
	closed bool

	reqs      chan evalRequest
	stop      chan struct{}
	done      chan struct{}
	base      context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once

	// Owned by the loop goroutine.
	series       map[string]*tracked
	byKey        map[seriesKey]*tracked
	peers        map[peerKey]map[string]*tracked // canary series by rule × app × evaluator × judge
	pendingObs   int
	storeFailing bool

	snapMu sync.Mutex
	snap   []seriesSnap

	dropped, emitted metric.Int64Counter
	reg              metric.Registration
}

// rule is a validated rule with what the Manager derives from it.
type rule struct {
	*RuleConfig
	fp  string
	dir detect.Direction
}

// row is the part of a score row alerting needs; the strings share the row's memory.
type row struct {
	at                               time.Time
	id, model, app, evaluator, judge string
	value                            float64
}

// obs is one observation waiting to be applied to a series.
type obs struct {
	at    time.Time
	value float64
	arm   detect.Arm
	id    string
}

type seriesKey struct {
	rule   *rule
	series notify.Series
}

type peerKey struct {
	rule                  *rule
	app, evaluator, judge string
}

// tracked is a series this process knows, from its rows or from the shared index.
type tracked struct {
	id     string
	rule   *rule
	series notify.Series
	attrs  attribute.Set
	obs    []obs      // gathered since the last successful update
	life   *lifecycle // latest known state; nil until loaded
	// mean is the series' mean over the last hour as of this process's latest update
	// (has: there was one, with data in the hour).
	mean float64
	has  bool
}

// indexEntry is the index's record of a series.
type indexEntry struct {
	Rule   string        `json:"rule"`
	Series notify.Series `json:"series"`
}

type evalRequest struct {
	ctx  context.Context
	done chan error
}

// ErrClosed is returned by EvaluateNow after Close.
var ErrClosed = errors.New("alert: manager closed")

// NewManager validates cfg, checks that every channel a rule names is in opts.Channels,
// and starts the evaluation loop. Close stops it.
func NewManager(cfg Config, opts Options) (*Manager, error) {
	if err := cfg.Validate("alerting"); err != nil {
		return nil, err
	}
	opts.Telemetry = opts.Telemetry.WithDefaults()
	m := &Manager{
		cfg: cfg, byName: map[string]*rule{}, store: opts.Store, channels: opts.Channels,
		db: opts.Database, logger: opts.Telemetry.Logger, now: opts.Now,
		stopTO: opts.ShutdownTimeout,
		reqs:   make(chan evalRequest), stop: make(chan struct{}), done: make(chan struct{}),
		series: map[string]*tracked{}, byKey: map[seriesKey]*tracked{}, peers: map[peerKey]map[string]*tracked{},
	}
	if m.store == nil {
		m.store = NewMemoryStore()
	}
	if m.db == "" {
		m.db = chsql.DefaultDatabase
	}
	if m.now == nil {
		m.now = time.Now
	}
	setDur(&m.stopTO, 10*time.Second)
	for i, rc := range cfg.Rules {
		for j, ch := range rc.Channels {
			if _, ok := opts.Channels[ch]; !ok {
				return nil, fmt.Errorf("alerting.rules[%d] (%s).channels[%d]: %q is not a configured channel", i, rc.Name, j, ch)
			}
		}
		det, err := rc.newDetector()
		if err != nil {
			return nil, fmt.Errorf("alerting.rules[%d] (%s).%s: %w", i, rc.Name, rc.Detector, err)
		}
		r := &rule{RuleConfig: rc, fp: fingerprint(det), dir: rc.direction()}
		m.rules = append(m.rules, r)
		m.byName[rc.Name] = r
	}
	if err := m.initMetrics(opts.Telemetry.MeterProvider); err != nil {
		return nil, err
	}
	m.base, m.cancel = context.WithCancel(context.Background())
	go m.loop()
	return m, nil
}

// WriteScores implements sinks.ScoreSink: it copies the rows with a score (status ok)
// into the bounded buffer and returns nil at once, dropping (and counting) what does not
// fit. Alerting never holds up or fails scoring.
func (m *Manager) WriteScores(ctx context.Context, rows []record.Score) error {
	m.mu.Lock()
	reason, dropped := "queue_full", 0
	if m.closed {
		reason = "closed"
	}
	for i := range rows {
		s := &rows[i]
		if s.Status != record.StatusOK {
			continue
		}
		if m.closed || len(m.buf) >= m.cfg.QueueRows {
			dropped++
			continue
		}
		m.buf = append(m.buf, row{at: s.EventTime, id: s.RecordID, model: s.Model, app: s.App,
			evaluator: s.Evaluator, judge: s.Judge, value: s.Value})
	}
	m.mu.Unlock()
	if dropped > 0 {
		m.dropped.Add(context.WithoutCancel(ctx), int64(dropped), metric.WithAttributes(attribute.String("reason", reason)))
	}
	return nil
}

// EvaluateNow runs one evaluation at once (as the ticker does every Interval) and
// returns its errors (joined); for tests and tools.
func (m *Manager) EvaluateNow(ctx context.Context) error {
	req := evalRequest{ctx: ctx, done: make(chan error, 1)}
	select {
	case m.reqs <- req:
	case <-m.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close evaluates once more (so buffered rows are applied and their notifications sent),
// within the shutdown timeout, and stops. It is idempotent and always returns nil.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		t := time.NewTimer(m.stopTO)
		defer t.Stop()
		select {
		case <-m.done:
		case <-t.C:
			m.cancel() // abandon the evaluation in progress
			<-m.done
		}
		m.cancel()
		m.mu.Lock()
		left := len(m.buf)
		m.closed, m.buf = true, nil
		m.mu.Unlock()
		if left > 0 {
			m.dropped.Add(context.Background(), int64(left), metric.WithAttributes(attribute.String("reason", "closed")))
		}
		_ = m.reg.Unregister()
	})
	return nil
}

func (m *Manager) loop() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	timeout := max(30*time.Second, 2*m.cfg.Interval)
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(m.base, timeout)
			_ = m.evaluate(ctx)
			cancel()
		case req := <-m.reqs:
			ctx, cancel := context.WithTimeout(m.base, timeout)
			stop := context.AfterFunc(req.ctx, cancel)
			req.done <- m.evaluate(ctx)
			stop()
			cancel()
		case <-m.stop:
			ctx, cancel := context.WithTimeout(m.base, m.stopTO)
			_ = m.evaluate(ctx)
			cancel()
			return
		}
	}
}

// result is what one series' update produced.
type result struct {
	t       *tracked
	applied int // observations applied
	life    *lifecycle
	notes   []notify.Notification
	gone    bool // the state is deleted or absent: forget the series
	mean    float64
	hasMean bool
	err     error
}

// evaluate routes the buffered rows, then updates every series that has observations or
// a time-driven transition due, sends the notifications and refreshes the metrics.
func (m *Manager) evaluate(ctx context.Context) error {
	now := m.now()
	m.mu.Lock()
	rows := m.buf
	m.buf = make([]row, 0, min(len(rows), m.cfg.QueueRows))
	m.mu.Unlock()

	// Adopt the series other processes indexed first, so that this interval's baseline
	// rows also reach their canaries.
	idx, err := m.store.Index(ctx)
	if err != nil {
		// The store is unreachable: keep the observations (bounded) for a later interval
		// rather than wait for every series' update to time out.
		m.route(ctx, rows)
		return m.failing(err)
	}
	untracked := m.adopt(idx)
	m.route(ctx, rows)
	var errs []error
	var load []*tracked
	for _, t := range m.series {
		if len(t.obs) == 0 {
			load = append(load, t)
		}
	}
	ids := make([]string, 0, len(load)+len(untracked))
	for _, t := range load {
		ids = append(ids, t.id)
	}
	ids = append(ids, untracked...)
	var stale []string
	lives, err := m.store.Lifecycles(ctx, ids)
	if err != nil {
		errs = append(errs, err)
	} else {
		for i, t := range load {
			l := &lifecycle{}
			if lives[i] == nil || json.Unmarshal(lives[i], l) != nil {
				// Expired or deleted by another process (or never written): forget it.
				stale = append(stale, t.id)
				m.forget(t)
				continue
			}
			t.life = l
		}
		for i, id := range untracked {
			if lives[len(load)+i] == nil {
				stale = append(stale, id) // its state expired: nobody evaluates it any more
			}
		}
	}

	var work []*tracked
	for _, t := range m.series {
		if len(t.obs) > 0 || (err == nil && m.due(t, now)) {
			work = append(work, t)
		}
	}
	results := make([]result, len(work))
	g := new(errgroup.Group)
	g.SetLimit(8)
	for i, t := range work {
		g.Go(func() error {
			results[i] = m.apply(ctx, t, slices.Clone(t.obs), now)
			return nil
		})
	}
	_ = g.Wait()

	index := map[string][]byte{}
	var notes []notify.Notification
	for _, res := range results {
		t := res.t
		if res.err != nil {
			errs = append(errs, res.err)
			continue
		}
		t.obs = t.obs[res.applied:]
		if len(t.obs) == 0 {
			t.obs = nil
		}
		m.pendingObs -= res.applied
		notes = append(notes, res.notes...)
		if res.gone {
			stale = append(stale, t.id)
			m.forget(t)
			continue
		}
		t.life = res.life
		if res.applied > 0 {
			t.mean, t.has = res.mean, res.hasMean
			index[t.id], _ = json.Marshal(indexEntry{Rule: t.rule.Name, Series: t.series})
		}
	}
	if err := m.store.AddIndex(ctx, index); err != nil {
		errs = append(errs, err)
	}
	if err := m.store.RemoveIndex(ctx, stale); err != nil {
		errs = append(errs, err)
	}
	m.send(ctx, notes)
	m.publish()

	return m.failing(errors.Join(errs...))
}

// failing logs the store's failures once per outage, and its recovery; it returns err.
func (m *Manager) failing(err error) error {
	switch {
	case err != nil && !m.storeFailing:
		m.storeFailing = true
		m.logger.Warn("alert state store failing; observations are kept (up to alerting.queue_rows) and applied when it answers", "err", err)
	case err == nil && m.storeFailing:
		m.storeFailing = false
		m.logger.Info("alert state store answering again")
	}
	return err
}

// route turns rows into observations of the series their rules watch.
func (m *Manager) route(ctx context.Context, rows []row) {
	var backlog, limited int64
	add := func(t *tracked, o obs) {
		if m.pendingObs >= m.cfg.QueueRows {
			backlog++
			return
		}
		t.obs = append(t.obs, o)
		m.pendingObs++
	}
	for i := range rows {
		w := &rows[i]
		for _, r := range m.rules {
			if !matches(r.Evaluators, w.evaluator) || !matches(r.Apps, w.app) || !matches(r.Judges, w.judge) {
				continue
			}
			o := obs{at: w.at, value: w.value, id: w.id, arm: detect.ArmCandidate}
			if r.Canary != nil {
				if ok, _ := path.Match(r.Canary.Baseline, w.model); ok {
					o.arm = detect.ArmBaseline
					for _, t := range m.peers[peerKey{r, w.app, w.evaluator, w.judge}] {
						add(t, o)
					}
					continue
				}
				if ok, _ := path.Match(r.Canary.Candidate, w.model); !ok {
					continue
				}
				o.arm = detect.ArmCandidate
			} else if !matches(r.Models, w.model) {
				continue
			}
			t := m.track(r, notify.Series{Model: w.model, App: w.app, Evaluator: w.evaluator, Judge: w.judge})
			if t == nil {
				limited++
				continue
			}
			add(t, o)
		}
	}
	if backlog > 0 {
		m.dropped.Add(ctx, backlog, metric.WithAttributes(attribute.String("reason", "backlog")))
	}
	if limited > 0 {
		m.dropped.Add(ctx, limited, metric.WithAttributes(attribute.String("reason", "series_limit")))
	}
}

// track returns the tracked series, creating it unless MaxSeries are tracked (nil).
func (m *Manager) track(r *rule, s notify.Series) *tracked {
	if t := m.byKey[seriesKey{r, s}]; t != nil {
		return t
	}
	if len(m.series) >= m.cfg.MaxSeries {
		return nil
	}
	t := &tracked{id: AlertID(r.Name, s), rule: r, series: s, attrs: attribute.NewSet(
		attribute.String("rule", r.Name), attribute.String("model", s.Model), attribute.String("app", s.App),
		attribute.String("evaluator", s.Evaluator), attribute.String("judge", s.Judge))}
	m.series[t.id] = t
	m.byKey[seriesKey{r, s}] = t
	if r.Canary != nil {
		pk := peerKey{r, s.App, s.Evaluator, s.Judge}
		if m.peers[pk] == nil {
			m.peers[pk] = map[string]*tracked{}
		}
		m.peers[pk][t.id] = t
	}
	return t
}

func (m *Manager) forget(t *tracked) {
	delete(m.series, t.id)
	delete(m.byKey, seriesKey{t.rule, t.series})
	if t.rule.Canary != nil {
		pk := peerKey{t.rule, t.series.App, t.series.Evaluator, t.series.Judge}
		delete(m.peers[pk], t.id)
		if len(m.peers[pk]) == 0 {
			delete(m.peers, pk)
		}
	}
	m.pendingObs -= len(t.obs)
}

// indexChecks bounds how many untracked index entries one evaluation checks.
const indexChecks = 100

// adopt tracks the indexed series of this configuration's rules that other processes
// (or an earlier run) have seen, so that their missing data and expiry are evaluated here
// too. It returns up to indexChecks (a random choice: map order) of the indexed ids it
// does not track — a rule this process does not run (removed, renamed, or another
// version's during a rolling update), an unreadable entry, or beyond max_series — for
// evaluate to drop those whose state has expired: no process would remove them
// otherwise, and every process reads the whole index every interval.
func (m *Manager) adopt(idx map[string][]byte) []string {
	var untracked []string
	for id, b := range idx {
		if m.series[id] != nil {
			continue
		}
		var e indexEntry
		var r *rule
		if json.Unmarshal(b, &e) == nil {
			r = m.byName[e.Rule]
		}
		if (r == nil || AlertID(r.Name, e.Series) != id || m.track(r, e.Series) == nil) && len(untracked) < indexChecks {
			untracked = append(untracked, id)
		}
	}
	return untracked
}

// due reports whether the series has a time-driven transition to make now.
func (m *Manager) due(t *tracked, now time.Time) bool {
	if t.life == nil {
		return false
	}
	if m.expired(t.life, now) {
		return true
	}
	l := *t.life
	before, _ := json.Marshal(&l)
	m.step(t.rule, &l, false, now)
	after, _ := json.Marshal(&l)
	return !bytes.Equal(before, after)
}

func (m *Manager) expired(l *lifecycle, now time.Time) bool {
	return !l.LastSeen.IsZero() && now.Sub(l.LastSeen) >= m.cfg.ExpireAfter
}

// AlertID is the stable id of a rule's alert on a series: every state change of the
// alert, from any process, carries it.
func AlertID(rule string, s notify.Series) string {
	h := sha256.New()
	for _, part := range []string{rule, s.Model, s.App, s.Evaluator, s.Judge} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
