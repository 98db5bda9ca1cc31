package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"raterd/internal/secret"
	"strconv"
	"strings"
	"time"
)

// Headers of a webhook request.
const (
	// headerSignature carries "sha256=" and the lowercase hex HMAC-SHA256, keyed with the
	// secret, of the signed payload: the X-Raterd-Timestamp value, a ".", then the body.
	headerSignature = "X-Raterd-Signature"
	// headerTimestamp is the Unix time in seconds (decimal) at which the attempt was sent.
	headerTimestamp = "X-Raterd-Timestamp"
	// headerEventID is <alert_id>:<state>:<at in Unix nanoseconds>, the same on every
	// attempt of one notification, so that a receiver can drop a retry it already has.
	headerEventID = "X-Raterd-Event-Id"
)

// WebhookConfig is a generic JSON webhook channel.
//
// Each notification is POSTed as the JSON of a Notification (Content-Type
// application/json; a non-finite number is sent as null; report_url, the link to the
// series' HTML report, only with alerting.report_url), with X-Raterd-Event-Id
// (<alert_id>:<state>:<at in Unix nanoseconds>, equal on every retry of one notification).
//
// With a secret, every request is signed like Stripe's and GitHub's webhooks:
//
//	X-Raterd-Timestamp: 1764331200
//	X-Raterd-Signature: sha256=<hex(HMAC-SHA256(secret, "1764331200" + "." + body))>
//
// that is, the HMAC-SHA256 keyed with the secret's bytes over the timestamp header's
// exact value (Unix seconds when the attempt was sent), a full stop, and the raw request
// body, in lowercase hex after "sha256=". A receiver recomputes it over the body bytes it
// read (before any JSON parsing), compares in constant time, and rejects timestamps
// further than a few minutes from its clock, which makes a captured request useless for
// replay later. VerifyWebhookSignature does all of this.
//
// A 2xx answer is delivery; 408, 429, 5xx and network errors are retried; other 4xx and
// 3xx (redirects are not followed) are permanent (ErrPermanent).
type WebhookConfig struct {
	// URL receives the POSTs: an absolute http or https URL, without credentials (use
	// headers). Held as a secret because webhook URLs often carry a token: never logged,
	// never in an error (which names the host at most), redacted in any print of the
	// config. Required, here or in URLFile.
	URL secret.Secret `yaml:"url"`
	// URLFile is a file that holds the URL (a mounted Kubernetes secret; one trailing
	// newline is dropped), read by Validate into URL. Not with URL.
	URLFile string `yaml:"url_file"`
	// Secret signs every request (see above); never logged, redacted in any print of the
	// config. Default: none, requests are unsigned.
	Secret secret.Secret `yaml:"secret"`
	// SecretFile is a file that holds the signing secret (one trailing newline is
	// dropped), read by Validate into Secret. Not with Secret.
	SecretFile string `yaml:"secret_file"`
	// Headers are added to every request, e.g. Authorization. Content-Type, User-Agent,
	// Host, Content-Length and the X-Raterd-* headers are set by raterd and refused here.
	// Default: none.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one request, connecting included. Default 10s; at most 5m.
	Timeout time.Duration `yaml:"timeout"`

	reportSettings `yaml:"-"` // alerting.report_url, set by Decode
}

// Validate fills defaults and rejects bad values; key prefixes the key names in errors.
func (c *WebhookConfig) Validate(key string) error {
	u, err := secret.Resolve(key+".url", c.URL, "", key+".url_file", c.URLFile)
	if err != nil {
		return err
	}
	c.URL, c.URLFile = u, ""
	sig, err := secret.Resolve(key+".secret", c.Secret, "", key+".secret_file", c.SecretFile)
	if err != nil {
		return err
	}
	c.Secret, c.SecretFile = sig, ""
	if err := validateHTTPURL(key+".url", c.URL.Reveal()); err != nil {
		return err
	}
	if err := validateChannelHeaders(key+".headers", c.Headers); err != nil {
		return err
	}
	return validateChannelTimeout(key+".timeout", &c.Timeout, 10*time.Second)
}

// Webhook is the generic JSON webhook channel; see WebhookConfig.
type Webhook struct {
	name   string
	url    string
	secret []byte
	sender *httpSender
}

// NewWebhook returns the webhook channel called name, posting through client (nil: a
// client of its own with Go's default transport; redirects are never followed either
// way). It validates cfg, filling defaults.
func NewWebhook(name string, cfg WebhookConfig, client *http.Client) (*Webhook, error) {
	if err := cfg.Validate(name); err != nil {
		return nil, err
	}
	w := &Webhook{name: name, url: cfg.URL.Reveal(),
		sender: newHTTPSender(fmt.Sprintf("webhook %q", name), client, cfg.Timeout, cfg.Headers)}
	if cfg.Secret != "" {
		w.secret = []byte(cfg.Secret.Reveal())
	}
	return w, nil
}

// Name implements Notifier.
func (w *Webhook) Name() string { return w.name }

// Notify implements Notifier: one POST, signed when a secret is set.
func (w *Webhook) Notify(ctx context.Context, n Notification) error {
	body, err := encodeNotification(n)
	if err != nil {
		return fmt.Errorf("webhook %q: %w", w.name, err)
	}
	h := http.Header{}
	h.Set(headerEventID, webhookEventID(n))
	if w.secret != nil {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		h.Set(headerTimestamp, ts)
		h.Set(headerSignature, "sha256="+webhookSignature(w.secret, ts, body))
	}
	return w.sender.post(ctx, w.url, body, h)
}

// webhookEventID identifies one notification (one state change of one alert) across retries.
func webhookEventID(n Notification) string {
	return n.AlertID + ":" + n.State + ":" + strconv.FormatInt(n.At.UnixNano(), 10)
}

// webhookSignature is hex(HMAC-SHA256(secret, timestamp + "." + body)).
func webhookSignature(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// ErrBadSignature is returned by VerifyWebhookSignature for a request that is not signed
// with the secret, or whose timestamp is outside the tolerance.
var ErrBadSignature = errors.New("webhook signature does not verify")

// VerifyWebhookSignature checks a webhook request as a receiver should: header holds the
// request's headers, body the raw body bytes as received. It returns nil when
// X-Raterd-Signature is the HMAC-SHA256 with secret over X-Raterd-Timestamp, ".", body,
// and the timestamp is within tolerance of now (tolerance <= 0: 5 minutes); otherwise an
// error wrapping ErrBadSignature that says which check failed.
func VerifyWebhookSignature(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	ts := header.Get(headerTimestamp)
	if ts == "" {
		return fmt.Errorf("%w: no %s header", ErrBadSignature, headerTimestamp)
	}
	// Digits only (ParseInt would also take a sign).
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return fmt.Errorf("%w: %s %q is not Unix seconds", ErrBadSignature, headerTimestamp, ts)
		}
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrBadSignature, headerTimestamp, ts)
	}
	sig, ok := strings.CutPrefix(header.Get(headerSignature), "sha256=")
	if !ok {
		return fmt.Errorf("%w: %s is not sha256=<hex>", ErrBadSignature, headerSignature)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: %s is not sha256=<64 hex digits>", ErrBadSignature, headerSignature)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return fmt.Errorf("%w: signature mismatch", ErrBadSignature)
	}
	// Compare in seconds: a far-off timestamp must not overflow a Duration.
	if skew := now.Unix() - secs; skew > int64(tolerance/time.Second) || -skew > int64(tolerance/time.Second) {
		return fmt.Errorf("%w: timestamp %s is more than %s from now", ErrBadSignature, ts, tolerance)
	}
	return nil
}

// webhookType is the webhook entry of the channel registry.
var webhookType = ChannelType{
	Type:     "webhook",
	Settings: func() Settings { return &WebhookConfig{} },
	New: func(name string, s Settings, deps Deps) (Notifier, error) {
		return NewWebhook(name, *s.(*WebhookConfig), deps.HTTPClient)
	},
}
