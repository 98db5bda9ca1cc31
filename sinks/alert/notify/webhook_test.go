package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"raterd/internal/secret"
	"raterd/sinks/alert/notify"
)

// TestWebhookSigned checks a signed delivery the way a receiver does: recompute the
// documented HMAC over "<X-Raterd-Timestamp>.<raw body>" with the shared secret, compare
// it with X-Raterd-Signature, check the timestamp is recent, then decode the body.
func TestWebhookSigned(t *testing.T) {
	const shared = "s3cr3t-shared-with-the-receiver"
	rcv := newNotifyReceiver(t, statusAlways(http.StatusNoContent), "")
	w, err := notify.NewWebhook("ops", notify.WebhookConfig{URL: secret.Secret(rcv.URL + "/hooks/raterd?tenant=a"),
		Secret: shared, Headers: map[string]string{"Authorization": "Bearer tok"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.Name() != "ops" {
		t.Errorf("Name() = %q", w.Name())
	}
	n := notifySample(notify.StateFiring)
	before := time.Now()
	if err := w.Notify(context.Background(), n); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/hooks/raterd" {
		t.Errorf("got %s %s, want POST /hooks/raterd", r.Method, r.Path)
	}
	for h, want := range map[string]string{"Content-Type": "application/json", "Authorization": "Bearer tok",
		"X-Raterd-Event-Id": n.AlertID + ":firing:" + strconv.FormatInt(n.At.UnixNano(), 10)} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}

	// The receiver's check, written out from the documentation.
	ts := r.Header.Get("X-Raterd-Timestamp")
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		t.Fatalf("X-Raterd-Timestamp %q: %v", ts, err)
	}
	if secs < before.Unix() || secs > time.Now().Unix() {
		t.Errorf("X-Raterd-Timestamp %d is not the send time (%d..%d)", secs, before.Unix(), time.Now().Unix())
	}
	mac := hmac.New(sha256.New, []byte(shared))
	mac.Write([]byte(ts + "." + string(r.Body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := r.Header.Get("X-Raterd-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		t.Fatalf("X-Raterd-Signature = %q, want %q", got, want)
	}
	var got notify.Notification
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("body is not a Notification: %v\n%s", err, r.Body)
	}
	if !reflect.DeepEqual(got, n) {
		t.Errorf("body decodes to\n%+v\nwant\n%+v", got, n)
	}

	// The exported verifier agrees, and catches tampering, a wrong secret, a stale
	// timestamp and a missing signature.
	now := time.Unix(secs, 0)
	if err := notify.VerifyWebhookSignature([]byte(shared), r.Header, r.Body, now, 0); err != nil {
		t.Errorf("VerifyWebhookSignature: %v", err)
	}
	tampered := []byte(strings.Replace(string(r.Body), `"observed":3.12`, `"observed":4.12`, 1))
	stale := r.Header.Clone()
	noSig := r.Header.Clone()
	noSig.Del("X-Raterd-Signature")
	for name, c := range map[string]struct {
		secret string
		h      http.Header
		body   []byte
		now    time.Time
	}{
		"tampered body":   {shared, r.Header, tampered, now},
		"wrong secret":    {"other", r.Header, r.Body, now},
		"stale timestamp": {shared, stale, r.Body, now.Add(6 * time.Minute)},
		"future":          {shared, stale, r.Body, now.Add(-6 * time.Minute)},
		"no signature":    {shared, noSig, r.Body, now},
	} {
		if err := notify.VerifyWebhookSignature([]byte(c.secret), c.h, c.body, c.now, 5*time.Minute); !errors.Is(err, notify.ErrBadSignature) {
			t.Errorf("%s: VerifyWebhookSignature = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestWebhookUnsigned(t *testing.T) {
	rcv := newNotifyReceiver(t, statusAlways(http.StatusOK), "")
	w, err := notify.NewWebhook("plain", notify.WebhookConfig{URL: secret.Secret(rcv.URL)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Notify(context.Background(), notifySample(notify.StatePending)); err != nil {
		t.Fatal(err)
	}
	r := rcv.requests()[0]
	if r.Header.Get("X-Raterd-Signature") != "" || r.Header.Get("X-Raterd-Timestamp") != "" {
		t.Errorf("unsigned webhook sent signature headers: %v", r.Header)
	}
	var got notify.Notification
	if err := json.Unmarshal(r.Body, &got); err != nil || got.State != notify.StatePending {
		t.Errorf("body %s: %v", r.Body, err)
	}
}

// TestWebhookStatus: 2xx is delivery; 4xx but 408/429, and redirects (not followed), are
// permanent; the rest and network errors are retryable. Errors never print the URL's
// path or query, which may hold a token.
func TestWebhookStatus(t *testing.T) {
	redirected := newNotifyReceiver(t, statusAlways(http.StatusOK), "")
	for _, c := range []struct {
		code      int
		permanent bool
	}{
		{http.StatusOK, false}, {http.StatusAccepted, false}, {http.StatusNoContent, false},
		{http.StatusBadRequest, true}, {http.StatusUnauthorized, true}, {http.StatusForbidden, true},
		{http.StatusNotFound, true}, {http.StatusGone, true}, {http.StatusRequestEntityTooLarge, true},
		{http.StatusUnprocessableEntity, true},
		{http.StatusRequestTimeout, false}, {http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false}, {http.StatusBadGateway, false},
		{http.StatusServiceUnavailable, false}, {http.StatusGatewayTimeout, false},
		{http.StatusMovedPermanently, true}, {http.StatusFound, true}, {http.StatusTemporaryRedirect, true},
		{http.StatusPermanentRedirect, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c.code >= 300 && c.code < 400 {
				w.Header().Set("Location", redirected.URL+"/elsewhere")
			}
			w.WriteHeader(c.code)
			_, _ = w.Write([]byte("receiver says no"))
		}))
		w, err := notify.NewWebhook("s", notify.WebhookConfig{URL: secret.Secret(srv.URL + "/hook/TOKEN123?key=TOKEN456"), Secret: "k"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = w.Notify(context.Background(), notifySample(notify.StateFiring))
		srv.Close()
		ok := c.code >= 200 && c.code < 300
		switch {
		case ok && err != nil:
			t.Errorf("%d: Notify = %v, want nil", c.code, err)
		case !ok && err == nil:
			t.Errorf("%d: Notify = nil, want an error", c.code)
		case !ok && errors.Is(err, notify.ErrPermanent) != c.permanent:
			t.Errorf("%d: Notify = %v; permanent %v, want %v", c.code, err, errors.Is(err, notify.ErrPermanent), c.permanent)
		case !ok:
			var se *notify.StatusError
			if !errors.As(err, &se) || se.Status != c.code {
				t.Errorf("%d: Notify = %v, want a StatusError with the code", c.code, err)
			}
			if strings.Contains(err.Error(), "TOKEN") {
				t.Errorf("%d: error prints the URL's token: %v", c.code, err)
			}
		}
	}
	if n := len(redirected.requests()); n != 0 {
		t.Errorf("a redirect was followed (%d requests at its target)", n)
	}

	// Retry-After is read (seconds form).
	rl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer rl.Close()
	w, _ := notify.NewWebhook("rl", notify.WebhookConfig{URL: secret.Secret(rl.URL)}, nil)
	var se *notify.StatusError
	if err := w.Notify(context.Background(), notifySample(notify.StateFiring)); !errors.As(err, &se) || se.RetryAfter != 7*time.Second {
		t.Errorf("429 with Retry-After 7: %v (RetryAfter %v)", err, se)
	}

	// A receiver that is not there: retryable, and the error leaves the token out.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	w, _ = notify.NewWebhook("gone", notify.WebhookConfig{URL: secret.Secret(gone.URL + "/hook/TOKEN123"), Timeout: time.Second}, nil)
	err := w.Notify(context.Background(), notifySample(notify.StateFiring))
	if err == nil || errors.Is(err, notify.ErrPermanent) || strings.Contains(err.Error(), "TOKEN") {
		t.Errorf("unreachable receiver: Notify = %v, want a retryable error without the token", err)
	}
}

// TestWebhookTimeout: a receiver slower than the timeout fails the attempt (retryable).
func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	w, err := notify.NewWebhook("slow", notify.WebhookConfig{URL: secret.Secret(srv.URL), Timeout: 50 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = w.Notify(context.Background(), notifySample(notify.StateFiring))
	if err == nil || errors.Is(err, notify.ErrPermanent) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Notify = %v, want a retryable deadline error", err)
	}
}

// TestWebhookNonFinite: JSON has no ±Inf or NaN; such numbers are sent as null rather
// than losing the notification.
func TestWebhookNonFinite(t *testing.T) {
	rcv := newNotifyReceiver(t, statusAlways(http.StatusOK), "")
	w, _ := notify.NewWebhook("inf", notify.WebhookConfig{URL: secret.Secret(rcv.URL)}, nil)
	n := notifySample(notify.StateFiring)
	n.Lower, n.Upper = math.Inf(-1), math.NaN()
	n.Examples[1].Score = math.Inf(1)
	if err := w.Notify(context.Background(), n); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(rcv.requests()[0].Body, &m); err != nil {
		t.Fatal(err)
	}
	if m["lower"] != nil || m["upper"] != nil || m["observed"] != 3.12 || m["rule"] != n.Rule {
		t.Errorf("lower %v upper %v observed %v rule %v; want null, null, 3.12, %s", m["lower"], m["upper"], m["observed"], m["rule"], n.Rule)
	}
	ex := m["examples"].([]any)
	if ex[0].(map[string]any)["score"] != 1.0 || ex[1].(map[string]any)["score"] != nil {
		t.Errorf("examples = %v, want the second score null", ex)
	}
}

func TestWebhookConfigValidate(t *testing.T) {
	good := notify.WebhookConfig{URL: secret.Secret("https://hooks.example.com/raterd")}
	if err := good.Validate("alerting.channels.ops"); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if good.Timeout != 10*time.Second {
		t.Errorf("default timeout %s, want 10s", good.Timeout)
	}
	for _, c := range []struct {
		cfg     notify.WebhookConfig
		wantKey string
	}{
		{notify.WebhookConfig{}, "ops.url"},
		{notify.WebhookConfig{URL: secret.Secret("hooks.example.com/x")}, "ops.url"},
		{notify.WebhookConfig{URL: secret.Secret("ftp://hooks.example.com/x")}, "ops.url"},
		{notify.WebhookConfig{URL: secret.Secret("https://")}, "ops.url"},
		{notify.WebhookConfig{URL: secret.Secret("https://user:pw@hooks.example.com/")}, "ops.url"},
		{notify.WebhookConfig{URL: secret.Secret("https://hooks.example.com:99999/")}, "ops.url"},
		{notify.WebhookConfig{URL: secret.Secret("https://hooks.example.com/#frag")}, "ops.url"},
		{notify.WebhookConfig{URL: secret.Secret("https://h/x"), Timeout: -time.Second}, "ops.timeout"},
		{notify.WebhookConfig{URL: secret.Secret("https://h/x"), Timeout: time.Hour}, "ops.timeout"},
		{notify.WebhookConfig{URL: secret.Secret("https://h/x"), Headers: map[string]string{"Bad Name": "v"}}, "ops.headers"},
		{notify.WebhookConfig{URL: secret.Secret("https://h/x"), Headers: map[string]string{"X-Raterd-Signature": "v"}}, "ops.headers.X-Raterd-Signature"},
		{notify.WebhookConfig{URL: secret.Secret("https://h/x"), Headers: map[string]string{"content-type": "text/plain"}}, "ops.headers.content-type"},
		{notify.WebhookConfig{URL: secret.Secret("https://h/x"), Headers: map[string]string{"X-Team": "a\r\nInjected: 1"}}, "ops.headers.X-Team"},
	} {
		err := c.cfg.Validate("ops")
		if err == nil || !strings.HasPrefix(err.Error(), c.wantKey+":") {
			t.Errorf("%+v: Validate = %v, want an error naming %s", c.cfg, err, c.wantKey)
		}
	}
	if _, err := notify.NewWebhook("ops", notify.WebhookConfig{URL: secret.Secret("nope")}, nil); err == nil {
		t.Error("NewWebhook accepted an invalid config")
	}
}

// TestChannelSecretFiles checks the *_file keys of the HTTP channels: the file is read
// into the setting (one trailing newline dropped), both set or an unreadable file is an
// error naming the keys, and no error or print of the settings shows the value.
func TestChannelSecretFiles(t *testing.T) {
	const hook = "https://hooks.slack.com/services/T000/B000/SECRETTOKEN42"
	dir := t.TempDir()
	file := filepath.Join(dir, "url")
	if err := os.WriteFile(file, []byte(hook+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := notify.SlackConfig{URLFile: file}
	if err := s.Validate("alerting.channels.team"); err != nil || s.URL.Reveal() != hook {
		t.Fatalf("slack url_file: %v, url %q", err, s.URL.Reveal())
	}
	w := notify.WebhookConfig{URLFile: file, SecretFile: file}
	if err := w.Validate("alerting.channels.ops"); err != nil || w.URL.Reveal() != hook || w.Secret.Reveal() != hook {
		t.Fatalf("webhook *_file: %v", err)
	}
	for _, c := range []struct {
		cfg  notify.Settings
		want string
	}{
		{&notify.SlackConfig{URL: hook, URLFile: file}, "alerting.channels.team.url and alerting.channels.team.url_file are both set"},
		{&notify.SlackConfig{URLFile: filepath.Join(dir, "missing")}, "alerting.channels.team.url_file: "},
		{&notify.WebhookConfig{URL: hook, Secret: hook, SecretFile: file}, "alerting.channels.team.secret and alerting.channels.team.secret_file are both set"},
		{&notify.WebhookConfig{URL: "https://h:99999/services/T000/B000/SECRETTOKEN42"}, "alerting.channels.team.url"},
	} {
		err := c.cfg.Validate("alerting.channels.team")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%T: err = %v, want %q", c.cfg, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRETTOKEN42") {
			t.Errorf("error shows the secret: %v", err)
		}
		if p := fmt.Sprintf("%v %+v %#v", c.cfg, c.cfg, c.cfg); strings.Contains(p, "SECRETTOKEN42") {
			t.Errorf("print shows the secret: %s", p)
		}
	}
}
