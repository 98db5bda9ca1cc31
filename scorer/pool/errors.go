package pool

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"raterd/internal/text"
)

// ErrUnavailable wraps failures that may pass: retries ran out on retryable errors, the
// task deadline passed, no endpoint could take the request, or the pool is closed.
var ErrUnavailable = errors.New("judge pool unavailable")

// Internal causes of context ends, told apart with context.Cause.
var (
	errAttemptTimeout = errors.New("attempt timed out")
	errTaskDeadline   = errors.New("task deadline passed")
	errClosed         = errors.New("pool closed")
	errAborted        = errors.New("pool closed before the request finished")
)

// maxExcerpt bounds the body excerpt quoted in an HTTPError.
const maxExcerpt = 200

// HTTPError is a non-2xx answer from an endpoint, built by StatusError.
type HTTPError struct {
	// StatusCode is the HTTP status code.
	StatusCode int
	// RetryAfter is the server's Retry-After (seconds or an HTTP date), 0 if absent or
	// unparseable; Do caps it at Options.MaxRetryAfter.
	RetryAfter time.Duration
	// Excerpt is the start of the body: at most 200 bytes of valid UTF-8 on one line.
	Excerpt string
}

// Error reads "HTTP 503 (transient): <excerpt>".
func (e *HTTPError) Error() string {
	kind := "permanent"
	if e.Temporary() {
		kind = "transient"
	}
	return fmt.Sprintf("HTTP %d (%s): %s", e.StatusCode, kind, e.Excerpt)
}

// Temporary reports whether another attempt (or a later batch) may succeed: 408, 429,
// 5xx, and the misconfiguration answers 401, 403 and 404.
func (e *HTTPError) Temporary() bool {
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		// The pool is misconfigured (a rotated key, a wrong URL or model name), not the
		// request bad: failing every record for good would silently drop their scores,
		// so these fail the batch for a later retry and eject the endpoint.
		return true
	}
	return e.StatusCode >= 500
}

// overload reports whether the answer says the server is overloaded, a signal for the
// adaptive limit: 429, 503, 504.
func (e *HTTPError) overload() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable || e.StatusCode == http.StatusGatewayTimeout
}

// StatusError classifies a non-2xx HTTP answer: the error is an *HTTPError, retryable
// (see Retryable) for 408, 429 and 5xx, permanent otherwise; header may be nil.
func StatusError(code int, header http.Header, body []byte) error {
	e := &HTTPError{StatusCode: code, Excerpt: bodyExcerpt(body, maxExcerpt)}
	if header != nil {
		e.RetryAfter = parseRetryAfter(header.Get("Retry-After"), time.Now())
	}
	return e
}

// Retryable reports whether another attempt of the failed request may succeed: an
// HTTPError with 408, 429 or 5xx, a timeout, a refused or reset connection, an
// unexpected EOF, or another network error (but not a certificate error). Other errors
// (4xx answers, unparseable responses, encoding errors) are permanent. A context error
// counts as a timeout here; Do tells the caller's context ending apart itself.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if he, ok := errors.AsType[*HTTPError](err); ok {
		return he.Temporary()
	}
	if errors.Is(err, errAttemptTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return false
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return false
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		// Transport failures: the server closed the connection (EOF), refused it, went
		// away. A canceled request is not retryable.
		return !errors.Is(ue.Err, context.Canceled)
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return false
}

// retryAfterOf is the server's Retry-After carried by err, 0 if none.
func retryAfterOf(err error) time.Duration {
	if he, ok := errors.AsType[*HTTPError](err); ok {
		return he.RetryAfter
	}
	return 0
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(0, t.Sub(now))
	}
	return 0
}

// bodyExcerpt quotes the start of a body: valid UTF-8, whitespace collapsed onto one
// line, at most n bytes (with "…" marking a cut).
func bodyExcerpt(b []byte, n int) string {
	if len(b) > 4*n {
		b = b[:4*n] // bound the work on huge bodies
	}
	s := text.OneLine(string(b))
	if s == "" {
		return "(empty body)"
	}
	return text.ClipMarked(s, n, text.Ellipsis)
}
