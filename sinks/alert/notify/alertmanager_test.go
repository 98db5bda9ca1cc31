package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"raterd/sinks/alert/notify"
)

// amPostableAlert is Alertmanager's API v2 postableAlert (api/v2/openapi.yaml).
type amPostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     *time.Time        `json:"startsAt"`
	EndsAt       *time.Time        `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

var amLabelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// decodeAMAlerts decodes a POST /api/v2/alerts body and applies Alertmanager's own
// validation of each alert (labels present and well-formed, endsAt not before startsAt).
func decodeAMAlerts(t *testing.T, r notifyRequest) []amPostableAlert {
	t.Helper()
	if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, "/api/v2/alerts") || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %s %s (%s), want a JSON POST to /api/v2/alerts", r.Method, r.Path, r.Header.Get("Content-Type"))
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	var alerts []amPostableAlert
	if err := dec.Decode(&alerts); err != nil {
		t.Fatalf("body is not postableAlerts: %v\n%s", err, r.Body)
	}
	for _, a := range alerts {
		if len(a.Labels) == 0 {
			t.Error("alert without labels")
		}
		for k, v := range a.Labels {
			if !amLabelNameRE.MatchString(k) || v == "" {
				t.Errorf("label %q=%q: invalid name or empty value", k, v)
			}
		}
		if a.StartsAt != nil && a.EndsAt != nil && a.EndsAt.Before(*a.StartsAt) {
			t.Errorf("endsAt %s before startsAt %s", a.EndsAt, a.StartsAt)
		}
	}
	return alerts
}

func TestAlertmanagerFiringAndResolved(t *testing.T) {
	rcv := newNotifyReceiver(t, statusAlways(http.StatusOK), "")
	am, err := notify.NewAlertmanager("am", notify.AlertmanagerConfig{
		URLs:           []string{rcv.URL + "/alertmanager/"}, // with a route prefix and a trailing slash
		Labels:         map[string]string{"team": "quality", "env": "prod"},
		ResolveTimeout: 30 * time.Minute,
		GeneratorURL:   "https://grafana.example.com/d/raterd",
		Headers:        map[string]string{"Authorization": "Basic dXNlcjpwYXNz"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Pending: not sent, like Prometheus; nor the resolution of an alert that never fired.
	if err := am.Notify(ctx, notifySample(notify.StatePending)); err != nil || len(rcv.requests()) != 0 {
		t.Fatalf("pending: %v, %d requests; want nothing sent", err, len(rcv.requests()))
	}
	cleared := notifySample(notify.StateResolved)
	cleared.Fired = false
	if err := am.Notify(ctx, cleared); err != nil || len(rcv.requests()) != 0 {
		t.Fatalf("resolved, never fired: %v, %d requests; want nothing sent", err, len(rcv.requests()))
	}

	firing := notifySample(notify.StateFiring)
	before := time.Now()
	if err := am.Notify(ctx, firing); err != nil {
		t.Fatalf("firing: %v", err)
	}
	after := time.Now()
	reqs := rcv.requests()
	if len(reqs) != 1 || reqs[0].Path != "/alertmanager/api/v2/alerts" {
		t.Fatalf("requests %+v, want one to /alertmanager/api/v2/alerts", reqs)
	}
	if reqs[0].Header.Get("Authorization") != "Basic dXNlcjpwYXNz" {
		t.Error("custom header not sent")
	}
	alerts := decodeAMAlerts(t, reqs[0])
	if len(alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(alerts))
	}
	a := alerts[0]
	wantLabels := map[string]string{"alertname": "RaterdQualityRegression", "rule": "helpfulness-drop",
		"model": "support-llm-v7", "app": "helpdesk", "evaluator": "helpfulness", "judge": "prometheus-2",
		"severity": "critical", "team": "quality", "env": "prod"}
	if !maps.Equal(a.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", a.Labels, wantLabels)
	}
	for k, want := range map[string]string{
		"description": firing.Message, "drilldown_sql": firing.DrilldownSQL, "observed": "3.12",
		"interval": "[2.95, 3.29]", "expected": "4.2", "sample_size": "412", "alert_id": firing.AlertID,
		"since": "2026-11-28T12:10:00Z", "examples": "req-7f3a=1, req-81c0=2",
	} {
		if a.Annotations[k] != want {
			t.Errorf("annotation %s = %q, want %q", k, a.Annotations[k], want)
		}
	}
	if s := a.Annotations["summary"]; !strings.Contains(s, "FIRING") || !strings.Contains(s, "helpfulness-drop") {
		t.Errorf("summary %q", s)
	}
	if _, ok := a.Annotations["no_data"]; ok {
		t.Error("no_data annotation on an alert with data")
	}
	if a.GeneratorURL != "https://grafana.example.com/d/raterd" {
		t.Errorf("generatorURL %q", a.GeneratorURL)
	}
	// Firing: startsAt is when the episode began; endsAt is now + resolve_timeout, so
	// that Alertmanager resolves it by itself if raterd stops re-sending.
	if a.StartsAt == nil || !a.StartsAt.Equal(firing.Since) {
		t.Errorf("startsAt %v, want %s", a.StartsAt, firing.Since)
	}
	if a.EndsAt == nil || a.EndsAt.Before(before.Add(30*time.Minute)) || a.EndsAt.After(after.Add(30*time.Minute)) {
		t.Errorf("endsAt %v, want now + 30m (%s..%s)", a.EndsAt, before.Add(30*time.Minute), after.Add(30*time.Minute))
	}

	// Resolved: same labels (Alertmanager matches them to the firing alert), endsAt =
	// when it resolved, which is in the past, so Alertmanager marks it resolved.
	resolved := notifySample(notify.StateResolved)
	resolved.At = notifyAt.Add(15 * time.Minute)
	if err := am.Notify(ctx, resolved); err != nil {
		t.Fatalf("resolved: %v", err)
	}
	r := decodeAMAlerts(t, rcv.requests()[1])[0]
	if !maps.Equal(r.Labels, a.Labels) {
		t.Errorf("resolved labels %v differ from firing %v: Alertmanager would see two alerts", r.Labels, a.Labels)
	}
	if r.EndsAt == nil || !r.EndsAt.Equal(resolved.At) || r.StartsAt == nil || !r.StartsAt.Equal(resolved.Since) {
		t.Errorf("resolved startsAt %v endsAt %v, want %s and %s", r.StartsAt, r.EndsAt, resolved.Since, resolved.At)
	}
}

// TestAlertmanagerEdgeCases: empty series parts are left out of the labels (an empty
// label is no label); a no-data alert says so; startsAt never follows endsAt.
func TestAlertmanagerEdgeCases(t *testing.T) {
	rcv := newNotifyReceiver(t, statusAlways(http.StatusOK), "")
	am, err := notify.NewAlertmanager("am", notify.AlertmanagerConfig{URLs: []string{rcv.URL}, AlertName: "QualityDrop"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := notifySample(notify.StateFiring)
	n.Series.App, n.Series.Judge, n.Severity, n.NoData = "", "", "", true
	n.Since = time.Time{}
	if err := am.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	a := decodeAMAlerts(t, rcv.requests()[0])[0]
	for _, k := range []string{"app", "judge", "severity"} {
		if _, ok := a.Labels[k]; ok {
			t.Errorf("empty %s sent as a label", k)
		}
	}
	if a.Labels["alertname"] != "QualityDrop" || a.Annotations["no_data"] != "true" {
		t.Errorf("labels %v annotations %v", a.Labels, a.Annotations)
	}
	if a.StartsAt == nil || !a.StartsAt.Equal(n.At) {
		t.Errorf("startsAt %v, want At (%s) when Since is unset", a.StartsAt, n.At)
	}

	// A resolution whose Since is after its At (clock skew between processes).
	odd := notifySample(notify.StateResolved)
	odd.Since = odd.At.Add(time.Minute)
	if err := am.Notify(context.Background(), odd); err != nil {
		t.Fatal(err)
	}
	decodeAMAlerts(t, rcv.requests()[1]) // checks endsAt >= startsAt
}

// TestAlertmanagerInstances: every instance gets the alert; the error is permanent only
// when every failure is.
func TestAlertmanagerInstances(t *testing.T) {
	for _, c := range []struct {
		codes     []int
		fail      bool
		permanent bool
	}{
		{[]int{200, 200, 200}, false, false},
		{[]int{200, 500}, true, false},
		{[]int{400, 503}, true, false},
		{[]int{400, 200}, true, true},
		{[]int{400, 422}, true, true},
	} {
		var urls []string
		var rcvs []*notifyReceiver
		for _, code := range c.codes {
			r := newNotifyReceiver(t, statusAlways(code), "")
			rcvs, urls = append(rcvs, r), append(urls, r.URL)
		}
		am, err := notify.NewAlertmanager("am", notify.AlertmanagerConfig{URLs: urls}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = am.Notify(context.Background(), notifySample(notify.StateFiring))
		if (err != nil) != c.fail || errors.Is(err, notify.ErrPermanent) != c.permanent {
			t.Errorf("%v: Notify = %v; want failure %v, permanent %v", c.codes, err, c.fail, c.permanent)
		}
		for i, r := range rcvs {
			if n := len(r.requests()); n != 1 {
				t.Errorf("%v: instance %d got %d requests, want 1", c.codes, i, n)
			}
		}
	}
}

func TestAlertmanagerConfigValidate(t *testing.T) {
	u := []string{"http://am:9093"}
	for _, c := range []struct {
		cfg     notify.AlertmanagerConfig
		wantKey string
	}{
		{notify.AlertmanagerConfig{}, "am.urls"},
		{notify.AlertmanagerConfig{URLs: []string{"http://am:9093", "am:9093"}}, "am.urls[1]"},
		{notify.AlertmanagerConfig{URLs: []string{"http://am:9093/?x=1"}}, "am.urls[0]"},
		{notify.AlertmanagerConfig{URLs: u, Labels: map[string]string{"bad-name": "x"}}, "am.labels"},
		{notify.AlertmanagerConfig{URLs: u, Labels: map[string]string{"__reserved": "x"}}, "am.labels"},
		{notify.AlertmanagerConfig{URLs: u, Labels: map[string]string{"severity": "x"}}, "am.labels.severity"},
		{notify.AlertmanagerConfig{URLs: u, Labels: map[string]string{"team": ""}}, "am.labels.team"},
		{notify.AlertmanagerConfig{URLs: u, ResolveTimeout: 30 * time.Second}, "am.resolve_timeout"},
		{notify.AlertmanagerConfig{URLs: u, GeneratorURL: "grafana"}, "am.generator_url"},
		{notify.AlertmanagerConfig{URLs: u, Headers: map[string]string{"Host": "x"}}, "am.headers.Host"},
		{notify.AlertmanagerConfig{URLs: u, Timeout: -time.Second}, "am.timeout"},
	} {
		if err := c.cfg.Validate("am"); err == nil || !strings.HasPrefix(err.Error(), c.wantKey+":") {
			t.Errorf("%+v: Validate = %v, want an error naming %s", c.cfg, err, c.wantKey)
		}
	}
	ok := notify.AlertmanagerConfig{URLs: u}
	if err := ok.Validate("am"); err != nil || ok.ResolveTimeout != time.Hour || ok.AlertName != "RaterdQualityRegression" || ok.Timeout != 10*time.Second {
		t.Errorf("Validate = %v, defaults %+v", err, ok)
	}
}
