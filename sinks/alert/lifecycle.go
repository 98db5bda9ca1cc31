package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"raterd/sinks/alert/detect"
	"raterd/sinks/alert/notify"
)

// lifecycleVersion is the version of the stored lifecycle; bump it on incompatible change.
const lifecycleVersion = 1

// lifecycle is an alert's shared state besides its detector.
type lifecycle struct {
	V           int           `json:"v"`
	Rule        string        `json:"rule"`
	Series      notify.Series `json:"series"`
	Fingerprint string        `json:"fp"` // of the detector configuration the state belongs to
	// Phase is "", StatePending or StateFiring; Since is when the episode began.
	Phase        string    `json:"phase,omitempty"`
	Since        time.Time `json:"since,omitzero"`
	OKSince      time.Time `json:"ok_since,omitzero"`  // firing, but not alerting since
	Notified     string    `json:"notified,omitempty"` // the latest state notified in this episode
	LastNotified time.Time `json:"last_notified,omitzero"`
	NoData       bool      `json:"no_data,omitempty"`
	// FirstSeen and LastSeen are the processing times of the first and latest update
	// that brought records.
	FirstSeen time.Time        `json:"first_seen,omitzero"`
	LastSeen  time.Time        `json:"last_seen,omitzero"`
	Decision  detect.Decision  `json:"decision"`
	Examples  []notify.Example `json:"examples,omitempty"`
}

// maxExamples is how many example records a notification carries.
const maxExamples = 5

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
				var d detect.Decision
				switch x := det.(type) {
				case *detect.Canary:
					d, _ = x.Observe(o.arm, o.value, o.at)
				case detect.Detector:
					d, _ = x.Observe(o.value, o.at) // refusals are counted in Decision.Rejected
				}
				alerted = alerted || (d.State == detect.StateAlert && cur != detect.StateAlert)
				cur = d.State
				if o.arm == detect.ArmCandidate {
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
				n := m.notification(t.rule, l, notify.StateResolved, now)
				n.Message += fmt.Sprintf("; the series is forgotten after %s without records", m.cfg.ExpireAfter)
				res.notes = []notify.Notification{n}
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
func (m *Manager) detector(t *tracked, l *lifecycle, state []byte) (detect.Rule, error) {
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
func (m *Manager) step(r *rule, l *lifecycle, alerted bool, now time.Time) []notify.Notification {
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
		bad = alerted || l.Decision.State == detect.StateAlert
		good = !bad && (l.Decision.State == detect.StateOK || l.Decision.State == detect.StateWarning)
	}
	silenced := m.silenced(r, l.Series, now)
	if bad {
		entered := l.Phase == ""
		if entered {
			l.Phase, l.Since = notify.StatePending, now
		}
		l.NoData, l.OKSince = noData, time.Time{}
		if l.Phase == notify.StatePending && now.Sub(l.Since) >= r.For {
			l.Phase = notify.StateFiring
		} else if entered && !silenced {
			l.Notified = notify.StatePending
			return []notify.Notification{m.notification(r, l, notify.StatePending, now)}
		}
	} else if l.Phase == notify.StatePending {
		return m.resolve(r, l, silenced, now)
	}
	if l.Phase != notify.StateFiring {
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
	if silenced || (l.Notified == notify.StateFiring && (r.Renotify == 0 || now.Sub(l.LastNotified) < r.Renotify)) {
		return nil
	}
	l.Notified, l.LastNotified = notify.StateFiring, now
	n := m.notification(r, l, notify.StateFiring, now)
	n.Fired = true
	return []notify.Notification{n}
}

// resolve ends the episode; it is notified when anything of it was and no silence
// applies.
func (m *Manager) resolve(r *rule, l *lifecycle, silenced bool, now time.Time) []notify.Notification {
	var notes []notify.Notification
	if l.Notified != "" && !silenced {
		n := m.notification(r, l, notify.StateResolved, now)
		n.Fired = l.Notified == notify.StateFiring
		notes = append(notes, n)
	}
	l.Phase, l.Since, l.OKSince, l.Notified, l.LastNotified, l.NoData = "", time.Time{}, time.Time{}, "", time.Time{}, false
	return notes
}

// silenced reports whether a silence mutes the rule's alert on s at now.
func (m *Manager) silenced(r *rule, s notify.Series, now time.Time) bool {
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
func (m *Manager) notification(r *rule, l *lifecycle, state string, now time.Time) notify.Notification {
	d := l.Decision
	return notify.Notification{
		AlertID: AlertID(r.Name, l.Series), Rule: r.Name, Series: l.Series, State: state, Severity: r.Severity,
		Observed: d.Observed, Expected: d.Expected, Lower: d.Lower, Upper: d.Upper, SampleSize: d.N,
		Since: l.Since, At: now, NoData: l.NoData && state != notify.StateResolved,
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
	if state != notify.StateResolved && l.NoData {
		return fmt.Sprintf("%s: no records for %s (since %s)", head, now.Sub(l.LastSeen).Round(time.Second), l.LastSeen.UTC().Format(time.RFC3339))
	}
	verb := map[string]string{notify.StatePending: "is regressing", notify.StateFiring: "regressed", notify.StateResolved: "recovered"}[state]
	var detail string
	switch r.Detector {
	case DetectorThreshold:
		detail = fmt.Sprintf("window %s %.4g vs alert threshold %.4g", map[detect.Stat]string{detect.StatMean: "mean", detect.StatPassRate: "pass rate"}[r.Threshold.Stat], d.Observed, d.Expected)
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
func examples(batch []obs, old []notify.Example, dir detect.Direction) []notify.Example {
	c := make([]obs, 0, len(batch))
	for _, o := range batch {
		if o.arm == detect.ArmCandidate { // a canary's baseline records are not examples
			c = append(c, o)
		}
	}
	slices.SortStableFunc(c, func(a, b obs) int {
		if x := dir.Badness(a.value, b.value); x != 0 {
			if x > 0 {
				return -1
			}
			return 1
		}
		return b.at.Compare(a.at)
	})
	out := make([]notify.Example, 0, maxExamples)
	seen := map[string]bool{}
	for _, o := range c {
		if len(out) == maxExamples {
			break
		}
		if !seen[o.id] {
			seen[o.id] = true
			out = append(out, notify.Example{RecordID: o.id, Score: o.value})
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
func (m *Manager) send(ctx context.Context, notes []notify.Notification) {
	for _, n := range notes {
		m.logger.Info("alert "+n.State, "alert_id", n.AlertID, "rule", n.Rule, "model", n.Series.Model, "app", n.Series.App,
			"evaluator", n.Series.Evaluator, "judge", n.Series.Judge, "observed", n.Observed, "expected", n.Expected, "no_data", n.NoData)
		m.emitted.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("rule", n.Rule), attribute.String("state", n.State)))
		for _, name := range m.byName[n.Rule].Channels {
			m.channels[name].Enqueue(n)
		}
	}
}

// finite replaces non-finite numbers (which JSON cannot carry) with 0.
func finite(d detect.Decision) detect.Decision {
	for _, p := range []*float64{&d.Observed, &d.Lower, &d.Upper, &d.Expected, &d.Statistic, &d.Limit} {
		if math.IsNaN(*p) || math.IsInf(*p, 0) {
			*p = 0
		}
	}
	return d
}

// detectorState is what the store keeps in an alert's detector field: the detector's
// own state (MarshalBinary) and the series' one-hour mean window.
type detectorState struct {
	Detector json.RawMessage `json:"detector,omitempty"`
	Window   meanWindow      `json:"window"`
}
