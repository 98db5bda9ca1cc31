package notify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"raterd/internal/secret"
	"raterd/sinks/alert/notify"
)

// FuzzWebhookConfig: Validate never panics, is idempotent, accepts only URLs an HTTP
// client can post to, and never repeats the URL past its scheme in an error (webhook
// URLs carry tokens).
func FuzzWebhookConfig(f *testing.F) {
	for _, s := range [][3]string{
		{"https://hooks.example.com/raterd?token=abc", "Authorization", "Bearer x"},
		{"http://127.0.0.1:8080/hook", "X-Team", "quality"},
		{"https://[::1]:443/h", "", ""},
		{"https://hooks.example.com:0/", "X", "y"},
		{"https://user:pass@hooks.example.com/", "X", "y"},
		{"hooks.example.com/x", "X", "y"},
		{"https://h/%zz", "X", "y"},
		{"https://h/x#frag", "X", "y"},
		{"https://h/x", "Bad Header", "v"},
		{"https://h/x", "X-Raterd-Signature", "v"},
		{"https://h/x", "X-Ok", "a\r\nInjected: yes"},
		{"HTTPS://H/x", "X", "y"},
		{"https://:80/x", "X", "y"},
		{"\x7f", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, u, name, value string) {
		cfg := notify.WebhookConfig{URL: secret.Secret(u)}
		if name != "" {
			cfg.Headers = map[string]string{name: value}
		}
		err := cfg.Validate("w")
		again := cfg
		if err2 := again.Validate("w"); (err == nil) != (err2 == nil) || again.Timeout != cfg.Timeout {
			t.Fatalf("Validate is not idempotent: %v then %v", err, err2)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "w.") {
				t.Fatalf("error %q does not name the key", err)
			}
			// The messages' own example ("want http(s)://host[:port]/path") and the scheme
			// they quote are not the secret part: a URL such as "://://h" or "A0000://0000"
			// would otherwise be found in them.
			msg := strings.ReplaceAll(err.Error(), "http(s)://host[:port]/path", "")
			if p, perr := url.Parse(u); perr == nil && p.Scheme != "" {
				msg = strings.ReplaceAll(msg, p.Scheme, "")
			}
			if _, rest, ok := strings.Cut(u, "://"); ok && len(rest) >= 4 && strings.Contains(msg, rest) {
				t.Fatalf("error %q repeats the URL", err)
			}
			return
		}
		p, perr := url.Parse(u)
		if perr != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Hostname() == "" || p.User != nil {
			t.Fatalf("accepted %q: parse %v, %+v", u, perr, p)
		}
		req, rerr := http.NewRequest(http.MethodPost, u, nil)
		if rerr != nil {
			t.Fatalf("accepted %q, but http.NewRequest says %v", u, rerr)
		}
		for k, v := range cfg.Headers {
			req.Header.Set(k, v)
		}
		if err := req.Header.Write(notifyDiscard{}); err != nil {
			t.Fatalf("accepted header %q: %q that cannot be written: %v", name, value, err)
		}
		if _, err := notify.NewWebhook("w", cfg, nil); err != nil {
			t.Fatalf("NewWebhook refused a valid config: %v", err)
		}
	})
}

type notifyDiscard struct{}

func (notifyDiscard) Write(p []byte) (int, error) { return len(p), nil }

// FuzzVerifyWebhookSignature: any headers and body are judged without panicking, only a
// correct MAC passes, and a correct signature passes exactly within the tolerance.
func FuzzVerifyWebhookSignature(f *testing.F) {
	f.Add([]byte("secret"), []byte(`{"alert_id":"a"}`), "1764331200", "sha256=00", int64(0))
	f.Add([]byte(""), []byte(""), "", "", int64(301))
	f.Add([]byte("k"), []byte("x"), "+1764331200", "sha256=zz", int64(-300))
	f.Add([]byte("k"), []byte("x"), "99999999999999999999", "sha256=", int64(1<<62))
	f.Add([]byte("k"), []byte("x"), "-5", "SHA256=ab", int64(-1<<62))
	now := time.Unix(1764331200, 0)
	f.Fuzz(func(t *testing.T, secret, body []byte, ts, sig string, skew int64) {
		h := http.Header{}
		h.Set("X-Raterd-Timestamp", ts)
		h.Set("X-Raterd-Signature", sig)
		if err := notify.VerifyWebhookSignature(secret, h, body, now, 5*time.Minute); err == nil {
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(h.Get("X-Raterd-Timestamp") + "."))
			mac.Write(body)
			if h.Get("X-Raterd-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
				t.Fatalf("accepted a wrong signature %q", sig)
			}
		} else if !errors.Is(err, notify.ErrBadSignature) {
			t.Fatalf("error %v does not wrap ErrBadSignature", err)
		}

		// A correct signature made at now+skew.
		skew %= 1 << 40
		ts = strconv.FormatInt(now.Unix()+skew, 10)
		if now.Unix()+skew < 0 {
			return // not Unix seconds as a sender writes them
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(ts + "."))
		mac.Write(body)
		h.Set("X-Raterd-Timestamp", ts)
		h.Set("X-Raterd-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		err := notify.VerifyWebhookSignature(secret, h, body, now, 5*time.Minute)
		if within := skew >= -300 && skew <= 300; (err == nil) != within {
			t.Fatalf("skew %ds: %v", skew, err)
		}
		if len(body) > 0 {
			tampered := append([]byte(nil), body...)
			tampered[0] ^= 1
			if notify.VerifyWebhookSignature(secret, h, tampered, now, 5*time.Minute) == nil {
				t.Fatal("accepted a tampered body")
			}
		}
	})
}
