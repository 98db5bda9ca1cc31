package notify

// Shared pieces of the notification channels (notify_*.go): the permanent-error sentinel,
// the HTTP sender the webhook, Slack and Alertmanager channels post through, and the
// validation and formatting helpers they have in common.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrPermanent marks a delivery error that sending the same notification again cannot
// fix: a receiver that refused it (HTTP 4xx other than 408 and 429, a redirect), or a
// notification that cannot be encoded. A Deliverer stops retrying on errors that wrap it
// (errors.Is). Every other error is transient.
var ErrPermanent = errors.New("permanent delivery failure")

// StatusError is an HTTP receiver's answer other than 2xx. It wraps ErrPermanent for 3xx
// (redirects are not followed: a webhook URL should name its final address) and for 4xx
// other than 408 Request Timeout and 429 Too Many Requests.
type StatusError struct {
	// Channel names the channel, e.g. `webhook "ops"`.
	Channel string
	// Host is the receiver's scheme://host; the rest of the URL is left out because
	// webhook URLs often carry a token (Slack's always do).
	Host string
	// Status is the HTTP status code.
	Status int
	// Body is the start of the response body (at most 512 bytes), for the log.
	Body string
	// RetryAfter is the receiver's Retry-After (429, 503), zero when absent; a Deliverer
	// waits at least this long (up to its max_backoff) before the next attempt.
	RetryAfter time.Duration
}

// Error says who answered what.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: %s answered %d %s", e.Channel, e.Host, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Unwrap returns ErrPermanent when the status says that retrying cannot help, else nil.
func (e *StatusError) Unwrap() error {
	if httpPermanentStatus(e.Status) {
		return ErrPermanent
	}
	return nil
}

// httpPermanentStatus: 3xx (not followed) and 4xx other than 408 and 429.
func httpPermanentStatus(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return false
	case code >= 300 && code < 500:
		return true
	}
	return false
}

// maxRetryAfter bounds the Retry-After a receiver can impose.
const maxRetryAfter = time.Hour

// parseRetryAfter reads a Retry-After value, delay-seconds or an HTTP date (RFC 9110
// §10.2.3), as a wait from now in [0, 1h]; 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return min(max(t.Sub(now), 0), maxRetryAfter)
}

// httpSender posts JSON to HTTP receivers. It never follows redirects, bounds each
// request by timeout and classifies the answer (see StatusError).
type httpSender struct {
	channel string // `webhook "ops"`, for errors
	client  *http.Client
	timeout time.Duration
	headers http.Header // added to every request
}

// newHTTPSender copies client (nil: a new one with Go's default transport) so that it can
// refuse redirects without changing the caller's client.
func newHTTPSender(channel string, client *http.Client, timeout time.Duration, headers map[string]string) *httpSender {
	c := &http.Client{}
	if client != nil {
		*c = *client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	h := http.Header{}
	for k, v := range headers {
		h.Set(k, v)
	}
	return &httpSender{channel: channel, client: c, timeout: timeout, headers: h}
}

// post sends body to target with the sender's headers, then extra, and returns nil on a
// 2xx answer.
func (s *httpSender) post(ctx context.Context, target string, body []byte, extra http.Header) error {
	host := redactURL(target)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: %w: request to %s: %v", s.channel, ErrPermanent, host, err)
	}
	for k, vs := range s.headers {
		req.Header[k] = slices.Clone(vs)
	}
	for k, vs := range extra {
		req.Header[k] = slices.Clone(vs)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "raterd-alert/1")
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error prints the whole URL, token included: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: post to %s: %w", s.channel, host, err)
	}
	defer func() {
		// Drain a little so that the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	serr := &StatusError{Channel: s.channel, Host: host, Status: resp.StatusCode,
		Body:       strings.TrimSpace(strings.ToValidUTF8(string(snippet), "\uFFFD")),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		serr.Body = "redirect to " + redactURL(loc) + " not followed; configure the final address"
	}
	return serr
}

// redactURL is scheme://host of u: enough to say which receiver failed without printing
// a token in the path or query.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "(unparsable URL)"
	}
	return p.Scheme + "://" + p.Host
}

// validateHTTPURL checks that u is an absolute http or https URL with a host, without
// user info (put credentials in headers) or a fragment.
func validateHTTPURL(key, u string) error {
	if u == "" {
		return fmt.Errorf("%s: required", key)
	}
	p, err := url.Parse(u)
	if err != nil {
		// Parse errors quote parts of the URL (a port, a host), which may hold a token:
		// say what is wrong without them.
		return fmt.Errorf("%s: not a valid URL (want http(s)://host[:port]/path)", key)
	}
	switch {
	case p.Scheme != "http" && p.Scheme != "https":
		return fmt.Errorf("%s: scheme %q is not http or https", key, p.Scheme)
	case p.Host == "" || p.Hostname() == "":
		return fmt.Errorf("%s: no host", key)
	case p.User != nil:
		return fmt.Errorf("%s: credentials in the URL are not allowed; use headers (Authorization)", key)
	case p.Fragment != "" || strings.Contains(u, "#"):
		return fmt.Errorf("%s: a fragment (#…) is not sent to the server; remove it", key)
	}
	if port := p.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%s: port %q is not in 1..65535", key, port)
		}
	}
	return nil
}

// channelReservedHeaders are set by the channels themselves.
var channelReservedHeaders = []string{"Content-Type", "Content-Length", "Host", "User-Agent",
	"Transfer-Encoding", "Connection", headerSignature, headerTimestamp, headerEventID}

// validateChannelHeaders checks custom header names (RFC 9110 tokens, none that a channel sets
// itself) and values (no control characters).
func validateChannelHeaders(key string, h map[string]string) error {
	for name, v := range h {
		if !httpToken(name) {
			return fmt.Errorf("%s: %q is not a valid header name", key, name)
		}
		for _, r := range channelReservedHeaders {
			if strings.EqualFold(name, r) {
				return fmt.Errorf("%s.%s: set by raterd itself; remove it", key, name)
			}
		}
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
				return fmt.Errorf("%s.%s: the value holds a control character", key, name)
			}
		}
	}
	return nil
}

func httpToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validateChannelTimeout fills the default and checks the range (0, 5m].
func validateChannelTimeout(key string, d *time.Duration, def time.Duration) error {
	if *d == 0 {
		*d = def
	}
	if *d < 0 || *d > 5*time.Minute {
		return fmt.Errorf("%s: %s is not in (0, 5m]", key, *d)
	}
	return nil
}

// encodeNotification is n as JSON: the encoding of the Notification type, except that a
// non-finite number (an unbounded interval, say), which JSON cannot carry, is sent as
// null instead of failing the whole notification.
func encodeNotification(n Notification) ([]byte, error) {
	b, err := json.Marshal(n)
	if err == nil {
		return b, nil
	}
	c := n
	c.Examples = slices.Clone(n.Examples)
	var nulls []string
	for key, v := range map[string]*float64{"observed": &c.Observed, "expected": &c.Expected, "lower": &c.Lower, "upper": &c.Upper} {
		if !notifyFinite(*v) {
			*v, nulls = 0, append(nulls, key)
		}
	}
	var nullScores []int
	for i := range c.Examples {
		if !notifyFinite(c.Examples[i].Score) {
			c.Examples[i].Score, nullScores = 0, append(nullScores, i)
		}
	}
	if b, err = json.Marshal(c); err != nil {
		return nil, fmt.Errorf("%w: encode notification %s: %v", ErrPermanent, n.AlertID, err)
	}
	if len(nulls) == 0 && len(nullScores) == 0 {
		return b, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: encode notification %s: %v", ErrPermanent, n.AlertID, err)
	}
	for _, k := range nulls {
		m[k] = json.RawMessage("null")
	}
	if len(nullScores) > 0 {
		var ex []map[string]json.RawMessage
		if err := json.Unmarshal(m["examples"], &ex); err != nil {
			return nil, fmt.Errorf("%w: encode notification %s: %v", ErrPermanent, n.AlertID, err)
		}
		for _, i := range nullScores {
			ex[i]["score"] = json.RawMessage("null")
		}
		if m["examples"], err = json.Marshal(ex); err != nil {
			return nil, fmt.Errorf("%w: encode notification %s: %v", ErrPermanent, n.AlertID, err)
		}
	}
	if b, err = json.Marshal(m); err != nil {
		return nil, fmt.Errorf("%w: encode notification %s: %v", ErrPermanent, n.AlertID, err)
	}
	return b, nil
}

func notifyFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// notifyNum prints a statistic for people: four significant digits, "+Inf"/"-Inf"/"NaN"
// as such.
func notifyNum(x float64) string { return strconv.FormatFloat(x, 'g', 4, 64) }

// notifySeries is model/app evaluator (judge), leaving out what is empty.
func notifySeries(s Series) string {
	var b strings.Builder
	b.WriteString(s.Model)
	if s.App != "" {
		b.WriteString("/" + s.App)
	}
	if s.Evaluator != "" {
		b.WriteString(" " + s.Evaluator)
	}
	if s.Judge != "" {
		b.WriteString(" (judge " + s.Judge + ")")
	}
	return b.String()
}

// notifyObserved is the observation with its interval: "3.1 [2.9, 3.3]".
func notifyObserved(n Notification) string {
	return fmt.Sprintf("%s [%s, %s]", notifyNum(n.Observed), notifyNum(n.Lower), notifyNum(n.Upper))
}

// notifySummary is a one-line description of n, used by Slack's fallback text and
// Alertmanager's summary annotation.
func notifySummary(n Notification) string {
	state := strings.ToUpper(n.State)
	if n.NoData && n.State != StateResolved {
		return fmt.Sprintf("[%s] %s on %s: no data since %s", state, n.Rule, notifySeries(n.Series), n.Since.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("[%s] %s on %s: observed %s vs expected %s, n=%d",
		state, n.Rule, notifySeries(n.Series), notifyObserved(n), notifyNum(n.Expected), n.SampleSize)
}
