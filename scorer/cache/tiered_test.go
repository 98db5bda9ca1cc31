package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

var errRefused = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

// harness is a Tiered over a Memory and a fakeRemote sharing one fake clock, with its
// logs and metrics recorded.
type harness struct {
	clock  *fakeClock
	local  *Memory
	remote *fakeRemote
	tiered *Tiered
	logs   *recordingHandler
	reader *sdkmetric.ManualReader
}

func newHarness(t *testing.T, opts TieredOptions, withLocal bool) *harness {
	t.Helper()
	h := &harness{clock: newFakeClock(), logs: &recordingHandler{}, reader: sdkmetric.NewManualReader()}
	h.remote = newFakeRemote(h.clock.Now)
	if withLocal {
		h.local = NewMemory(1 << 20)
		h.local.now = h.clock.Now
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second // a slow -race run must not time out by accident
	}
	opts.Now = h.clock.Now
	opts.Telemetry.Logger = slog.New(h.logs)
	opts.Telemetry.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	h.tiered = NewTiered(h.local, h.remote, opts)
	t.Cleanup(func() {
		if err := h.tiered.Close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

func (h *harness) get(t *testing.T, keys ...string) ([]string, error) {
	t.Helper()
	vals, err := h.tiered.GetMany(context.Background(), keys)
	if len(vals) != len(keys) {
		t.Fatalf("GetMany returned %d values for %d keys (err %v)", len(vals), len(keys), err)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		if v == nil {
			out[i] = "<miss>"
		} else {
			out[i] = string(v)
		}
	}
	return out, err
}

func (h *harness) state() string { return h.tiered.Stats().BreakerState }

func equal(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

func TestTieredLooksUpLocalFirstThenRemoteInOneCall(t *testing.T) {
	h := newHarness(t, TieredOptions{}, true)
	ctx := context.Background()
	_ = h.local.SetMany(ctx, []Entry{{Key: "l1", Value: []byte("L1"), TTL: time.Hour}, {Key: "both", Value: []byte("local"), TTL: time.Hour}})
	h.remote.put("r1", "R1", time.Hour)
	h.remote.put("r2", "R2", time.Hour)
	h.remote.put("both", "remote", time.Hour)

	got, err := h.get(t, "l1", "r1", "miss", "both", "r2")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"L1", "R1", "<miss>", "local", "R2"}; !equal(got, want) {
		t.Fatalf("values = %q, want %q", got, want)
	}
	if gets, _ := h.remote.calls(); gets != 1 {
		t.Fatalf("remote lookups = %d for one GetMany, want 1", gets)
	}
	if want := []string{"r1", "miss", "r2"}; !equal(h.remote.lastGet(), want) {
		t.Fatalf("remote asked for %q, want only the local misses %q", h.remote.lastGet(), want)
	}
	// The remote hits were copied into the local tier: a repeat needs only the miss.
	if got, _ := h.get(t, "r1", "r2", "miss"); !equal(got, []string{"R1", "R2", "<miss>"}) {
		t.Fatalf("repeat = %q", got)
	}
	if gets, _ := h.remote.calls(); gets != 2 || !equal(h.remote.lastGet(), []string{"miss"}) {
		t.Fatalf("repeat: %d remote lookups, last %q; want 2, [miss]", gets, h.remote.lastGet())
	}
	// All local: no remote call at all.
	if _, err := h.get(t, "l1", "r1"); err != nil {
		t.Fatal(err)
	}
	if gets, _ := h.remote.calls(); gets != 2 {
		t.Fatalf("all-local lookup called the remote (%d calls)", gets)
	}
	st := h.tiered.Stats()
	want := Stats{LocalHits: 2 + 2 + 2, RemoteHits: 2, Misses: 2, RoundTrips: 2, BytesRead: 4, BreakerState: "closed"}
	if st != want {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}
}

func TestTieredBackfillExpiresWhenTheRemoteCopyDoes(t *testing.T) {
	h := newHarness(t, TieredOptions{}, true)
	h.remote.put("k", "v", 10*time.Second)
	h.clock.Advance(4 * time.Second) // 6s left on the remote copy
	if got, err := h.get(t, "k"); err != nil || got[0] != "v" {
		t.Fatalf("lookup = %q, %v", got, err)
	}
	ctx := context.Background()
	h.clock.Advance(6 * time.Second) // exactly the remote expiry: still live
	if v, _ := h.local.GetMany(ctx, []string{"k"}); v[0] == nil {
		t.Fatal("local copy gone before the remote expiry")
	}
	h.clock.Advance(time.Nanosecond)
	if v, _ := h.local.GetMany(ctx, []string{"k"}); v[0] != nil {
		t.Fatal("local copy outlived the remote one")
	}
}

func TestTieredFillsBothTiers(t *testing.T) {
	h := newHarness(t, TieredOptions{}, true)
	entries := []Entry{
		{Key: "a", Value: []byte("AA"), TTL: time.Minute},
		{Key: "b", Value: []byte("BBB"), TTL: time.Hour},
		{Key: "zero", Value: []byte("Z"), TTL: 0}, // not stored anywhere
	}
	if err := h.tiered.SetMany(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	if v, _ := h.local.GetMany(context.Background(), []string{"a", "b", "zero"}); string(v[0]) != "AA" || string(v[1]) != "BBB" || v[2] != nil {
		t.Fatalf("local after fill = %q", v)
	}
	_, sets := h.remote.calls()
	if sets != 1 || len(h.remote.sets[0]) != 2 || h.remote.sets[0][0].TTL != time.Minute || h.remote.sets[0][1].TTL != time.Hour {
		t.Fatalf("remote fills = %+v, want one call with a and b and their TTLs", h.remote.sets)
	}
	if st := h.tiered.Stats(); st.BytesWritten != 5 || st.RoundTrips != 1 {
		t.Fatalf("Stats = %+v", st)
	}
	if err := h.tiered.SetMany(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, sets := h.remote.calls(); sets != 1 {
		t.Fatal("an empty fill called the remote")
	}
}

func TestTieredWithoutLocalTier(t *testing.T) {
	h := newHarness(t, TieredOptions{}, false)
	h.remote.put("r", "R", time.Hour)
	if got, err := h.get(t, "r", "x"); err != nil || !equal(got, []string{"R", "<miss>"}) {
		t.Fatalf("lookup = %q, %v", got, err)
	}
	if err := h.tiered.SetMany(context.Background(), []Entry{{Key: "x", Value: []byte("X"), TTL: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.get(t, "x"); got[0] != "X" {
		t.Fatalf("after fill = %q", got)
	}
	h.remote.setBehaviour(func(context.Context) error { return errRefused })
	got, err := h.get(t, "r")
	if !errors.Is(err, ErrBypassed) || got[0] != "<miss>" {
		t.Fatalf("failing remote: %q, %v; want a miss and ErrBypassed", got, err)
	}
}

func TestTieredBypassReturnsLocalHitsWithErrBypassed(t *testing.T) {
	h := newHarness(t, TieredOptions{}, true)
	_ = h.local.SetMany(context.Background(), []Entry{{Key: "l", Value: []byte("L"), TTL: time.Hour}})
	h.remote.put("r", "R", time.Hour)
	h.remote.setBehaviour(func(context.Context) error { return errRefused })
	got, err := h.get(t, "l", "r")
	if !errors.Is(err, ErrBypassed) || !errors.Is(err, errRefused) {
		t.Fatalf("err = %v, want ErrBypassed wrapping the cause", err)
	}
	if !equal(got, []string{"L", "<miss>"}) {
		t.Fatalf("values = %q, want the local hit and a miss", got)
	}
	err = h.tiered.SetMany(context.Background(), []Entry{{Key: "n", Value: []byte("N"), TTL: time.Hour}})
	if !errors.Is(err, ErrBypassed) {
		t.Fatalf("fill err = %v, want ErrBypassed", err)
	}
	if v, _ := h.local.GetMany(context.Background(), []string{"n"}); v[0] == nil {
		t.Fatal("fill did not reach the local tier")
	}
	if st := h.tiered.Stats(); st.LocalHits != 1 || st.Misses != 1 || st.Bypasses != 2 || st.RoundTrips != 2 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestTieredBreakerOpensAfterThresholdAndSkipsRemote(t *testing.T) {
	h := newHarness(t, TieredOptions{}, true) // threshold 3, cooldown 1s
	_ = h.local.SetMany(context.Background(), []Entry{{Key: "l", Value: []byte("L"), TTL: time.Hour}})
	h.remote.setBehaviour(func(context.Context) error { return errRefused })
	for i := range 3 {
		if h.state() != "closed" {
			t.Fatalf("breaker %s after %d failures, want closed below the threshold", h.state(), i)
		}
		got, err := h.get(t, "l", "r")
		if !errors.Is(err, ErrBypassed) || got[0] != "L" {
			t.Fatalf("failure %d: %q, %v", i+1, got, err)
		}
	}
	if h.state() != "open" {
		t.Fatalf("breaker %s after 3 failures, want open", h.state())
	}
	for range 5 {
		got, err := h.get(t, "l", "r")
		if !errors.Is(err, ErrBypassed) || !strings.Contains(err.Error(), "breaker open") || got[0] != "L" {
			t.Fatalf("open breaker: %q, %v; want the local hit and ErrBypassed", got, err)
		}
	}
	if err := h.tiered.SetMany(context.Background(), []Entry{{Key: "f", Value: []byte("F"), TTL: time.Hour}}); !errors.Is(err, ErrBypassed) {
		t.Fatalf("fill while open: %v", err)
	}
	if gets, sets := h.remote.calls(); gets != 3 || sets != 0 {
		t.Fatalf("remote calls while open: %d lookups, %d fills; want 3, 0", gets, sets)
	}
	if v, _ := h.local.GetMany(context.Background(), []string{"f"}); v[0] == nil {
		t.Fatal("fill while open did not reach the local tier")
	}
	if st := h.tiered.Stats(); st.RoundTrips != 3 || st.Bypasses != 9 {
		t.Fatalf("Stats = %+v; want 3 round trips, 9 bypasses", st)
	}
	if n := h.logs.count(slog.LevelWarn, "redis cache unavailable; scoring without it"); n != 1 {
		t.Fatalf("%d Warn records, want 1", n)
	}
	if v, ok := h.logs.attr("redis cache unavailable; scoring without it", "cooldown"); !ok || v.Duration() != time.Second {
		t.Fatalf("Warn cooldown = %v (%v)", v, ok)
	}
	if v, ok := h.logs.attr("redis cache unavailable; scoring without it", "err"); !ok || !strings.Contains(v.String(), "connection refused") {
		t.Fatalf("Warn err = %v (%v)", v, ok)
	}
}

func TestTieredBreakerCooldownDoublesUpToCapAndResets(t *testing.T) {
	h := newHarness(t, TieredOptions{FailureThreshold: 1, Cooldown: time.Second, MaxCooldown: 3 * time.Second}, true)
	fail := func(context.Context) error { return errRefused }
	h.remote.setBehaviour(fail)
	steps := []struct {
		advance  time.Duration
		healthy  bool
		wantCall bool
		wantErr  bool
		state    string
	}{
		{0, false, true, true, "open"},                       // opens, cooldown 1s
		{999 * time.Millisecond, false, false, true, "open"}, // cooling down
		{time.Millisecond, false, true, true, "open"},        // trial fails: 2s
		{1999 * time.Millisecond, false, false, true, "open"},
		{time.Millisecond, false, true, true, "open"}, // trial fails: 4s capped to 3s
		{2999 * time.Millisecond, false, false, true, "open"},
		{time.Millisecond, false, true, true, "open"}, // trial fails: still 3s
		{2999 * time.Millisecond, false, false, true, "open"},
		{time.Millisecond, true, true, false, "closed"}, // trial succeeds
		{0, true, true, false, "closed"},
		{0, false, true, true, "open"}, // opens again: cooldown back to 1s
		{time.Second, true, true, false, "closed"},
	}
	for i, s := range steps {
		h.clock.Advance(s.advance)
		if s.healthy {
			h.remote.setBehaviour(nil)
		} else {
			h.remote.setBehaviour(fail)
		}
		before, _ := h.remote.calls()
		_, err := h.get(t, "k")
		after, _ := h.remote.calls()
		if called := after > before; called != s.wantCall || (err != nil) != s.wantErr || h.state() != s.state {
			t.Fatalf("step %d (+%s): called %v err %v state %s; want called %v err %v state %s",
				i, s.advance, called, err, h.state(), s.wantCall, s.wantErr, s.state)
		}
	}
	if n := h.logs.count(slog.LevelWarn, "redis cache unavailable; scoring without it"); n != 2 {
		t.Fatalf("%d Warn records for two outages, want 2", n)
	}
	if n := h.logs.count(slog.LevelInfo, "redis cache available again"); n != 2 {
		t.Fatalf("%d Info records for two recoveries, want 2", n)
	}
}

func TestTieredHalfOpenLetsExactlyOneCallThrough(t *testing.T) {
	h := newHarness(t, TieredOptions{FailureThreshold: 1}, true)
	h.remote.setBehaviour(func(context.Context) error { return errRefused })
	if _, err := h.get(t, "k"); !errors.Is(err, ErrBypassed) {
		t.Fatal(err)
	}
	h.clock.Advance(time.Second)
	entered, release := make(chan struct{}), make(chan struct{})
	h.remote.setBehaviour(func(context.Context) error {
		entered <- struct{}{}
		<-release
		return nil
	})
	trial := make(chan error, 1)
	go func() {
		_, err := h.tiered.GetMany(context.Background(), []string{"k"})
		trial <- err
	}()
	<-entered
	if h.state() != "half-open" {
		t.Fatalf("state during the trial = %s", h.state())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := h.tiered.GetMany(context.Background(), []string{"k"}); !errors.Is(err, ErrBypassed) {
				t.Errorf("concurrent call during the trial: %v, want ErrBypassed", err)
			}
		})
	}
	wg.Wait()
	if gets, _ := h.remote.calls(); gets != 2 {
		t.Fatalf("remote lookups = %d, want 2 (the failure and the one trial)", gets)
	}
	close(release)
	if err := <-trial; err != nil {
		t.Fatalf("trial: %v", err)
	}
	if h.state() != "closed" {
		t.Fatalf("state after a good trial = %s", h.state())
	}
	if n := h.logs.count(slog.LevelInfo, "redis cache available again"); n != 1 {
		t.Fatalf("%d Info records, want 1", n)
	}
}

func TestTieredCallerContextEndIsNotARemoteFailure(t *testing.T) {
	h := newHarness(t, TieredOptions{FailureThreshold: 2}, true)
	entered := make(chan struct{})
	h.remote.setBehaviour(func(ctx context.Context) error {
		entered <- struct{}{}
		<-ctx.Done()
		return fmt.Errorf("redis: %w", ctx.Err())
	})
	call := func() error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := h.tiered.GetMany(ctx, []string{"k"})
			done <- err
		}()
		<-entered
		cancel()
		return <-done
	}
	for range 5 {
		if err := call(); !errors.Is(err, context.Canceled) || errors.Is(err, ErrBypassed) {
			t.Fatalf("cancelled lookup: %v; want context.Canceled and not ErrBypassed", err)
		}
	}
	if st := h.tiered.Stats(); st.BreakerState != "closed" || st.Bypasses != 0 {
		t.Fatalf("after cancelled calls: %+v; want closed, no bypasses", st)
	}

	// A context that ended before the call: no remote call at all.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before, _ := h.remote.calls()
	if _, err := h.tiered.GetMany(ctx, []string{"k"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
	if after, _ := h.remote.calls(); after != before {
		t.Fatal("a cancelled context still called the remote")
	}

	// A half-open trial whose caller gives up hands the trial to the next call.
	h.remote.setBehaviour(func(context.Context) error { return errRefused })
	h.get(t, "k")
	h.get(t, "k")
	if h.state() != "open" {
		t.Fatalf("state = %s, want open", h.state())
	}
	h.clock.Advance(time.Second)
	h.remote.setBehaviour(func(ctx context.Context) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	if err := call(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if h.state() != "open" {
		t.Fatalf("state after an abandoned trial = %s, want open", h.state())
	}
	h.remote.setBehaviour(nil)
	if _, err := h.get(t, "k"); err != nil { // no cooldown to wait for: it is the trial
		t.Fatalf("next trial: %v", err)
	}
	if h.state() != "closed" {
		t.Fatalf("state = %s, want closed", h.state())
	}
}

func TestTieredTimeoutBoundsARemoteThatIgnoresContext(t *testing.T) {
	h := newHarness(t, TieredOptions{Timeout: 50 * time.Millisecond}, true)
	release := make(chan struct{})
	defer close(release)
	h.remote.setBehaviour(func(context.Context) error { <-release; return nil })
	_ = h.local.SetMany(context.Background(), []Entry{{Key: "l", Value: []byte("L"), TTL: time.Hour}})
	start := time.Now()
	got, err := h.get(t, "l", "r")
	if !errors.Is(err, ErrBypassed) || !errors.Is(err, context.DeadlineExceeded) || got[0] != "L" {
		t.Fatalf("hung remote: %q, %v; want the local hit, ErrBypassed, DeadlineExceeded", got, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("lookup took %s with a 50ms timeout", d)
	}
	err = h.tiered.SetMany(context.Background(), []Entry{{Key: "x", Value: []byte("X"), TTL: time.Hour}})
	if !errors.Is(err, ErrBypassed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung fill: %v", err)
	}
	rm := collect(t, h.reader)
	if n := sum(t, rm, "raterd.cache.bypass", attribute.String("op", "lookup"), attribute.String("reason", "timeout")); n != 1 {
		t.Fatalf("bypass{lookup,timeout} = %d, want 1", n)
	}
	if n := sum(t, rm, "raterd.cache.bypass", attribute.String("op", "fill"), attribute.String("reason", "timeout")); n != 1 {
		t.Fatalf("bypass{fill,timeout} = %d, want 1", n)
	}
}

func TestTieredMetrics(t *testing.T) {
	h := newHarness(t, TieredOptions{FailureThreshold: 1}, true)
	ctx := context.Background()
	_ = h.local.SetMany(ctx, []Entry{{Key: "l", Value: []byte("L"), TTL: time.Hour}})
	h.remote.put("r", "RRRR", time.Hour)
	h.get(t, "l", "r", "m")                                                                 // 1 local, 1 redis, 1 miss
	_ = h.tiered.SetMany(ctx, []Entry{{Key: "f", Value: []byte("FFFFFF"), TTL: time.Hour}}) // 6 bytes written
	h.remote.setBehaviour(func(context.Context) error { return errRefused })
	h.get(t, "x")                                                                      // error: opens
	_ = h.tiered.SetMany(ctx, []Entry{{Key: "g", Value: []byte("G"), TTL: time.Hour}}) // breaker open

	rm := collect(t, h.reader)
	checks := []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"raterd.cache.hits", []attribute.KeyValue{attribute.String("tier", "local")}, 1},
		{"raterd.cache.hits", []attribute.KeyValue{attribute.String("tier", "redis")}, 1},
		{"raterd.cache.misses", nil, 2},
		{"raterd.cache.bypass", []attribute.KeyValue{attribute.String("op", "lookup"), attribute.String("reason", "error")}, 1},
		{"raterd.cache.bypass", []attribute.KeyValue{attribute.String("op", "fill"), attribute.String("reason", "breaker_open")}, 1},
		{"raterd.cache.bytes", []attribute.KeyValue{attribute.String("direction", "read")}, 4},
		{"raterd.cache.bytes", []attribute.KeyValue{attribute.String("direction", "write")}, 6},
		{"raterd.cache.round_trips", []attribute.KeyValue{attribute.String("op", "lookup")}, 2},
		{"raterd.cache.round_trips", []attribute.KeyValue{attribute.String("op", "fill")}, 1},
	}
	for _, c := range checks {
		if got := sum(t, rm, c.name, c.attrs...); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.name, c.attrs, got, c.want)
		}
	}
	if n := histCount(t, rm, "raterd.cache.lookup.duration", attribute.String("tier", "local")); n != 2 {
		t.Errorf("lookup.duration{local} count = %d, want 2", n)
	}
	if n := histCount(t, rm, "raterd.cache.lookup.duration", attribute.String("tier", "redis")); n != 2 {
		t.Errorf("lookup.duration{redis} count = %d, want 2", n)
	}
	if g := gauge(t, rm, "raterd.cache.breaker.state"); g != int64(BreakerOpen) {
		t.Errorf("breaker.state = %d, want %d (open)", g, BreakerOpen)
	}
	want := Stats{LocalHits: 1, RemoteHits: 1, Misses: 2, Bypasses: 2, RoundTrips: 3, BytesRead: 4, BytesWritten: 6, BreakerState: "open"}
	if st := h.tiered.Stats(); st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
}

func TestTieredOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    TieredOptions
		wantErr string
	}{
		{"zero is defaults", TieredOptions{}, ""},
		{"explicit", TieredOptions{Timeout: time.Second, FailureThreshold: 5, Cooldown: 2 * time.Second, MaxCooldown: time.Minute}, ""},
		{"negative timeout", TieredOptions{Timeout: -1}, "Timeout"},
		{"negative threshold", TieredOptions{FailureThreshold: -1}, "FailureThreshold"},
		{"negative cooldown", TieredOptions{Cooldown: -time.Second}, "Cooldown"},
		{"negative max cooldown", TieredOptions{MaxCooldown: -time.Second}, "MaxCooldown"},
		{"max below cooldown", TieredOptions{Cooldown: time.Minute}, "MaxCooldown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want error naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestBreakerIgnoresOutcomesFromBeforeAStateChange(t *testing.T) {
	clock := newFakeClock()
	logs := &recordingHandler{}
	b := newBreaker(1, time.Second, 4*time.Second, clock.Now, slog.New(logs))
	slow, _ := b.allow()
	fast, _ := b.allow()
	b.failure(fast, errRefused)
	b.success(slow) // admitted while closed; says nothing about now
	if s, _ := b.current(); s != BreakerOpen {
		t.Fatalf("state = %s, want open", s)
	}
	b.failure(slow, errRefused) // nor does its failure extend the cooldown
	if s, cool := b.current(); s != BreakerOpen || cool != time.Second {
		t.Fatalf("state %s cooldown %s, want open 1s", s, cool)
	}
	clock.Advance(time.Second)
	trial, ok := b.allow()
	if s, _ := b.current(); !ok || s != BreakerHalfOpen {
		t.Fatalf("after the cooldown: allowed %v, state %s; want the half-open trial", ok, s)
	}
	b.success(slow) // a stale success must not close the breaker under the trial
	if s, _ := b.current(); s != BreakerHalfOpen {
		t.Fatalf("stale success during the trial: state %s, want half-open", s)
	}
	b.success(trial)
	if s, _ := b.current(); s != BreakerClosed {
		t.Fatalf("after the trial: state %s, want closed", s)
	}
	if n := logs.count(slog.LevelWarn, "redis cache unavailable; scoring without it"); n != 1 {
		t.Fatalf("%d Warn records", n)
	}
}

func collect(t *testing.T, r *sdkmetric.ManualReader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func find(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// sum adds up the data points of counter name whose attributes include attrs.
func sum(t *testing.T, rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	m, ok := find(rm, name)
	if !ok {
		return 0
	}
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is %T, want an int64 sum", name, m.Data)
	}
	var n int64
	for _, dp := range s.DataPoints {
		if hasAll(dp.Attributes, attrs) {
			n += dp.Value
		}
	}
	return n
}

func histCount(t *testing.T, rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) uint64 {
	t.Helper()
	m, ok := find(rm, name)
	if !ok {
		return 0
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is %T, want a float64 histogram", name, m.Data)
	}
	var n uint64
	for _, dp := range h.DataPoints {
		if hasAll(dp.Attributes, attrs) {
			n += dp.Count
		}
	}
	return n
}

func gauge(t *testing.T, rm metricdata.ResourceMetrics, name string) int64 {
	t.Helper()
	m, ok := find(rm, name)
	if !ok {
		t.Fatalf("%s not collected", name)
	}
	g, ok := m.Data.(metricdata.Gauge[int64])
	if !ok || len(g.DataPoints) != 1 {
		t.Fatalf("%s is %T with %v, want one int64 gauge point", name, m.Data, m.Data)
	}
	return g.DataPoints[0].Value
}

func hasAll(set attribute.Set, attrs []attribute.KeyValue) bool {
	for _, kv := range attrs {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// A caller whose own deadline is no longer than the remote timeout (a scorer with the same
// 250ms) must still see a hung Redis open the breaker; otherwise every batch would wait
// the full timeout, twice, forever.
func TestTieredCallerDeadlineAtTheTimeoutStillOpensTheBreaker(t *testing.T) {
	const timeout = 50 * time.Millisecond
	h := newHarness(t, TieredOptions{Timeout: timeout, FailureThreshold: 3}, true)
	h.remote.setBehaviour(func(ctx context.Context) error {
		h.clock.Advance(timeout) // the hung call spends the whole timeout
		<-ctx.Done()
		return ctx.Err()
	})
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, err := h.tiered.GetMany(ctx, []string{fmt.Sprint("k", i)})
		cancel()
		if err == nil {
			t.Fatalf("call %d: no error from a hung remote", i)
		}
	}
	if st := h.tiered.Stats().BreakerState; st != BreakerOpen.String() {
		t.Fatalf("breaker %s after 3 calls that hung until the caller's deadline; want open", st)
	}
}

// refreshingRemote is a fakeRemote that also counts RefreshTopology calls, as a Redis
// Cluster client reloads its slot map.
type refreshingRemote struct {
	*fakeRemote
	refreshes atomic.Int64
}

func (r *refreshingRemote) RefreshTopology(context.Context) { r.refreshes.Add(1) }

// TestTieredRefreshesTheTopologyWhileTheBreakerIsOpen: every call the open breaker skips asks
// a TopologyRefresher remote to refresh (so that the trial after a Cluster failover reaches
// the promoted master); calls that reach the remote do not, and a remote without the method
// is unaffected (the harness's plain fakeRemote runs every other breaker test).
func TestTieredRefreshesTheTopologyWhileTheBreakerIsOpen(t *testing.T) {
	clock := newFakeClock()
	remote := &refreshingRemote{fakeRemote: newFakeRemote(clock.Now)}
	remote.setBehaviour(func(context.Context) error { return errRefused })
	tiered := NewTiered(nil, remote, TieredOptions{Timeout: 5 * time.Second, Now: clock.Now})
	t.Cleanup(func() { _ = tiered.Close() })
	ctx := context.Background()
	for range 3 { // the failures that open the breaker reach the remote: no refresh from Tiered
		_, _ = tiered.GetMany(ctx, []string{"k"})
	}
	if n := remote.refreshes.Load(); n != 0 || tiered.Stats().BreakerState != "open" {
		t.Fatalf("%d refreshes, breaker %s after 3 failed calls; want 0, open", n, tiered.Stats().BreakerState)
	}
	for range 4 {
		_, _ = tiered.GetMany(ctx, []string{"k"})
	}
	_ = tiered.SetMany(ctx, []Entry{{Key: "k", Value: []byte("v"), TTL: time.Hour}})
	if n := remote.refreshes.Load(); n != 5 {
		t.Fatalf("%d refreshes over 5 skipped calls, want 5", n)
	}
	// After the cooldown the trial reaches the (now healthy) remote and closes the breaker.
	remote.setBehaviour(nil)
	clock.Advance(2 * time.Second)
	if _, err := tiered.GetMany(ctx, []string{"k"}); err != nil || tiered.Stats().BreakerState != "closed" {
		t.Fatalf("trial after the cooldown: %v, breaker %s", err, tiered.Stats().BreakerState)
	}
	if n := remote.refreshes.Load(); n != 5 {
		t.Fatalf("%d refreshes after the breaker closed, want still 5", n)
	}
}
