package pool

import (
	"bytes"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Fuzz targets for what the pool parses: a server's Retry-After and error body
// (StatusError), endpoint URLs (static, and built from DNS answers) and its YAML config.
// Seed corpora: testdata/fuzz/<FuzzName>.

var fzNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// FuzzStatusError: any status, Retry-After and body give an HTTPError whose excerpt is
// at most 200 bytes of valid UTF-8 on one line (whitespace collapsed, a cut marked),
// whose Retry-After is never negative and at most a day when given in seconds (exactly
// the seconds given, when they are fewer), and whose retry class follows the status.
func FuzzStatusError(f *testing.F) {
	f.Add(503, "120", []byte(`{"error":{"message":"overloaded"}}`))
	f.Add(429, "Fri, 28 Nov 2026 12:00:30 GMT", []byte("slow down\n\n  please"))
	f.Add(400, "-5", []byte("\xff\xfe bad"))
	f.Add(500, "99999999999999999999", bytes.Repeat([]byte("é"), 300))
	f.Add(404, " 7 ", []byte(""))
	f.Add(502, "Sun, 06 Nov 1994 08:49:37 GMT", []byte("\t\r\n"))
	f.Fuzz(func(t *testing.T, code int, retryAfter string, body []byte) {
		err := StatusError(code, http.Header{"Retry-After": {retryAfter}}, body)
		he, ok := err.(*HTTPError)
		if !ok || he.StatusCode != code {
			t.Fatalf("StatusError = %#v", err)
		}
		if ex := he.Excerpt; ex == "" || len(ex) > maxExcerpt || !utf8.ValidString(ex) || strings.ContainsAny(ex, "\r\n\t") ||
			ex != strings.TrimSpace(ex) || strings.Contains(ex, "  ") {
			t.Fatalf("excerpt %q is not ≤%d bytes of valid UTF-8 on one line", ex, maxExcerpt)
		}
		if !utf8.ValidString(err.Error()) || strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("error %q", err)
		}
		if he.RetryAfter < 0 {
			t.Fatalf("Retry-After %q read as %s", retryAfter, he.RetryAfter)
		}
		if s, perr := strconv.ParseInt(strings.TrimSpace(retryAfter), 10, 64); perr == nil {
			want := time.Duration(min(max(s, 0), 24*60*60)) * time.Second
			if he.RetryAfter != want {
				t.Fatalf("Retry-After %q read as %s, want %s", retryAfter, he.RetryAfter, want)
			}
		}
		if StatusError(code, nil, body).(*HTTPError).RetryAfter != 0 {
			t.Fatal("Retry-After without a header")
		}
		if want := code == 408 || code == 429 || code == 401 || code == 403 || code == 404 || code >= 500; he.Temporary() != want || Retryable(err) != want {
			t.Fatalf("HTTP %d: temporary %v, retryable %v, want %v", code, he.Temporary(), Retryable(err), want)
		}
		if he.overload() && !he.Temporary() {
			t.Fatalf("HTTP %d is an overload but not temporary", code)
		}
	})
}

// FuzzParseRetryAfter: delay seconds and HTTP dates, against a fixed now: never
// negative; an HTTP date is exactly the time until it (0 once past); any other value 0.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "30", "-1", "86401", "9223372036854775807", "1.5", "Fri, 28 Nov 2026 12:01:00 GMT",
		"Friday, 28-Nov-26 12:01:00 GMT", "Fri Nov 28 12:01:00 2026", "Thu, 01 Jan 1970 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "soon", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		d := parseRetryAfter(h, fzNow)
		if d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %s", h, d)
		}
		if d != parseRetryAfter(h, fzNow) {
			t.Fatal("not deterministic")
		}
		v := strings.TrimSpace(h)
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			if d > 24*time.Hour || d%time.Second != 0 {
				t.Fatalf("parseRetryAfter(%q) = %s", h, d)
			}
			return
		}
		if at, err := http.ParseTime(v); err == nil {
			if want := max(0, at.Sub(fzNow)); d != want {
				t.Fatalf("parseRetryAfter(%q) = %s, want %s", h, d, want)
			}
			return
		}
		if d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %s for neither seconds nor a date", h, d)
		}
	})
}

// FuzzNormaliseURL: an accepted endpoint URL is an http(s) URL with a host, without a
// query, fragment or trailing slash; normalising is idempotent; and the health URLs
// built from it parse with the same host.
func FuzzNormaliseURL(f *testing.F) {
	for _, s := range []string{"http://gpu-0:8000/v1", "https://judge.example/v1/", "http://[::1]:8000", "http://[fe80::1%25eth0]:8000/",
		"http://h:8000/v1?x=1", "http://h/#f", "ftp://h", "http://", "http://:80", "gpu-0:8000", "http://u:p@h/", "http://h//"} {
		f.Add(s, "/health")
	}
	f.Add("http://h:8000/v1", "models")
	f.Fuzz(func(t *testing.T, raw, health string) {
		norm, err := normaliseURL(raw)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(raw)) {
				t.Fatalf("error %q does not quote the URL", err)
			}
			return
		}
		if strings.HasSuffix(norm, "/") || strings.ContainsAny(norm, "?#") {
			t.Fatalf("normaliseURL(%q) = %q", raw, norm)
		}
		u, err := url.Parse(norm)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			t.Fatalf("normaliseURL(%q) = %q, which does not parse as an http(s) URL with a host: %v", raw, norm, err)
		}
		if again, err := normaliseURL(norm); err != nil || again != norm {
			t.Fatalf("normalising %q again: %q, %v", norm, again, err)
		}
		if checkHealthPath(health) != nil {
			return
		}
		hu, err := url.Parse(healthURL(norm, health))
		if err != nil || hu.Host != u.Host || hu.Scheme != u.Scheme {
			t.Fatalf("healthURL(%q, %q) = %q: %v", norm, health, healthURL(norm, health), err)
		}
	})
}

// FuzzEndpointURL: an address a resolver answers becomes an endpoint only if it is an IP
// address, and then its URL passes the checks a static endpoint passes and names that
// address and the port.
func FuzzEndpointURL(f *testing.F) {
	for _, a := range []string{"10.0.0.7", "::1", "fe80::1%eth0", "fe80::1%25", "2001:db8::1", "::ffff:10.0.0.1", "vllm-0", "10.0.0.7%eth0", "", "fe80::1%a/b"} {
		f.Add(a, uint16(8000), "/v1")
	}
	f.Fuzz(func(t *testing.T, addr string, port uint16, path string) {
		d := &DNS{Name: "vllm.judges.svc", Port: int(port), Path: path}
		if d.validate("dns") != nil {
			return
		}
		u, err := endpointURL(d, addr)
		// Usable: an IP address, with a zone only on IPv6 and only one a URL can carry
		// as it is (an empty zone, "fe80::1%a/b" or "10.0.0.7%eth0" would give a URL
		// that does not parse or names no IP).
		host, zone, hasZone := strings.Cut(addr, "%")
		usable := net.ParseIP(host) != nil && (!hasZone || strings.Contains(host, ":") && fzURLZone(zone))
		if err != nil {
			if usable {
				t.Fatalf("refused IP address %q: %v", addr, err)
			}
			if msg := err.Error(); !strings.Contains(msg, strconv.Quote(addr)) {
				t.Fatalf("error %q does not name the address %q", msg, addr)
			}
			return
		}
		if !usable {
			t.Fatalf("accepted %q, not an IP address a URL can reach", addr)
		}
		norm, err := normaliseURL(u)
		if err != nil || norm != u {
			t.Fatalf("endpoint %q for %q is not a valid endpoint URL: %q, %v", u, addr, norm, err)
		}
		pu, _ := url.Parse(u)
		if pu.Hostname() != addr || pu.Port() != strconv.Itoa(int(port)) || pu.Path != d.Path || pu.Scheme != d.Scheme {
			t.Fatalf("endpoint %q for %q: host %q port %q path %q", u, addr, pu.Hostname(), pu.Port(), pu.Path)
		}
	})
}

// fzURLZone reports whether an IPv6 zone can be written in a URL as it is: non-empty,
// of unreserved characters only (RFC 6874).
func fzURLZone(z string) bool {
	return z != "" && strings.Trim(z, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~") == ""
}

// FuzzPoolConfig: any YAML pool section is refused or validates into a config within the
// documented bounds, and validating it again changes nothing (defaults are stable).
func FuzzPoolConfig(f *testing.F) {
	f.Add([]byte("endpoints: [{url: http://gpu-0:8000/v1, max_in_flight: 32}]\nconcurrency: {mode: fixed}\ntimeout: 30s\nmax_attempts: 2\n"))
	f.Add([]byte("dns: {name: vllm.judges.svc, port: 8000, path: /v1/, refresh: 1s}\nbreaker: {failures: 3, cooldown: 5s, health_path: \"\"}\n"))
	f.Add([]byte("endpoints: [{url: http://a}, {url: http://a/}]\n"))
	f.Add([]byte("endpoints: [{url: http://a}]\nrate_limit: {requests_per_second: .inf}\nconcurrency: {latency_tolerance: .nan}\n"))
	f.Add([]byte("endpoints: [{url: http://a}]\nbreaker: {failures: 1, bogus: 2}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Config
		if yaml.Unmarshal(data, &c) != nil {
			return
		}
		if err := c.Validate("judges.j"); err != nil {
			if !strings.Contains(err.Error(), "judges.j.") {
				t.Fatalf("error %q does not name the key", err)
			}
			return
		}
		for _, ep := range c.Endpoints {
			if ep.MaxInFlight < 1 || ep.MaxInFlight > MaxMaxInFlight {
				t.Fatalf("endpoint %+v", ep)
			}
		}
		if c.Timeout <= 0 || c.Deadline < c.Timeout || c.MaxAttempts < 1 || c.MaxAttempts > MaxMaxAttempts ||
			c.Breaker.Failures < 1 || c.Breaker.Cooldown <= 0 || c.Concurrency.Min < 1 || !(c.Concurrency.LatencyTolerance > 1) {
			t.Fatalf("validated config out of bounds: %+v", c)
		}
		if c.DNS != nil && (c.DNS.Refresh < MinDNSRefresh || c.DNS.Port < 1 || c.DNS.Port > 65535) {
			t.Fatalf("validated dns out of bounds: %+v", *c.DNS)
		}
		before, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate("judges.j"); err != nil {
			t.Fatalf("a validated config fails validation again: %v", err)
		}
		if after, _ := yaml.Marshal(c); !bytes.Equal(before, after) {
			t.Fatalf("validating again changed the config:\n%s\n%s", before, after)
		}
	})
}
