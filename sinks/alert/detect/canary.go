package detect

import (
	"fmt"
	"math"
	"time"
)

// Arm says which side of a canary comparison an observation belongs to.
type Arm int8

const (
	// ArmBaseline is the model in production the candidate is compared with.
	ArmBaseline Arm = iota
	// ArmCandidate is the model being rolled out.
	ArmCandidate
)

// CanaryConfig configures a Canary comparison. Zero fields take their defaults.
type CanaryConfig struct {
	// Alpha bounds the probability that the comparison ever alerts, however long it runs
	// and however often it is looked at, when the candidate is not worse by more than
	// Margin; default 0.05.
	Alpha float64 `yaml:"alpha"`
	// WarnAlpha is the p-value below which the verdict is StateWarning; at least Alpha,
	// default 0.2.
	WarnAlpha float64 `yaml:"warn_alpha"`
	// Margin is how much worse than the baseline (in score units) the candidate may be
	// before that counts as a regression; non-negative, default 0.
	Margin float64 `yaml:"margin"`
	// Tau is the standard deviation of the normal mixture over the difference, in units
	// of the pooled standard deviation of the scores: the test gathers evidence fastest
	// against differences of about Tau. Default 0.2.
	Tau float64 `yaml:"tau"`
	// MinSamples is the number of observations each arm needs before the test starts (the
	// variances are estimated online); default 50.
	MinSamples int `yaml:"min_samples"`
	// MinSD is the floor on each arm's standard deviation, in score units; default 0.1.
	MinSD float64 `yaml:"min_sd"`
	// Direction says which way is worse; default Below.
	Direction Direction `yaml:"direction"`
}

func (c CanaryConfig) withDefaults() CanaryConfig {
	if c.Alpha == 0 {
		c.Alpha = 0.05
	}
	if c.WarnAlpha == 0 {
		c.WarnAlpha = max(0.2, c.Alpha)
	}
	if c.Tau == 0 {
		c.Tau = 0.2
	}
	if c.MinSamples == 0 {
		c.MinSamples = 50
	}
	if c.MinSD == 0 {
		c.MinSD = 0.1
	}
	return c
}

// Validate reports the first invalid or conflicting field, after defaults are applied.
func (c CanaryConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case !(c.Alpha > 0 && c.Alpha < 1):
		return fmt.Errorf("%w: Alpha must be in (0,1), got %v", ErrInvalidConfig, c.Alpha)
	case !(c.WarnAlpha >= c.Alpha && c.WarnAlpha <= 1):
		return fmt.Errorf("%w: WarnAlpha must be in [Alpha,1], got %v", ErrInvalidConfig, c.WarnAlpha)
	case !within(c.Margin, 0, MaxAbs):
		return fmt.Errorf("%w: Margin must be in [0,MaxAbs], got %v", ErrInvalidConfig, c.Margin)
	case !within(c.Tau, 1e-3, 100):
		return fmt.Errorf("%w: Tau must be in [0.001,100], got %v", ErrInvalidConfig, c.Tau)
	case c.MinSamples < 2:
		return fmt.Errorf("%w: MinSamples must be at least 2, got %d", ErrInvalidConfig, c.MinSamples)
	case !within(c.MinSD, 1e-6, MaxAbs):
		return fmt.Errorf("%w: MinSD must be in [1e-6,MaxAbs], got %v", ErrInvalidConfig, c.MinSD)
	}
	return c.Direction.validate("Direction")
}

// Canary compares a candidate model's scores with its baseline model's on the same
// evaluator with a mixture sequential probability ratio test (mSPRT; Johari, Pekelis and
// Walsh, "Always valid inference", 2017/2022). With Δ̂ the candidate's mean minus the
// baseline's, v = s_c²/n_c + s_b²/n_b its variance (estimated online), θ0 = −Margin (for
// Below), and a normal mixture N(θ0, τ²) over the true difference with τ = Tau times the
// pooled standard deviation, the likelihood ratio is
//
//	Λ = √(v/(v+τ²)) · exp(τ²(Δ̂−θ0)² / (2v(v+τ²))).
//
// The always-valid p-value is the running minimum of 1/Λ over the observations where Δ̂ is
// worse than θ0, and the comparison alerts, for good until Reset, once it falls below
// Alpha. The confidence sequence {θ : Λ(θ) < 1/α} is reported as the interval; it lies
// wholly below θ0 exactly when the current observation gives p < α. Both stay valid
// however often they are looked at: the guarantee is exact for normal scores with known
// variances arriving in pairs, and approximate otherwise (estimated variances, uneven
// arrivals); docs/alerting.md measures it on discrete scores.
// Canary is a Rule fed by two series through Observe(arm, …).
type Canary struct {
	cfg CanaryConfig
	st  canaryState
}

type canaryState struct {
	tracker
	Arms [2]welford // indexed by Arm
	P    float64    // always-valid p-value: running minimum
}

// NewCanary returns a Canary comparison, or an error naming the invalid field.
func NewCanary(cfg CanaryConfig) (*Canary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Canary{cfg: cfg.withDefaults(), st: canaryState{P: 1}}, nil
}

// Config returns the configuration, defaults applied.
func (c *Canary) Config() CanaryConfig { return c.cfg }

// Observe adds an observation of the candidate or the baseline; at is only recorded.
func (c *Canary) Observe(arm Arm, x float64, at time.Time) (Decision, error) {
	if arm != ArmBaseline && arm != ArmCandidate {
		err := c.st.reject(fmt.Sprintf("unknown arm %d", arm), x)
		return c.Evaluate(time.Time{}), err
	}
	if why := observable(x); why != "" {
		err := c.st.reject(why, x)
		return c.Evaluate(time.Time{}), err
	}
	c.st.Arms[arm].add(x)
	if diff, v, tau2, ok := c.stats(); ok && c.cfg.Direction.Badness(diff, c.null()) > 0 {
		logLR := 0.5*math.Log(v/(v+tau2)) + tau2*math.Pow(diff-c.null(), 2)/(2*v*(v+tau2))
		c.st.P = min(c.st.P, math.Exp(-logLR))
	}
	return c.Evaluate(at), nil
}

// null is the boundary difference θ0: the candidate worse by exactly Margin.
func (c *Canary) null() float64 {
	if c.cfg.Direction == Above {
		return c.cfg.Margin
	}
	return -c.cfg.Margin
}

// stats returns the difference of means, its variance and the mixture variance, and
// whether both arms have MinSamples.
func (c *Canary) stats() (diff, v, tau2 float64, ok bool) {
	b, k := c.st.Arms[ArmBaseline], c.st.Arms[ArmCandidate]
	floor := c.cfg.MinSD * c.cfg.MinSD
	vb, vk := max(b.variance(), floor), max(k.variance(), floor)
	n := int64(c.cfg.MinSamples)
	return k.Mean - b.Mean, vk/float64(k.N) + vb/float64(b.N), c.cfg.Tau * c.cfg.Tau * (vb + vk) / 2, b.N >= n && k.N >= n
}

// Evaluate returns the verdict as of the latest observation.
func (c *Canary) Evaluate(at time.Time) Decision {
	diff, v, tau2, ok := c.stats()
	n := c.st.Arms[0].N + c.st.Arms[1].N
	d := Decision{Observed: diff, Lower: diff, Upper: diff, Expected: c.null(),
		Statistic: c.st.P, Limit: c.cfg.Alpha, N: n}
	if !ok {
		return c.st.settle(d, at)
	}
	r := math.Sqrt(2 * v * (v + tau2) / tau2 * (-math.Log(c.cfg.Alpha) + 0.5*math.Log((v+tau2)/v)))
	d.Lower, d.Upper = diff-r, diff+r
	switch {
	case c.st.P < c.cfg.Alpha:
		d.State = StateAlert
	case c.st.P < c.cfg.WarnAlpha:
		d.State = StateWarning
	default:
		d.State = StateOK
	}
	return c.st.settle(d, at)
}

// Reset starts a new test, forgetting both arms' observations.
func (c *Canary) Reset() {
	c.st.tracker.reset()
	c.st.Arms, c.st.P = [2]welford{}, 1
}

// MarshalBinary encodes configuration and state (as JSON).
func (c *Canary) MarshalBinary() ([]byte, error) { return marshal(c.cfg, c.st) }

// UnmarshalBinary restores configuration and state encoded by MarshalBinary.
func (c *Canary) UnmarshalBinary(data []byte) error {
	cfg, st, err := unmarshal[CanaryConfig, canaryState](data)
	if err != nil {
		return err
	}
	if !st.Arms[0].valid() || !st.Arms[1].valid() || !within(st.P, 0, 1) || !st.tracker.valid() {
		return fmt.Errorf("%w: corrupt canary state", ErrInvalidState)
	}
	c.cfg, c.st = cfg.withDefaults(), st
	return nil
}
