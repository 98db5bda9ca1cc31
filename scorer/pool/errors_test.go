package pool

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

func TestStatusError(t *testing.T) {
	body := []byte(strings.Repeat("line one\n\t\xff\xfe é ", 100))
	err := StatusError(503, http.Header{"Retry-After": {"7"}}, body)
	var he *HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("%T is not an *HTTPError", err)
	}
	if he.StatusCode != 503 || he.RetryAfter != 7*time.Second {
		t.Errorf("got %+v", he)
	}
	if len(he.Excerpt) > maxExcerpt || !utf8.ValidString(he.Excerpt) || strings.ContainsAny(he.Excerpt, "\n\r\t") {
		t.Errorf("excerpt is not ≤%d bytes of one-line UTF-8: %q", maxExcerpt, he.Excerpt)
	}
	if !strings.HasPrefix(err.Error(), "HTTP 503 (transient): line one") {
		t.Errorf("message: %s", err)
	}
	if got := StatusError(400, nil, nil).Error(); got != "HTTP 400 (permanent): (empty body)" {
		t.Errorf("message: %s", got)
	}
	for code, want := range map[int]bool{400: false, 401: true, 403: true, 404: true, 408: true, 409: false, 422: false, 429: true, 500: true, 502: true, 503: true, 504: true} {
		if got := Retryable(StatusError(code, nil, nil)); got != want {
			t.Errorf("Retryable(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		" 120 ":                         2 * time.Minute,
		"-1":                            0,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:04:15 GMT": 10 * time.Second,
		"Fri, 02 Jan 2026 03:04:00 GMT": 0, // in the past
		"99999999999999":                24 * time.Hour,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRetryable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("cannot decode answer"), false},
		{fmt.Errorf("wrapped: %w", StatusError(500, nil, nil)), true},
		{fmt.Errorf("wrapped: %w", StatusError(404, nil, nil)), true}, // a misconfigured pool: retry the batch later
		{fmt.Errorf("wrapped: %w", StatusError(422, nil, nil)), false},
		{&url.Error{Op: "Post", URL: "http://x", Err: refused}, true},
		{refused, true},
		{&url.Error{Op: "Post", URL: "http://x", Err: io.EOF}, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{&url.Error{Op: "Post", URL: "http://x", Err: context.Canceled}, false},
		{&url.Error{Op: "Post", URL: "http://x", Err: context.DeadlineExceeded}, true},
		{&url.Error{Op: "Post", URL: "https://x", Err: x509.UnknownAuthorityError{}}, false},
		{&net.DNSError{Err: "no such host", Name: "x"}, true},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestBodyExcerpt(t *testing.T) {
	s := bodyExcerpt([]byte(strings.Repeat("é", 300)), 200)
	if len(s) > 200 || !utf8.ValidString(s) || !strings.HasSuffix(s, "…") {
		t.Errorf("cut excerpt %q (%d bytes)", s, len(s))
	}
	if got := bodyExcerpt([]byte("  short \n body "), 200); got != "short body" {
		t.Errorf("got %q", got)
	}
}
