package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"raterd/internal/telemetry"
)

// Metric names of a Deliverer. Every metric carries the attribute channel (the
// Notifier's Name).
const (
	// MetricNotifications counts notifications by outcome: delivered, permanent (the
	// channel refused it), exhausted (attempts or time spent), dropped (displaced from a
	// full queue), rejected (enqueued after Close), abandoned (still undelivered when
	// Close's context ended).
	MetricNotifications = "raterd.alert.notifications"
	// MetricNotifyAttempts counts delivery attempts by result: ok or error.
	MetricNotifyAttempts = "raterd.alert.notify.attempts"
	// MetricConsecutiveFailures is a gauge of the channel's failed attempts since its
	// last success.
	MetricConsecutiveFailures = "raterd.alert.channel.consecutive_failures"
	// MetricQueueLength is a gauge of the notifications waiting for delivery.
	MetricQueueLength = "raterd.alert.queue.length"
)

// DeliveryConfig bounds how a Deliverer queues and retries one channel's notifications.
type DeliveryConfig struct {
	// QueueSize is the most notifications that wait for delivery. When the queue is full,
	// the oldest waiting notification is dropped to make room for the new one (counted as
	// dropped and logged): an alert's latest state matters more than an older one, and a
	// lost state is repaired by the alert's next change or re-notification. Default 1000.
	QueueSize int `yaml:"queue_size"`
	// MaxAttempts is the most attempts at one notification. Default 8.
	MaxAttempts int `yaml:"max_attempts"`
	// MaxElapsed bounds the time spent on one notification, from its first attempt: no
	// attempt starts later. Notifications are delivered in order, one at a time (so a
	// resolved alert never overtakes its firing), which makes this also the longest a
	// failing notification holds up the ones behind it. Default 10m.
	MaxElapsed time.Duration `yaml:"max_elapsed"`
	// InitialBackoff is the wait after the first failed attempt; each further failure
	// doubles it, up to MaxBackoff. Each wait is drawn uniformly from [b/2, b) so that
	// channels failing together do not retry together; a receiver's Retry-After
	// lengthens it (up to MaxBackoff). Default 1s.
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	// MaxBackoff caps the wait between attempts. Default 1m.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// AttemptTimeout bounds one attempt, on top of the channel's own timeout. Default 30s.
	AttemptTimeout time.Duration `yaml:"attempt_timeout"`
	// FailingAfter is how many consecutive failed attempts make the channel "failing":
	// a Warn log (repeated each time the count doubles, and an Info log when it
	// recovers), DeliveryStats.Failing, and the raterd.alert.channel.consecutive_failures
	// gauge to alert on. Default 3.
	FailingAfter int `yaml:"failing_after"`
}

// Validate fills defaults and rejects bad values; key prefixes the key names in errors.
func (c *DeliveryConfig) Validate(key string) error {
	setInt(&c.QueueSize, 1000)
	setInt(&c.MaxAttempts, 8)
	setInt(&c.FailingAfter, 3)
	setDur(&c.MaxElapsed, 10*time.Minute)
	setDur(&c.InitialBackoff, time.Second)
	setDur(&c.MaxBackoff, time.Minute)
	setDur(&c.AttemptTimeout, 30*time.Second)
	switch {
	case c.QueueSize < 1 || c.QueueSize > 1_000_000:
		return fmt.Errorf("%s.queue_size: %d is not in 1..1000000", key, c.QueueSize)
	case c.MaxAttempts < 1 || c.MaxAttempts > 1000:
		return fmt.Errorf("%s.max_attempts: %d is not in 1..1000", key, c.MaxAttempts)
	case c.FailingAfter < 1:
		return fmt.Errorf("%s.failing_after: %d is below 1", key, c.FailingAfter)
	case c.MaxElapsed < 0 || c.MaxElapsed > 24*time.Hour:
		return fmt.Errorf("%s.max_elapsed: %s is not in (0, 24h]", key, c.MaxElapsed)
	case c.InitialBackoff < 0:
		return fmt.Errorf("%s.initial_backoff: %s is negative", key, c.InitialBackoff)
	case c.MaxBackoff < c.InitialBackoff:
		return fmt.Errorf("%s.max_backoff: %s is below %s.initial_backoff (%s)", key, c.MaxBackoff, key, c.InitialBackoff)
	case c.MaxBackoff > time.Hour:
		return fmt.Errorf("%s.max_backoff: %s is above 1h", key, c.MaxBackoff)
	case c.AttemptTimeout < 0 || c.AttemptTimeout > 10*time.Minute:
		return fmt.Errorf("%s.attempt_timeout: %s is not in (0, 10m]", key, c.AttemptTimeout)
	}
	return nil
}

// DeliveryOptions are a Deliverer's dependencies.
type DeliveryOptions struct {
	// Telemetry's logger receives the delivery logs (with the attribute
	// channel=<name>); its meter provider gets the delivery metrics (meter
	// raterd/sinks/alert). Unset fields mean telemetry.Settings.WithDefaults.
	Telemetry telemetry.Settings
}

// DeliveryStats are a Deliverer's running totals. Every enqueued notification ends in
// exactly one of Delivered, Permanent, Exhausted, Dropped or Abandoned, or is still
// Queued or in delivery.
type DeliveryStats struct {
	Enqueued  int64 // accepted by Enqueue
	Delivered int64 // accepted by the channel
	Permanent int64 // given up on a permanent error
	Exhausted int64 // given up after MaxAttempts or MaxElapsed
	Dropped   int64 // displaced from a full queue by a newer one
	Abandoned int64 // undelivered when Close's context ended
	Rejected  int64 // Enqueue after Close (not counted in Enqueued)
	Queued    int   // waiting now, not counting one in delivery

	Attempts       int64 // attempts made
	FailedAttempts int64 // attempts that failed
	// ConsecutiveFailures counts failed attempts since the last success; Failing is
	// whether it has reached FailingAfter.
	ConsecutiveFailures int
	Failing             bool
	LastError           string    // the latest failed attempt's error
	LastErrorAt         time.Time // when it failed
	LastDeliveredAt     time.Time
}

// Deliverer delivers one channel's notifications off the caller's path: Enqueue never
// blocks, and a goroutine of its own sends them in order, retrying failures with
// jittered exponential backoff (bounded by attempts and time; not after ErrPermanent),
// and reports a channel that keeps failing. Close drains it.
type Deliverer struct {
	n      Notifier
	cfg    DeliveryConfig
	logger *slog.Logger

	runCtx    context.Context // canceled when Close's context ends: stops the attempt in progress
	cancelRun context.CancelFunc
	wake      chan struct{} // capacity 1: the queue got an item
	closing   chan struct{} // closed by Close: finish the queue, then stop
	done      chan struct{} // closed when the worker has stopped

	mu       sync.Mutex
	queue    []Notification // ring buffer of cfg.QueueSize
	head     int
	size     int
	closed   bool
	dropWarn bool // a drop was logged since the queue last emptied
	stats    DeliveryStats

	closeOnce  sync.Once
	finishOnce sync.Once
	closeErr   error

	mNotifications metric.Int64Counter
	mAttempts      metric.Int64Counter
	outcomeAttrs   map[string]metric.AddOption
	okAttrs        metric.AddOption
	errAttrs       metric.AddOption
	reg            metric.Registration
}

// Outcomes of a notification, as counted in MetricNotifications.
const (
	outcomeDelivered = "delivered"
	outcomePermanent = "permanent"
	outcomeExhausted = "exhausted"
	outcomeDropped   = "dropped"
	outcomeRejected  = "rejected"
	outcomeAbandoned = "abandoned"
)

// NewDeliverer starts delivering to n; cfg is validated (defaults filled) with the key
// n.Name()+".delivery". Close it to stop; if n is an io.Closer, Close closes it too.
func NewDeliverer(n Notifier, cfg DeliveryConfig, opts DeliveryOptions) (*Deliverer, error) {
	if err := cfg.Validate(n.Name() + ".delivery"); err != nil {
		return nil, err
	}
	opts.Telemetry = opts.Telemetry.WithDefaults()
	d := &Deliverer{n: n, cfg: cfg, logger: opts.Telemetry.Logger.With("channel", n.Name()),
		wake: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{}),
		queue: make([]Notification, cfg.QueueSize)}
	if err := d.initMetrics(opts.Telemetry.MeterProvider); err != nil {
		return nil, err
	}
	d.runCtx, d.cancelRun = context.WithCancel(context.Background())
	go d.run()
	return d, nil
}

// initMetrics creates the instruments and registers the gauges' callback.
func (d *Deliverer) initMetrics(mp metric.MeterProvider) error {
	// The scope stays raterd/sinks/alert (the Manager's): dashboards and rules see it as otel_scope_name.
	m := mp.Meter("raterd/sinks/alert")
	ch := attribute.String("channel", d.n.Name())
	var errs []error
	var err error
	d.mNotifications, err = m.Int64Counter(MetricNotifications, metric.WithUnit("{notification}"),
		metric.WithDescription("alert notifications by outcome: delivered, permanent, exhausted, dropped, rejected, abandoned"))
	errs = append(errs, err)
	d.mAttempts, err = m.Int64Counter(MetricNotifyAttempts, metric.WithUnit("{attempt}"),
		metric.WithDescription("alert notification delivery attempts, by result: ok, error"))
	errs = append(errs, err)
	failures, err := m.Int64ObservableGauge(MetricConsecutiveFailures,
		metric.WithDescription("failed delivery attempts of an alert channel since its last success"))
	errs = append(errs, err)
	queued, err := m.Int64ObservableGauge(MetricQueueLength, metric.WithUnit("{notification}"),
		metric.WithDescription("alert notifications waiting for delivery"))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("alert channel %s: metrics: %w", d.n.Name(), err)
	}
	d.outcomeAttrs = map[string]metric.AddOption{}
	for _, o := range []string{outcomeDelivered, outcomePermanent, outcomeExhausted, outcomeDropped, outcomeRejected, outcomeAbandoned} {
		d.outcomeAttrs[o] = metric.WithAttributeSet(attribute.NewSet(ch, attribute.String("outcome", o)))
	}
	d.okAttrs = metric.WithAttributeSet(attribute.NewSet(ch, attribute.String("result", "ok")))
	d.errAttrs = metric.WithAttributeSet(attribute.NewSet(ch, attribute.String("result", "error")))
	plain := metric.WithAttributeSet(attribute.NewSet(ch))
	d.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		d.mu.Lock()
		cf, q := d.stats.ConsecutiveFailures, d.size
		d.mu.Unlock()
		o.ObserveInt64(failures, int64(cf), plain)
		o.ObserveInt64(queued, int64(q), plain)
		return nil
	}, failures, queued)
	if err != nil {
		return fmt.Errorf("alert channel %s: metrics: %w", d.n.Name(), err)
	}
	return nil
}

// Name is the channel's name.
func (d *Deliverer) Name() string { return d.n.Name() }

// Enqueue queues n for delivery and returns at once. It returns false when n displaced
// the oldest waiting notification from a full queue (which is then counted as dropped),
// or when the Deliverer is closed (n is then rejected).
func (d *Deliverer) Enqueue(n Notification) bool {
	d.mu.Lock()
	if d.closed {
		d.stats.Rejected++
		d.mu.Unlock()
		d.mNotifications.Add(context.Background(), 1, d.outcomeAttrs[outcomeRejected])
		d.logger.Warn("alert notification after close; not delivered", "alert_id", n.AlertID, "state", n.State)
		return false
	}
	d.stats.Enqueued++
	var dropped *Notification
	if d.size == len(d.queue) {
		old := d.queue[d.head]
		dropped = &old
		d.head = (d.head + 1) % len(d.queue)
		d.size--
		d.stats.Dropped++
	}
	d.queue[(d.head+d.size)%len(d.queue)] = n
	d.size++
	logDrop := dropped != nil && !d.dropWarn
	if logDrop {
		d.dropWarn = true
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	if dropped == nil {
		return true
	}
	d.mNotifications.Add(context.Background(), 1, d.outcomeAttrs[outcomeDropped])
	if logDrop {
		d.logger.Warn("alert channel queue full: dropping the oldest notifications (logged once until the queue empties)",
			"queue_size", len(d.queue), "alert_id", dropped.AlertID, "state", dropped.State)
	}
	return false
}

// Stats returns the running totals.
func (d *Deliverer) Stats() DeliveryStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Queued = d.size
	s.Failing = s.ConsecutiveFailures >= d.cfg.FailingAfter
	return s
}

// Close stops accepting notifications and delivers the queued ones, retries included,
// until ctx ends; then it stops the attempt in progress, counts what is left as
// abandoned, and returns an error saying how many. It closes the Notifier if that is an
// io.Closer. Close may be called more than once; later calls wait for the first and
// return its result. The Notifier must return promptly once its context is canceled
// (all channels in this package do), or Close waits for it.
func (d *Deliverer) Close(ctx context.Context) error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		close(d.closing)
	})
	select {
	case <-d.done:
	case <-ctx.Done():
		d.cancelRun() // the worker counts the notification in delivery as abandoned
		<-d.done      // channels honor the context, so this is prompt
	}
	d.finishOnce.Do(func() {
		d.cancelRun()
		d.mu.Lock()
		left := d.size
		d.stats.Abandoned += int64(left)
		abandoned := d.stats.Abandoned
		d.size = 0
		clear(d.queue)
		d.mu.Unlock()
		if left > 0 {
			d.mNotifications.Add(context.Background(), int64(left), d.outcomeAttrs[outcomeAbandoned])
		}
		var errs []error
		if abandoned > 0 {
			errs = append(errs, fmt.Errorf("alert channel %s: %d notifications not delivered before close: %w", d.n.Name(), abandoned, ctx.Err()))
			d.logger.Warn("alert channel closed with notifications undelivered", "abandoned", abandoned)
		}
		if c, ok := d.n.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("alert channel %s: close: %w", d.n.Name(), err))
			}
		}
		if d.reg != nil {
			_ = d.reg.Unregister()
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// run is the worker: it owns the delivery in progress.
func (d *Deliverer) run() {
	defer close(d.done)
	for {
		n, ok := d.next()
		if !ok {
			return
		}
		d.deliver(n)
	}
}

// next waits for a queued notification; false once closing with an empty queue, or
// when the run is canceled.
func (d *Deliverer) next() (Notification, bool) {
	for {
		if d.runCtx.Err() != nil {
			return Notification{}, false
		}
		d.mu.Lock()
		if d.size > 0 {
			n := d.queue[d.head]
			d.queue[d.head] = Notification{}
			d.head = (d.head + 1) % len(d.queue)
			d.size--
			if d.size == 0 {
				d.dropWarn = false
			}
			d.mu.Unlock()
			return n, true
		}
		d.dropWarn = false
		d.mu.Unlock()
		select {
		case <-d.wake:
		case <-d.closing:
			// Closing: take what is still queued, then stop.
			d.mu.Lock()
			empty := d.size == 0
			d.mu.Unlock()
			if empty {
				return Notification{}, false
			}
		case <-d.runCtx.Done():
		}
	}
}

// deliver makes the attempts at one notification.
func (d *Deliverer) deliver(n Notification) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(d.runCtx, d.cfg.AttemptTimeout)
		err := d.n.Notify(actx, n)
		cancel()
		if err == nil {
			d.succeeded(n, attempt)
			return
		}
		if d.runCtx.Err() != nil {
			// Cut short by Close: not the channel's fault.
			d.finish(outcomeAbandoned, n, attempt, err)
			return
		}
		d.failed(err)
		if errors.Is(err, ErrPermanent) {
			d.finish(outcomePermanent, n, attempt, err)
			return
		}
		wait := d.backoff(attempt, err)
		if attempt >= d.cfg.MaxAttempts || time.Since(start)+wait > d.cfg.MaxElapsed {
			d.finish(outcomeExhausted, n, attempt, err)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.runCtx.Done():
			t.Stop()
			d.finish(outcomeAbandoned, n, attempt, err)
			return
		}
	}
}

// backoff is the wait after the attempt-th failed attempt: InitialBackoff doubled per
// earlier failure, capped at MaxBackoff, drawn from [b/2, b); at least a Retry-After
// the receiver gave (capped at MaxBackoff too).
func (d *Deliverer) backoff(attempt int, err error) time.Duration {
	b := d.cfg.InitialBackoff
	for i := 1; i < attempt && b < d.cfg.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.cfg.MaxBackoff)
	wait := b
	if half := b / 2; half > 0 {
		wait = half + rand.N(b-half)
	}
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > wait {
		wait = min(se.RetryAfter, d.cfg.MaxBackoff)
	}
	return wait
}

// succeeded counts a delivery and logs a recovery from failing.
func (d *Deliverer) succeeded(n Notification, attempts int) {
	d.mAttempts.Add(context.Background(), 1, d.okAttrs)
	d.mNotifications.Add(context.Background(), 1, d.outcomeAttrs[outcomeDelivered])
	d.mu.Lock()
	d.stats.Attempts++
	d.stats.Delivered++
	d.stats.LastDeliveredAt = time.Now()
	prev := d.stats.ConsecutiveFailures
	d.stats.ConsecutiveFailures = 0
	d.mu.Unlock()
	if prev >= d.cfg.FailingAfter {
		d.logger.Info("alert channel recovered", "failed_attempts", prev, "alert_id", n.AlertID, "attempts", attempts)
	}
}

// failed counts a failed attempt and logs when the channel is (still) failing: at
// FailingAfter consecutive failures, then each time the count doubles.
func (d *Deliverer) failed(err error) {
	d.mAttempts.Add(context.Background(), 1, d.errAttrs)
	d.mu.Lock()
	d.stats.Attempts++
	d.stats.FailedAttempts++
	d.stats.ConsecutiveFailures++
	d.stats.LastError, d.stats.LastErrorAt = err.Error(), time.Now()
	c := d.stats.ConsecutiveFailures
	d.mu.Unlock()
	if k := d.cfg.FailingAfter; c >= k && c%k == 0 && notifyPow2(c/k) {
		d.logger.Warn("alert channel failing", "consecutive_failures", c, "err", err)
	}
}

func notifyPow2(x int) bool { return x > 0 && x&(x-1) == 0 }

// finish counts n as given up with outcome and logs why.
func (d *Deliverer) finish(outcome string, n Notification, attempts int, err error) {
	d.mNotifications.Add(context.Background(), 1, d.outcomeAttrs[outcome])
	d.mu.Lock()
	switch outcome {
	case outcomePermanent:
		d.stats.Permanent++
	case outcomeExhausted:
		d.stats.Exhausted++
	case outcomeAbandoned:
		d.stats.Abandoned++
	}
	d.mu.Unlock()
	if outcome == outcomeAbandoned {
		return // Close reports the total
	}
	d.logger.Warn("alert notification not delivered", "outcome", outcome, "alert_id", n.AlertID,
		"rule", n.Rule, "state", n.State, "attempts", attempts, "err", err)
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
