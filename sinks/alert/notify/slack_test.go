package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"raterd/internal/secret"
	"raterd/sinks/alert/notify"
)

// slackTextObject, slackBlockKit and slackWebhookBody mirror the parts of Slack's Block
// Kit reference that raterd uses; decoding with DisallowUnknownFields refuses anything
// else, as Slack answers invalid_blocks to unknown fields.
type slackTextObject struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji *bool  `json:"emoji"`
}

type slackBlockKit struct {
	Type     string            `json:"type"`
	Text     *slackTextObject  `json:"text"`
	Fields   []slackTextObject `json:"fields"`
	Elements []slackTextObject `json:"elements"`
}

type slackWebhookBody struct {
	Text   string          `json:"text"`
	Blocks []slackBlockKit `json:"blocks"`
}

// checkSlackBody validates body against Slack's documented limits and returns it decoded
// with all its visible text joined.
func checkSlackBody(t *testing.T, body []byte) (slackWebhookBody, string) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var p slackWebhookBody
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("payload does not decode strictly: %v\n%s", err, body)
	}
	if p.Text == "" {
		t.Error("no fallback text")
	}
	if len(p.Blocks) == 0 || len(p.Blocks) > 50 {
		t.Fatalf("%d blocks, want 1..50", len(p.Blocks))
	}
	var all strings.Builder
	text := func(where string, o slackTextObject, limit int) {
		if o.Type != "plain_text" && o.Type != "mrkdwn" {
			t.Errorf("%s: text type %q", where, o.Type)
		}
		if o.Emoji != nil && o.Type != "plain_text" {
			t.Errorf("%s: emoji is only for plain_text", where)
		}
		if n := utf8.RuneCountInString(o.Text); n == 0 || n > limit {
			t.Errorf("%s: %d characters, want 1..%d", where, n, limit)
		}
		all.WriteString(o.Text + "\n")
	}
	for i, b := range p.Blocks {
		where := fmt.Sprintf("block %d (%s)", i, b.Type)
		switch b.Type {
		case "header":
			if b.Text == nil || b.Text.Type != "plain_text" || b.Fields != nil || b.Elements != nil {
				t.Errorf("%s: a header takes plain_text only", where)
			} else {
				text(where, *b.Text, 150)
			}
		case "section":
			if b.Text == nil && len(b.Fields) == 0 || b.Elements != nil {
				t.Errorf("%s: a section needs text or fields", where)
			}
			if b.Text != nil {
				text(where, *b.Text, 3000)
			}
			if len(b.Fields) > 10 {
				t.Errorf("%s: %d fields, at most 10", where, len(b.Fields))
			}
			for _, f := range b.Fields {
				text(where+" field", f, 2000)
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > 10 || b.Text != nil {
				t.Errorf("%s: a context takes 1..10 elements", where)
			}
			for _, e := range b.Elements {
				text(where+" element", e, 3000)
			}
		default:
			t.Errorf("%s: unknown block type", where)
		}
	}
	return p, all.String()
}

func TestSlackMessage(t *testing.T) {
	rcv := newNotifyReceiver(t, statusAlways(http.StatusOK), "ok")
	s, err := notify.NewSlack("team", notify.SlackConfig{URL: secret.Secret(rcv.URL + "/services/T000/B000/XXXX")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := notifySample(notify.StateFiring)
	n.Message = "mean < threshold & falling" // mrkdwn control characters
	if err := s.Notify(context.Background(), n); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	reqs := rcv.requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].Path != "/services/T000/B000/XXXX" ||
		reqs[0].Header.Get("Content-Type") != "application/json" {
		t.Fatalf("requests %+v, want one JSON POST to the webhook path", reqs)
	}
	p, all := checkSlackBody(t, reqs[0].Body)
	if p.Blocks[0].Type != "header" || !strings.Contains(p.Blocks[0].Text.Text, "Firing") ||
		!strings.Contains(p.Blocks[0].Text.Text, "🔴") || !strings.Contains(p.Blocks[0].Text.Text, n.Rule) {
		t.Errorf("header %+v, want the firing emoji and word and the rule", p.Blocks[0].Text)
	}
	for _, want := range []string{
		"support-llm-v7", "helpdesk", "helpfulness", "prometheus-2", // series
		"3.12", "[2.95, 3.29]", "4.2", // observed [interval] vs expected
		"412", // sample size
		fmt.Sprintf("<!date^%d^", n.Since.Unix()), // since, in the reader's zone
		"2026-11-28 12:10 UTC",                    // since, fallback
		"req-7f3a", "req-81c0",                    // examples
		"critical",                          // severity
		"mean &lt; threshold &amp; falling", // escaped message
		"```\nSELECT record_id, score, explanation FROM raterd.scores FINAL\n", // SQL in a code block
		"AND score &lt; 3 ORDER BY event_time LIMIT 100\n```",
		n.AlertID,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("message lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "< threshold") {
		t.Error("unescaped < in mrkdwn")
	}
	for _, want := range []string{"Firing", n.Rule, "support-llm-v7", "3.12", "4.2"} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("fallback text %q lacks %q", p.Text, want)
		}
	}
}

func TestSlackStates(t *testing.T) {
	rcv := newNotifyReceiver(t, statusAlways(http.StatusOK), "ok")
	s, _ := notify.NewSlack("team", notify.SlackConfig{URL: secret.Secret(rcv.URL)}, nil)
	withPending, _ := notify.NewSlack("team", notify.SlackConfig{URL: secret.Secret(rcv.URL), Pending: true}, nil)
	ctx := context.Background()
	if err := s.Notify(ctx, notifySample(notify.StatePending)); err != nil || len(rcv.requests()) != 0 {
		t.Fatalf("pending without pending: true: %v, %d requests; want skipped", err, len(rcv.requests()))
	}
	cleared := notifySample(notify.StateResolved)
	cleared.Fired = false // a pending alert that cleared: Slack never showed it
	if err := s.Notify(ctx, cleared); err != nil || len(rcv.requests()) != 0 {
		t.Fatalf("resolved without firing: %v, %d requests; want skipped", err, len(rcv.requests()))
	}
	noData := notifySample(notify.StateFiring)
	noData.NoData, noData.SampleSize, noData.Examples = true, 0, nil
	for _, c := range []struct {
		s      *notify.Slack
		n      notify.Notification
		header []string
		body   []string
	}{
		{withPending, notifySample(notify.StatePending), []string{"🟡", "Pending"}, nil},
		{s, notifySample(notify.StateResolved), []string{"✅", "Resolved"}, []string{"3.12"}},
		{s, noData, []string{"🔴", "Firing (no data)"}, []string{"no data"}},
	} {
		before := len(rcv.requests())
		if err := c.s.Notify(ctx, c.n); err != nil {
			t.Fatal(err)
		}
		reqs := rcv.requests()
		if len(reqs) != before+1 {
			t.Fatalf("%s: %d requests, want 1", c.n.State, len(reqs)-before)
		}
		p, all := checkSlackBody(t, reqs[len(reqs)-1].Body)
		for _, w := range c.header {
			if !strings.Contains(p.Blocks[0].Text.Text, w) {
				t.Errorf("%s: header %q lacks %q", c.n.State, p.Blocks[0].Text.Text, w)
			}
		}
		for _, w := range c.body {
			if !strings.Contains(all, w) {
				t.Errorf("%s: message lacks %q", c.n.State, w)
			}
		}
	}
}

// TestSlackLimits: oversized fields are cut to Slack's limits, not refused by it.
func TestSlackLimits(t *testing.T) {
	rcv := newNotifyReceiver(t, statusAlways(http.StatusOK), "ok")
	s, _ := notify.NewSlack("team", notify.SlackConfig{URL: secret.Secret(rcv.URL), MaxExamples: 3}, nil)
	n := notifySample(notify.StateFiring)
	n.Rule = strings.Repeat("r", 400)
	n.Message = strings.Repeat("é<", 4000)
	n.DrilldownSQL = strings.Repeat("SELECT 1 -- ``` x\n", 400)
	n.Series.Model = strings.Repeat("m`", 2000)
	for i := range 30 {
		n.Examples = append(n.Examples, notify.Example{RecordID: fmt.Sprintf("req-%d", i), Score: float64(i)})
	}
	if err := s.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	_, all := checkSlackBody(t, rcv.requests()[0].Body)
	if !strings.Contains(all, "… and 29 more") {
		t.Error("examples beyond max_examples are not summarised")
	}
}

// TestSlackErrors: Slack's 4xx answers (invalid_payload, no_service …) are permanent;
// 429 and 5xx are retried.
func TestSlackErrors(t *testing.T) {
	for code, permanent := range map[int]bool{400: true, 403: true, 404: true, 410: true, 429: false, 500: false} {
		rcv := newNotifyReceiver(t, statusAlways(code), "no_service")
		s, _ := notify.NewSlack("team", notify.SlackConfig{URL: secret.Secret(rcv.URL)}, nil)
		err := s.Notify(context.Background(), notifySample(notify.StateFiring))
		if err == nil || errors.Is(err, notify.ErrPermanent) != permanent || !strings.Contains(err.Error(), "no_service") {
			t.Errorf("%d: Notify = %v, want an error (permanent %v) with Slack's reason", code, err, permanent)
		}
	}
}

func TestSlackConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg     notify.SlackConfig
		wantKey string
	}{
		{notify.SlackConfig{}, "team.url"},
		{notify.SlackConfig{URL: secret.Secret("not a url")}, "team.url"},
		{notify.SlackConfig{URL: secret.Secret("https://hooks.slack.com/x"), MaxExamples: 21}, "team.max_examples"},
		{notify.SlackConfig{URL: secret.Secret("https://hooks.slack.com/x"), MaxExamples: -1}, "team.max_examples"},
		{notify.SlackConfig{URL: secret.Secret("https://hooks.slack.com/x"), Timeout: -1}, "team.timeout"},
	} {
		if err := c.cfg.Validate("team"); err == nil || !strings.HasPrefix(err.Error(), c.wantKey+":") {
			t.Errorf("%+v: Validate = %v, want an error naming %s", c.cfg, err, c.wantKey)
		}
	}
	ok := notify.SlackConfig{URL: secret.Secret("https://hooks.slack.com/services/T/B/X")}
	if err := ok.Validate("team"); err != nil || ok.MaxExamples != 5 || ok.Timeout.Seconds() != 10 {
		t.Errorf("Validate = %v, defaults %+v", err, ok)
	}
}
