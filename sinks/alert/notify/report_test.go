package notify_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"raterd/sinks/alert/notify"
)

func mustReportLink(t testing.TB, raw string, spans map[string]time.Duration) *notify.ReportLink {
	t.Helper()
	u, err := notify.ParseReportURL("alerting.report_url", raw)
	if err != nil {
		t.Fatal(err)
	}
	return &notify.ReportLink{Base: u, Spans: spans}
}

// TestReportLinkURL: the link names the series and a window from the rule's span before
// the episode to a margin after the change, in whole UTC minutes, every value escaped.
func TestReportLinkURL(t *testing.T) {
	l := mustReportLink(t, "https://raterd.example.com/admin/report?tenant=a%20b", map[string]time.Duration{"helpfulness-drop": 2 * time.Hour})
	n := notifySample(notify.StateFiring)
	n.Since = notifyAt.Add(-20*time.Minute + 7*time.Second)
	n.At = notifyAt.Add(3 * time.Second)
	u, err := url.Parse(l.URL(n))
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "https" || u.Host != "raterd.example.com" || u.Path != "/admin/report" {
		t.Errorf("link %s: not under the base URL", u)
	}
	q := u.Query()
	want := map[string]string{
		"tenant": "a b", "evaluator": "helpfulness", "model": "support-llm-v7", "app": "helpdesk",
		"from": "2026-11-28T10:10:00Z", // since 12:10:07 minus the rule's 2h, down to the minute
		"to":   "2026-11-28T12:46:00Z", // at 12:30:03 plus 15m, up to the minute
	}
	for k, v := range want {
		if got := q[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q (link %s)", k, got, v, u)
		}
	}
	if len(q) != len(want) {
		t.Errorf("query %v: want exactly %v", q, want)
	}

	// Another rule takes the default span; a series without app has no app parameter;
	// markup and separators in names stay inside their parameter.
	n.Rule = "drift"
	n.Series.App = ""
	n.Series.Model = `m&evaluator=x#<script>`
	q, _ = url.ParseQuery(strings.SplitN(l.URL(n), "?", 2)[1])
	if q.Get("from") != n.Since.Add(-notify.ReportDefaultSpan).UTC().Truncate(time.Minute).Format(time.RFC3339) {
		t.Errorf("from %s: want Since minus %s", q.Get("from"), notify.ReportDefaultSpan)
	}
	if q.Has("app") || q.Get("model") != n.Series.Model || len(q["evaluator"]) != 1 || q.Get("evaluator") != "helpfulness" {
		t.Errorf("query %v", q)
	}
	if strings.ContainsAny(strings.SplitN(l.URL(n), "?", 2)[1], "<># ") {
		t.Errorf("link %s: unescaped characters", l.URL(n))
	}

	// No time, no link; a nil link makes none.
	if got := l.URL(notify.Notification{Rule: "x"}); got != "" {
		t.Errorf("link without a time: %q", got)
	}
	var nilLink *notify.ReportLink
	if got := nilLink.URL(n); got != "" {
		t.Errorf("nil link: %q", got)
	}
}

// TestParseReportURL: only absolute http(s) URLs with a host and without credentials or
// fragment; errors name the key.
func TestParseReportURL(t *testing.T) {
	for _, ok := range []string{"https://raterd.example.com/report", "http://127.0.0.1:8081/report", "https://[::1]/r?x=1"} {
		if _, err := notify.ParseReportURL("alerting.report_url", ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/report", "raterd.example.com/report", "ftp://h/report", "https:///report",
		"https://u:p@h/report", "https://h/report#top", "https://h/%zz", "https://h/r?a=%zz", "javascript:alert(1)"} {
		_, err := notify.ParseReportURL("alerting.report_url", bad)
		if err == nil || !strings.HasPrefix(err.Error(), "alerting.report_url: ") {
			t.Errorf("%q: err = %v, want an error naming alerting.report_url", bad, err)
		}
	}
}

// decodeChannel decodes a channel of type typ from YAML keys with env, as the alerting
// section does.
func decodeChannel(t *testing.T, typ, keys string, env notify.Env) notify.Settings {
	t.Helper()
	var m map[string]yaml.Node
	if err := yaml.Unmarshal([]byte(keys), &m); err != nil {
		t.Fatal(err)
	}
	s, err := notify.Decode("alerting.channels.c", typ, m, env)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReportLinkChannels: with Env.Report, each HTTP channel carries the link: the
// webhook as report_url, Slack as an "Open the report" link, Alertmanager as the
// report_url annotation; without it, none does.
func TestReportLinkChannels(t *testing.T) {
	link := mustReportLink(t, "https://raterd.example.com/report", nil)
	n := notifySample(notify.StateFiring)
	want := link.URL(n)
	for _, withLink := range []bool{true, false} {
		env := notify.Env{}
		if withLink {
			env.Report = link
		}
		rcv := newNotifyReceiver(t, statusAlways(200), "ok")
		for _, typ := range []string{"webhook", "slack", "alertmanager"} {
			keys := map[string]string{
				"webhook":      `url: "` + rcv.URL + `/hook"`,
				"slack":        `url: "` + rcv.URL + `/slack"`,
				"alertmanager": `urls: ["` + rcv.URL + `"]`,
			}[typ]
			s := decodeChannel(t, typ, keys, env)
			if got := notify.ReportLinkOf(s); (got != nil) != withLink {
				t.Fatalf("%s: report link %v, want one: %v", typ, got, withLink)
			}
			ch, err := notify.New(typ, "c", s, notify.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			if err := ch.Notify(context.Background(), n); err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
		}
		reqs := rcv.requests()
		if len(reqs) != 3 {
			t.Fatalf("%d requests, want 3", len(reqs))
		}
		// webhook
		var hook map[string]any
		if err := json.Unmarshal(reqs[0].Body, &hook); err != nil {
			t.Fatal(err)
		}
		if got, ok := hook["report_url"]; withLink && got != want || !withLink && ok {
			t.Errorf("webhook report_url = %v (present %v), want %q: %v", got, ok, want, withLink)
		}
		// slack
		_, text := checkSlackBody(t, reqs[1].Body)
		slackLink := "<" + strings.ReplaceAll(want, "&", "&amp;") + "|Open the report>"
		if strings.Contains(text, slackLink) != withLink || strings.Contains(text, "Open the report") != withLink {
			t.Errorf("slack text (link %v):\n%s\nwant %s", withLink, text, slackLink)
		}
		// alertmanager
		alerts := decodeAMAlerts(t, reqs[2])
		if got, ok := alerts[0].Annotations["report_url"]; withLink && got != want || !withLink && ok {
			t.Errorf("alertmanager report_url = %q (present %v), want %q: %v", got, ok, want, withLink)
		}
	}
}

// TestReportLinkSlackJudge: a judge-level alert has no evaluator, so Slack's link reads
// "Open the report around this alert", without an empty " of ".
func TestReportLinkSlackJudge(t *testing.T) {
	link := mustReportLink(t, "https://raterd.example.com/report", nil)
	for _, evaluator := range []string{"helpfulness", ""} {
		n := notifySample(notify.StateFiring)
		n.Series.Evaluator = evaluator
		rcv := newNotifyReceiver(t, statusAlways(200), "ok")
		s := decodeChannel(t, "slack", `url: "`+rcv.URL+`/slack"`, notify.Env{Report: link})
		ch, err := notify.New("slack", "c", s, notify.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Notify(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		reqs := rcv.requests()
		if len(reqs) != 1 {
			t.Fatalf("%d requests, want 1", len(reqs))
		}
		_, text := checkSlackBody(t, reqs[0].Body)
		want := "|Open the report> of helpfulness around this alert"
		if evaluator == "" {
			want = "|Open the report> around this alert"
		}
		if !strings.Contains(text, want) || strings.Contains(text, " of  ") {
			t.Errorf("evaluator %q: slack text\n%s\nwant %q", evaluator, text, want)
		}
	}
}

// FuzzReportLink: an accepted base URL gives, for any series, a link that parses back
// to the base with the series' values intact, and stays a link Slack can show.
func FuzzReportLink(f *testing.F) {
	for _, s := range [][4]string{
		{"https://raterd.example.com/report", "helpfulness", "m1", "app"},
		{"http://127.0.0.1:8081/r?tenant=x", "a&b=c", "<script>alert(1)</script>", ""},
		{"https://h/report?evaluator=old", "e|x>y", "m#frag", "a b"},
		{"https://h/%20r", "é", "\x00", "\n"},
		{"https://u@h/", "e", "m", "a"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, base, evaluator, model, app string) {
		u, err := notify.ParseReportURL("k", base)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "k: ") {
				t.Fatalf("error %q does not name the key", err)
			}
			return
		}
		l := &notify.ReportLink{Base: u}
		n := notify.Notification{Rule: "r", Series: notify.Series{Evaluator: evaluator, Model: model, App: app}, At: notifyAt, Since: notifyAt.Add(-time.Hour)}
		got, err := url.Parse(l.URL(n))
		if err != nil {
			t.Fatalf("link %q does not parse: %v", l.URL(n), err)
		}
		if got.Scheme != u.Scheme || got.Host != u.Host || got.Path != u.Path || got.Fragment != "" || got.User != nil {
			t.Fatalf("link %s is not under base %s", got, u)
		}
		q := got.Query()
		for k, v := range map[string]string{"evaluator": evaluator, "model": model, "app": app} {
			if v != "" && (len(q[k]) != 1 || q[k][0] != v) {
				t.Fatalf("%s = %q, want %q (link %s)", k, q[k], v, got)
			}
		}
		from, err1 := time.Parse(time.RFC3339, q.Get("from"))
		to, err2 := time.Parse(time.RFC3339, q.Get("to"))
		if err1 != nil || err2 != nil || !from.Before(n.Since) || !to.After(n.At) {
			t.Fatalf("from %q, to %q: want a window around [%s, %s]", q.Get("from"), q.Get("to"), n.Since, n.At)
		}
	})
}
