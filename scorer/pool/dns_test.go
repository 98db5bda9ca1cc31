package pool

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeResolver answers lookups from a list the test changes.
type fakeResolver struct {
	mu      sync.Mutex
	addrs   []string
	err     error
	lookups int
}

func (r *fakeResolver) set(err error, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs, r.err = addrs, err
}

func (r *fakeResolver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups
}

func (r *fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	if host != "vllm.judges.svc" {
		return nil, errors.New("unexpected name " + host)
	}
	return slices.Clone(r.addrs), r.err
}

func urlsOf(p *Pool) []string {
	var out []string
	for _, s := range p.Stats() {
		out = append(out, s.URL)
	}
	slices.Sort(out)
	return out
}

func TestDNSRefresh(t *testing.T) {
	res := &fakeResolver{}
	res.set(errors.New("no such host"))
	opts, logs := testOptions()
	opts.Resolver = res
	cfg := Config{DNS: &DNS{Name: "vllm.judges.svc", Port: 8000, Path: "/v1", Refresh: 100 * time.Millisecond, MaxInFlight: 4},
		Timeout: time.Second, Deadline: 30 * time.Second}
	p := newTestPool(t, cfg, opts)

	// Until the name resolves there is nothing to wait for: Do fails at once, and the
	// caller retries later.
	waitFor(t, "a failed lookup", func() bool { return res.count() >= 1 })
	if r, err := p.Do(t.Context(), 0, func(context.Context, string) error { return nil }); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "has not resolved") {
		t.Fatalf("Do without endpoints: %+v, %v", r, err)
	}
	res.set(nil, "10.0.0.1", "::1", "10.0.0.1")
	waitFor(t, "endpoints", func() bool { return len(p.Stats()) == 2 })
	r, err := p.Do(t.Context(), 0, func(context.Context, string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://10.0.0.1:8000/v1", "http://[::1]:8000/v1"}
	if !slices.Contains(want, r.Endpoint) {
		t.Errorf("Do ran on %q", r.Endpoint)
	}
	if got := urlsOf(p); !slices.Equal(got, want) {
		t.Errorf("endpoints %v, want %v", got, want)
	}
	for _, s := range p.Stats() {
		if s.Limit != 4 {
			t.Errorf("%s: limit %d, want dns.max_in_flight 4", s.URL, s.Limit)
		}
	}

	// An address vanishes while a request runs on it: the request finishes, the
	// endpoint goes.
	gate := make(chan struct{})
	started := make(chan string, 1)
	finished := make(chan error, 1)
	go func() {
		_, err := p.Do(t.Context(), 0, func(_ context.Context, u string) error { started <- u; <-gate; return nil })
		finished <- err
	}()
	busy := <-started
	var keep string
	for _, u := range want {
		if u != busy {
			keep = u
		}
	}
	addr := map[string]string{want[0]: "10.0.0.1", want[1]: "::1"}
	res.set(nil, addr[keep], "10.0.0.2")
	want2 := []string{keep, "http://10.0.0.2:8000/v1"}
	slices.Sort(want2)
	waitFor(t, "the endpoints to change", func() bool { return slices.Equal(urlsOf(p), want2) })
	close(gate)
	if err := <-finished; err != nil {
		t.Errorf("request on the removed endpoint: %v", err)
	}
	for range 20 {
		r, err := p.Do(t.Context(), 0, func(context.Context, string) error { return nil })
		if err != nil || r.Endpoint == busy {
			t.Errorf("routed to %q (removed %q): %v", r.Endpoint, busy, err)
		}
	}

	// A failing lookup keeps the endpoints.
	n := res.count()
	res.set(errors.New("SERVFAIL"))
	waitFor(t, "another lookup", func() bool { return res.count() > n })
	if got := urlsOf(p); !slices.Equal(got, want2) {
		t.Errorf("endpoints after a failed lookup: %v, want %v", got, want2)
	}
	if logs.count("endpoint added") != 3 || logs.count("endpoint removed") != 1 || logs.count("DNS lookup failed") < 2 {
		t.Errorf("logs: %q", logs.msgs)
	}
}

func TestDNSNoEndpointsUnavailable(t *testing.T) {
	res := &fakeResolver{}
	res.set(errors.New("no such host"))
	opts, _ := testOptions()
	opts.Resolver = res
	p := newTestPool(t, Config{DNS: &DNS{Name: "vllm.judges.svc", Port: 80}, Timeout: 50 * time.Millisecond,
		Deadline: 100 * time.Millisecond}, opts)
	_, err := p.Do(t.Context(), 0, func(context.Context, string) error { return nil })
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("got %v, want ErrUnavailable", err)
	}
}

func TestEndpointURL(t *testing.T) {
	d := &DNS{Scheme: "https", Port: 8443, Path: "/v1"}
	for addr, want := range map[string]string{
		"10.1.2.3":        "https://10.1.2.3:8443/v1",
		"fd00::1":         "https://[fd00::1]:8443/v1",
		"fe80::1%eth0":    "https://[fe80::1%25eth0]:8443/v1",
		"fe80::1%3":       "https://[fe80::1%253]:8443/v1",
		"not-an-address!": "",
		// No URL reaches these: an empty zone, a zone with URL-unsafe characters, a
		// zone on an IPv4 address.
		"fe80::1%":      "",
		"fe80::1%a/b":   "",
		"fe80::1%a b":   "",
		"10.0.0.7%eth0": "",
	} {
		got, err := endpointURL(d, addr)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("endpointURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
}

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct{ base, path, want string }{
		{"http://h:8000/v1", "/health", "http://h:8000/health"},
		{"http://h:8000/v1", "models", "http://h:8000/v1/models"},
		{"http://h:8000", "/health", "http://h:8000/health"},
		{"http://h:8000", "health", "http://h:8000/health"},
	} {
		if got := healthURL(tc.base, tc.path); got != tc.want {
			t.Errorf("healthURL(%q, %q) = %q, want %q", tc.base, tc.path, got, tc.want)
		}
	}
}
