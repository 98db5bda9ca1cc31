package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"raterd/internal/report/htmlreport"
	"raterd/sinks/clickhouse"
)

// fakeReportQuerier is a fake htmlreport.Querier: it answers every cookbook query with no
// rows, records each query's parameters, and, when gate is set, waits on it (or on the
// context) before answering.
type fakeReportQuerier struct {
	mu      sync.Mutex
	params  map[string]map[string]string
	gate    chan struct{}
	started chan struct{} // closed at the first query, when set
	once    sync.Once
}

func (f *fakeReportQuerier) QueryCookbook(ctx context.Context, q clickhouse.CookbookQuery, params map[string]string) (htmlreport.Table, error) {
	if _, err := q.Render("raterd", params); err != nil {
		return htmlreport.Table{}, err
	}
	f.mu.Lock()
	if f.params == nil {
		f.params = map[string]map[string]string{}
	}
	f.params[q.Name] = params
	f.mu.Unlock()
	if f.started != nil {
		f.once.Do(func() { close(f.started) })
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return htmlreport.Table{}, ctx.Err()
		}
	}
	return htmlreport.Table{}, nil
}

func (f *fakeReportQuerier) got(name string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.params[name]
}

var reportTestNow = time.Date(2026, 1, 5, 14, 0, 0, 0, time.UTC)

// reportFixture is an admin server whose /report reads q (none when q is nil), behind the
// token "s3cret-token".
func reportAdmin(t *testing.T, q htmlreport.Querier, openErr error, timeout time.Duration) string {
	t.Helper()
	tok := writeFile(t, t.TempDir(), "token", "s3cret-token\n")
	a, err := newAdminServer(AdminConfig{TokenFile: tok}, prometheus.NewRegistry(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if q != nil || openErr != nil {
		a.report = &reportEndpoint{
			open: func(context.Context) (htmlreport.Querier, func(), error) {
				if openErr != nil {
					return nil, nil, openErr
				}
				return q, func() {}, nil
			},
			timeout: timeout, now: func() time.Time { return reportTestNow },
			logger: slog.New(slog.DiscardHandler), busy: make(chan struct{}, 1),
		}
	}
	srv := httptest.NewServer(a.srv.Handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

const reportAuth = "Bearer s3cret-token"

func TestAdminReport(t *testing.T) {
	q := &fakeReportQuerier{}
	base := reportAdmin(t, q, nil, time.Minute)

	// Behind the admin token like /metrics.
	wantStatus(t, base+"/report", "", http.StatusUnauthorized)

	resp, body, err := getWith(t, http.DefaultClient, base+"/report?evaluator=helpfulness&evaluator=it%27s&app=chat"+
		"&from=2026-01-05T08:00:00Z&to=2026-01-05T12:00:00%2B01:00", reportAuth)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "<html") || strings.Contains(body, "<script") {
		t.Fatalf("GET /report = %d %s, body %.200q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, name := range []string{"report_cells", "report_judge_cells", "report_worst", "report_pairwise", "alerts_in_range"} {
		p := q.got(name)
		if p["evaluator"] != `["helpfulness","it's"]` || p["app"] != `["chat"]` || p["model"] != "" ||
			p["from"] != "2026-01-05T08:00:00Z" || p["to"] != "2026-01-05T11:00:00Z" {
			t.Errorf("%s params %v", name, p)
		}
	}

	// No range: the last 24 hours up to now.
	wantStatus(t, base+"/report", reportAuth, http.StatusOK)
	// A gateway's own parameter (alerting.report_url may carry one) is ignored.
	wantStatus(t, base+"/report?tenant=a", reportAuth, http.StatusOK)
	if p := q.got("report_cells"); p["from"] != "2026-01-04T14:00:00Z" || p["to"] != "2026-01-05T14:00:00Z" {
		t.Errorf("default range %s … %s, want the 24 hours before now", p["from"], p["to"])
	}

	for query, param := range map[string]string{
		"from=yesterday": "from",
		"to=2026-01-05":  "to",
		"from=2026-01-05T10:00:00Z&from=2026-01-05T11:00:00Z": "from",
		"evaluator=": "evaluator",
		"model=%FF":  "model",
		"from=2026-01-05T12:00:00Z&to=2026-01-05T11:00:00Z": "from",
		"from=2026-01-05T12:00:00Z&to=2026-01-05T12:00:00Z": "from",
		// RFC 3339 takes years 0000 to 9999, the queries' DateTime 1970 to 2105.
		"from=1960-01-01T00:00:00Z":             "from",
		"to=2106-01-01T00:00:00Z":               "to",
		"to=2105-12-31T23:59:59.5Z":             "to", // rounded up to 2106
		"to=1970-01-01T05:00:00Z":               "from (by default 24 hours before to)",
		"evaluator=" + strings.Repeat("e", 201): "evaluator",
		"app=a" + strings.Repeat("&app=a", 100): "app",
	} {
		resp, body, err := getWith(t, http.DefaultClient, base+"/report?"+query, reportAuth)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, param) {
			t.Errorf("GET /report?%s = %d %q, want 400 naming %s", query, resp.StatusCode, body, param)
		}
	}
}

func TestAdminReportWithoutClickHouse(t *testing.T) {
	base := reportAdmin(t, nil, nil, time.Minute)
	resp, body, err := getWith(t, http.DefaultClient, base+"/report", reportAuth)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no ClickHouse sink is configured") {
		t.Errorf("GET /report without ClickHouse = %d %q, want 404 saying so", resp.StatusCode, body)
	}
	// As built from a config without a clickhouse section.
	e, err := newReportEndpoint(&Config{}, nil)
	if err != nil || e.open != nil {
		t.Errorf("newReportEndpoint without ClickHouse: open set %v, err %v", e != nil && e.open != nil, err)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/report", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("newReportEndpoint without ClickHouse answers %d, want 404", rec.Code)
	}
}

// TestAdminReportOneAtATime: while one report renders, a second request gets 429 with
// Retry-After; after it, reports render again.
func TestAdminReportOneAtATime(t *testing.T) {
	q := &fakeReportQuerier{gate: make(chan struct{}), started: make(chan struct{})}
	base := reportAdmin(t, q, nil, time.Minute)
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/report", nil)
		req.Header.Set("Authorization", reportAuth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		// Read to the end: the last chunk leaves after the handler returned and freed the slot.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	select {
	case <-q.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the first report never queried")
	}
	resp := wantStatus(t, base+"/report", reportAuth, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") != "10" {
		t.Errorf("Retry-After %q, want 10", resp.Header.Get("Retry-After"))
	}
	close(q.gate)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("the first report = %d, want 200", code)
	}
	wantStatus(t, base+"/report", reportAuth, http.StatusOK)
}

// stalledWriter is a ResponseWriter whose client never reads: Write blocks until release
// is closed. It records the write deadline set through http.ResponseController.
type stalledWriter struct {
	header   http.Header
	code     int
	writing  chan struct{} // closed at the first Write
	release  chan struct{}
	once     sync.Once
	mu       sync.Mutex
	deadline time.Time
}

func (s *stalledWriter) Header() http.Header { return s.header }
func (s *stalledWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}

func (s *stalledWriter) Write(p []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	s.once.Do(func() { close(s.writing) })
	<-s.release
	return len(p), nil
}

func (s *stalledWriter) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline = t
	return nil
}

// TestAdminReportStalledClient: a client that never reads its report holds the render
// slot no longer than rendering took, so the next report renders meanwhile; and its
// response has a write deadline.
func TestAdminReportStalledClient(t *testing.T) {
	e := &reportEndpoint{
		open: func(context.Context) (htmlreport.Querier, func(), error) {
			return &fakeReportQuerier{}, func() {}, nil
		},
		timeout: time.Minute, now: func() time.Time { return reportTestNow },
		logger: slog.New(slog.DiscardHandler), busy: make(chan struct{}, 1),
	}
	stalled := &stalledWriter{header: http.Header{}, writing: make(chan struct{}), release: make(chan struct{})}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		e.ServeHTTP(stalled, httptest.NewRequest(http.MethodGet, "/report", nil))
	}()
	defer func() { close(stalled.release); <-done }()
	select {
	case <-stalled.writing:
	case <-time.After(10 * time.Second):
		t.Fatal("the first report was never written")
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/report", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("GET /report while another client stalls reading = %d, want 200", rec.Code)
	}
	stalled.mu.Lock()
	deadline := stalled.deadline
	stalled.mu.Unlock()
	if deadline.Before(start) || deadline.After(time.Now().Add(e.timeout)) {
		t.Errorf("write deadline %v, want about now + %v", deadline, e.timeout)
	}
}

func TestAdminReportFailures(t *testing.T) {
	// A report that outlives its timeout: 504, and the slot is free again.
	q := &fakeReportQuerier{gate: make(chan struct{})}
	base := reportAdmin(t, q, nil, 50*time.Millisecond)
	wantStatus(t, base+"/report", reportAuth, http.StatusGatewayTimeout)
	wantStatus(t, base+"/report", reportAuth, http.StatusGatewayTimeout)

	base = reportAdmin(t, nil, errors.New("dial tcp: connection refused"), time.Minute)
	resp, body, err := getWith(t, http.DefaultClient, base+"/report", reportAuth)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "connection refused") {
		t.Errorf("ClickHouse down: %d %q, want 502 with the cause", resp.StatusCode, body)
	}
}

// reportParams are the query parameters /report takes (it ignores others).
var reportParams = map[string]bool{"evaluator": true, "model": true, "app": true, "from": true, "to": true}

// FuzzReportOptions: any query string either parses into options that hold only valid
// names and a range, or fails naming a parameter; it never panics.
func FuzzReportOptions(f *testing.F) {
	for _, s := range []string{"", "evaluator=a&evaluator=b", "from=2026-01-05T08:00:00Z&to=2026-01-05T09:00:00Z",
		"from=x", "model=%FF", "app=&app=b", "x=1", "from=2026-01-05T08:00:00%2B14:00",
		"from=1969-12-31T23:59:59Z", "to=2105-12-31T23:59:59.1Z", "from=2026-01-05T09:00:00Z&to=2026-01-05T08:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := &http.Request{URL: &url.URL{RawQuery: raw}}
		opts, err := reportOptions(r)
		if err != nil {
			named := false
			for p := range reportParams {
				named = named || strings.HasPrefix(err.Error(), p+": ")
			}
			if !named {
				t.Fatalf("error %q names no parameter", err)
			}
			return
		}
		for _, vs := range [][]string{opts.Evaluators, opts.Models, opts.Apps} {
			for _, v := range vs {
				if v == "" || !utf8.ValidString(v) {
					t.Fatalf("name %q accepted from %q", v, raw)
				}
			}
		}
		for _, vs := range [][]string{opts.Evaluators, opts.Models, opts.Apps} {
			if len(vs) > reportMaxValues {
				t.Fatalf("%d values accepted from %q", len(vs), raw)
			}
			for _, v := range vs {
				if len(v) > reportMaxValueLen {
					t.Fatalf("a %d-byte name accepted from %q", len(v), raw)
				}
			}
		}
		for _, tm := range []time.Time{opts.From, opts.To} {
			if !tm.IsZero() && (tm.Before(time.Unix(0, 0)) || tm.After(time.Date(2105, 12, 31, 23, 59, 59, 0, time.UTC))) {
				t.Fatalf("time %v out of the DateTime range accepted from %q", tm, raw)
			}
		}
		if !opts.From.IsZero() && !opts.To.IsZero() && !opts.From.Before(opts.To) {
			t.Fatalf("from %v not before to %v accepted from %q", opts.From, opts.To, raw)
		}
		// A time not given stays zero (the endpoint's default applies).
		q := r.URL.Query()
		if len(q["from"]) == 0 && !opts.From.IsZero() || len(q["to"]) == 0 && !opts.To.IsZero() {
			t.Fatalf("a time not given is set: from %v, to %v, from %q", opts.From, opts.To, raw)
		}
	})
}
