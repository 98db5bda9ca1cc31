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
	"math"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/errgroup"

	"raterd/record"
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
	// Logger defaults to slog.Default(); MeterProvider to the OTel global.
	Logger        *slog.Logger
	MeterProvider metric.MeterProvider
	// Now is the clock of the lifecycle; time.Now when nil (tests pass a fake).
	Now func() time.Time
}

// Channel is a notification channel as the Manager sees it: Enqueue hands a notification
// over and never blocks. A Deliverer is one (queued delivery with retries for a Notifier).
type Channel interface {
	Name() string
	Enqueue(n Notification) bool
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
	dir Direction
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
	arm   Arm
	id    string
}

type seriesKey struct {
	rule   *rule
	series Series
}

type peerKey struct {
	rule                  *rule
	app, evaluator, judge string
}

// tracked is a series this process knows, from its rows or from the shared index.
type tracked struct {
	id     string
	rule   *rule
	series Series
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
	Rule   string `json:"rule"`
	Series Series `json:"series"`
}

// lifecycleVersion is the version of the stored lifecycle; bump it on incompatible change.
const lifecycleVersion = 1

// lifecycle is an alert's shared state besides its detector.
type lifecycle struct {
	V           int    `json:"v"`
	Rule        string `json:"rule"`
	Series      Series `json:"series"`
	Fingerprint string `json:"fp"` // of the detector configuration the state belongs to
	// Phase is "", StatePending or StateFiring; Since is when the episode began.
	Phase        string    `json:"phase,omitempty"`
	Since        time.Time `json:"since,omitzero"`
	OKSince      time.Time `json:"ok_since,omitzero"`  // firing, but not alerting since
	Notified     string    `json:"notified,omitempty"` // the latest state notified in this episode
	LastNotified time.Time `json:"last_notified,omitzero"`
	NoData       bool      `json:"no_data,omitempty"`
	// FirstSeen and LastSeen are the processing times of the first and latest update
	// that brought records.
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	Decision  Decision  `json:"decision"`
	Examples  []Example `json:"examples,omitempty"`
}

type seriesSnap struct {
	attrs         attribute.Set
	mean          float64
	has           bool
	state, firing int64
}

type evalRequest struct {
	ctx  context.Context
	done chan error
}

// maxExamples is how many example records a notification carries.
const maxExamples = 5

// ErrClosed is returned by EvaluateNow after Close.
var ErrClosed = errors.New("alert: manager closed")

// NewManager validates cfg, checks that every channel a rule names is in opts.Channels,
// and starts the evaluation loop. Close stops it.
func NewManager(cfg Config, opts Options) (*Manager, error) {
	if err := cfg.Validate("alerting"); err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg, byName: map[string]*rule{}, store: opts.Store, channels: opts.Channels,
		db: opts.Database, logger: opts.Logger, now: opts.Now,
		stopTO: opts.ShutdownTimeout,
		reqs:   make(chan evalRequest), stop: make(chan struct{}), done: make(chan struct{}),
		series: map[string]*tracked{}, byKey: map[seriesKey]*tracked{}, peers: map[peerKey]map[string]*tracked{},
	}
	if m.store == nil {
		m.store = NewMemoryStore()
	}
	if m.db == "" {
		m.db = "raterd"
	}
	if m.logger == nil {
		m.logger = slog.Default()
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
	if err := m.initMetrics(opts.MeterProvider); err != nil {
		return nil, err
	}
	m.base, m.cancel = context.WithCancel(context.Background())
	go m.loop()
	return m, nil
}

func (m *Manager) initMetrics(mp metric.MeterProvider) error {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter("raterd/sinks/alert")
	var err error
	var mean metric.Float64ObservableGauge
	var state, firing metric.Int64ObservableGauge
	errs := []error{}
	mean, err = meter.Float64ObservableGauge("raterd.alert.series.mean",
		metric.WithDescription("Mean score of each alerted series over the last hour of event time (a pass rate for 0/1 checks; a canary's candidate)"))
	errs = append(errs, err)
	state, err = meter.Int64ObservableGauge("raterd.alert.series.state",
		metric.WithDescription("Each alerted series' detector verdict: -1 unknown (too little data), 0 ok, 1 warning, 2 alert"))
	errs = append(errs, err)
	firing, err = meter.Int64ObservableGauge("raterd.alert.series.firing",
		metric.WithDescription("1 while the series' alert fires (a regression held for the rule's for, or missing data), else 0"))
	errs = append(errs, err)
	m.emitted, err = meter.Int64Counter("raterd.alert.notifications.emitted",
		metric.WithDescription("Alert state changes notified (once each, whatever the channels), by rule and state; deliveries are counted per channel in raterd.alert.notifications"))
	errs = append(errs, err)
	m.dropped, err = meter.Int64Counter("raterd.alert.observations.dropped",
		metric.WithDescription("Score rows alerting dropped, by reason: queue_full, backlog (state store unreachable), series_limit, closed"))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("alert metrics: %w", err)
	}
	m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.snapMu.Lock()
		defer m.snapMu.Unlock()
		for _, s := range m.snap {
			if s.has {
				o.ObserveFloat64(mean, s.mean, metric.WithAttributeSet(s.attrs))
			}
			o.ObserveInt64(state, s.state, metric.WithAttributeSet(s.attrs))
			o.ObserveInt64(firing, s.firing, metric.WithAttributeSet(s.attrs))
		}
		return nil
	}, mean, state, firing)
	if err != nil {
		return fmt.Errorf("alert metrics: %w", err)
	}
	return nil
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
	notes   []Notification
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
	var notes []Notification
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
			o := obs{at: w.at, value: w.value, id: w.id, arm: ArmCandidate}
			if r.Canary != nil {
				if ok, _ := path.Match(r.Canary.Baseline, w.model); ok {
					o.arm = ArmBaseline
					for _, t := range m.peers[peerKey{r, w.app, w.evaluator, w.judge}] {
						add(t, o)
					}
					continue
				}
				if ok, _ := path.Match(r.Canary.Candidate, w.model); !ok {
					continue
				}
				o.arm = ArmCandidate
			} else if !matches(r.Models, w.model) {
				continue
			}
			t := m.track(r, Series{Model: w.model, App: w.app, Evaluator: w.evaluator, Judge: w.judge})
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
func (m *Manager) track(r *rule, s Series) *tracked {
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

// apply updates one series in the store: its observations go through the detector, then
// the lifecycle steps. The store may run the function more than once; only the last
// run's result counts.
func (m *Manager) apply(ctx context.Context, t *tracked, batch []obs, now time.Time) result {
	var res result
	slices.SortStableFunc(batch, func(a, b obs) int { return a.at.Compare(b.at) })
	ttl := m.cfg.ExpireAfter + time.Hour // a backstop: the Manager expires series itself
	err := m.store.Update(ctx, t.id, ttl, func(cur Stored) (Stored, Op, error) {
		res = result{t: t, applied: len(batch)}
		l := &lifecycle{}
		if cur.Lifecycle == nil || json.Unmarshal(cur.Lifecycle, l) != nil || l.V != lifecycleVersion || l.Rule != t.rule.Name || l.Series != t.series {
			l = &lifecycle{V: lifecycleVersion, Rule: t.rule.Name, Series: t.series, Fingerprint: t.rule.fp}
		}
		before, _ := json.Marshal(l)
		var next Stored
		alerted := false
		if len(batch) > 0 {
			var ds detectorState
			if cur.Detector != nil && json.Unmarshal(cur.Detector, &ds) != nil {
				m.logger.Warn("alert detector state unreadable; starting afresh", "alert_id", t.id, "rule", t.rule.Name)
				ds = detectorState{}
			}
			det, err := m.detector(t, l, ds.Detector)
			if err != nil {
				return Stored{}, OpKeep, err
			}
			cur := l.Decision.State
			for _, o := range batch {
				var d Decision
				switch x := det.(type) {
				case *Canary:
					d, _ = x.Observe(o.arm, o.value, o.at)
				case Detector:
					d, _ = x.Observe(o.value, o.at) // refusals are counted in Decision.Rejected
				}
				alerted = alerted || (d.State == StateAlert && cur != StateAlert)
				cur = d.State
				if o.arm == ArmCandidate {
					ds.Window.add(o.value, o.at)
				}
			}
			res.mean, res.hasMean = ds.Window.mean()
			l.Decision = finite(det.Evaluate(time.Time{}))
			if l.FirstSeen.IsZero() {
				l.FirstSeen = now
			}
			l.LastSeen = now
			l.Examples = examples(batch, l.Examples, t.rule.dir)
			if ds.Detector, err = det.MarshalBinary(); err != nil {
				return Stored{}, OpKeep, err
			}
			if next.Detector, err = json.Marshal(ds); err != nil {
				return Stored{}, OpKeep, err
			}
		} else if cur.Lifecycle == nil {
			res.gone = true // deleted by another process meanwhile
			return Stored{}, OpKeep, nil
		}
		if len(batch) == 0 && m.expired(l, now) {
			if l.Notified != "" && !m.silenced(t.rule, l.Series, now) {
				n := m.notification(t.rule, l, StateResolved, now)
				n.Message += fmt.Sprintf("; the series is forgotten after %s without records", m.cfg.ExpireAfter)
				res.notes = []Notification{n}
			}
			res.gone = true
			return Stored{}, OpDelete, nil
		}
		res.notes = m.step(t.rule, l, alerted, now)
		after, err := json.Marshal(l)
		if err != nil {
			return Stored{}, OpKeep, err
		}
		res.life = l
		if len(batch) == 0 && bytes.Equal(before, after) {
			return Stored{}, OpKeep, nil
		}
		next.Lifecycle = after
		return next, OpWrite, nil
	})
	if err != nil {
		return result{t: t, err: fmt.Errorf("alert %s (rule %s, series %+v): %w", t.id, t.rule.Name, t.series, err)}
	}
	return res
}

// detector restores the series' detector from its stored state, or starts a fresh one
// when there is none, it is corrupt or the rule's detector configuration changed.
func (m *Manager) detector(t *tracked, l *lifecycle, state []byte) (Rule, error) {
	det, err := t.rule.newDetector()
	if err != nil {
		return nil, err
	}
	if state == nil || l.Fingerprint != t.rule.fp {
		l.Fingerprint = t.rule.fp
		return det, nil
	}
	if err := det.UnmarshalBinary(state); err != nil {
		m.logger.Warn("alert detector state unusable; starting afresh", "alert_id", t.id, "rule", t.rule.Name, "err", err)
		return t.rule.newDetector()
	}
	return det, nil
}

// step advances the lifecycle at now and returns the notifications to send. alerted says
// whether the detector entered the alert state during the observations just applied (a
// regression that shows within one interval is not lost because it already recovered).
//
// An episode starts pending (notified as pending when the rule has a `for`), fires once
// it has been bad for `for` (notified, then again every renotify), and ends resolved —
// notified when anything of it was — once the detector has stayed out of the alert
// state (with data) for resolve_after, or at once when a pending alert clears.
func (m *Manager) step(r *rule, l *lifecycle, alerted bool, now time.Time) []Notification {
	noData := !l.LastSeen.IsZero() && now.Sub(l.LastSeen) >= r.NoDataAfter
	if !noData {
		l.NoData = false // records are back: what still fires is the detector's verdict
	}
	var bad, good bool
	switch {
	case noData && r.NoData == NoDataAlert:
		bad = true
	case noData && r.NoData == NoDataOK:
		good = true
	case noData: // NoDataKeep: nothing changes until data returns
	default:
		bad = alerted || l.Decision.State == StateAlert
		good = !bad && (l.Decision.State == StateOK || l.Decision.State == StateWarning)
	}
	silenced := m.silenced(r, l.Series, now)
	if bad {
		entered := l.Phase == ""
		if entered {
			l.Phase, l.Since = StatePending, now
		}
		l.NoData, l.OKSince = noData, time.Time{}
		if l.Phase == StatePending && now.Sub(l.Since) >= r.For {
			l.Phase = StateFiring
		} else if entered && !silenced {
			l.Notified = StatePending
			return []Notification{m.notification(r, l, StatePending, now)}
		}
	} else if l.Phase == StatePending {
		return m.resolve(r, l, silenced, now)
	}
	if l.Phase != StateFiring {
		return nil
	}
	if !good {
		l.OKSince = time.Time{}
	} else {
		if l.OKSince.IsZero() {
			l.OKSince = now
		}
		if now.Sub(l.OKSince) >= r.ResolveAfter {
			return m.resolve(r, l, silenced, now)
		}
	}
	if silenced || (l.Notified == StateFiring && (r.Renotify == 0 || now.Sub(l.LastNotified) < r.Renotify)) {
		return nil
	}
	l.Notified, l.LastNotified = StateFiring, now
	n := m.notification(r, l, StateFiring, now)
	n.Fired = true
	return []Notification{n}
}

// resolve ends the episode; it is notified when anything of it was and no silence
// applies.
func (m *Manager) resolve(r *rule, l *lifecycle, silenced bool, now time.Time) []Notification {
	var notes []Notification
	if l.Notified != "" && !silenced {
		n := m.notification(r, l, StateResolved, now)
		n.Fired = l.Notified == StateFiring
		notes = append(notes, n)
	}
	l.Phase, l.Since, l.OKSince, l.Notified, l.LastNotified, l.NoData = "", time.Time{}, time.Time{}, "", time.Time{}, false
	return notes
}

// silenced reports whether a silence mutes the rule's alert on s at now.
func (m *Manager) silenced(r *rule, s Series, now time.Time) bool {
	for _, sl := range m.cfg.Silences {
		if now.Before(sl.StartsAt) || !now.Before(sl.EndsAt) {
			continue
		}
		all := true
		for k, g := range sl.Matchers {
			v := map[string]string{"rule": r.Name, "model": s.Model, "app": s.App, "evaluator": s.Evaluator, "judge": s.Judge, "severity": r.Severity}[k]
			if ok, _ := path.Match(g, v); !ok {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// notification describes the alert's state change at now.
func (m *Manager) notification(r *rule, l *lifecycle, state string, now time.Time) Notification {
	d := l.Decision
	return Notification{
		AlertID: AlertID(r.Name, l.Series), Rule: r.Name, Series: l.Series, State: state, Severity: r.Severity,
		Observed: d.Observed, Expected: d.Expected, Lower: d.Lower, Upper: d.Upper, SampleSize: d.N,
		Since: l.Since, At: now, NoData: l.NoData && state != StateResolved,
		Examples: slices.Clone(l.Examples), Message: message(r, l, state, now),
		DrilldownSQL: DrilldownSQL(m.db, r.RuleConfig, l.Series, d, now),
	}
}

// message is the one-line summary of a notification.
func message(r *rule, l *lifecycle, state string, now time.Time) string {
	s, d := l.Series, l.Decision
	what := fmt.Sprintf("%s on model %q, app %q, judge %q", s.Evaluator, s.Model, s.App, s.Judge)
	if r.Canary != nil {
		what += fmt.Sprintf(" vs baseline %q", r.Canary.Baseline)
	}
	head := fmt.Sprintf("[%s] %s: %s", r.Severity, r.Name, what)
	if state != StateResolved && l.NoData {
		return fmt.Sprintf("%s: no records for %s (since %s)", head, now.Sub(l.LastSeen).Round(time.Second), l.LastSeen.UTC().Format(time.RFC3339))
	}
	verb := map[string]string{StatePending: "is regressing", StateFiring: "regressed", StateResolved: "recovered"}[state]
	var detail string
	switch r.Detector {
	case DetectorThreshold:
		detail = fmt.Sprintf("window %s %.4g vs alert threshold %.4g", map[Stat]string{StatMean: "mean", StatPassRate: "pass rate"}[r.Threshold.Stat], d.Observed, d.Expected)
	case DetectorEWMA:
		detail = fmt.Sprintf("EWMA %.4g vs baseline %.4g (control limit %.4g)", d.Observed, d.Expected, d.Limit)
	case DetectorCanary:
		detail = fmt.Sprintf("candidate minus baseline %.4g vs %.4g (always-valid p %.3g, α %.3g)", d.Observed, d.Expected, d.Statistic, d.Limit)
	default:
		detail = fmt.Sprintf("mean %.4g since the drift began vs baseline %.4g (CUSUM %.3g, h %.3g)", d.Observed, d.Expected, d.Statistic, d.Limit)
	}
	return fmt.Sprintf("%s %s: %s, interval [%.4g, %.4g], %d records; detector %s since %s", head, verb, detail,
		d.Lower, d.Upper, d.N, d.State, d.Since.UTC().Format(time.RFC3339))
}

// examples keeps the worst of the new observations (the latest first among equals) and
// fills up with the previous examples, up to maxExamples.
func examples(batch []obs, old []Example, dir Direction) []Example {
	c := make([]obs, 0, len(batch))
	for _, o := range batch {
		if o.arm == ArmCandidate { // a canary's baseline records are not examples
			c = append(c, o)
		}
	}
	slices.SortStableFunc(c, func(a, b obs) int {
		if x := dir.badness(a.value, b.value); x != 0 {
			if x > 0 {
				return -1
			}
			return 1
		}
		return b.at.Compare(a.at)
	})
	out := make([]Example, 0, maxExamples)
	seen := map[string]bool{}
	for _, o := range c {
		if len(out) == maxExamples {
			break
		}
		if !seen[o.id] {
			seen[o.id] = true
			out = append(out, Example{RecordID: o.id, Score: o.value})
		}
	}
	for _, e := range old {
		if len(out) == maxExamples {
			break
		}
		if !seen[e.RecordID] {
			seen[e.RecordID] = true
			out = append(out, e)
		}
	}
	return out
}

// send logs each notification and hands it to its rule's channels (queues: this never
// blocks on a receiver).
func (m *Manager) send(ctx context.Context, notes []Notification) {
	for _, n := range notes {
		m.logger.Info("alert "+n.State, "alert_id", n.AlertID, "rule", n.Rule, "model", n.Series.Model, "app", n.Series.App,
			"evaluator", n.Series.Evaluator, "judge", n.Series.Judge, "observed", n.Observed, "expected", n.Expected, "no_data", n.NoData)
		m.emitted.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("rule", n.Rule), attribute.String("state", n.State)))
		for _, name := range m.byName[n.Rule].Channels {
			m.channels[name].Enqueue(n)
		}
	}
}

// publish refreshes the snapshot the metric callback reads.
func (m *Manager) publish() {
	snap := make([]seriesSnap, 0, len(m.series))
	for _, t := range m.series {
		if t.life == nil {
			continue
		}
		s := seriesSnap{attrs: t.attrs, mean: t.mean, has: t.has, state: int64(t.life.Decision.State) - 1}
		if t.life.Phase == StateFiring {
			s.firing = 1
		}
		snap = append(snap, s)
	}
	m.snapMu.Lock()
	m.snap = snap
	m.snapMu.Unlock()
}

// AlertID is the stable id of a rule's alert on a series: every state change of the
// alert, from any process, carries it.
func AlertID(rule string, s Series) string {
	h := sha256.New()
	for _, part := range []string{rule, s.Model, s.App, s.Evaluator, s.Judge} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// finite replaces non-finite numbers (which JSON cannot carry) with 0.
func finite(d Decision) Decision {
	for _, p := range []*float64{&d.Observed, &d.Lower, &d.Upper, &d.Expected, &d.Statistic, &d.Limit} {
		if math.IsNaN(*p) || math.IsInf(*p, 0) {
			*p = 0
		}
	}
	return d
}

// DrilldownSQL returns a query over scores FINAL showing the series' rows around the
// detector's decision d (event time), worst first: from d.Since (or d.At) minus the
// rule's window (1h for non-windowed rules) to d.At, or the hour before now when the
// series has no data. Every identifier and string is quoted, whatever it holds.
func DrilldownSQL(db string, r *RuleConfig, s Series, d Decision, now time.Time) string {
	lookback := time.Hour
	if r.Threshold != nil && r.Threshold.Window > 0 {
		lookback = r.Threshold.Window
	}
	to := d.At
	if to.IsZero() {
		to = now
	}
	from := to
	if !d.Since.IsZero() && d.Since.Before(from) && d.State == StateAlert {
		from = d.Since
	}
	from = from.Add(-lookback).UTC().Truncate(time.Second)
	to = to.UTC().Truncate(time.Second).Add(time.Second)
	model := "model = " + quoteString(s.Model)
	if r.Canary != nil {
		model = fmt.Sprintf("(model = %s OR match(model, %s))", quoteString(s.Model), quoteString(globRegexp(r.Canary.Baseline)))
	}
	order := "score ASC"
	if r.direction() == Above {
		order = "score DESC"
	}
	return fmt.Sprintf(`SELECT event_time, model, record_id, score, label, explanation, rubric_version
FROM %s.scores FINAL
WHERE evaluator = %s AND %s AND app = %s AND judge = %s AND status = 'ok'
  AND event_time >= toDateTime(%s, 'UTC') AND event_time < toDateTime(%s, 'UTC')
ORDER BY %s, event_time DESC
LIMIT 100`, quoteIdent(db), quoteString(s.Evaluator), model, quoteString(s.App), quoteString(s.Judge),
		quoteString(from.Format(time.DateTime)), quoteString(to.Format(time.DateTime)), order)
}

// quoteString returns s as a ClickHouse string literal: backslash, quote and control
// characters escaped, so the literal is one token whatever s holds.
func quoteString(s string) string {
	return "'" + escape(s, '\'') + "'"
}

// quoteIdent returns s as a back-quoted ClickHouse identifier.
func quoteIdent(s string) string {
	return "`" + escape(s, '`') + "`"
}

func escape(s string, q byte) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == q:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02X`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// globRegexp translates a path.Match glob into an anchored RE2 expression.
func globRegexp(g string) string {
	var b strings.Builder
	b.WriteByte('^')
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		case '\\':
			if i+1 < len(g) {
				i++
				if strings.IndexByte(`.+*?()|[]{}^$\`, g[i]) >= 0 {
					b.WriteByte('\\')
				}
				b.WriteByte(g[i])
			}
		case '[':
			j := strings.IndexByte(g[i+1:], ']')
			if j < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := g[i+1 : i+1+j]
			b.WriteByte('[')
			if strings.HasPrefix(class, "^") {
				b.WriteByte('^')
				class = class[1:]
			}
			b.WriteString(strings.NewReplacer(`\`, `\\`, `[`, `\[`).Replace(class))
			b.WriteByte(']')
			i += j + 1
		default:
			if strings.IndexByte(`.+*?()|[]{}^$\`, c) >= 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
	}
	b.WriteByte('$')
	return b.String()
}

// detectorState is what the store keeps in an alert's detector field: the detector's
// own state (MarshalBinary) and the series' one-hour mean window.
type detectorState struct {
	Detector json.RawMessage `json:"detector,omitempty"`
	Window   meanWindow      `json:"window"`
}

// Mean window: an hour of event time in 5-minute buckets.
const (
	meanBucket  = 5 * 60 // seconds
	meanBuckets = 12
)

// meanWindow is a series' score mean over the last hour of event time, whatever the
// rule's detector: what raterd.alert.series.mean exports. Records more than an hour older
// than the newest are left out.
type meanWindow struct {
	Cur     int64         `json:"cur"`
	Buckets []meanBucketN `json:"buckets,omitempty"`
}

type meanBucketN struct {
	I int64   `json:"i"` // Unix time / meanBucket
	N int64   `json:"n"`
	S float64 `json:"s"` // sum of the scores
}

func (w *meanWindow) add(x float64, at time.Time) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return
	}
	i := at.Unix() / meanBucket
	if i <= w.Cur-meanBuckets {
		return // late
	}
	w.Cur = max(w.Cur, i)
	kept := w.Buckets[:0]
	found := false
	for _, b := range w.Buckets {
		if b.I <= w.Cur-meanBuckets {
			continue
		}
		if b.I == i {
			b.N++
			b.S += x
			found = true
		}
		kept = append(kept, b)
	}
	if !found {
		kept = append(kept, meanBucketN{I: i, N: 1, S: x})
	}
	w.Buckets = kept
}

func (w *meanWindow) mean() (float64, bool) {
	var n int64
	var sum float64
	for _, b := range w.Buckets {
		if b.I > w.Cur-meanBuckets {
			n += b.N
			sum += b.S
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}
