package pool

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"raterd/internal/telemetry"
)

// fakeServer is a fake judge server on loopback that counts its requests.
type fakeServer struct {
	*httptest.Server
	hits atomic.Int64
}

// newFakeServer starts a fake server, closed when the test ends.
func newFakeServer(t *testing.T, h http.HandlerFunc) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// closeAtEnd closes ch when the test ends, before the fake servers started earlier
// shut down (cleanups run last-in first-out), so handlers blocked on it end.
func closeAtEnd(t *testing.T, ch chan struct{}) {
	t.Cleanup(func() { close(ch) })
}

// httpAttempt is the attempt a backend would make: POST base+path, StatusError on non-2xx.
func httpAttempt(client *http.Client, path string) func(context.Context, string) error {
	return func(ctx context.Context, base string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader("{}"))
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode/100 != 2 {
			return StatusError(resp.StatusCode, resp.Header, body)
		}
		return nil
	}
}

// logRecorder is a slog handler that keeps the messages.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	l.msgs = append(l.msgs, line)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count is the number of messages containing s.
func (l *logRecorder) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

// testOptions are quiet options with short backoffs; logs go to the returned recorder.
func testOptions() (Options, *logRecorder) {
	rec := &logRecorder{}
	return Options{
		Name:        "test",
		Telemetry:   telemetry.Settings{Logger: slog.New(rec)},
		BackoffBase: time.Millisecond,
		BackoffMax:  5 * time.Millisecond,
	}, rec
}

// newTestPool validates cfg, starts a pool and closes it when the test ends, checking
// that no goroutine of the pool outlives Close.
func newTestPool(t *testing.T, cfg Config, opts Options) *Pool {
	t.Helper()
	if err := cfg.Validate("test"); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if opts.Key == "" {
		opts.Key = "test"
	}
	p, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkNoPoolGoroutines(t)
	})
	return p
}

// checkNoPoolGoroutines waits (generously) until no goroutine runs code of the pool.
func checkNoPoolGoroutines(t *testing.T) {
	t.Helper()
	var stacks string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		stacks = ""
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "raterd/scorer/pool.(*Pool)") && !strings.Contains(g, "checkNoPoolGoroutines") {
				stacks += g + "\n\n"
			}
		}
		if stacks == "" {
			return
		}
	}
	t.Errorf("goroutines of the pool still run after Close:\n%s", stacks)
}

// waitFor polls cond until it holds or a generous timeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// statsOf returns the stats of the endpoint with base URL u.
func statsOf(p *Pool, u string) EndpointStats {
	for _, s := range p.Stats() {
		if s.URL == u {
			return s
		}
	}
	return EndpointStats{}
}

func okHandler(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }
