package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"raterd/internal/secret"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SlackConfig is a Slack incoming-webhook channel. Each notification is one message:
// a header with the state and rule, the alert's message, the series, observed value with
// its interval against the expected value, sample size and since when, a few example
// records with their scores, the drilldown SQL in a code block and, with
// alerting.report_url, an "Open the report" link to the series' HTML report; plus a plain-text
// fallback for notifications and clients without Block Kit.
//
// Slack answers 200 "ok"; its 4xx errors (invalid_payload, no_service, channel_not_found,
// action_prohibited, …) are permanent, 429 is retried after its Retry-After.
type SlackConfig struct {
	// URL is the incoming webhook's URL (https://hooks.slack.com/services/…). It is a
	// secret (whoever has it can post to the channel): never logged, never in an error
	// (which names the host at most), redacted in any print of the config. Required,
	// here or in URLFile.
	URL secret.Secret `yaml:"url"`
	// URLFile is a file that holds the URL (a mounted Kubernetes secret; one trailing
	// newline is dropped), read by Validate into URL. Not with URL.
	URLFile string `yaml:"url_file"`
	// Pending also posts pending alerts (the detector alerts, but not yet for the rule's
	// `for`). Default false: firing and resolved only, which is what responders act on.
	Pending bool `yaml:"pending"`
	// MaxExamples is how many example records a message lists. Default 5; at most 20.
	MaxExamples int `yaml:"max_examples"`
	// Timeout bounds one request, connecting included. Default 10s; at most 5m.
	Timeout time.Duration `yaml:"timeout"`

	reportSettings `yaml:"-"` // alerting.report_url, set by Decode
}

// Validate fills defaults and rejects bad values; key prefixes the key names in errors.
func (c *SlackConfig) Validate(key string) error {
	u, err := secret.Resolve(key+".url", c.URL, "", key+".url_file", c.URLFile)
	if err != nil {
		return err
	}
	c.URL, c.URLFile = u, ""
	if err := validateHTTPURL(key+".url", c.URL.Reveal()); err != nil {
		return err
	}
	if c.MaxExamples == 0 {
		c.MaxExamples = 5
	}
	if c.MaxExamples < 0 || c.MaxExamples > 20 {
		return fmt.Errorf("%s.max_examples: %d is not in 1..20", key, c.MaxExamples)
	}
	return validateChannelTimeout(key+".timeout", &c.Timeout, 10*time.Second)
}

// Slack is the Slack incoming-webhook channel; see SlackConfig.
type Slack struct {
	name   string
	cfg    SlackConfig
	sender *httpSender
}

// NewSlack returns the Slack channel called name, posting through client (nil: a client
// of its own). It validates cfg, filling defaults.
func NewSlack(name string, cfg SlackConfig, client *http.Client) (*Slack, error) {
	if err := cfg.Validate(name); err != nil {
		return nil, err
	}
	return &Slack{name: name, cfg: cfg, sender: newHTTPSender(fmt.Sprintf("slack %q", name), client, cfg.Timeout, nil)}, nil
}

// Name implements Notifier.
func (s *Slack) Name() string { return s.name }

// Notify implements Notifier: one message per notification; pending ones, and the
// resolution of an alert that never fired, are skipped (nil) unless cfg.Pending.
func (s *Slack) Notify(ctx context.Context, n Notification) error {
	if !s.cfg.Pending && (n.State == StatePending || n.State == StateResolved && !n.Fired) {
		return nil
	}
	body, err := json.Marshal(slackMessage(n, s.cfg.MaxExamples))
	if err != nil {
		return fmt.Errorf("slack %q: %w: encode message for %s: %v", s.name, ErrPermanent, n.AlertID, err)
	}
	return s.sender.post(ctx, s.cfg.URL.Reveal(), body, nil)
}

// slackPayload is the body of an incoming-webhook post
// (https://api.slack.com/messaging/webhooks, Block Kit blocks).
type slackPayload struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"` // header, section, context, divider
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type  string `json:"type"` // plain_text or mrkdwn
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"` // plain_text only
}

// Block Kit limits (characters).
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackFieldMax   = 2000
)

// slackState is the emoji and word for a state.
func slackState(n Notification) string {
	switch n.State {
	case StateFiring:
		if n.NoData {
			return "🔴 Firing (no data)"
		}
		return "🔴 Firing"
	case StatePending:
		return "🟡 Pending"
	case StateResolved:
		return "✅ Resolved"
	}
	return "❔ " + n.State
}

// slackMessage lays n out as a Block Kit message.
func slackMessage(n Notification, maxExamples int) slackPayload {
	mrkdwn := func(s string) *slackText { return &slackText{Type: "mrkdwn", Text: slackTruncate(s, slackSectionMax)} }
	field := func(title, value string) slackText {
		return slackText{Type: "mrkdwn", Text: slackTruncate("*"+title+"*\n"+value, slackFieldMax)}
	}
	state := slackState(n)
	blocks := []slackBlock{{Type: "header", Text: &slackText{Type: "plain_text", Emoji: true,
		Text: slackTruncate(state+": "+n.Rule, slackHeaderMax)}}}
	if n.Message != "" {
		blocks = append(blocks, slackBlock{Type: "section", Text: mrkdwn(slackEscape(n.Message))})
	}
	series := "model " + slackCode(n.Series.Model)
	if n.Series.App != "" {
		series += " · app " + slackCode(n.Series.App)
	}
	series += "\nevaluator " + slackCode(n.Series.Evaluator)
	if n.Series.Judge != "" {
		series += " · judge " + slackCode(n.Series.Judge)
	}
	observed := notifyNum(n.Observed) + "  [" + notifyNum(n.Lower) + ", " + notifyNum(n.Upper) + "]"
	if n.NoData && n.State != StateResolved {
		observed = "no data (the series stopped sending records)"
	}
	fields := []slackText{
		field("Series", series),
		field("Observed [interval]", observed),
		field("Expected", notifyNum(n.Expected)),
		field("Sample size", strconv.FormatInt(n.SampleSize, 10)),
		field("Since", slackDate(n.Since)),
	}
	if n.Severity != "" {
		fields = append(fields, field("Severity", slackEscape(n.Severity)))
	}
	blocks = append(blocks, slackBlock{Type: "section", Fields: fields})
	if k := min(len(n.Examples), maxExamples); k > 0 {
		var b strings.Builder
		b.WriteString("*Examples*")
		for _, e := range n.Examples[:k] {
			fmt.Fprintf(&b, "\n• %s  score %s", slackCode(e.RecordID), notifyNum(e.Score))
		}
		if more := len(n.Examples) - k; more > 0 {
			fmt.Fprintf(&b, "\n… and %d more", more)
		}
		blocks = append(blocks, slackBlock{Type: "section", Text: mrkdwn(b.String())})
	}
	if n.DrilldownSQL != "" {
		// Room for the title and the fences.
		sql := slackTruncate(slackEscape(strings.ReplaceAll(n.DrilldownSQL, "```", "` ` `")), slackSectionMax-40)
		blocks = append(blocks, slackBlock{Type: "section", Text: mrkdwn("*Drill down*\n```\n" + sql + "\n```")})
	}
	if link := slackLink(n.ReportURL, "Open the report"); link != "" {
		of := "" // a judge-level alert has no evaluator
		if n.Series.Evaluator != "" {
			of = " of " + slackEscape(n.Series.Evaluator)
		}
		blocks = append(blocks, slackBlock{Type: "section", Text: mrkdwn(link + of + " around this alert")})
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn",
		Text: slackTruncate("alert "+slackCode(n.AlertID)+" · "+slackDate(n.At)+" · raterd", slackSectionMax)}}})
	text := state + " " + strings.TrimPrefix(notifySummary(n), "["+strings.ToUpper(n.State)+"] ")
	return slackPayload{Text: slackEscape(text), Blocks: blocks}
}

// slackLink is a mrkdwn link <url|text> to u, an http(s) URL; "" when u is empty or
// could break out of the link (a "|" or ">" would end it early, a space or control
// character is not a URL): the link is left out rather than mangled.
func slackLink(u, text string) string {
	if u == "" || !(strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) ||
		strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '|' || r == '<' || r == '>' }) ||
		utf8.RuneCountInString(u) > slackSectionMax-200 {
		return ""
	}
	return "<" + strings.ReplaceAll(u, "&", "&amp;") + "|" + slackEscape(text) + ">"
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning to.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackCode is s as inline code, or escaped plain text when a backtick or newline in it
// would break the code span; "–" when empty.
func slackCode(s string) string {
	switch {
	case s == "":
		return "–"
	case strings.ContainsAny(s, "`\n"):
		return slackEscape(s)
	}
	return "`" + slackEscape(s) + "`"
}

// slackDate renders t in each reader's time zone, with UTC as the fallback text.
func slackDate(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// slackTruncate cuts s to at most limit characters (runes), ending in "…" when cut.
func slackTruncate(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return string(r[:limit-1]) + "…"
}

// slackType is the slack entry of the channel registry.
var slackType = ChannelType{
	Type:     "slack",
	Settings: func() Settings { return &SlackConfig{} },
	New: func(name string, s Settings, deps Deps) (Notifier, error) {
		return NewSlack(name, *s.(*SlackConfig), deps.HTTPClient)
	},
}
