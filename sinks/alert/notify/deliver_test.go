package notify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"raterd/internal/telemetry"
	"raterd/sinks/alert/notify"
)

// fakeDeliveryNotifier is a recording fake Notifier: the i-th call (0-based) returns
// script(i); with hold set, every call first waits for a value on hold (or its context).
type fakeDeliveryNotifier struct {
	script  func(call int) error
	hold    chan struct{}
	started chan struct{} // receives once per call, when set

	mu     sync.Mutex
	calls  []notify.Notification
	closes int
}

func (f *fakeDeliveryNotifier) Name() string { return "fake" }

func (f *fakeDeliveryNotifier) Notify(ctx context.Context, n notify.Notification) error {
	f.mu.Lock()
	i := len(f.calls)
	f.calls = append(f.calls, n)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.script == nil {
		return nil
	}
	return f.script(i)
}

func (f *fakeDeliveryNotifier) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closes++
	return nil
}

func (f *fakeDeliveryNotifier) recorded() []notify.Notification {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]notify.Notification(nil), f.calls...)
}

// deliveryFixture builds a Deliverer on f with a metric reader and a log buffer.
type deliveryFixture struct {
	d      *notify.Deliverer
	reader *sdkmetric.ManualReader
	logs   *deliveryLogBuffer
}

type deliveryLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *deliveryLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *deliveryLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newDeliveryFixture(t *testing.T, f *fakeDeliveryNotifier, cfg notify.DeliveryConfig) *deliveryFixture {
	t.Helper()
	fx := &deliveryFixture{reader: sdkmetric.NewManualReader(), logs: &deliveryLogBuffer{}}
	d, err := notify.NewDeliverer(f, cfg, notify.DeliveryOptions{
		Telemetry: telemetry.Settings{
			Logger:        slog.New(slog.NewTextHandler(fx.logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
			MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(fx.reader)),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	fx.d = d
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Close(ctx)
	})
	return fx
}

// metric returns the value of the named sum or gauge at the data point whose
// attributes include want.
func (fx *deliveryFixture) metric(t *testing.T, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := fx.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var points []metricdata.DataPoint[int64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				points = d.DataPoints
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			}
		}
	}
	var total int64
	for _, p := range points {
		match := true
		for _, kv := range want {
			if v, ok := p.Attributes.Value(kv.Key); !ok || v != kv.Value {
				match = false
			}
		}
		if match {
			total += p.Value
		}
	}
	return total
}

// deliveryFast retries quickly, for tests.
func deliveryFast() notify.DeliveryConfig {
	return notify.DeliveryConfig{InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, AttemptTimeout: time.Second}
}

func deliveryNumbered(i int) notify.Notification {
	n := notifySample(notify.StateFiring)
	n.AlertID = fmt.Sprintf("alert-%03d", i)
	return n
}

// deliveryAccounting: every enqueued notification has exactly one outcome.
func deliveryAccounting(t *testing.T, s notify.DeliveryStats) {
	t.Helper()
	if got := s.Delivered + s.Permanent + s.Exhausted + s.Dropped + s.Abandoned + int64(s.Queued); got != s.Enqueued {
		t.Errorf("outcomes add up to %d, enqueued %d: %+v", got, s.Enqueued, s)
	}
}

func deliveryClose(t *testing.T, d *notify.Deliverer, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.Close(ctx)
}

func TestDelivererInOrder(t *testing.T) {
	f := &fakeDeliveryNotifier{}
	fx := newDeliveryFixture(t, f, deliveryFast())
	for i := range 50 {
		if !fx.d.Enqueue(deliveryNumbered(i)) {
			t.Fatalf("Enqueue %d dropped with an empty queue of 1000", i)
		}
	}
	if err := deliveryClose(t, fx.d, 5*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := f.recorded()
	if len(calls) != 50 {
		t.Fatalf("%d deliveries, want 50", len(calls))
	}
	for i, n := range calls {
		if n.AlertID != deliveryNumbered(i).AlertID {
			t.Fatalf("delivery %d is %s: out of order", i, n.AlertID)
		}
	}
	s := fx.d.Stats()
	if s.Enqueued != 50 || s.Delivered != 50 || s.Attempts != 50 || s.FailedAttempts != 0 || s.LastDeliveredAt.IsZero() {
		t.Errorf("stats %+v", s)
	}
	deliveryAccounting(t, s)
	if f.closes != 1 {
		t.Errorf("notifier closed %d times, want 1", f.closes)
	}
	if got := fx.metric(t, notify.MetricNotifications, attribute.String("outcome", "delivered"), attribute.String("channel", "fake")); got != 50 {
		t.Errorf("%s{outcome=delivered} = %d, want 50", notify.MetricNotifications, got)
	}
}

func TestDelivererRetries(t *testing.T) {
	transient := errors.New("connection refused")
	t.Run("transient then ok", func(t *testing.T) {
		f := &fakeDeliveryNotifier{script: func(i int) error {
			if i < 2 {
				return transient
			}
			return nil
		}}
		fx := newDeliveryFixture(t, f, deliveryFast())
		fx.d.Enqueue(deliveryNumbered(0))
		if err := deliveryClose(t, fx.d, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		s := fx.d.Stats()
		if s.Delivered != 1 || s.Attempts != 3 || s.FailedAttempts != 2 || s.ConsecutiveFailures != 0 || s.LastError != transient.Error() {
			t.Errorf("stats %+v", s)
		}
		deliveryAccounting(t, s)
	})
	t.Run("permanent stops at once", func(t *testing.T) {
		f := &fakeDeliveryNotifier{script: func(int) error { return fmt.Errorf("receiver: %w", notify.ErrPermanent) }}
		fx := newDeliveryFixture(t, f, deliveryFast())
		fx.d.Enqueue(deliveryNumbered(0))
		fx.d.Enqueue(deliveryNumbered(1))
		if err := deliveryClose(t, fx.d, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		s := fx.d.Stats()
		if s.Permanent != 2 || s.Attempts != 2 || s.Delivered != 0 {
			t.Errorf("stats %+v, want 2 permanent after one attempt each", s)
		}
		deliveryAccounting(t, s)
		if !strings.Contains(fx.logs.String(), "alert notification not delivered") {
			t.Errorf("no log of the lost notification:\n%s", fx.logs)
		}
		if got := fx.metric(t, notify.MetricNotifications, attribute.String("outcome", "permanent")); got != 2 {
			t.Errorf("%s{outcome=permanent} = %d, want 2", notify.MetricNotifications, got)
		}
	})
	t.Run("exhausted after max_attempts", func(t *testing.T) {
		f := &fakeDeliveryNotifier{script: func(int) error { return transient }}
		cfg := deliveryFast()
		cfg.MaxAttempts = 4
		fx := newDeliveryFixture(t, f, cfg)
		fx.d.Enqueue(deliveryNumbered(0))
		if err := deliveryClose(t, fx.d, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if s := fx.d.Stats(); s.Exhausted != 1 || s.Attempts != 4 {
			t.Errorf("stats %+v, want exhausted after 4 attempts", s)
		}
	})
	t.Run("exhausted after max_elapsed", func(t *testing.T) {
		f := &fakeDeliveryNotifier{script: func(int) error { return transient }}
		cfg := notify.DeliveryConfig{MaxAttempts: 1000, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			MaxElapsed: 100 * time.Millisecond}
		fx := newDeliveryFixture(t, f, cfg)
		fx.d.Enqueue(deliveryNumbered(0))
		if err := deliveryClose(t, fx.d, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		s := fx.d.Stats()
		// Each wait is at least 10ms and none may end past 100ms, so at most 10 waits:
		// max_elapsed, not max_attempts (1000), ended it, however slow the machine.
		if s.Exhausted != 1 || s.Attempts < 1 || s.Attempts > 11 {
			t.Errorf("stats %+v, want exhausted after 1..11 attempts", s)
		}
	})
}

// TestDelivererRetryAfter: a receiver's 429 with Retry-After is retried (the wait itself
// is TestDelivererBackoffWaits's, on the computed durations rather than a clock).
func TestDelivererRetryAfter(t *testing.T) {
	ra := &fakeDeliveryNotifier{script: func(i int) error {
		if i == 0 {
			return &notify.StatusError{Channel: "fake", Status: 429, RetryAfter: 5 * time.Millisecond}
		}
		return nil
	}}
	fx := newDeliveryFixture(t, ra, notify.DeliveryConfig{InitialBackoff: time.Millisecond, MaxBackoff: time.Second})
	fx.d.Enqueue(deliveryNumbered(0))
	if err := deliveryClose(t, fx.d, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if s := fx.d.Stats(); s.Delivered != 1 || s.Attempts != 2 || s.FailedAttempts != 1 {
		t.Errorf("stats %+v, want delivered on the second attempt", s)
	}
}

// TestDelivererNeverBlocks: with the channel stuck, Enqueue still returns at once; a
// full queue drops its oldest notifications, which is counted and logged once.
func TestDelivererNeverBlocks(t *testing.T) {
	f := &fakeDeliveryNotifier{hold: make(chan struct{}), started: make(chan struct{}, 2000)}
	cfg := deliveryFast()
	cfg.QueueSize = 10
	fx := newDeliveryFixture(t, f, cfg)
	fx.d.Enqueue(deliveryNumbered(0))
	<-f.started // notification 0 is in delivery, stuck
	done := make(chan int)
	go func() {
		displaced := 0
		for i := 1; i <= 1000; i++ {
			if !fx.d.Enqueue(deliveryNumbered(i)) {
				displaced++
			}
		}
		done <- displaced
	}()
	select {
	case displaced := <-done:
		if displaced != 990 {
			t.Errorf("%d Enqueue calls reported a drop, want 990", displaced)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Enqueue blocked while the channel was stuck")
	}
	s := fx.d.Stats()
	if s.Queued != 10 || s.Dropped != 990 || s.Enqueued != 1001 {
		t.Errorf("stats %+v, want 10 queued, 990 dropped", s)
	}
	if got := fx.metric(t, notify.MetricQueueLength); got != 10 {
		t.Errorf("%s = %d, want 10", notify.MetricQueueLength, got)
	}
	if got := fx.metric(t, notify.MetricNotifications, attribute.String("outcome", "dropped")); got != 990 {
		t.Errorf("%s{outcome=dropped} = %d, want 990", notify.MetricNotifications, got)
	}
	if c := strings.Count(fx.logs.String(), "queue full"); c != 1 {
		t.Errorf("the drops were logged %d times, want once:\n%s", c, fx.logs)
	}
	close(f.hold) // release: the stuck one and the newest 10 are delivered
	if err := deliveryClose(t, fx.d, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	calls := f.recorded()
	var ids []string
	for _, n := range calls {
		ids = append(ids, n.AlertID)
	}
	want := []string{"alert-000"}
	for i := 991; i <= 1000; i++ {
		want = append(want, deliveryNumbered(i).AlertID)
	}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Errorf("delivered %v, want the first (in delivery) and the newest 10 %v", ids, want)
	}
	deliveryAccounting(t, fx.d.Stats())
}

// TestDelivererFailingChannel: consecutive failures are counted and reported — Warn at
// failing_after, again as the count doubles, Info on recovery — in Stats and metrics.
func TestDelivererFailingChannel(t *testing.T) {
	var mu sync.Mutex
	healthy := false
	f := &fakeDeliveryNotifier{script: func(int) error {
		mu.Lock()
		defer mu.Unlock()
		if healthy {
			return nil
		}
		return errors.New("dial tcp: connection refused")
	}}
	cfg := deliveryFast()
	cfg.MaxAttempts, cfg.FailingAfter = 4, 3
	fx := newDeliveryFixture(t, f, cfg)
	for i := range 3 {
		fx.d.Enqueue(deliveryNumbered(i)) // 3 × 4 failed attempts
	}
	deliveryWaitFor(t, func() bool { return fx.d.Stats().Exhausted == 3 })
	s := fx.d.Stats()
	if s.ConsecutiveFailures != 12 || !s.Failing || s.FailedAttempts != 12 || !strings.Contains(s.LastError, "connection refused") {
		t.Errorf("stats %+v, want 12 consecutive failures, failing", s)
	}
	if got := fx.metric(t, notify.MetricConsecutiveFailures, attribute.String("channel", "fake")); got != 12 {
		t.Errorf("%s = %d, want 12", notify.MetricConsecutiveFailures, got)
	}
	if got := fx.metric(t, notify.MetricNotifyAttempts, attribute.String("result", "error")); got != 12 {
		t.Errorf("%s{result=error} = %d, want 12", notify.MetricNotifyAttempts, got)
	}
	// Warned at 3, 6 and 12 consecutive failures.
	if c := strings.Count(fx.logs.String(), "alert channel failing"); c != 3 {
		t.Errorf("%d failing warnings, want 3 (at 3, 6, 12):\n%s", c, fx.logs)
	}
	if !strings.Contains(fx.logs.String(), "level=WARN") {
		t.Error("failing channel not logged at Warn")
	}

	mu.Lock()
	healthy = true
	mu.Unlock()
	fx.d.Enqueue(deliveryNumbered(3))
	deliveryWaitFor(t, func() bool { return fx.d.Stats().Delivered == 1 })
	if s := fx.d.Stats(); s.Failing || s.ConsecutiveFailures != 0 {
		t.Errorf("after a success: %+v, want not failing", s)
	}
	if !strings.Contains(fx.logs.String(), "alert channel recovered") {
		t.Error("recovery not logged")
	}
}

// TestDelivererCloseDeadline: Close drains until its context ends, then abandons the
// rest, says so, and refuses later notifications.
func TestDelivererCloseDeadline(t *testing.T) {
	f := &fakeDeliveryNotifier{hold: make(chan struct{}), started: make(chan struct{}, 10)}
	fx := newDeliveryFixture(t, f, deliveryFast())
	for i := range 5 {
		fx.d.Enqueue(deliveryNumbered(i))
	}
	<-f.started
	// Close returns once its context ends although the channel never answers (the
	// attempt in progress is canceled); a generous deadline catches a hang.
	closed := make(chan error, 1)
	go func() { closed <- deliveryClose(t, fx.d, 100*time.Millisecond) }()
	var err error
	select {
	case err = <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return after its context ended")
	}
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "5 notifications not delivered") {
		t.Errorf("Close = %v, want 5 abandoned", err)
	}
	s := fx.d.Stats()
	if s.Abandoned != 5 || s.Queued != 0 || s.FailedAttempts != 0 {
		t.Errorf("stats %+v, want 5 abandoned and no failure blamed on the channel", s)
	}
	deliveryAccounting(t, s)
	if fx.d.Enqueue(deliveryNumbered(9)) {
		t.Error("Enqueue after Close accepted")
	}
	if s := fx.d.Stats(); s.Rejected != 1 {
		t.Errorf("rejected %d, want 1", s.Rejected)
	}
	if err2 := deliveryClose(t, fx.d, time.Second); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second Close = %v, want the first's result", err2)
	}
	if f.closes != 1 {
		t.Errorf("notifier closed %d times, want 1", f.closes)
	}
}

// TestDelivererCloseDrains: Close waits for retries in progress when there is time.
func TestDelivererCloseDrains(t *testing.T) {
	f := &fakeDeliveryNotifier{script: func(i int) error {
		if i%2 == 0 {
			return errors.New("flaky")
		}
		return nil
	}}
	cfg := deliveryFast()
	cfg.InitialBackoff, cfg.MaxBackoff = 10*time.Millisecond, 10*time.Millisecond
	fx := newDeliveryFixture(t, f, cfg)
	for i := range 10 {
		fx.d.Enqueue(deliveryNumbered(i))
	}
	if err := deliveryClose(t, fx.d, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if s := fx.d.Stats(); s.Delivered != 10 || s.Attempts != 20 {
		t.Errorf("stats %+v, want all 10 delivered on their second attempt", s)
	}
}

func TestDeliveryConfigValidate(t *testing.T) {
	var c notify.DeliveryConfig
	if err := c.Validate("ops.delivery"); err != nil {
		t.Fatal(err)
	}
	want := notify.DeliveryConfig{QueueSize: 1000, MaxAttempts: 8, MaxElapsed: 10 * time.Minute, InitialBackoff: time.Second,
		MaxBackoff: time.Minute, AttemptTimeout: 30 * time.Second, FailingAfter: 3}
	if c != want {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
	for _, c := range []struct {
		cfg notify.DeliveryConfig
		key string
	}{
		{notify.DeliveryConfig{QueueSize: -1}, "d.queue_size"},
		{notify.DeliveryConfig{MaxAttempts: -2}, "d.max_attempts"},
		{notify.DeliveryConfig{FailingAfter: -1}, "d.failing_after"},
		{notify.DeliveryConfig{MaxElapsed: -time.Second}, "d.max_elapsed"},
		{notify.DeliveryConfig{InitialBackoff: -time.Second}, "d.initial_backoff"},
		{notify.DeliveryConfig{InitialBackoff: time.Minute, MaxBackoff: time.Second}, "d.max_backoff"},
		{notify.DeliveryConfig{AttemptTimeout: -time.Second}, "d.attempt_timeout"},
	} {
		if err := c.cfg.Validate("d"); err == nil || !strings.HasPrefix(err.Error(), c.key+":") {
			t.Errorf("%+v: Validate = %v, want an error naming %s", c.cfg, err, c.key)
		}
	}
	if _, err := notify.NewDeliverer(&fakeDeliveryNotifier{}, notify.DeliveryConfig{QueueSize: -1}, notify.DeliveryOptions{}); err == nil ||
		!strings.HasPrefix(err.Error(), "fake.delivery.queue_size:") {
		t.Errorf("NewDeliverer = %v, want an error naming fake.delivery.queue_size", err)
	}
}

func deliveryWaitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
