package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"raterd/sinks/alert/detect"
)

// Detector types a rule can use.
const (
	DetectorThreshold = "threshold"
	DetectorEWMA      = "ewma"
	DetectorCUSUM     = "cusum"
	DetectorCanary    = "canary"
)

// Missing-data policies: what a series that stopped sending records for a rule's
// NoDataAfter means.
const (
	// NoDataAlert fires an alert with Notification.NoData set: no data is not good news.
	NoDataAlert = "alert"
	// NoDataOK treats the silence as recovery: a firing alert resolves (a canary that was
	// rolled back, a retired model).
	NoDataOK = "ok"
	// NoDataKeep keeps the alert in whatever state it is in until data returns or the
	// series expires.
	NoDataKeep = "keep"
)

// Config is the alerting configuration the Manager runs: rules, silences and its bounds.
// Validate fills the defaults documented on each field.
type Config struct {
	// Interval is how often a process applies the observations it gathered to the shared
	// alert state and evaluates every series' lifecycle (for, resolve_after, renotify,
	// no_data_after are checked at this resolution). Default 10s.
	Interval time.Duration `yaml:"interval"`
	// QueueRows bounds the score rows waiting for the next evaluation (and observations
	// kept for a retry while the state store is unreachable); rows beyond it are dropped
	// and counted, never waited for. Default 100000.
	QueueRows int `yaml:"queue_rows"`
	// MaxSeries bounds the series (rule × model × app × evaluator × judge) a process
	// tracks, which bounds memory, state and metric cardinality; rows of further series
	// are dropped and counted. Default 10000.
	MaxSeries int `yaml:"max_series"`
	// ExpireAfter forgets a series (state, metrics) that has had no records for this
	// long, resolving its alert first if it fires; at least every rule's no_data_after.
	// Default 24h.
	ExpireAfter time.Duration `yaml:"expire_after"`
	// Rules are the alert rules. At least one.
	Rules []*RuleConfig `yaml:"rules"`
	// Silences mute matching alerts for a time window.
	Silences []*Silence `yaml:"silences"`
}

// RuleConfig is one alert rule: which series it watches, with which detector, and how
// its alerts behave.
type RuleConfig struct {
	// Name identifies the rule in notifications, metrics and state. Required, unique.
	Name string `yaml:"name"`
	// Evaluators are path.Match globs over the score rows' evaluator; one series per
	// matching evaluator (× model × app × judge). Required.
	Evaluators []string `yaml:"evaluators"`
	// Models, Apps and Judges are globs restricting the rule; empty matches everything.
	// Canary rules take candidate and baseline instead of models.
	Models []string `yaml:"models"`
	Apps   []string `yaml:"apps"`
	Judges []string `yaml:"judges"`
	// Detector is threshold, ewma, cusum or canary; default cusum (the fastest for a
	// given false-alarm rate, see docs/alerting.md). Its parameters go under the key of
	// the same name; absent parameters take the detector's defaults (threshold needs
	// alert, canary needs candidate and baseline).
	Detector  string                  `yaml:"detector"`
	Threshold *detect.ThresholdConfig `yaml:"threshold"`
	EWMA      *detect.EWMAConfig      `yaml:"ewma"`
	CUSUM     *detect.CUSUMConfig     `yaml:"cusum"`
	Canary    *CanaryRule             `yaml:"canary"`
	// Severity is carried by every notification (e.g. warning, critical, page).
	// Default warning.
	Severity string `yaml:"severity"`
	// For is how long the detector must keep alerting (pending) before the alert fires
	// and is notified. Default 0: fire at the first evaluation that alerts.
	For time.Duration `yaml:"for"`
	// ResolveAfter is how long a firing alert's detector must stay out of the alert state
	// (ok or warning, with data) before the alert resolves. Default 0.
	ResolveAfter time.Duration `yaml:"resolve_after"`
	// Renotify repeats the firing notification this often while the alert fires.
	// Default 0: notify once per episode.
	Renotify time.Duration `yaml:"renotify"`
	// NoDataAfter is how long a series may go without records before the missing-data
	// policy applies. Default 1h.
	NoDataAfter time.Duration `yaml:"no_data_after"`
	// NoData is the missing-data policy: alert, ok or keep. Default alert; ok for canary
	// rules (a candidate without traffic is a canary that ended — rolled back or promoted).
	NoData string `yaml:"no_data"`
	// Channels name the notification channels the rule's alerts go to. Empty: the
	// alerts are tracked (state, metrics) but notified nowhere.
	Channels []string `yaml:"channels"`
}

// CanaryRule is a canary comparison: each model matching Candidate is compared with the
// models matching Baseline on the same evaluator, app and judge.
type CanaryRule struct {
	detect.CanaryConfig `yaml:",inline"`
	// Candidate is a glob over the model being rolled out. Required.
	Candidate string `yaml:"candidate"`
	// Baseline is a glob over the model(s) in production it is compared with; a model
	// matching both globs is a baseline. Required.
	Baseline string `yaml:"baseline"`
}

// Silence mutes the alerts it matches between StartsAt and EndsAt: their lifecycle goes
// on (state, metrics) but they notify nothing, not even their resolution.
type Silence struct {
	// Matchers are globs keyed by rule, model, app, evaluator, judge or severity; an
	// alert is silenced when all of them match. At least one.
	Matchers map[string]string `yaml:"matchers"`
	// StartsAt and EndsAt bound the silence (RFC 3339). StartsAt defaults to the
	// beginning of time; EndsAt is required.
	StartsAt time.Time `yaml:"starts_at"`
	EndsAt   time.Time `yaml:"ends_at"`
	// Comment says why, for whoever reads the config.
	Comment string `yaml:"comment"`
}

// Validate fills defaults and rejects bad or conflicting values, naming the key under
// key (e.g. "alerting").
func (c *Config) Validate(key string) error {
	setDur(&c.Interval, 10*time.Second)
	setInt(&c.QueueRows, 100000)
	setInt(&c.MaxSeries, 10000)
	setDur(&c.ExpireAfter, 24*time.Hour)
	switch {
	case c.Interval < 10*time.Millisecond || c.Interval > time.Hour:
		return fmt.Errorf("%s.interval: %s is not in [10ms, 1h]", key, c.Interval)
	case c.QueueRows < 1:
		return fmt.Errorf("%s.queue_rows: %d is not positive", key, c.QueueRows)
	case c.MaxSeries < 1:
		return fmt.Errorf("%s.max_series: %d is not positive", key, c.MaxSeries)
	case c.ExpireAfter < 0:
		return fmt.Errorf("%s.expire_after: %s is negative", key, c.ExpireAfter)
	case len(c.Rules) == 0:
		return fmt.Errorf("%s.rules: at least one rule is required", key)
	}
	names := map[string]bool{}
	for i, r := range c.Rules {
		rkey := fmt.Sprintf("%s.rules[%d]", key, i)
		if r == nil {
			return fmt.Errorf("%s: empty rule", rkey)
		}
		if r.Name != "" {
			rkey += " (" + r.Name + ")"
		}
		if err := r.validate(rkey); err != nil {
			return err
		}
		if names[r.Name] {
			return fmt.Errorf("%s.name: %q is used twice", rkey, r.Name)
		}
		names[r.Name] = true
		if r.NoDataAfter > c.ExpireAfter {
			return fmt.Errorf("%s.no_data_after: %s is above %s.expire_after (%s): the series would be forgotten before its data is missed", rkey, r.NoDataAfter, key, c.ExpireAfter)
		}
	}
	for i, s := range c.Silences {
		skey := fmt.Sprintf("%s.silences[%d]", key, i)
		if s == nil {
			return fmt.Errorf("%s: empty silence", skey)
		}
		if len(s.Matchers) == 0 {
			return fmt.Errorf("%s.matchers: at least one matcher is required (e.g. rule: \"*\")", skey)
		}
		for k, v := range s.Matchers {
			if !slices.Contains(silenceKeys(), k) {
				return fmt.Errorf("%s.matchers.%s: not one of %s", skey, k, strings.Join(silenceKeys(), ", "))
			}
			if err := checkGlob(v); err != nil {
				return fmt.Errorf("%s.matchers.%s: %w", skey, k, err)
			}
		}
		if s.EndsAt.IsZero() || !s.EndsAt.After(s.StartsAt) {
			return fmt.Errorf("%s.ends_at: required, after starts_at", skey)
		}
	}
	return nil
}

// silenceKeys are the keys a silence matcher may use.
func silenceKeys() []string {
	return []string{"rule", "model", "app", "evaluator", "judge", "severity"}
}

func (r *RuleConfig) validate(key string) error {
	if r.Name == "" {
		return fmt.Errorf("%s.name: required", key)
	}
	if len(r.Evaluators) == 0 {
		return fmt.Errorf("%s.evaluators: at least one evaluator (or glob) is required", key)
	}
	for field, globs := range map[string][]string{"evaluators": r.Evaluators, "models": r.Models, "apps": r.Apps, "judges": r.Judges} {
		for i, g := range globs {
			if err := checkGlob(g); err != nil {
				return fmt.Errorf("%s.%s[%d]: %w", key, field, i, err)
			}
		}
	}
	if r.Detector == "" {
		r.Detector = DetectorCUSUM
	}
	params := map[string]bool{DetectorThreshold: r.Threshold != nil, DetectorEWMA: r.EWMA != nil, DetectorCUSUM: r.CUSUM != nil, DetectorCanary: r.Canary != nil}
	if _, ok := params[r.Detector]; !ok {
		return fmt.Errorf("%s.detector: %q is not threshold, ewma, cusum or canary", key, r.Detector)
	}
	for d, set := range params {
		if set && d != r.Detector {
			return fmt.Errorf("%s.%s: parameters for a detector the rule does not use (detector: %s)", key, d, r.Detector)
		}
	}
	switch r.Detector {
	case DetectorThreshold:
		if r.Threshold == nil {
			return fmt.Errorf("%s.threshold.alert: required for a threshold rule", key)
		}
	case DetectorCanary:
		if r.Canary == nil || r.Canary.Candidate == "" || r.Canary.Baseline == "" {
			return fmt.Errorf("%s.canary: candidate and baseline (model globs) are required", key)
		}
		if len(r.Models) > 0 {
			return fmt.Errorf("%s.models: a canary rule chooses models with canary.candidate and canary.baseline", key)
		}
		for k, g := range map[string]string{"candidate": r.Canary.Candidate, "baseline": r.Canary.Baseline} {
			if err := checkGlob(g); err != nil {
				return fmt.Errorf("%s.canary.%s: %w", key, k, err)
			}
		}
		if r.Canary.Candidate == r.Canary.Baseline {
			return fmt.Errorf("%s.canary.candidate: %q is also the baseline", key, r.Canary.Candidate)
		}
	}
	if _, err := r.newDetector(); err != nil {
		return fmt.Errorf("%s.%s: %w", key, detectorKey(r.Detector, err), err)
	}
	if r.Severity == "" {
		r.Severity = "warning"
	}
	setDur(&r.NoDataAfter, time.Hour)
	if r.NoData == "" {
		r.NoData = NoDataAlert
		if r.Detector == DetectorCanary {
			r.NoData = NoDataOK // a candidate without traffic is a canary that ended
		}
	}
	switch {
	case r.For < 0:
		return fmt.Errorf("%s.for: %s is negative", key, r.For)
	case r.ResolveAfter < 0:
		return fmt.Errorf("%s.resolve_after: %s is negative", key, r.ResolveAfter)
	case r.Renotify < 0:
		return fmt.Errorf("%s.renotify: %s is negative (0 notifies once per episode)", key, r.Renotify)
	case r.NoDataAfter < 0:
		return fmt.Errorf("%s.no_data_after: %s is negative", key, r.NoDataAfter)
	case r.NoData != NoDataAlert && r.NoData != NoDataOK && r.NoData != NoDataKeep:
		return fmt.Errorf("%s.no_data: %q is not alert, ok or keep", key, r.NoData)
	}
	for i, ch := range r.Channels {
		if ch == "" || slices.Contains(r.Channels[:i], ch) {
			return fmt.Errorf("%s.channels[%d]: %q is empty or repeated", key, i, ch)
		}
	}
	return nil
}

// newDetector returns a fresh detector for the rule.
func (r *RuleConfig) newDetector() (detect.Rule, error) {
	switch r.Detector {
	case DetectorThreshold:
		return detect.NewThreshold(*r.Threshold)
	case DetectorEWMA:
		return detect.NewEWMA(deref(r.EWMA))
	case DetectorCanary:
		return detect.NewCanary(r.Canary.CanaryConfig)
	default:
		return detect.NewCUSUM(deref(r.CUSUM))
	}
}

// detectorKey is the configuration key a detector's configuration error is about. The
// detectors name their Go fields ("MinSamples must be …"); the configuration has the
// snake-case key under the detector's (threshold.min_samples, ewma.baseline.sd). Without
// a field in the message it is the detector's key.
func detectorKey(detector string, err error) string {
	_, rest, ok := strings.Cut(err.Error(), detect.ErrInvalidConfig.Error()+": ")
	field, _, _ := strings.Cut(rest, " ")
	if !ok || field == "" {
		return detector
	}
	var b strings.Builder
	b.WriteString(detector + ".")
	for i := 0; i < len(field); i++ {
		c := field[i]
		if 'A' <= c && c <= 'Z' {
			if i > 0 && 'a' <= field[i-1] && field[i-1] <= 'z' {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// direction is the rule's direction of regression.
func (r *RuleConfig) direction() detect.Direction {
	switch {
	case r.Threshold != nil:
		return r.Threshold.Direction
	case r.EWMA != nil:
		return r.EWMA.Direction
	case r.CUSUM != nil:
		return r.CUSUM.Direction
	case r.Canary != nil:
		return r.Canary.Direction
	}
	return detect.Below
}

// fingerprint identifies the rule's detector configuration: stored state made under
// another configuration is not resumed.
func fingerprint(d detect.Rule) string {
	b, _ := d.MarshalBinary() // a fresh detector: configuration and an initial state
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// matches reports whether name matches one of globs; an empty list matches everything.
func matches(globs []string, name string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

func checkGlob(g string) error {
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("%q is not a valid glob: %w", g, err)
	}
	return nil
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func setInt(n *int, def int) {
	if *n == 0 {
		*n = def
	}
}
