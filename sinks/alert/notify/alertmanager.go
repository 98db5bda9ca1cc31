package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AlertmanagerConfig is a Prometheus Alertmanager channel: notifications are POSTed to
// each instance's API v2 (/api/v2/alerts) as one alert, the way Prometheus sends them, so
// Alertmanager's grouping, inhibition, silences and receivers apply to raterd's alerts.
//
// Labels identify the alert (Alertmanager deduplicates by them): alertname, rule, model,
// app, evaluator, judge and severity (those that are set), plus Labels. Annotations carry
// the rest: summary, description, drilldown_sql, observed, interval, expected,
// sample_size, since, alert_id, examples, no_data and report_url (alerting.report_url).
//
// A firing notification is sent with startsAt = since and endsAt = now + ResolveTimeout:
// Alertmanager resolves the alert by itself unless it is sent again before then, so an
// alert whose raterd died does not fire forever. The caller therefore re-sends firing
// alerts (its re-notify interval) well within ResolveTimeout; re-sending is harmless,
// Alertmanager merges alerts with equal labels. A resolved notification is sent with
// endsAt = the time it resolved. Pending notifications are not sent (Prometheus does not
// send pending alerts either).
type AlertmanagerConfig struct {
	// URLs are the base URLs of the Alertmanager instances, including any
	// --web.route-prefix (http://alertmanager:9093). Every notification goes to each of
	// them, as Prometheus does: the instances of a cluster share silences and what they
	// notified, not alerts. Required.
	URLs []string `yaml:"urls"`
	// AlertName is the alertname label. Default "RaterdQualityRegression".
	AlertName string `yaml:"alertname"`
	// Labels are added to every alert (team, environment, cluster …). Names follow
	// Prometheus rules ([a-zA-Z_][a-zA-Z0-9_]*, no leading "__") and may not replace
	// raterd's own labels. Default: none.
	Labels map[string]string `yaml:"labels"`
	// ResolveTimeout is how long a firing alert stays firing in Alertmanager without being
	// sent again (its endsAt = now + resolve_timeout). It must exceed the interval at
	// which firing alerts are re-sent. Default 1h; at least 1m.
	ResolveTimeout time.Duration `yaml:"resolve_timeout"`
	// GeneratorURL is a link back to where the alert can be looked at, a Grafana
	// dashboard say; Alertmanager shows it as the alert's source. Default: none.
	GeneratorURL string `yaml:"generator_url"`
	// Headers are added to every request, e.g. Authorization for an Alertmanager behind
	// an authenticating proxy. Default: none.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one request to one instance, connecting included. Default 10s; at
	// most 5m.
	Timeout time.Duration `yaml:"timeout"`

	reportSettings `yaml:"-"` // alerting.report_url, set by Decode
}

// amOwnLabels are the labels the channel sets.
var amOwnLabels = []string{"alertname", "rule", "model", "app", "evaluator", "judge", "severity"}

// Validate fills defaults and rejects bad values; key prefixes the key names in errors.
func (c *AlertmanagerConfig) Validate(key string) error {
	if len(c.URLs) == 0 {
		return fmt.Errorf("%s.urls: at least one Alertmanager URL is required", key)
	}
	for i, u := range c.URLs {
		if err := validateHTTPURL(fmt.Sprintf("%s.urls[%d]", key, i), u); err != nil {
			return err
		}
		if strings.Contains(u, "?") {
			return fmt.Errorf("%s.urls[%d]: a base URL takes no query", key, i)
		}
	}
	if c.AlertName == "" {
		c.AlertName = "RaterdQualityRegression"
	}
	for name, v := range c.Labels {
		if !amLabelName(name) {
			return fmt.Errorf("%s.labels: %q is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)", key, name)
		}
		if slices.Contains(amOwnLabels, name) {
			return fmt.Errorf("%s.labels.%s: set by raterd itself; remove it", key, name)
		}
		if v == "" {
			return fmt.Errorf("%s.labels.%s: empty value (an empty label is no label)", key, name)
		}
	}
	if c.ResolveTimeout == 0 {
		c.ResolveTimeout = time.Hour
	}
	if c.ResolveTimeout < time.Minute {
		return fmt.Errorf("%s.resolve_timeout: %s is below 1m", key, c.ResolveTimeout)
	}
	if c.GeneratorURL != "" {
		if err := validateHTTPURL(key+".generator_url", c.GeneratorURL); err != nil {
			return err
		}
	}
	if err := validateChannelHeaders(key+".headers", c.Headers); err != nil {
		return err
	}
	return validateChannelTimeout(key+".timeout", &c.Timeout, 10*time.Second)
}

// amLabelName reports whether s is a Prometheus label name usable by a client.
func amLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Alertmanager is the Alertmanager API v2 channel; see AlertmanagerConfig.
type Alertmanager struct {
	name    string
	cfg     AlertmanagerConfig
	targets []string // <base>/api/v2/alerts
	sender  *httpSender
}

// NewAlertmanager returns the Alertmanager channel called name, posting through client
// (nil: a client of its own). It validates cfg, filling defaults.
func NewAlertmanager(name string, cfg AlertmanagerConfig, client *http.Client) (*Alertmanager, error) {
	if err := cfg.Validate(name); err != nil {
		return nil, err
	}
	a := &Alertmanager{name: name, cfg: cfg,
		sender: newHTTPSender(fmt.Sprintf("alertmanager %q", name), client, cfg.Timeout, cfg.Headers)}
	for _, u := range cfg.URLs {
		a.targets = append(a.targets, strings.TrimRight(u, "/")+"/api/v2/alerts")
	}
	return a, nil
}

// Name implements Notifier.
func (a *Alertmanager) Name() string { return a.name }

// amAlert is Alertmanager's postableAlert (API v2).
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Notify implements Notifier: the alert goes to every instance at once. It returns nil
// when all accepted it. When some failed, the error wraps ErrPermanent only if every
// failure was permanent (the others' next attempt resends to all, which is harmless).
// Pending notifications, and the resolution of an alert that never fired, are skipped
// (nil): Alertmanager never saw them.
func (a *Alertmanager) Notify(ctx context.Context, n Notification) error {
	if n.State == StatePending || n.State == StateResolved && !n.Fired {
		return nil
	}
	body, err := json.Marshal([]amAlert{a.alert(n, time.Now())})
	if err != nil {
		return fmt.Errorf("alertmanager %q: %w: encode alert %s: %v", a.name, ErrPermanent, n.AlertID, err)
	}
	errs := make([]error, len(a.targets))
	var wg sync.WaitGroup
	for i, t := range a.targets {
		wg.Go(func() { errs[i] = a.sender.post(ctx, t, body, nil) })
	}
	wg.Wait()
	var failed []error
	permanent := true
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
			permanent = permanent && errors.Is(err, ErrPermanent)
		}
	}
	switch {
	case len(failed) == 0:
		return nil
	case permanent:
		return fmt.Errorf("alertmanager %q: %d of %d instances refused alert %s: %w", a.name, len(failed), len(errs), n.AlertID, errors.Join(failed...))
	}
	// Not %w: a transient failure anywhere makes the whole delivery worth retrying, so
	// ErrPermanent from another instance must not be reachable.
	return fmt.Errorf("alertmanager %q: %d of %d instances failed alert %s: %v", a.name, len(failed), len(errs), n.AlertID, errors.Join(failed...))
}

// alert is n as an Alertmanager alert at time now.
func (a *Alertmanager) alert(n Notification, now time.Time) amAlert {
	labels := maps.Clone(a.cfg.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	// An empty label is the same as no label to Prometheus and Alertmanager matchers.
	for k, v := range map[string]string{"alertname": a.cfg.AlertName, "rule": n.Rule, "model": n.Series.Model,
		"app": n.Series.App, "evaluator": n.Series.Evaluator, "judge": n.Series.Judge, "severity": n.Severity} {
		if v != "" {
			labels[k] = v
		}
	}
	examples := make([]string, len(n.Examples))
	for i, e := range n.Examples {
		examples[i] = e.RecordID + "=" + notifyNum(e.Score)
	}
	ann := map[string]string{
		"summary":     notifySummary(n),
		"description": n.Message,
		"observed":    notifyNum(n.Observed),
		"interval":    "[" + notifyNum(n.Lower) + ", " + notifyNum(n.Upper) + "]",
		"expected":    notifyNum(n.Expected),
		"sample_size": strconv.FormatInt(n.SampleSize, 10),
		"alert_id":    n.AlertID,
	}
	if n.DrilldownSQL != "" {
		ann["drilldown_sql"] = n.DrilldownSQL
	}
	if n.ReportURL != "" {
		ann["report_url"] = n.ReportURL
	}
	if !n.Since.IsZero() {
		ann["since"] = n.Since.UTC().Format(time.RFC3339)
	}
	if len(examples) > 0 {
		ann["examples"] = strings.Join(examples, ", ")
	}
	if n.NoData {
		ann["no_data"] = "true"
	}
	for k, v := range ann {
		if v == "" {
			delete(ann, k)
		}
	}
	al := amAlert{Labels: labels, Annotations: ann, GeneratorURL: a.cfg.GeneratorURL}
	switch {
	case n.State != StateResolved:
		al.EndsAt = now.Add(a.cfg.ResolveTimeout).UTC()
	case n.At.IsZero():
		al.EndsAt = now.UTC()
	default:
		al.EndsAt = n.At.UTC()
	}
	start := n.Since
	if start.IsZero() {
		start = n.At
	}
	if start.IsZero() {
		start = now
	}
	if start.After(al.EndsAt) { // Alertmanager refuses endsAt before startsAt
		start = al.EndsAt
	}
	al.StartsAt = start.UTC()
	return al
}

// RenotifyBound implements RenotifyBound: Alertmanager ends an alert by itself after
// resolve_timeout unless it is sent again.
func (c *AlertmanagerConfig) RenotifyBound() (time.Duration, string) {
	return c.ResolveTimeout, "resolve_timeout"
}

// alertmanagerType is the alertmanager entry of the channel registry.
var alertmanagerType = ChannelType{
	Type:     "alertmanager",
	Settings: func() Settings { return &AlertmanagerConfig{} },
	New: func(name string, s Settings, deps Deps) (Notifier, error) {
		return NewAlertmanager(name, *s.(*AlertmanagerConfig), deps.HTTPClient)
	},
}
