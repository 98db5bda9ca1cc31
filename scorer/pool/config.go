package pool

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults and bounds of Config.
const (
	// DefaultMaxInFlight is an endpoint's default in-flight ceiling.
	DefaultMaxInFlight = 64
	// MaxMaxInFlight is the largest accepted max_in_flight.
	MaxMaxInFlight = 4096
	// DefaultInitial caps the default starting limit of an adaptive endpoint.
	DefaultInitial = 8
	// DefaultLatencyTolerance is the default concurrency.latency_tolerance.
	DefaultLatencyTolerance = 2.0
	// DefaultTimeout is the default timeout of one attempt.
	DefaultTimeout = 60 * time.Second
	// DefaultDeadline is the default deadline of a whole task.
	DefaultDeadline = 5 * time.Minute
	// DefaultMaxAttempts is the default max_attempts.
	DefaultMaxAttempts = 3
	// MaxMaxAttempts is the largest accepted max_attempts.
	MaxMaxAttempts = 10
	// DefaultBreakerFailures is the default breaker.failures.
	DefaultBreakerFailures = 5
	// DefaultBreakerCooldown is the default breaker.cooldown.
	DefaultBreakerCooldown = 10 * time.Second
	// MaxBreakerCooldown caps the cooldown, which doubles each time a probe fails.
	MaxBreakerCooldown = 5 * time.Minute
	// DefaultDNSRefresh is the default dns.refresh.
	DefaultDNSRefresh = 30 * time.Second
	// MinDNSRefresh is the shortest accepted dns.refresh.
	MinDNSRefresh = 100 * time.Millisecond
)

// Concurrency modes.
const (
	// ModeAdaptive adjusts each endpoint's in-flight limit to its latency and overload
	// signals (see Concurrency).
	ModeAdaptive = "adaptive"
	// ModeFixed keeps each endpoint's in-flight limit at its max_in_flight.
	ModeFixed = "fixed"
)

// Config configures a pool (YAML, inline in a judge's config). Set exactly one of
// Endpoints and DNS.
type Config struct {
	// Endpoints is a static list of servers. Required unless DNS is set.
	Endpoints []Endpoint `yaml:"endpoints"`
	// DNS discovers the servers from a DNS name instead. Default: none.
	DNS *DNS `yaml:"dns"`
	// Concurrency sets how each endpoint's in-flight limit is chosen. Default: adaptive.
	Concurrency Concurrency `yaml:"concurrency"`
	// Timeout bounds one attempt (one HTTP request). Default 60s.
	Timeout time.Duration `yaml:"timeout"`
	// Deadline bounds a whole task: waiting for a slot or the rate limit, every attempt
	// and the backoff between them. At least Timeout. Default 5m (or Timeout, if longer).
	Deadline time.Duration `yaml:"deadline"`
	// MaxAttempts bounds the attempts of one task, 1..10. Default 3.
	MaxAttempts int `yaml:"max_attempts"`
	// Breaker configures the per-endpoint circuit breaker. Default: failures 5,
	// cooldown 10s, health_path Options.DefaultHealthPath.
	Breaker Breaker `yaml:"breaker"`
	// RateLimit bounds the pool's request and token rates. Default: off.
	RateLimit RateLimit `yaml:"rate_limit"`
}

// Endpoint is one statically listed server.
type Endpoint struct {
	// URL is the base URL of the server, http or https, without query or fragment, e.g.
	// "http://gpu-0:8000/v1"; a trailing slash is dropped. Required, unique in the pool.
	URL string `yaml:"url"`
	// MaxInFlight is the ceiling of the endpoint's adaptive in-flight limit (in fixed
	// mode, the limit), 1..4096. Default 64.
	MaxInFlight int `yaml:"max_in_flight"`
}

// DNS discovers endpoints from a name (a Kubernetes headless service): every address the
// name resolves to becomes the endpoint scheme://address:port+path.
type DNS struct {
	// Name is the host name to resolve, e.g. "vllm.judges.svc.cluster.local". Required.
	Name string `yaml:"name"`
	// Port is the servers' port, 1..65535. Required.
	Port int `yaml:"port"`
	// Scheme is http or https. Default "http".
	Scheme string `yaml:"scheme"`
	// Path is the base path of every endpoint, e.g. "/v1". Default "" (the root).
	Path string `yaml:"path"`
	// Refresh is how often the name is resolved again; addresses that appear become
	// endpoints, and endpoints whose address vanished are removed once their in-flight
	// requests finish. At least 100ms. Default 30s.
	Refresh time.Duration `yaml:"refresh"`
	// MaxInFlight is the in-flight ceiling of every discovered endpoint, 1..4096.
	// Default 64.
	MaxInFlight int `yaml:"max_in_flight"`
}

// Concurrency configures the per-endpoint in-flight limit.
//
// The adaptive limit works in the manner of Netflix's concurrency-limits (AIMD and the
// Gradient limits, with a baseline probe like BBR's ProbeRTT), per endpoint.
//
// A "window" is max(limit, 8) successful requests, the limit taken when the window began —
// under a saturated closed loop, about one round trip of everything in flight.
//
//   - short is an exponentially weighted moving average of successful requests'
//     latencies with α = 2/(n+1), n = max(limit, 8): roughly the average of the last
//     window.
//   - baseline is the lowest short seen (see Probe for how it moves up): the latency
//     of the endpoint when it does not queue.
//   - On an overload signal — a 429, 503 or 504 answer, or an attempt timing out — the
//     limit is multiplied by 0.9, at most once per latency window (the time short
//     spans; before the first success, the failed request's own latency), so that a
//     burst of failures caused by one excess backs off once.
//   - Slow start (from the start, and when a breaker closes): the limit grows by 1 per
//     success, doubling per window, and latency does not shrink it: a continuous-batching
//     server (vLLM, SGLang) answers more slowly as its batch fills, long before it is
//     full. Instead, as BBR's startup watches the delivery rate, slow start watches each
//     window's completion rate: after 2 windows that did not beat the best rate by 15%,
//     the server was full during the best window, whose limit doubled while it ran; the
//     limit becomes 2.2 × the limit that window began at, the latency of the moment the
//     baseline (it falls as the overshoot's queue drains), and a probe follows within 2
//     windows. An overload signal also ends slow start.
//   - After slow start, on a success with short > latency_tolerance × baseline, requests
//     are queueing (or the batch grew): the limit is multiplied by 0.95, at most once per
//     latency window.
//   - Otherwise, on a success while the endpoint used at least half its limit (it is not
//     app-limited: a limit the load never reaches is no evidence), the limit grows by
//     1/limit (about +1 per window, the additive increase), or by 0.1 (a tenth per
//     window) after a probe found that more concurrency bought throughput, until the
//     next decrease.
//   - The limit stays within [min, max_in_flight]; requests are admitted while in-flight
//     < ⌊limit⌋.
//   - Probe: every 32 windows, and early after 4 latency decreases in a row, provided the
//     endpoint used at least half its limit, the endpoint is drained to c =
//     limit/latency_tolerance (at least min); once it holds no more than c, and half a
//     latency later (the requests that finish first are the short ones, whose latencies
//     alone would flatter c), its completions are counted for at least one latency and
//     max(32, c) completions: their rate is c's throughput and their mean latency m is
//     c's latency. Against the completion rate of the last window before the probe:
//     if c kept at least 95% of the throughput, the rest of the limit only queued in the
//     server: the limit drops to 1.1 × c and another probe follows at once (c may still
//     queue). Else, if m is not below 0.8 × short (less concurrency did not lower
//     latency), the server itself got slower or faster, and m becomes the baseline.
//     Otherwise the extra concurrency bought throughput: m becomes the baseline and the
//     limit grows by a tenth per window, as above. A baseline that merely drifted upward
//     would not do: self-inflicted queueing that never drains would ratchet it up and the
//     limit with it, without bound; here only measured throughput moves it up.
//
// Why it fits GPU inference servers: vLLM or SGLang keep up to max_num_seqs sequences in
// a running batch. Below that, more concurrency raises throughput while each decode step
// grows with the batch (in judgesim's vllm-h100-8b profile a step is 4× longer at 256
// sequences than at 1); beyond it requests wait in the server's queue and latency grows
// in proportion to the queue, without more throughput. The limit therefore follows the
// throughput up to the server's batch size and settles a little above it: the GPU stays
// saturated while little work queues on the server, and the pool's own wait (where the
// least-loaded endpoint can still be chosen) holds the rest. max_in_flight must leave
// room above max_num_seqs. docs/benchmarks.md measures it against judgesim.
//
// In fixed mode the limit is max_in_flight and nothing adapts.
type Concurrency struct {
	// Mode is adaptive (the limit follows the endpoint's latency and overload signals
	// between Min and max_in_flight) or fixed (the limit is max_in_flight). Default
	// "adaptive".
	Mode string `yaml:"mode"`
	// Min is the lowest adaptive limit, at least 1 and at most every endpoint's
	// max_in_flight. Default 1.
	Min int `yaml:"min"`
	// Initial is the adaptive limit an endpoint starts with (and returns to when its
	// breaker closes), clamped to [Min, max_in_flight] per endpoint. Default 0, meaning
	// min(max_in_flight, 8) per endpoint.
	Initial int `yaml:"initial"`
	// LatencyTolerance is how many times its baseline latency an endpoint's short-term
	// latency may reach before the limit shrinks; greater than 1. Default 2.0.
	LatencyTolerance float64 `yaml:"latency_tolerance"`
}

// Breaker configures the per-endpoint circuit breaker.
type Breaker struct {
	// Failures is the number of consecutive retryable failures (timeouts included) that
	// open the breaker, 1..1000, provided at least 3 in 4 of the endpoint's last
	// 4×Failures retryable outcomes failed (so an endpoint failing a minority of requests
	// at random stays in; retries absorb its errors). Default 5.
	Failures int `yaml:"failures"`
	// Cooldown is how long an open breaker keeps the endpoint out before probing it; it
	// doubles after each failed probe, up to 5m, and resets when the breaker closes.
	// Default 10s.
	Cooldown time.Duration `yaml:"cooldown"`
	// HealthPath is the path probed (GET, 2xx = healthy) once the cooldown has passed,
	// resolved as a URL reference against the endpoint's base URL taken as a directory:
	// with base "http://h:8000/v1", "/health" probes "http://h:8000/health" and "models"
	// probes "http://h:8000/v1/models". An explicit "" means no probe: the next real
	// request is the trial (half-open). Default Options.DefaultHealthPath.
	HealthPath string `yaml:"health_path"`
	// HealthPathSet says HealthPath was given explicitly, so that an empty HealthPath
	// means "no probe" rather than "the default". Decoding YAML sets it when the
	// health_path key is present. Default false.
	HealthPathSet bool `yaml:"-"`
}

// UnmarshalYAML decodes a breaker section, recording whether health_path was present.
// Unknown keys are errors, as with a strict decoder.
func (b *Breaker) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(node.Content); i += 2 {
			switch k := node.Content[i].Value; k {
			case "failures", "cooldown":
			case "health_path":
				b.HealthPathSet = true
			default:
				return fmt.Errorf("line %d: field %s not found in type pool.Breaker", node.Content[i].Line, k)
			}
		}
	}
	type plain Breaker // no methods: no recursion
	set := b.HealthPathSet
	if err := node.Decode((*plain)(b)); err != nil {
		return err
	}
	b.HealthPathSet = set
	return nil
}

// RateLimit bounds the pool's request and token rates; each allows bursts of one second's
// worth. Every attempt counts as one request carrying the task's tokens, since the server
// sees each attempt.
type RateLimit struct {
	// RequestsPerSecond bounds attempts per second across the pool. Default 0 (off).
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	// TokensPerSecond bounds the tokens (Do's tokens argument) per second across the
	// pool. Default 0 (off).
	TokensPerSecond float64 `yaml:"tokens_per_second"`
}

// Validate fills defaults and rejects bad or conflicting values with an error naming the
// full key, key + ".field" (e.g. "judges.pool-a.endpoints[1].url"). Breaker.HealthPath
// gets its default from Options in New.
func (c *Config) Validate(key string) error {
	switch {
	case len(c.Endpoints) == 0 && c.DNS == nil:
		return fmt.Errorf("%s.endpoints: required (or dns)", key)
	case len(c.Endpoints) > 0 && c.DNS != nil:
		return fmt.Errorf("%s.dns: conflicts with endpoints; set one of them", key)
	}
	var ceilings []int // every endpoint's max_in_flight, for concurrency.min
	seen := make(map[string]int, len(c.Endpoints))
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		ekey := fmt.Sprintf("%s.endpoints[%d]", key, i)
		norm, err := normaliseURL(ep.URL)
		if err != nil {
			return fmt.Errorf("%s.url: %w", ekey, err)
		}
		if j, dup := seen[norm]; dup {
			return fmt.Errorf("%s.url: %q repeats endpoints[%d]", ekey, ep.URL, j)
		}
		seen[norm] = i
		ep.URL = norm
		if err := fillMaxInFlight(&ep.MaxInFlight); err != nil {
			return fmt.Errorf("%s.max_in_flight: %w", ekey, err)
		}
		ceilings = append(ceilings, ep.MaxInFlight)
	}
	if d := c.DNS; d != nil {
		if err := d.validate(key + ".dns"); err != nil {
			return err
		}
		ceilings = append(ceilings, d.MaxInFlight)
	}
	if err := c.Concurrency.validate(key+".concurrency", ceilings); err != nil {
		return err
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%s.timeout: %s is negative", key, c.Timeout)
	}
	if c.Deadline == 0 {
		c.Deadline = max(DefaultDeadline, c.Timeout)
	}
	if c.Deadline < c.Timeout {
		return fmt.Errorf("%s.deadline: %s is shorter than timeout (%s)", key, c.Deadline, c.Timeout)
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > MaxMaxAttempts {
		return fmt.Errorf("%s.max_attempts: %d is not in 1..%d", key, c.MaxAttempts, MaxMaxAttempts)
	}
	if err := c.Breaker.validate(key + ".breaker"); err != nil {
		return err
	}
	return c.RateLimit.validate(key + ".rate_limit")
}

func fillMaxInFlight(n *int) error {
	if *n == 0 {
		*n = DefaultMaxInFlight
	}
	if *n < 1 || *n > MaxMaxInFlight {
		return fmt.Errorf("%d is not in 1..%d", *n, MaxMaxInFlight)
	}
	return nil
}

// normaliseURL checks an endpoint's base URL and drops a trailing slash.
func normaliseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%q is not an http(s) URL", raw)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#") {
		return "", fmt.Errorf("%q has a query or fragment; give the base URL only", raw)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("%q has no host", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

func (d *DNS) validate(key string) error {
	if strings.TrimSpace(d.Name) == "" {
		return fmt.Errorf("%s.name: required", key)
	}
	if strings.ContainsAny(d.Name, "/:?#@ ") {
		return fmt.Errorf("%s.name: %q is not a host name", key, d.Name)
	}
	if d.Port < 1 || d.Port > 65535 {
		return fmt.Errorf("%s.port: %d is not in 1..65535 (required)", key, d.Port)
	}
	if d.Scheme == "" {
		d.Scheme = "http"
	}
	if d.Scheme != "http" && d.Scheme != "https" {
		return fmt.Errorf("%s.scheme: %q is not http or https", key, d.Scheme)
	}
	if d.Path != "" {
		u, err := url.Parse(d.Path)
		// u.Path != d.Path: percent-escapes ("/%00") would make the endpoint's path
		// something other than what was configured.
		if err != nil || !strings.HasPrefix(d.Path, "/") || u.Scheme != "" || u.Host != "" || strings.ContainsAny(d.Path, "?#") || u.Path != d.Path {
			return fmt.Errorf("%s.path: %q is not an absolute path such as \"/v1\"", key, d.Path)
		}
		d.Path = strings.TrimRight(d.Path, "/")
	}
	if d.Refresh == 0 {
		d.Refresh = DefaultDNSRefresh
	}
	if d.Refresh < MinDNSRefresh {
		return fmt.Errorf("%s.refresh: %s is shorter than %s", key, d.Refresh, MinDNSRefresh)
	}
	if err := fillMaxInFlight(&d.MaxInFlight); err != nil {
		return fmt.Errorf("%s.max_in_flight: %w", key, err)
	}
	return nil
}

func (c *Concurrency) validate(key string, ceilings []int) error {
	if c.Mode == "" {
		c.Mode = ModeAdaptive
	}
	if c.Mode != ModeAdaptive && c.Mode != ModeFixed {
		return fmt.Errorf("%s.mode: %q is not adaptive or fixed", key, c.Mode)
	}
	if c.Min == 0 {
		c.Min = 1
	}
	if c.Min < 1 {
		return fmt.Errorf("%s.min: %d is less than 1", key, c.Min)
	}
	for _, ceil := range ceilings {
		if c.Min > ceil {
			return fmt.Errorf("%s.min: %d is above an endpoint's max_in_flight (%d)", key, c.Min, ceil)
		}
	}
	if c.Initial < 0 || c.Initial > MaxMaxInFlight {
		return fmt.Errorf("%s.initial: %d is not in 0..%d", key, c.Initial, MaxMaxInFlight)
	}
	if c.LatencyTolerance == 0 {
		c.LatencyTolerance = DefaultLatencyTolerance
	}
	if !(c.LatencyTolerance > 1) || math.IsInf(c.LatencyTolerance, 0) {
		return fmt.Errorf("%s.latency_tolerance: %g is not a finite number greater than 1", key, c.LatencyTolerance)
	}
	return nil
}

// initialLimit is the starting adaptive limit of an endpoint with ceiling maxInFlight.
func (c *Concurrency) initialLimit(maxInFlight int) int {
	n := c.Initial
	if n == 0 {
		n = min(maxInFlight, DefaultInitial)
	}
	return min(max(n, c.Min), maxInFlight)
}

func (b *Breaker) validate(key string) error {
	if b.Failures == 0 {
		b.Failures = DefaultBreakerFailures
	}
	if b.Failures < 1 || b.Failures > 1000 {
		return fmt.Errorf("%s.failures: %d is not in 1..1000", key, b.Failures)
	}
	if b.Cooldown == 0 {
		b.Cooldown = DefaultBreakerCooldown
	}
	if b.Cooldown < 0 || b.Cooldown > MaxBreakerCooldown {
		return fmt.Errorf("%s.cooldown: %s is not in (0, %s]", key, b.Cooldown, MaxBreakerCooldown)
	}
	if err := checkHealthPath(b.HealthPath); err != nil {
		return fmt.Errorf("%s.health_path: %w", key, err)
	}
	return nil
}

func checkHealthPath(p string) error {
	if p == "" {
		return nil
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(p, "//") {
		return fmt.Errorf("%q is not a path", p)
	}
	return nil
}

func (r *RateLimit) validate(key string) error {
	if v := r.RequestsPerSecond; v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%s.requests_per_second: %g is not a finite number ≥ 0", key, v)
	}
	if v := r.TokensPerSecond; v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%s.tokens_per_second: %g is not a finite number ≥ 0", key, v)
	}
	return nil
}
