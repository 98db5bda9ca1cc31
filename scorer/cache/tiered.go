package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"raterd/internal/telemetry"
)

// Remote is the shared tier behind Tiered; *Redis implements it. Each call should be one
// round trip (Tiered counts one per call) and must honour ctx.
type Remote interface {
	// GetManyTTL returns one Item per key, in order, with the time each hit expires; a nil
	// Value marks a miss. A hit whose Expires is not after now is returned to the caller
	// but not copied into the local tier.
	GetManyTTL(ctx context.Context, keys []string) ([]Item, error)
	// SetMany stores the entries, each with its own TTL.
	SetMany(ctx context.Context, entries []Entry) error
}

// TopologyRefresher is a Remote that can refresh its view of the servers behind it without
// a caller's round trip (a Redis Cluster's slot map). Tiered calls it on every call its open
// breaker skips, so that the trial call after a failover reaches the promoted server.
type TopologyRefresher interface {
	RefreshTopology(ctx context.Context)
}

// Defaults of TieredOptions.
const (
	// DefaultTimeout is TieredOptions.Timeout's default.
	DefaultTimeout = 250 * time.Millisecond
	// DefaultFailureThreshold is TieredOptions.FailureThreshold's default.
	DefaultFailureThreshold = 3
	// DefaultCooldown is TieredOptions.Cooldown's default.
	DefaultCooldown = time.Second
	// DefaultMaxCooldown is TieredOptions.MaxCooldown's default.
	DefaultMaxCooldown = 30 * time.Second
)

// TieredOptions configures a Tiered. Zero values mean the documented defaults.
type TieredOptions struct {
	// Timeout bounds every remote call; Tiered returns at the timeout even when the
	// remote's client does not honour context deadlines. Default 250ms.
	Timeout time.Duration
	// FailureThreshold is the number of consecutive failed remote calls that opens the
	// breaker. Default 3.
	FailureThreshold int
	// Cooldown is how long the remote is skipped once the breaker opens; it doubles with
	// every failed trial after it, up to MaxCooldown, and resets when a trial succeeds.
	// Default 1s.
	Cooldown time.Duration
	// MaxCooldown caps the doubling cooldown; at least Cooldown. Default 30s.
	MaxCooldown time.Duration
	// Telemetry's logger receives one record per breaker state change; its meter
	// provider gets the cache's metrics (meter raterd/scorer/cache). Unset fields mean
	// telemetry.Settings.WithDefaults.
	Telemetry telemetry.Settings
	// Now is the clock for cooldowns, expiries and durations. Default time.Now.
	Now func() time.Time
}

// Validate rejects negative values and a MaxCooldown below Cooldown, naming the field.
func (o TieredOptions) Validate() error {
	switch {
	case o.Timeout < 0:
		return fmt.Errorf("cache: Timeout: %s is negative", o.Timeout)
	case o.FailureThreshold < 0:
		return fmt.Errorf("cache: FailureThreshold: %d is negative", o.FailureThreshold)
	case o.Cooldown < 0:
		return fmt.Errorf("cache: Cooldown: %s is negative", o.Cooldown)
	case o.MaxCooldown < 0:
		return fmt.Errorf("cache: MaxCooldown: %s is negative", o.MaxCooldown)
	}
	if d := o.withDefaults(); d.MaxCooldown < d.Cooldown {
		return fmt.Errorf("cache: MaxCooldown: %s is below Cooldown %s", d.MaxCooldown, d.Cooldown)
	}
	return nil
}

// withDefaults fills zero (and, for NewTiered's sake, invalid) values with the defaults.
func (o TieredOptions) withDefaults() TieredOptions {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.FailureThreshold <= 0 {
		o.FailureThreshold = DefaultFailureThreshold
	}
	if o.Cooldown <= 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.MaxCooldown <= 0 {
		o.MaxCooldown = DefaultMaxCooldown
	}
	o.Telemetry = o.Telemetry.WithDefaults()
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Stats is a snapshot of what a Tiered has done since it was made.
type Stats struct {
	LocalHits    int64 // keys answered by the local tier
	RemoteHits   int64 // keys answered by the remote tier
	Misses       int64 // keys answered by neither, skipped remote lookups included
	Bypasses     int64 // calls (lookups and fills) that skipped the remote or saw it fail
	RoundTrips   int64 // remote calls made, failed ones included
	BytesRead    int64 // payload bytes of remote hits
	BytesWritten int64 // payload bytes of entries the remote stored
	BreakerState string
}

// Tiered is a Cache with a local Memory in front of a shared Remote (Redis). Lookups ask
// the local tier first and the remote, in one call, for the rest; remote hits are copied
// into the local tier until the remote copy expires. Fills go to both tiers.
//
// A circuit breaker guards the remote: every call is bounded by Timeout, and after
// FailureThreshold consecutive failures the remote is skipped for a cooldown (see
// TieredOptions), during which lookups return the local hits with an error wrapping
// ErrBypassed and fills go to the local tier only. A failed call is never retried within
// the call; the next batch is the retry. The caller's context ending is not counted as a
// remote failure. The breaker logs a Warn when it opens and an Info when it closes.
//
// Tiered is safe for concurrent use. Close unregisters its metric callback.
type Tiered struct {
	local  *Memory // nil: no local tier
	remote Remote
	opts   TieredOptions
	br     *breaker
	m      instruments

	localHits, remoteHits, misses, bypasses, roundTrips, bytesRead, bytesWritten atomic.Int64

	closeOnce sync.Once
}

// NewTiered returns a Tiered over local (nil for none) and remote (required). Zero and
// invalid option values take their defaults; call opts.Validate first to reject them.
func NewTiered(local *Memory, remote Remote, opts TieredOptions) *Tiered {
	opts = opts.withDefaults()
	if opts.MaxCooldown < opts.Cooldown {
		opts.MaxCooldown = opts.Cooldown
	}
	t := &Tiered{local: local, remote: remote, opts: opts}
	t.br = newBreaker(opts.FailureThreshold, opts.Cooldown, opts.MaxCooldown, opts.Now, opts.Telemetry.Logger)
	if err := t.m.init(opts.Telemetry.MeterProvider, t.br); err != nil {
		opts.Telemetry.Logger.Warn("cache metrics incomplete", "err", err)
	}
	return t
}

// GetMany implements Cache. With the remote skipped or failing it returns the local hits
// with an error wrapping ErrBypassed; with the caller's context ended, the local hits with
// that error.
func (t *Tiered) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	rest := make([]int, 0, len(keys)) // indexes of keys the local tier missed
	if t.local != nil {
		start := t.opts.Now()
		vals, _ := t.local.GetMany(ctx, keys) // Memory never fails
		t.m.duration.Record(ctx, t.opts.Now().Sub(start).Seconds(), t.m.tierLocal)
		for i, v := range vals {
			if v != nil {
				out[i] = v
			} else {
				rest = append(rest, i)
			}
		}
		t.hit(ctx, &t.localHits, len(keys)-len(rest), t.m.tierLocal)
	} else {
		for i := range keys {
			rest = append(rest, i)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}

	remoteKeys := make([]string, len(rest))
	for n, i := range rest {
		remoteKeys[n] = keys[i]
	}
	var items []Item
	err := t.callRemote(ctx, "lookup", len(remoteKeys), func(ctx context.Context) error {
		var err error
		items, err = t.remote.GetManyTTL(ctx, remoteKeys)
		if err == nil && len(items) != len(remoteKeys) {
			err = fmt.Errorf("remote returned %d items for %d keys", len(items), len(remoteKeys))
		}
		return err
	})
	if err != nil {
		t.miss(ctx, len(rest))
		return out, err
	}

	now := t.opts.Now()
	var fillKeys []string
	var fill []Item
	var hits, bytes int
	for n, it := range items {
		if it.Value == nil {
			continue
		}
		out[rest[n]] = it.Value
		hits++
		bytes += len(it.Value)
		if t.local != nil && it.Expires.After(now) {
			fillKeys = append(fillKeys, remoteKeys[n])
			fill = append(fill, it)
		}
	}
	if len(fill) > 0 {
		t.local.setUntil(fillKeys, fill)
	}
	t.hit(ctx, &t.remoteHits, hits, t.m.tierRemote)
	t.miss(ctx, len(rest)-hits)
	t.bytesRead.Add(int64(bytes))
	t.m.bytes.Add(ctx, int64(bytes), t.m.dirRead)
	return out, nil
}

// SetMany implements Cache: the local tier always, the remote unless its breaker is open.
// With the remote skipped or failing the error wraps ErrBypassed; the local fill stands.
func (t *Tiered) SetMany(ctx context.Context, entries []Entry) error {
	if t.local != nil {
		_ = t.local.SetMany(ctx, entries) // Memory never fails
	}
	remote := make([]Entry, 0, len(entries))
	bytes := 0
	for _, e := range entries {
		if e.TTL > 0 {
			remote = append(remote, e)
			bytes += len(e.Value)
		}
	}
	if len(remote) == 0 {
		return nil
	}
	err := t.callRemote(ctx, "fill", len(remote), func(ctx context.Context) error {
		return t.remote.SetMany(ctx, remote)
	})
	if err != nil {
		return err
	}
	t.bytesWritten.Add(int64(bytes))
	t.m.bytes.Add(ctx, int64(bytes), t.m.dirWrite)
	return nil
}

// Stats returns a snapshot of the counters and the breaker state.
func (t *Tiered) Stats() Stats {
	state, _ := t.br.current()
	return Stats{
		LocalHits:    t.localHits.Load(),
		RemoteHits:   t.remoteHits.Load(),
		Misses:       t.misses.Load(),
		Bypasses:     t.bypasses.Load(),
		RoundTrips:   t.roundTrips.Load(),
		BytesRead:    t.bytesRead.Load(),
		BytesWritten: t.bytesWritten.Load(),
		BreakerState: state.String(),
	}
}

// Close unregisters the breaker-state gauge's callback. It does not close the remote's
// client, which the caller owns. Idempotent.
func (t *Tiered) Close() error {
	var err error
	t.closeOnce.Do(func() {
		if t.m.reg != nil {
			if e := t.m.reg.Unregister(); e != nil {
				err = fmt.Errorf("cache: unregister metrics: %w", e)
			}
		}
	})
	return err
}

// callRemote runs one remote call (op "lookup" or "fill" of n keys) through the breaker
// and the timeout, counting it. A nil error means the remote answered.
func (t *Tiered) callRemote(ctx context.Context, op string, n int, f func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis %s of %d keys not started: %w", op, n, err)
	}
	tk, ok := t.br.allow()
	if !ok {
		_, cool := t.br.current()
		t.bypass(ctx, op, "breaker_open")
		if r, ok := t.remote.(TopologyRefresher); ok {
			r.RefreshTopology(ctx)
		}
		return fmt.Errorf("redis %s of %d keys skipped, breaker open (cooldown %s): %w", op, n, cool, ErrBypassed)
	}
	t.roundTrips.Add(1)
	t.m.roundTrips.Add(ctx, 1, t.m.opAttr(op))
	start := t.opts.Now()
	err := withTimeout(ctx, t.opts.Timeout, f)
	elapsed := t.opts.Now().Sub(start)
	if op == "lookup" {
		t.m.duration.Record(ctx, elapsed.Seconds(), t.m.tierRemote)
	}
	switch {
	case err == nil:
		t.br.success(tk)
		return nil
	case ctx.Err() != nil && (errors.Is(ctx.Err(), context.Canceled) || elapsed < t.opts.Timeout/2):
		// The caller gave up (shutdown, or its own deadline came early): nothing learnt
		// about Redis. A caller deadline that gave Redis most of the timeout still counts
		// as Redis not answering, or a caller with a short deadline would keep the
		// breaker closed on a hung Redis forever.
		t.br.neutral(tk)
		return fmt.Errorf("redis %s of %d keys: %w", op, n, errors.Join(ctx.Err(), err))
	}
	reason := "error"
	if isTimeout(err) {
		reason = "timeout"
	}
	t.br.failure(tk, err)
	t.bypass(ctx, op, reason)
	return fmt.Errorf("redis %s of %d keys failed: %w: %w", op, n, ErrBypassed, err)
}

// withTimeout runs f under a deadline of d and returns by then whether or not f does: a
// client that ignores context deadlines finishes in the background, its result dropped.
func withTimeout(ctx context.Context, d time.Duration, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	done := make(chan error, 1) // buffered: an abandoned f never blocks on send
	go func() { done <- f(cctx) }()
	select {
	case err := <-done:
		return err
	case <-cctx.Done():
		if ctx.Err() != nil {
			return fmt.Errorf("no answer before the caller's deadline: %w", ctx.Err())
		}
		return fmt.Errorf("no answer within %s: %w", d, cctx.Err())
	}
}

// isTimeout reports a deadline that ran out, ours or the client's own I/O timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func (t *Tiered) hit(ctx context.Context, c *atomic.Int64, n int, tier metric.MeasurementOption) {
	if n > 0 {
		c.Add(int64(n))
		t.m.hits.Add(ctx, int64(n), tier)
	}
}

func (t *Tiered) miss(ctx context.Context, n int) {
	if n > 0 {
		t.misses.Add(int64(n))
		t.m.misses.Add(ctx, int64(n))
	}
}

func (t *Tiered) bypass(ctx context.Context, op, reason string) {
	t.bypasses.Add(1)
	t.m.bypass.Add(ctx, 1, metric.WithAttributes(attribute.String("op", op), attribute.String("reason", reason)))
}

// instruments are Tiered's OTel instruments; written once by init, read-only after.
type instruments struct {
	hits, misses, bypass, bytes, roundTrips metric.Int64Counter
	duration                                metric.Float64Histogram
	reg                                     metric.Registration

	tierLocal, tierRemote, dirRead, dirWrite, opLookup, opFill metric.MeasurementOption
}

func (m *instruments) opAttr(op string) metric.MeasurementOption {
	if op == "fill" {
		return m.opFill
	}
	return m.opLookup
}

func (m *instruments) init(mp metric.MeterProvider, br *breaker) error {
	attr := func(k, v string) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String(k, v)))
	}
	m.tierLocal, m.tierRemote = attr("tier", "local"), attr("tier", "redis")
	m.dirRead, m.dirWrite = attr("direction", "read"), attr("direction", "write")
	m.opLookup, m.opFill = attr("op", "lookup"), attr("op", "fill")

	in := telemetry.NewInstruments(mp, "raterd/scorer/cache")
	m.hits = in.Counter("raterd.cache.hits", "{key}", "keys found in the cache, by tier (local, redis)")
	m.misses = in.Counter("raterd.cache.misses", "{key}", "keys found in no tier, skipped remote lookups included")
	m.bypass = in.Counter("raterd.cache.bypass", "{call}",
		"cache calls that went without Redis, by op (lookup, fill) and reason (breaker_open, error, timeout)")
	m.duration = in.Histogram("raterd.cache.lookup.duration", "s", "time to look up a batch in one tier",
		0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
	m.bytes = in.Counter("raterd.cache.bytes", "By", "payload bytes read from and written to Redis, by direction")
	m.roundTrips = in.Counter("raterd.cache.round_trips", "{round_trip}", "pipelined Redis calls, by op (lookup, fill)")
	meter := in.Meter()
	state, err := meter.Int64ObservableGauge("raterd.cache.breaker.state",
		metric.WithDescription("Redis circuit breaker: 0 closed, 1 half-open, 2 open"))
	in.Fail(err)
	if err == nil && state != nil {
		m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			s, _ := br.current()
			o.ObserveInt64(state, int64(s))
			return nil
		}, state)
		in.Fail(err)
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("cache: create instruments: %w", err)
	}
	return nil
}
