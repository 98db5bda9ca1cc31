// Package pool routes requests across the HTTP endpoints that serve one judge model (a
// GPU scoring pool): least-outstanding-requests routing, a per-endpoint adaptive
// in-flight limit, retries of retryable failures with jittered backoff, a circuit
// breaker per endpoint with health probes, endpoints from a static list or DNS, and an
// optional rate limit.
//
// A backend (an OpenAI-compatible judge, a reward model) builds its request once and
// hands Do a function that sends it to one endpoint's base URL; the pool decides where
// and how often it runs. One mutex guards every endpoint's state; the background
// goroutines (DNS refresh, health probes) stop on Close.
package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"raterd/internal/telemetry"
)

// Defaults of Options.
const (
	// DefaultBackoffBase is the default Options.BackoffBase.
	DefaultBackoffBase = 250 * time.Millisecond
	// DefaultBackoffMax is the default Options.BackoffMax.
	DefaultBackoffMax = 8 * time.Second
	// DefaultMaxRetryAfter is the default Options.MaxRetryAfter.
	DefaultMaxRetryAfter = 30 * time.Second
)

// Options are the pool's collaborators and tunables that are not user config.
type Options struct {
	// Key is cfg's path in the config file, e.g. "judges.pool-a". Required: New validates
	// cfg again under it (a no-op for a cfg that passed Validate(Key), the defaults for one
	// that did not), so that its errors name the keys of the config file.
	Key string
	// Name labels the pool's metrics (attribute "pool"), logs and errors, usually the
	// judge's name. Default "" (errors then say just "judge pool").
	Name string
	// DefaultHealthPath is the breaker's health path when the config leaves
	// breaker.health_path unset, e.g. "/health" for vLLM, SGLang and TGI. Default ""
	// (no probe: a trial request decides).
	DefaultHealthPath string
	// ProbeHeader is added to every health probe, e.g. the Authorization header an API
	// key needs (vLLM with --api-key answers /v1/models 401 without it). Default none.
	ProbeHeader http.Header
	// Client sends the health probes; Client() hands it to attempts so they share its
	// connections. Default: a client on a clone of http.DefaultTransport keeping an idle
	// connection for every in-flight slot, without a client timeout (each request is
	// bounded by its context).
	Client *http.Client
	// Telemetry's logger receives breaker state changes, endpoint changes and DNS
	// failures, each once (with the attribute pool=<Name>); its meter provider gets the
	// pool's metrics (meter raterd/scorer/pool). Unset fields mean
	// telemetry.Settings.WithDefaults.
	Telemetry telemetry.Settings
	// Resolver resolves Config.DNS.Name. Default net.DefaultResolver.
	Resolver Resolver
	// BackoffBase is the backoff before the first retry; the delay before retry n is
	// drawn from [d/2, d], d = min(BackoffMax, BackoffBase·2^(n-1)). Default 250ms.
	BackoffBase time.Duration
	// BackoffMax caps the exponential backoff. Default 8s.
	BackoffMax time.Duration
	// MaxRetryAfter caps how long a server's Retry-After may delay a retry (the task
	// deadline bounds it too). Default 30s.
	MaxRetryAfter time.Duration
}

// Resolver looks up the addresses of a DNS name (net.Resolver fits).
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Result describes how a Do call went.
type Result struct {
	// Attempts is the number of attempts made (0 if none started).
	Attempts int
	// Endpoint is the base URL of the last attempt's endpoint ("" if none started).
	Endpoint string
	// Latency is the duration of the successful attempt (0 if none succeeded).
	Latency time.Duration
}

// EndpointStats is a snapshot of one endpoint, for tests, benchmarks and status pages.
type EndpointStats struct {
	// URL is the endpoint's base URL.
	URL string
	// InFlight is the number of attempts running on it.
	InFlight int
	// Limit is its current in-flight limit.
	Limit int
	// Breaker is its breaker state: "closed", "half-open" or "open".
	Breaker string
	// Successes counts its successful attempts.
	Successes int64
	// Failures counts its retryable failures (timeouts included).
	Failures int64
	// Permanent counts its permanent failures.
	Permanent int64
}

// endpoint is one server of the pool. The pool's mutex guards every field but the
// immutable ones at the top.
type endpoint struct {
	url         string // base URL, no trailing slash
	healthURL   string // "" when a trial request decides
	maxInFlight int
	initial     int
	ctx         context.Context // ends when the endpoint is removed or the pool closes
	cancel      context.CancelFunc
	attrs       endpointAttrs

	inFlight  int
	lim       limiter
	br        breaker
	probing   bool // a prober goroutine runs for it
	removed   bool
	successes int64
	failures  int64
	permanent int64
}

// Pool is a set of endpoints serving one model. It is safe for concurrent use.
type Pool struct {
	cfg    Config
	opts   Options
	log    *slog.Logger
	client *http.Client
	prefix string // error prefix: judge pool "name"
	health string // the health path, "" for trial requests
	m      metrics

	reqLimit *rate.Limiter // nil: off
	tokLimit *rate.Limiter // nil: off

	// closing ends when Close starts: waits stop, background goroutines stop.
	closing     context.Context
	closeCancel context.CancelCauseFunc
	// abort ends when Close gives up draining: running attempts are canceled.
	abort       context.Context
	abortCancel context.CancelCauseFunc
	bg          sync.WaitGroup // background goroutines (DNS, probes)
	ownClient   bool           // the pool made client: Close closes its idle connections
	closeOnce   sync.Once
	drained     chan struct{} // closed once closed and no Do call is active

	mu     sync.Mutex
	eps    []*endpoint
	next   int           // rotates ties between equally loaded endpoints
	wake   chan struct{} // closed when waiters may find room; nil while no one waits
	closed bool
	active int // Do calls running
}

// New starts a pool for cfg, which should have passed Validate(opts.Key); it is
// validated again under opts.Key (required), so that a caller that did not still gets the
// defaults. With DNS, the name is resolved in the background: until it resolves, Do fails
// with ErrUnavailable (there is no endpoint to wait for).
func New(cfg Config, opts Options) (*Pool, error) {
	if opts.Key == "" {
		return nil, errors.New("pool: Options.Key is required: the config path of cfg, e.g. \"judges.pool-a\"")
	}
	cfg.Endpoints = append([]Endpoint(nil), cfg.Endpoints...)
	if cfg.DNS != nil {
		d := *cfg.DNS
		cfg.DNS = &d
	}
	if err := cfg.Validate(opts.Key); err != nil {
		return nil, err
	}
	opts.Telemetry = opts.Telemetry.WithDefaults()
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = DefaultBackoffBase
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	opts.BackoffMax = max(opts.BackoffMax, opts.BackoffBase)
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	health := cfg.Breaker.HealthPath
	if !cfg.Breaker.HealthPathSet && health == "" {
		health = opts.DefaultHealthPath
	}
	if err := checkHealthPath(health); err != nil {
		return nil, fmt.Errorf("%s.breaker.health_path (default): %w", opts.Key, err)
	}
	p := &Pool{
		cfg:     cfg,
		opts:    opts,
		log:     opts.Telemetry.Logger.With("pool", opts.Name),
		health:  health,
		prefix:  "judge pool",
		drained: make(chan struct{}),
	}
	if opts.Name != "" {
		p.prefix = fmt.Sprintf("judge pool %q", opts.Name)
	}
	p.closing, p.closeCancel = context.WithCancelCause(context.Background())
	p.abort, p.abortCancel = context.WithCancelCause(context.Background())
	if r := cfg.RateLimit.RequestsPerSecond; r > 0 {
		p.reqLimit = rate.NewLimiter(rate.Limit(r), burstOf(r))
	}
	if r := cfg.RateLimit.TokensPerSecond; r > 0 {
		p.tokLimit = rate.NewLimiter(rate.Limit(r), burstOf(r))
	}
	perHost := 0
	for _, ep := range cfg.Endpoints {
		perHost = max(perHost, ep.MaxInFlight)
	}
	if cfg.DNS != nil {
		perHost = cfg.DNS.MaxInFlight
	}
	p.client = opts.Client
	if p.client == nil {
		p.ownClient = true
		var tr *http.Transport
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			tr = dt.Clone()
		} else {
			tr = &http.Transport{Proxy: http.ProxyFromEnvironment}
		}
		tr.MaxIdleConnsPerHost = perHost + 1 // +1: the health probe
		tr.MaxIdleConns = 0                  // no pool-wide cap; per host bounds it
		p.client = &http.Client{Transport: tr}
	}
	if err := p.m.init(p); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cfg.DNS == nil {
		for _, e := range cfg.Endpoints {
			p.addLocked(e.URL, e.MaxInFlight)
		}
	} else {
		p.bg.Add(1)
		go p.dnsLoop()
	}
	return p, nil
}

// burstOf is a token bucket's size for rate r: one second's worth.
func burstOf(r float64) int { return max(1, int(r+0.999999)) }

// Client returns the HTTP client the pool probes with, for attempts to share.
func (p *Pool) Client() *http.Client { return p.client }

// addLocked adds an endpoint with base URL u. p.mu is held.
func (p *Pool) addLocked(u string, maxInFlight int) *endpoint {
	ep := &endpoint{
		url:         u,
		maxInFlight: maxInFlight,
		initial:     p.cfg.Concurrency.initialLimit(maxInFlight),
		lim:         newLimiter(p.cfg.Concurrency, maxInFlight),
		br:          newBreaker(p.cfg.Breaker, p.health != ""),
		attrs:       p.m.endpointAttrs(p.opts.Name, u),
	}
	if p.health != "" {
		ep.healthURL = healthURL(u, p.health)
	}
	ep.ctx, ep.cancel = context.WithCancel(p.closing)
	p.eps = append(p.eps, ep)
	return ep
}

// healthURL resolves the health path against base taken as a directory.
func healthURL(base, health string) string {
	if strings.HasPrefix(health, "/") {
		// Absolute path: the server root of base.
		i := strings.Index(base, "://")
		if j := strings.IndexByte(base[i+3:], '/'); j >= 0 {
			return base[:i+3+j] + health
		}
		return base + health
	}
	return base + "/" + health
}

// Do runs attempt against endpoints until it succeeds or fails for good, and reports how
// it went. Each attempt gets an in-flight slot on the least-loaded endpoint that admits
// requests (waiting while none has room), passes the rate limit, and runs with a context
// bounded by the timeout; attempt gets the endpoint's base URL and must return nil, a
// StatusError for a non-2xx answer, or another error.
//
// Retryable failures (see Retryable, and the attempt's timeout) are retried with
// jittered exponential backoff, respecting Retry-After, on another endpoint where
// possible, within MaxAttempts and the task deadline. Errors:
//   - a permanent failure is returned at once, wrapped with the endpoint URL;
//   - retries running out, the task deadline passing, no endpoint having room in time,
//     every endpoint being ejected by its breaker (at once: nothing frees up before a
//     cooldown ends) or the pool being closed wrap ErrUnavailable (and the last
//     failure, if any);
//   - ctx ending returns promptly, wrapping context.Cause(ctx).
//
// tokens is the task's size for the tokens-per-second limit (≤ 0: none).
func (p *Pool) Do(ctx context.Context, tokens int, attempt func(ctx context.Context, baseURL string) error) (Result, error) {
	var res Result
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s: %w", p.prefix, context.Cause(ctx))
	}
	if !p.enter() {
		return res, p.unavailable(errClosed.Error(), nil)
	}
	defer p.leave()

	// taskCtx bounds attempts: the caller, the task deadline, a hard stop of Close.
	// waitCtx bounds waits, which also end when Close starts.
	abortable, cancelAbortable := context.WithCancelCause(ctx)
	defer cancelAbortable(nil)
	defer context.AfterFunc(p.abort, func() { cancelAbortable(errAborted) })()
	start := time.Now()
	taskCtx, cancelTask := context.WithDeadlineCause(abortable, start.Add(p.cfg.Deadline), errTaskDeadline)
	defer cancelTask()
	waitCtx, cancelWait := context.WithCancelCause(taskCtx)
	defer cancelWait(nil)
	defer context.AfterFunc(p.closing, func() { cancelWait(errClosed) })()
	deadline := start.Add(p.cfg.Deadline)

	var lastErr error
	var avoid *endpoint
	for n := 1; ; n++ {
		waitStart := time.Now()
		ep, trial, err := p.admit(waitCtx, tokens, avoid)
		p.m.wait.Record(ctx, time.Since(waitStart).Seconds(), p.m.poolAttrs)
		if err != nil {
			return res, p.waitFailed(ctx, waitCtx, res, err, lastErr)
		}
		res.Attempts, res.Endpoint = n, ep.url
		out, latency, err := p.run(ctx, taskCtx, ep, trial, attempt)
		switch out {
		case outcomeOK:
			res.Latency = latency
			return res, nil
		case outcomePermanent:
			return res, fmt.Errorf("%s: %s: %w", p.prefix, ep.url, err)
		case outcomeCanceled:
			return res, p.ended(ctx, taskCtx, res, err, lastErr)
		}
		lastErr = err
		if n >= p.cfg.MaxAttempts {
			return res, p.unavailable(fmt.Sprintf("%d attempts failed", n), lastErr)
		}
		delay := p.backoff(n, retryAfterOf(err))
		next := time.Now().Add(delay)
		if dl, ok := ctx.Deadline(); ok && next.After(dl) {
			return res, p.unavailable(fmt.Sprintf("the caller's deadline comes before retry %d (in %s)", n, delay), lastErr)
		}
		if next.After(deadline) {
			return res, p.unavailable(fmt.Sprintf("the task deadline (%s) comes before retry %d (in %s)", p.cfg.Deadline, n, delay), lastErr)
		}
		p.m.retries.Add(ctx, 1, ep.attrs.plain)
		p.log.Debug("judge pool: retrying", "endpoint", ep.url, "attempt", n, "delay", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-waitCtx.Done():
			t.Stop()
			return res, p.waitFailed(ctx, waitCtx, res, context.Cause(waitCtx), lastErr)
		}
		avoid = ep
	}
}

// enter counts a Do call in, unless the pool is closed.
func (p *Pool) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.active++
	return true
}

func (p *Pool) leave() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active--
	if p.closed && p.active == 0 {
		close(p.drained)
	}
}

// unavailable builds an ErrUnavailable error with the reason and the last failure.
func (p *Pool) unavailable(why string, last error) error {
	if last == nil {
		return fmt.Errorf("%s: %s: %w", p.prefix, why, ErrUnavailable)
	}
	return fmt.Errorf("%s: %s: %w; last error: %w", p.prefix, why, ErrUnavailable, last)
}

// waitFailed explains why a wait (rate limit, slot, backoff) ended with err.
func (p *Pool) waitFailed(ctx, waitCtx context.Context, res Result, err, lastErr error) error {
	if ctx.Err() != nil {
		return p.callerEnded(ctx, res, lastErr)
	}
	switch context.Cause(waitCtx) {
	case errClosed, errAborted:
		return p.unavailable(errClosed.Error(), lastErr)
	case errTaskDeadline:
		return p.unavailable(fmt.Sprintf("the task deadline (%s) passed: %v", p.cfg.Deadline, err), lastErr)
	}
	// The rate limiter saw the deadline would pass before its turn.
	return p.unavailable(err.Error(), lastErr)
}

// ended explains an attempt cut short (err) by the caller, the task deadline or Close.
// The attempt's own error then is just the context's, so it is quoted, not wrapped.
func (p *Pool) ended(ctx, taskCtx context.Context, res Result, err, lastErr error) error {
	if ctx.Err() != nil {
		return p.callerEnded(ctx, res, lastErr)
	}
	why := fmt.Sprintf("%s during attempt %d on %s (%v)", errAborted, res.Attempts, res.Endpoint, err)
	if context.Cause(taskCtx) == errTaskDeadline {
		why = fmt.Sprintf("the task deadline (%s) passed during attempt %d on %s (%v)", p.cfg.Deadline, res.Attempts, res.Endpoint, err)
	}
	return p.unavailable(why, lastErr)
}

func (p *Pool) callerEnded(ctx context.Context, res Result, lastErr error) error {
	if lastErr != nil && res.Attempts > 0 {
		return fmt.Errorf("%s: %w (after %d attempts; last error: %v)", p.prefix, context.Cause(ctx), res.Attempts, lastErr)
	}
	return fmt.Errorf("%s: %w", p.prefix, context.Cause(ctx))
}

// backoff is the jittered exponential delay before the retry that follows attempt n,
// raised to the server's Retry-After (capped).
func (p *Pool) backoff(n int, retryAfter time.Duration) time.Duration {
	d := p.opts.BackoffBase
	for i := 1; i < n && d < p.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.opts.BackoffMax)
	if half := d / 2; half > 0 {
		d = half + rand.N(half+1)
	}
	return max(d, min(retryAfter, p.opts.MaxRetryAfter))
}

// admit takes an in-flight slot, then passes the rate limit: a task waiting for a slot
// has not spent rate budget yet, so slots freeing up at once cannot release a burst
// beyond the rate.
func (p *Pool) admit(ctx context.Context, tokens int, avoid *endpoint) (*endpoint, bool, error) {
	ep, trial, err := p.acquire(ctx, avoid)
	if err != nil {
		return nil, false, err
	}
	if p.reqLimit != nil {
		if err := p.reqLimit.Wait(ctx); err != nil {
			p.release(ep, trial, outcomeCanceled, attemptSignals{}, 0)
			return nil, false, fmt.Errorf("requests rate limit: %w", err)
		}
	}
	if p.tokLimit != nil && tokens > 0 {
		// A task bigger than the bucket waits for a full bucket.
		if err := p.tokLimit.WaitN(ctx, min(tokens, p.tokLimit.Burst())); err != nil {
			p.release(ep, trial, outcomeCanceled, attemptSignals{}, 0)
			return nil, false, fmt.Errorf("tokens rate limit: %w", err)
		}
	}
	return ep, trial, nil
}

// acquire takes an in-flight slot on the endpoint with the fewest requests in flight
// among those whose breaker admits requests and that are below their limit, rotating
// ties and preferring any endpoint but avoid. It waits while none has room, until ctx
// ends; trial says the request is a half-open breaker's trial.
func (p *Pool) acquire(ctx context.Context, avoid *endpoint) (ep *endpoint, trial bool, err error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var notes []note
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, false, errClosed
		}
		now := time.Now()
		var best, fallback *endpoint
		bestAt, fallbackAt := 0, 0
		var wakeAt time.Time
		for k := range p.eps {
			i := (p.next + k) % len(p.eps)
			e := p.eps[i]
			ok, changed := e.br.admits(now)
			if changed {
				notes = append(notes, p.stateNote(e, "trial request decides"))
			}
			if e.br.state == stateOpen && !e.br.probe && (wakeAt.IsZero() || e.br.readyAt().Before(wakeAt)) {
				wakeAt = e.br.readyAt()
			}
			if !ok || e.inFlight >= e.lim.current() {
				continue
			}
			if e == avoid {
				fallback, fallbackAt = e, i
			} else if best == nil || e.inFlight < best.inFlight {
				best, bestAt = e, i
			}
		}
		if best == nil {
			best, bestAt = fallback, fallbackAt
		}
		if best != nil {
			best.inFlight++
			trial = best.br.acquired()
			p.next = (bestAt + 1) % len(p.eps)
			p.mu.Unlock()
			p.emit(notes)
			return best, trial, nil
		}
		if p.allEjectedLocked() {
			// Nothing will free up before a breaker's cooldown: fail now, so that the
			// caller's batch is retried with its own backoff (and counted, and logged)
			// rather than held here for the whole task deadline.
			why := p.unavailableLocked()
			p.mu.Unlock()
			p.emit(notes)
			return nil, false, errors.New("no endpoint available: " + why)
		}
		if p.wake == nil {
			p.wake = make(chan struct{})
		}
		wake := p.wake
		why := p.unavailableLocked()
		p.mu.Unlock()
		p.emit(notes)

		var tc <-chan time.Time
		if !wakeAt.IsZero() {
			if timer == nil {
				timer = time.NewTimer(time.Until(wakeAt))
			} else {
				timer.Reset(time.Until(wakeAt))
			}
			tc = timer.C
		}
		select {
		case <-wake:
		case <-tc:
		case <-ctx.Done():
			return nil, false, errors.New("no endpoint available: " + why)
		}
	}
}

// unavailableLocked describes why no endpoint has room.
// allEjectedLocked reports whether no endpoint can take a request until a breaker's
// cooldown ends: there are none, or every breaker is open. p.mu is held.
func (p *Pool) allEjectedLocked() bool {
	for _, e := range p.eps {
		if e.br.state != stateOpen {
			return false
		}
	}
	return true
}

func (p *Pool) unavailableLocked() string {
	if len(p.eps) == 0 {
		if p.cfg.DNS != nil {
			return fmt.Sprintf("no endpoints (DNS name %q has not resolved)", p.cfg.DNS.Name)
		}
		return "no endpoints"
	}
	open, full := 0, 0
	for _, e := range p.eps {
		if e.br.state != stateClosed {
			open++
		} else {
			full++
		}
	}
	return fmt.Sprintf("%d endpoints: %d with an open breaker, %d at their in-flight limit", len(p.eps), open, full)
}

// signalLocked wakes every waiter for a slot. p.mu is held.
func (p *Pool) signalLocked() {
	if p.wake != nil {
		close(p.wake)
		p.wake = nil
	}
}

// Attempt outcomes, also the values of the attempts metric's "outcome" attribute.
type outcome int

const (
	outcomeOK        outcome = iota // succeeded
	outcomeRetryable                // failed, may pass
	outcomePermanent                // failed for good
	outcomeCanceled                 // cut short by the caller, the task deadline or Close
	numOutcomes
)

func (o outcome) String() string {
	switch o {
	case outcomeOK:
		return "ok"
	case outcomeRetryable:
		return "retryable"
	case outcomePermanent:
		return "permanent"
	}
	return "canceled"
}

// run makes one attempt on ep and releases its slot, recording the outcome.
func (p *Pool) run(ctx, taskCtx context.Context, ep *endpoint, trial bool, attempt func(context.Context, string) error) (out outcome, latency time.Duration, err error) {
	actx, cancel := context.WithTimeoutCause(taskCtx, p.cfg.Timeout, errAttemptTimeout)
	defer cancel()
	var sig attemptSignals
	released := false
	defer func() {
		if !released { // attempt panicked: free the slot, tell nobody anything
			p.release(ep, trial, outcomeCanceled, attemptSignals{}, 0)
		}
	}()
	start := time.Now()
	err = attempt(actx, ep.url)
	latency = time.Since(start)
	switch {
	case err == nil:
		out = outcomeOK
	case ctx.Err() != nil:
		out = outcomeCanceled
	case actx.Err() != nil:
		cause := context.Cause(actx)
		// An attempt the task deadline cut after it had run half its timeout is evidence
		// of a slow endpoint too; without it, a deadline close to the timeout would keep
		// a hung endpoint's breaker closed.
		if cause == errAttemptTimeout || cause == errTaskDeadline && latency >= p.cfg.Timeout/2 {
			out, sig.overload = outcomeRetryable, true
			err = fmt.Errorf("%s: %w after %s (%v)", ep.url, errAttemptTimeout, latency.Round(time.Millisecond), err)
		} else {
			out = outcomeCanceled
		}
	case Retryable(err):
		out = outcomeRetryable
		if he, ok := errors.AsType[*HTTPError](err); ok {
			sig.overload = he.overload()
			// 429 is the server pacing us, not failing: the limit backs off, the breaker
			// does not eject the endpoint for it.
			sig.throttled = he.StatusCode == http.StatusTooManyRequests
		}
		err = fmt.Errorf("%s: %w", ep.url, err)
	default:
		out = outcomePermanent
	}
	released = true
	p.release(ep, trial, out, sig, latency)
	p.m.attempts.Add(ctx, 1, ep.attrs.outcome[out])
	return out, latency, err
}

// release frees ep's slot and feeds the outcome to its limiter and breaker.
// attemptSignals are what a failed attempt tells the limiter and the breaker.
type attemptSignals struct {
	overload  bool // 429, 503, 504 or a timeout: the limit backs off
	throttled bool // 429: not a failure for the breaker
}

func (p *Pool) release(ep *endpoint, trial bool, out outcome, sig attemptSignals, latency time.Duration) {
	var notes []note
	now := time.Now()
	p.mu.Lock()
	inFlight := ep.inFlight
	ep.inFlight--
	switch out {
	case outcomeOK:
		ep.successes++
		ep.lim.onSuccess(latency, inFlight, now)
		if ep.br.success(trial) {
			ep.lim.reset(ep.initial)
			notes = append(notes, p.stateNote(ep, "trial request succeeded"))
		}
	case outcomeRetryable:
		ep.failures++
		if sig.overload {
			ep.lim.onOverload(latency, now)
		}
		if sig.throttled {
			ep.br.neutral(trial)
		} else if ep.br.failure(trial, now) {
			why := fmt.Sprintf("%d consecutive failures", p.cfg.Breaker.Failures)
			if trial {
				why = "trial request failed"
			}
			notes = append(notes, p.stateNote(ep, why))
			p.startProbeLocked(ep)
		}
	case outcomePermanent:
		ep.permanent++
		ep.br.neutral(trial)
	default:
		ep.br.neutral(trial)
	}
	p.signalLocked()
	p.mu.Unlock()
	p.emit(notes)
}

// note is a log line prepared under the mutex and written after it.
type note struct {
	level slog.Level
	msg   string
	args  []any
}

// stateNote describes ep's breaker state after a change. p.mu is held.
func (p *Pool) stateNote(ep *endpoint, why string) note {
	n := note{level: slog.LevelInfo, args: []any{"endpoint", ep.url, "reason", why}}
	switch ep.br.state {
	case stateOpen:
		n.level, n.msg = slog.LevelWarn, "judge pool: endpoint breaker opened"
		n.args = append(n.args, "cooldown", ep.br.cooldown)
	case stateHalfOpen:
		n.msg = "judge pool: endpoint breaker half-open"
	default:
		n.msg = "judge pool: endpoint breaker closed"
		n.args = append(n.args, "limit", ep.lim.current())
	}
	return n
}

func (p *Pool) emit(notes []note) {
	for _, n := range notes {
		p.log.Log(context.Background(), n.level, n.msg, n.args...)
	}
}

// Stats returns a snapshot of every endpoint, in pool order.
func (p *Pool) Stats() []EndpointStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]EndpointStats, 0, len(p.eps))
	for _, e := range p.eps {
		out = append(out, EndpointStats{
			URL: e.url, InFlight: e.inFlight, Limit: e.lim.current(), Breaker: e.br.state.String(),
			Successes: e.successes, Failures: e.failures, Permanent: e.permanent,
		})
	}
	return out
}

// Close stops the background work (DNS refresh, health probes), makes new and waiting
// Do calls fail with ErrUnavailable ("pool closed"), and waits for running attempts to
// finish until ctx ends; then it cancels them and returns ctx's cause. Calling it again
// waits again and returns nil once drained.
func (p *Pool) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		if p.active == 0 {
			close(p.drained)
		}
		p.signalLocked()
		p.mu.Unlock()
		p.closeCancel(errClosed)
		p.m.close()
	})
	stopped := make(chan struct{})
	go func() {
		<-p.drained
		p.bg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
		if p.ownClient {
			p.client.CloseIdleConnections()
		}
		return nil
	case <-ctx.Done():
		p.abortCancel(errAborted)
		return fmt.Errorf("%s: close: %w", p.prefix, context.Cause(ctx))
	}
}
