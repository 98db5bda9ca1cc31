package detect

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Baseline is a series' in-control level: the mean and standard deviation of its scores
// (for pass rates, p and √(p(1−p))).
type Baseline struct {
	Mean float64 `yaml:"mean"` // in-control mean, in score units
	SD   float64 `yaml:"sd"`   // in-control standard deviation; floored at MinSD
}

// BaselineConfig says where a control chart's baseline comes from. Zero fields take their
// defaults.
type BaselineConfig struct {
	// Baseline, when set, is the in-control level, typically read by the caller from
	// ClickHouse's aggregates of the series' history (avg and stddevSamp over the last
	// days). When nil, the baseline is learned from the first WarmUp observations.
	Baseline *Baseline `yaml:"baseline"`
	// WarmUp is the number of observations the baseline is learned from when Baseline is
	// nil; the verdict is StateUnknown until then. A short warm-up misestimates the
	// baseline and raises the false-alarm rate (see docs/alerting.md); default 2000.
	WarmUp int `yaml:"warm_up"`
	// MinSD is the floor on the baseline's standard deviation, in score units, so that a
	// constant history does not make every deviation infinitely significant; default 0.1.
	MinSD float64 `yaml:"min_sd"`
}

func (c BaselineConfig) withDefaults() BaselineConfig {
	if c.WarmUp == 0 {
		c.WarmUp = 2000
	}
	if c.MinSD == 0 {
		c.MinSD = 0.1
	}
	return c
}

func (c BaselineConfig) validate() error {
	c = c.withDefaults()
	switch {
	case c.Baseline != nil && !scale(c.Baseline.Mean):
		return fmt.Errorf("%w: Baseline.Mean must be in [-MaxAbs,MaxAbs], got %v", ErrInvalidConfig, c.Baseline.Mean)
	case c.Baseline != nil && !within(c.Baseline.SD, 0, MaxAbs):
		return fmt.Errorf("%w: Baseline.SD must be in [0,MaxAbs], got %v", ErrInvalidConfig, c.Baseline.SD)
	case c.WarmUp < 2:
		return fmt.Errorf("%w: WarmUp must be at least 2, got %d", ErrInvalidConfig, c.WarmUp)
	case !within(c.MinSD, 1e-6, MaxAbs):
		return fmt.Errorf("%w: MinSD must be in [1e-6,MaxAbs], got %v", ErrInvalidConfig, c.MinSD)
	}
	return nil
}

// learner holds the baseline, given or being learned.
type learner struct {
	Known bool
	Mean  float64
	SD    float64 // floored at MinSD
	Warm  welford // the warm-up observations so far
}

func newLearner(c BaselineConfig) learner {
	if c.Baseline == nil {
		return learner{}
	}
	return learner{Known: true, Mean: c.Baseline.Mean, SD: max(c.Baseline.SD, c.MinSD)}
}

// learn adds a warm-up observation and reports whether that completed the warm-up.
func (l *learner) learn(x float64, c BaselineConfig) bool {
	l.Warm.add(x)
	if l.Warm.N < int64(c.WarmUp) {
		return false
	}
	l.Known, l.Mean, l.SD = true, l.Warm.Mean, max(math.Sqrt(l.Warm.variance()), c.MinSD)
	return true
}

// warming is the verdict while the baseline is being learned.
func (l *learner) warming() Decision {
	return Decision{Observed: l.Warm.Mean, Lower: l.Warm.Mean, Upper: l.Warm.Mean,
		Expected: l.Warm.Mean, Statistic: l.Warm.Mean, Limit: l.Warm.Mean, N: l.Warm.N}
}

func (l learner) valid() bool {
	// The sample SD of values within ±MaxAbs can exceed MaxAbs (±MaxAbs alone give
	// √2·MaxAbs), so the bound is 2·MaxAbs.
	return l.Warm.valid() && scale(l.Mean) && within(l.SD, 0, 2*MaxAbs) && (!l.Known || l.SD > 0)
}

// EWMAConfig configures an EWMA control chart. Zero fields take their defaults.
type EWMAConfig struct {
	BaselineConfig `yaml:",inline"`
	// Lambda is the weight of each new observation, in (0,1]: the chart averages about
	// (2−λ)/λ recent observations. Small λ detects small shifts sooner and large ones
	// later. Default 0.01 (≈200 observations).
	Lambda float64 `yaml:"lambda"`
	// L is the control limit's width in standard deviations of the EWMA, which is
	// σ·√(λ/(2−λ)·(1−(1−λ)^(2t))) after t observations. Larger L: fewer false alarms,
	// longer delays. Default 3.7.
	L float64 `yaml:"l"`
	// Warn places the warning limit at Warn·L; in (0,1], default 0.5.
	Warn float64 `yaml:"warn"`
	// Direction says which way is worse; default Below (one-sided: the chart never
	// alerts on an improvement).
	Direction Direction `yaml:"direction"`
}

func (c EWMAConfig) withDefaults() EWMAConfig {
	c.BaselineConfig = c.BaselineConfig.withDefaults()
	if c.Lambda == 0 {
		c.Lambda = 0.01
	}
	if c.L == 0 {
		c.L = 3.7
	}
	if c.Warn == 0 {
		c.Warn = 0.5
	}
	return c
}

// Validate reports the first invalid field, after defaults are applied.
func (c EWMAConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case !(c.Lambda > 0 && c.Lambda <= 1):
		return fmt.Errorf("%w: Lambda must be in (0,1], got %v", ErrInvalidConfig, c.Lambda)
	case !within(c.L, 1e-3, 100):
		return fmt.Errorf("%w: L must be in [0.001,100], got %v", ErrInvalidConfig, c.L)
	case !(c.Warn > 0 && c.Warn <= 1):
		return fmt.Errorf("%w: Warn must be in (0,1], got %v", ErrInvalidConfig, c.Warn)
	}
	if err := c.BaselineConfig.validate(); err != nil {
		return err
	}
	return c.Direction.validate("Direction")
}

// EWMA is an exponentially weighted moving average control chart (Roberts 1959) with
// exact time-varying limits: z_t = λx_t + (1−λ)z_{t−1}, z_0 = μ0, alert when z_t is worse
// than μ0 by more than L standard deviations of z_t.
type EWMA struct {
	cfg EWMAConfig
	st  ewmaState
}

type ewmaState struct {
	tracker
	Base learner
	Z    float64
	T    int64 // observations since the baseline was known or the last Reset
}

// NewEWMA returns an EWMA chart, or an error naming the invalid field.
func NewEWMA(cfg EWMAConfig) (*EWMA, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	e := &EWMA{cfg: cfg, st: ewmaState{Base: newLearner(cfg.BaselineConfig)}}
	e.st.Z = e.st.Base.Mean
	return e, nil
}

// Config returns the configuration, defaults applied.
func (e *EWMA) Config() EWMAConfig { return e.cfg }

// Observe adds an observation; at is only recorded.
func (e *EWMA) Observe(x float64, at time.Time) (Decision, error) {
	if why := observable(x); why != "" {
		err := e.st.reject(why, x)
		return e.Evaluate(time.Time{}), err
	}
	if !e.st.Base.Known {
		if e.st.Base.learn(x, e.cfg.BaselineConfig) {
			e.st.Z, e.st.T = e.st.Base.Mean, 0
		}
		return e.st.settle(e.st.Base.warming(), at), nil
	}
	e.st.T++
	e.st.Z = e.cfg.Lambda*x + (1-e.cfg.Lambda)*e.st.Z
	return e.Evaluate(at), nil
}

// Evaluate returns the verdict as of the latest observation.
func (e *EWMA) Evaluate(at time.Time) Decision {
	b, c := e.st.Base, e.cfg
	if !b.Known {
		return e.st.settle(b.warming(), at)
	}
	sd := b.SD * math.Sqrt(c.Lambda/(2-c.Lambda)*(1-math.Pow(1-c.Lambda, 2*float64(e.st.T))))
	half := c.L * sd
	d := Decision{Observed: e.st.Z, Lower: e.st.Z - half, Upper: e.st.Z + half, Expected: b.Mean,
		Statistic: e.st.Z, Limit: b.Mean - half, N: e.st.T}
	if c.Direction == Above {
		d.Limit = b.Mean + half
	}
	switch bad := c.Direction.Badness(e.st.Z, b.Mean); {
	case e.st.T > 0 && bad > half:
		d.State = StateAlert
	case e.st.T > 0 && bad > c.Warn*half:
		d.State = StateWarning
	default:
		d.State = StateOK
	}
	return e.st.settle(d, at)
}

// Reset returns the EWMA to the baseline.
func (e *EWMA) Reset() {
	e.st.tracker.reset()
	e.st.Z, e.st.T = e.st.Base.Mean, 0
}

// CUSUMConfig configures a one-sided standardized CUSUM. Zero fields take their defaults.
type CUSUMConfig struct {
	BaselineConfig `yaml:",inline"`
	// K is the reference value (allowance) in baseline standard deviations: deviations
	// smaller than K are forgiven. The chart is tuned to detect shifts of about 2K; default
	// 0.15, for shifts of 0.3σ.
	K float64 `yaml:"k"`
	// H is the decision interval in baseline standard deviations: the chart alerts when
	// its sum exceeds H. Larger H: fewer false alarms, longer delays. Default 26.
	H float64 `yaml:"h"`
	// Warn places the warning limit at Warn·H; in (0,1], default 0.5.
	Warn float64 `yaml:"warn"`
	// Cap is the ceiling on the sum, at least H, so that after a long regression ends the
	// chart recovers in about (Cap−H)/K observations instead of as long as the regression
	// lasted; default 2H.
	Cap float64 `yaml:"cap"`
	// Direction says which way is worse; default Below.
	Direction Direction `yaml:"direction"`
}

func (c CUSUMConfig) withDefaults() CUSUMConfig {
	c.BaselineConfig = c.BaselineConfig.withDefaults()
	if c.K == 0 {
		c.K = 0.15
	}
	if c.H == 0 {
		c.H = 26
	}
	if c.Warn == 0 {
		c.Warn = 0.5
	}
	if c.Cap == 0 {
		c.Cap = 2 * c.H
	}
	return c
}

// Validate reports the first invalid or conflicting field, after defaults are applied.
func (c CUSUMConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case !within(c.K, 0, 100):
		return fmt.Errorf("%w: K must be in [0,100], got %v", ErrInvalidConfig, c.K)
	case !within(c.H, 1e-3, 1e6):
		return fmt.Errorf("%w: H must be in [0.001,1e6], got %v", ErrInvalidConfig, c.H)
	case !(c.Warn > 0 && c.Warn <= 1):
		return fmt.Errorf("%w: Warn must be in (0,1], got %v", ErrInvalidConfig, c.Warn)
	case !within(c.Cap, c.H, 1e9):
		return fmt.Errorf("%w: Cap must be in [H,1e9] (H is %v), got %v", ErrInvalidConfig, c.H, c.Cap)
	}
	if err := c.BaselineConfig.validate(); err != nil {
		return err
	}
	return c.Direction.validate("Direction")
}

// CUSUM is Page's cumulative sum chart on standardized scores z = (x−μ0)/σ: for Below,
// S_t = min(Cap, max(0, S_{t−1} − z_t − K)), alert when S_t > H. It is the fastest
// detector of a sustained shift of about 2K for a given false-alarm rate.
type CUSUM struct {
	cfg CUSUMConfig
	st  cusumState
}

type cusumState struct {
	tracker
	Base learner
	S    float64
	Run  welford // observations since S last left zero
}

// NewCUSUM returns a CUSUM chart, or an error naming the invalid field.
func NewCUSUM(cfg CUSUMConfig) (*CUSUM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &CUSUM{cfg: cfg, st: cusumState{Base: newLearner(cfg.BaselineConfig)}}, nil
}

// Config returns the configuration, defaults applied.
func (c *CUSUM) Config() CUSUMConfig { return c.cfg }

// Observe adds an observation; at is only recorded.
func (c *CUSUM) Observe(x float64, at time.Time) (Decision, error) {
	if why := observable(x); why != "" {
		err := c.st.reject(why, x)
		return c.Evaluate(time.Time{}), err
	}
	b := &c.st.Base
	if !b.Known {
		b.learn(x, c.cfg.BaselineConfig)
		return c.st.settle(b.warming(), at), nil
	}
	z := c.cfg.Direction.Badness(x, b.Mean) / b.SD
	c.st.S = min(c.cfg.Cap, max(0, c.st.S+z-c.cfg.K))
	if c.st.S == 0 {
		c.st.Run = welford{}
	} else {
		c.st.Run.add(x)
	}
	return c.Evaluate(at), nil
}

// Evaluate returns the verdict as of the latest observation.
func (c *CUSUM) Evaluate(at time.Time) Decision {
	b, cfg := c.st.Base, c.cfg
	if !b.Known {
		return c.st.settle(b.warming(), at)
	}
	d := Decision{Observed: b.Mean, Lower: b.Mean, Upper: b.Mean, Expected: b.Mean,
		Statistic: c.st.S, Limit: cfg.H, N: c.st.Run.N}
	if r := c.st.Run; r.N > 0 {
		half := 1.96 * b.SD / math.Sqrt(float64(r.N))
		d.Observed, d.Lower, d.Upper = r.Mean, r.Mean-half, r.Mean+half
	}
	switch {
	case c.st.S > cfg.H:
		d.State = StateAlert
	case c.st.S > cfg.Warn*cfg.H:
		d.State = StateWarning
	default:
		d.State = StateOK
	}
	return c.st.settle(d, at)
}

// Reset zeroes the sum.
func (c *CUSUM) Reset() {
	c.st.tracker.reset()
	c.st.S, c.st.Run = 0, welford{}
}

type snapshot[C, S any] struct {
	V      int
	Config C
	State  S
}

func marshal[C, S any](c C, s S) ([]byte, error) {
	return json.Marshal(snapshot[C, S]{V: snapshotVersion, Config: c, State: s})
}

func unmarshal[C interface{ Validate() error }, S any](data []byte) (C, S, error) {
	var s snapshot[C, S]
	if err := json.Unmarshal(data, &s); err != nil {
		return s.Config, s.State, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	if s.V != snapshotVersion {
		return s.Config, s.State, fmt.Errorf("%w: version %d, want %d", ErrInvalidState, s.V, snapshotVersion)
	}
	if err := s.Config.Validate(); err != nil {
		return s.Config, s.State, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	return s.Config, s.State, nil
}

// MarshalBinary encodes configuration and state (as JSON).
func (e *EWMA) MarshalBinary() ([]byte, error) { return marshal(e.cfg, e.st) }

// UnmarshalBinary restores configuration and state encoded by MarshalBinary.
func (e *EWMA) UnmarshalBinary(data []byte) error {
	cfg, st, err := unmarshal[EWMAConfig, ewmaState](data)
	if err != nil {
		return err
	}
	if !st.Base.valid() || !scale(st.Z) || st.T < 0 || !st.tracker.valid() {
		return fmt.Errorf("%w: corrupt EWMA state", ErrInvalidState)
	}
	e.cfg, e.st = cfg.withDefaults(), st
	return nil
}

// MarshalBinary encodes configuration and state (as JSON).
func (c *CUSUM) MarshalBinary() ([]byte, error) { return marshal(c.cfg, c.st) }

// UnmarshalBinary restores configuration and state encoded by MarshalBinary.
func (c *CUSUM) UnmarshalBinary(data []byte) error {
	cfg, st, err := unmarshal[CUSUMConfig, cusumState](data)
	if err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	if !st.Base.valid() || !st.Run.valid() || !within(st.S, 0, cfg.Cap) || !st.tracker.valid() {
		return fmt.Errorf("%w: corrupt CUSUM state", ErrInvalidState)
	}
	c.cfg, c.st = cfg, st
	return nil
}
