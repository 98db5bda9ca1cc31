package app

// Access control of the admin server: a bearer token from a file, TLS and mTLS, the
// profiling endpoints and the HTML quality report (GET /report). The other endpoints are
// in telemetry.go (newAdminServer).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"raterd/internal/report/htmlreport"
	"raterd/internal/tlsfiles"
	"raterd/sinks/clickhouse"
)

// validate checks the admin keys other than listen: that the token file holds a token,
// that the certificate and key load and match, that the client CA file holds a
// certificate. Every error names the key.
func (c *AdminConfig) validate() error {
	if c.TokenFile != "" {
		if _, err := readToken(c.TokenFile); err != nil {
			return fmt.Errorf("admin.token_file: %w", err)
		}
	}
	if c.TLS != nil {
		if _, err := c.TLS.load(c.AuthHealth, nil); err != nil {
			return err
		}
	}
	if c.AuthHealth && c.TokenFile == "" && (c.TLS == nil || c.TLS.ClientCAFile == "") {
		return errors.New("admin.auth_health: needs admin.token_file or admin.tls.client_ca_file")
	}
	return nil
}

// load builds the server's TLS config (tlsfiles): the certificate and key are reloaded
// when their files change, so a renewed certificate is presented without a restart, and a
// failed reload is logged to logger (nil: slog.Default()) once per change. With
// ClientCAFile, a client certificate is verified against it when one is sent, and
// required at the handshake when requireClientCert (admin.auth_health: every endpoint
// needs it); otherwise adminAuth requires it of the protected endpoints, so that probes
// reach the open ones.
func (c *AdminTLSConfig) load(requireClientCert bool, logger *slog.Logger) (*tls.Config, error) {
	return tlsfiles.Server{
		CertFile: c.CertFile, KeyFile: c.KeyFile, ClientCAFile: c.ClientCAFile,
		RequireClientCert: requireClientCert, Logger: logger,
	}.Config(tlsfiles.ServerKeys{
		Section: "admin.tls", CertFile: "admin.tls.cert_file", KeyFile: "admin.tls.key_file",
		ClientCAFile: "admin.tls.client_ca_file",
	})
}

// exposure returns the start-up warning for an admin server that anyone who reaches
// its port may read: listening beyond loopback with neither a token nor client
// certificates. "" when none is due.
func (c *AdminConfig) exposure() string {
	if c.Listen == "off" || isLoopback(c.Listen) || c.TokenFile != "" || (c.TLS != nil && c.TLS.ClientCAFile != "") {
		return ""
	}
	open := "/metrics, /report, /healthz and /readyz"
	if c.PProf {
		open = "/metrics, /report, /healthz, /readyz and the profiles under /debug/pprof/"
	}
	return fmt.Sprintf("admin.listen %q is not loopback and neither admin.token_file nor admin.tls.client_ca_file is set: "+
		"%s answer anyone who reaches the port; restrict it (NetworkPolicy, firewall) or set one of them", c.Listen, open)
}

// isLoopback reports whether listen (host:port) binds loopback only: localhost or a
// loopback IP. An empty host (all interfaces) or another name is not.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readToken reads the token of path: its content without surrounding whitespace. An
// error never holds the content.
func readToken(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tok := bytes.TrimSpace(data)
	if len(tok) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return tok, nil
}

// tokenFile is the bearer token of admin.token_file, kept as its SHA-256 and re-read
// when the file's modification time or size changes (a rotated secret). A file that
// cannot be read, or is empty, keeps the last token in effect and is logged once, until
// it reads again.
type tokenFile struct {
	path   string
	logger *slog.Logger

	mu      sync.Mutex
	modTime time.Time
	size    int64
	sum     [sha256.Size]byte
	failing bool // a re-read failed; logged
}

// newTokenFile reads path's token. A nil logger logs to slog.Default.
func newTokenFile(path string, logger *slog.Logger) (*tokenFile, error) {
	if logger == nil {
		logger = slog.Default()
	}
	t := &tokenFile{path: path, logger: logger}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("admin.token_file: %w", err)
	}
	tok, err := readToken(path)
	if err != nil {
		return nil, fmt.Errorf("admin.token_file: %w", err)
	}
	t.modTime, t.size, t.sum = fi.ModTime(), fi.Size(), sha256.Sum256(tok)
	return t, nil
}

// current returns the SHA-256 of the token in effect, re-reading the file first if it
// changed since it was last read.
func (t *tokenFile) current() [sha256.Size]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Stat before reading: a change after the stat is seen by the next request.
	fi, err := os.Stat(t.path)
	if err == nil && fi.ModTime().Equal(t.modTime) && fi.Size() == t.size {
		return t.sum
	}
	var tok []byte
	if err == nil {
		tok, err = readToken(t.path)
	}
	if err != nil {
		if !t.failing {
			t.failing = true
			t.logger.Warn("admin.token_file cannot be read; the last token stays in effect", "err", err)
		}
		return t.sum
	}
	t.modTime, t.size, t.failing = fi.ModTime(), fi.Size(), false
	if sum := sha256.Sum256(tok); sum != t.sum {
		t.sum = sum
		t.logger.Info("admin.token_file changed; the new token is in effect", "file", t.path)
	}
	return t.sum
}

// valid reports whether given is the token, in constant time (both are hashed first, so
// not even the length is told).
func (t *tokenFile) valid(given string) bool {
	want := t.current()
	got := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// adminAuth guards the protected admin endpoints: a request passes with a client
// certificate verified against admin.tls.client_ca_file, or with the bearer token of
// admin.token_file. With neither configured every request passes.
type adminAuth struct {
	token *tokenFile // nil: no token
	mtls  bool       // client certificates are verified (admin.tls.client_ca_file)
}

// wrap returns h behind the check; h itself when nothing is configured.
func (a *adminAuth) wrap(h http.Handler) http.Handler {
	if a.token == nil && !a.mtls {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.mtls && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			h.ServeHTTP(w, r)
			return
		}
		if a.token == nil {
			http.Error(w, "forbidden: client certificate required", http.StatusForbidden)
			return
		}
		given, ok := bearer(r.Header.Get("Authorization"))
		if ok && a.token.valid(given) {
			h.ServeHTTP(w, r)
			return
		}
		challenge := `Bearer realm="raterd admin"`
		if ok {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
}

// bearer returns the token of an "Authorization: Bearer <token>" header value (the
// scheme is case-insensitive); false when there is none.
func bearer(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// handlePProf serves net/http/pprof's endpoints on mux under /debug/pprof/, each
// behind auth.
func handlePProf(mux *http.ServeMux, auth *adminAuth) {
	mux.Handle("/debug/pprof/", auth.wrap(http.HandlerFunc(pprof.Index)))
	mux.Handle("/debug/pprof/cmdline", auth.wrap(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("/debug/pprof/profile", auth.wrap(http.HandlerFunc(pprof.Profile)))
	mux.Handle("/debug/pprof/symbol", auth.wrap(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("/debug/pprof/trace", auth.wrap(http.HandlerFunc(pprof.Trace)))
}

// reportTimeout bounds one GET /report: connecting, the queries and rendering.
const reportTimeout = time.Minute

// reportRetryAfter is the Retry-After, in seconds, of a /report request refused because
// another is being rendered.
const reportRetryAfter = 10

// reportEndpoint serves GET /report: the HTML quality report (htmlreport) of the scores in
// the configured ClickHouse, for the links of alert notifications. Query parameters:
// evaluator, model and app (each repeatable; default every value), from and to (RFC 3339;
// default the last 24 hours up to now). At most one report is rendered at a time: a second
// request meanwhile gets 429 with Retry-After.
type reportEndpoint struct {
	// open connects to ClickHouse; the returned func closes the connection. Nil: no
	// ClickHouse sink is configured, and /report answers 404.
	open    func(ctx context.Context) (htmlreport.Querier, func(), error)
	redact  func(string) string
	timeout time.Duration
	now     func() time.Time
	logger  *slog.Logger
	busy    chan struct{} // holds a token while a report renders
}

// newReportEndpoint serves the report of cfg's ClickHouse (none when cfg.ClickHouse is
// nil), its labels and explanations redacted by scoring.redact. A nil logger logs to
// slog.Default.
func newReportEndpoint(cfg *Config, logger *slog.Logger) (*reportEndpoint, error) {
	if logger == nil {
		logger = slog.Default()
	}
	e := &reportEndpoint{timeout: reportTimeout, now: time.Now, logger: logger, busy: make(chan struct{}, 1)}
	r, err := cfg.Scoring.Redact.Redactor("scoring.redact")
	if err != nil {
		return nil, err
	}
	if r != nil {
		e.redact = r.Redact
	}
	if cfg.ClickHouse != nil {
		ch := *cfg.ClickHouse
		e.open = func(ctx context.Context) (htmlreport.Querier, func(), error) {
			conn, err := clickhouse.Open(ctx, ch)
			if err != nil {
				return nil, nil, err
			}
			return htmlreport.ConnQuerier{Conn: conn, Database: ch.Database}, func() { _ = conn.Close() }, nil
		}
	}
	return e, nil
}

const (
	// reportMaxValues is the most values /report takes per evaluator, model or app: each
	// becomes an element of the queries' IN lists, which must stay under ClickHouse's
	// max_query_size (262144 bytes by default).
	reportMaxValues = 100
	// reportMaxValueLen is the longest evaluator, model or app /report takes, in bytes.
	reportMaxValueLen = 200
)

// reportOptions reads the request's query parameters into report options; an error names
// the parameter. Other parameters are ignored: the query of alerting.report_url's base URL
// is kept in alert links, for a gateway's own non-secret parameters (a tenant); secrets
// have no place there, as every reader of an alert sees its link.
func reportOptions(r *http.Request) (htmlreport.Options, error) {
	var opts htmlreport.Options
	q := r.URL.Query()
	for name, dst := range map[string]*[]string{"evaluator": &opts.Evaluators, "model": &opts.Models, "app": &opts.Apps} {
		if n := len(q[name]); n > reportMaxValues {
			return opts, fmt.Errorf("%s: given %d times, at most %d", name, n, reportMaxValues)
		}
		for _, v := range q[name] {
			if v == "" || !utf8.ValidString(v) {
				return opts, fmt.Errorf("%s: %q is not a name (empty or not UTF-8)", name, v)
			}
			if len(v) > reportMaxValueLen {
				return opts, fmt.Errorf("%s: %.40q… is %d bytes long, at most %d", name, v, len(v), reportMaxValueLen)
			}
			*dst = append(*dst, v)
		}
	}
	for name, dst := range map[string]*time.Time{"from": &opts.From, "to": &opts.To} {
		vs := q[name]
		if len(vs) > 1 {
			return opts, fmt.Errorf("%s: given %d times", name, len(vs))
		}
		if len(vs) == 1 {
			t, err := time.Parse(time.RFC3339, vs[0])
			if err != nil {
				return opts, fmt.Errorf("%s: %q is not an RFC 3339 time (2026-11-24T12:00:00Z)", name, vs[0])
			}
			if err := reportTimeInRange(t); err != nil {
				return opts, fmt.Errorf("%s: %w", name, err)
			}
			*dst = t
		}
	}
	if !opts.From.IsZero() && !opts.To.IsZero() && !opts.From.Before(opts.To) {
		return opts, fmt.Errorf("from: %s is not before to %s", opts.From.Format(time.RFC3339), opts.To.Format(time.RFC3339))
	}
	return opts, nil
}

// reportTimeInRange checks that t, widened to whole seconds as htmlreport.ClickHouseRange
// does, is within the range of the cookbook's DateTime parameters
// (clickhouse.ParseCookbookTime): time.Parse takes years 0000 to 9999, ClickHouse's
// DateTime 1970 to 2105.
func reportTimeInRange(t time.Time) error {
	t = t.UTC()
	whole := []time.Time{t.Truncate(time.Second)}
	if whole[0].Before(t) { // as a to, it is rounded up
		whole = append(whole, whole[0].Add(time.Second))
	}
	for _, w := range whole {
		if _, err := clickhouse.ParseCookbookTime(w.Format(time.RFC3339)); err != nil {
			return fmt.Errorf("out of range: %w", err)
		}
	}
	return nil
}

func (e *reportEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e == nil || e.open == nil {
		http.Error(w, "no ClickHouse sink is configured (clickhouse.addrs): /report reads the scores from ClickHouse", http.StatusNotFound)
		return
	}
	opts, err := reportOptions(r)
	if err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	now := e.now()
	if opts.From, opts.To, err = htmlreport.ClickHouseRange(opts, now); err != nil {
		http.Error(w, "bad request: from, to: "+err.Error(), http.StatusBadRequest)
		return
	}
	// A from left out defaults to a day before to, which may fall before 1970.
	if err := reportTimeInRange(opts.From); err != nil {
		http.Error(w, "bad request: from (by default 24 hours before to): "+err.Error(), http.StatusBadRequest)
		return
	}
	opts.Now, opts.Redact = now, e.redact
	select {
	case e.busy <- struct{}{}:
	default:
		w.Header().Set("Retry-After", strconv.Itoa(reportRetryAfter))
		http.Error(w, "another report is being rendered; retry later", http.StatusTooManyRequests)
		return
	}
	page, err := e.renderOnce(r.Context(), opts)
	// The slot is free again before anything is written: a client that never reads its
	// response holds only its own connection, until the write deadline, not /report.
	// The admin server has no WriteTimeout (a /debug/pprof/profile streams for as long
	// as asked), so each response here sets its own.
	if derr := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(e.timeout)); derr != nil && !errors.Is(derr, http.ErrNotSupported) {
		e.logger.Warn("admin /report: setting the write deadline", "err", derr)
	}
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		e.logger.Warn("admin /report failed", "err", err)
		http.Error(w, "report failed: "+err.Error(), status)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// The page has no scripts and loads nothing: say so to the browser as well.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	_, _ = w.Write(page)
}

// renderOnce renders the page within e.timeout and frees the render slot (e.busy), which
// the caller holds, when rendering returns.
func (e *reportEndpoint) renderOnce(ctx context.Context, opts htmlreport.Options) ([]byte, error) {
	defer func() { <-e.busy }()
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	return e.render(ctx, opts)
}

// render builds the page within ctx.
func (e *reportEndpoint) render(ctx context.Context, opts htmlreport.Options) ([]byte, error) {
	q, closeConn, err := e.open(ctx)
	if err != nil {
		return nil, err
	}
	defer closeConn()
	d, err := htmlreport.FromClickHouse(ctx, q, opts)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := htmlreport.Render(&b, d); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return b.Bytes(), nil
}
