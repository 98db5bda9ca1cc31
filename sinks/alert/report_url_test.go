package alert_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"raterd/sinks/alert"
	"raterd/sinks/alert/notify"
)

// TestAlertingReportURL: alerting.report_url gives every channel the report link, its
// window the threshold rule's; a bad URL is an error naming the key.
func TestAlertingReportURL(t *testing.T) {
	env := alert.Env{Channels: notify.Env{KafkaBrokers: []string{"k:9092"}}}
	text := strings.Replace(alertingYAML, "interval: 5s", "interval: 5s\nreport_url: https://raterd.example.com/report", 1)
	text = strings.Replace(text, "alert: 0.9}", "alert: 0.9, window: 30m}", 1)
	a := parseAlerting(t, text)
	if err := a.Validate("alerting", env); err != nil {
		t.Fatal(err)
	}
	for name, ch := range a.Channels {
		l := notify.ReportLinkOf(ch.Decoded())
		if l == nil || l.Base.String() != "https://raterd.example.com/report" {
			t.Fatalf("channel %s: report link %+v", name, l)
		}
		at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		u, err := url.Parse(l.URL(notify.Notification{Rule: "refusals", Since: at.Add(-10 * time.Minute), At: at,
			Series: notify.Series{Evaluator: "refusal", Model: "m"}}))
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Query().Get("from"); got != "2026-12-01T08:20:00Z" {
			t.Errorf("channel %s: from %s, want since minus the rule's 30m window", name, got)
		}
	}
	// Without the key, no link.
	a = parseAlerting(t, alertingYAML)
	if err := a.Validate("alerting", env); err != nil {
		t.Fatal(err)
	}
	if l := notify.ReportLinkOf(a.Channels["oncall"].Decoded()); l != nil {
		t.Errorf("report link %+v without alerting.report_url", l)
	}
	for _, bad := range []string{"raterd.example.com/report", "ftp://h/r", "https://u:p@h/r"} {
		a := parseAlerting(t, strings.Replace(alertingYAML, "interval: 5s", "interval: 5s\nreport_url: "+bad, 1))
		if err := a.Validate("alerting", env); err == nil || !strings.HasPrefix(err.Error(), "alerting.report_url: ") {
			t.Errorf("report_url %s: err = %v, want one naming alerting.report_url", bad, err)
		}
	}
}
