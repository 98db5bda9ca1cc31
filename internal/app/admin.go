package app

// Access control of the admin server: a bearer token from a file, TLS and mTLS, and the
// profiling endpoints. The endpoints themselves are in telemetry.go (newAdminServer).

import (
	"bytes"
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
	"strings"
	"sync"
	"time"

	"raterd/internal/tlsfiles"
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
	open := "/metrics, /healthz and /readyz"
	if c.PProf {
		open = "/metrics, /healthz, /readyz and the profiles under /debug/pprof/"
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
