package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// ReportLink links notifications to raterd's HTML quality report: the admin server's
// GET /report endpoint, reached at an external base URL (alerting.report_url). A
// notification's link shows its series (evaluator, model and app) from a span before the
// alert's episode began to shortly after the change it reports.
type ReportLink struct {
	// Base is the absolute http(s) URL of the report endpoint; its own query
	// parameters, if any, are kept.
	Base *url.URL
	// Spans are, per rule name, how far before the episode's Since the report starts:
	// a threshold rule's window, so that the page shows the data that tripped it.
	Spans map[string]time.Duration
	// DefaultSpan is the span of rules without one in Spans; zero: ReportDefaultSpan.
	DefaultSpan time.Duration
}

const (
	// ReportDefaultSpan is how far before an episode's start a report link starts when
	// its rule has no window of its own (the drift detectors: CUSUM, EWMA, canary): long
	// enough to show the level the series drifted from.
	ReportDefaultSpan = 6 * time.Hour
	// ReportMargin is how far after the notification's time a report link ends, so the
	// page shows the latest rows even when they arrive a little late.
	ReportMargin = 15 * time.Minute
)

// ParseReportURL checks raw, the value of the key named key, as a report base URL: an
// absolute http or https URL with a host, without credentials or fragment.
func ParseReportURL(key, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL; it is not a secret, but say what is wrong plainly.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s: %q is not a URL: %w", key, raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%s: %q is not an absolute http or https URL (e.g. https://raterd.example.com/report)", key, raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%s: %q has no host", key, raw)
	case u.User != nil:
		return nil, fmt.Errorf("%s: credentials in the URL are not allowed (the link is shown to every reader of the alert)", key)
	case u.Fragment != "" || strings.HasSuffix(raw, "#"):
		return nil, fmt.Errorf("%s: %q has a fragment; give the endpoint's URL", key, raw)
	}
	if _, err := url.ParseQuery(u.RawQuery); err != nil {
		return nil, fmt.Errorf("%s: %q has a malformed query: %w", key, raw, err)
	}
	return u, nil
}

// URL returns the report link of n: the base URL with the query parameters evaluator,
// model and app (those of n's series that are set) and from and to (RFC 3339, UTC, whole
// minutes): from = Since minus the rule's span (At when Since is unset), to = At plus
// ReportMargin. An empty string when l or its base is nil or n has no time.
func (l *ReportLink) URL(n Notification) string {
	if l == nil || l.Base == nil {
		return ""
	}
	at := n.At
	if at.IsZero() {
		at = n.Since
	}
	if at.IsZero() {
		return ""
	}
	start := n.Since
	if start.IsZero() || start.After(at) {
		start = at
	}
	span := l.Spans[n.Rule]
	if span <= 0 {
		span = l.DefaultSpan
	}
	if span <= 0 {
		span = ReportDefaultSpan
	}
	from := start.Add(-span).UTC().Truncate(time.Minute)
	to := at.Add(ReportMargin).UTC()
	if t := to.Truncate(time.Minute); !t.Equal(to) {
		to = t.Add(time.Minute)
	}
	q, _ := url.ParseQuery(l.Base.RawQuery) // ParseReportURL checked it
	for k, v := range map[string]string{"evaluator": n.Series.Evaluator, "model": n.Series.Model, "app": n.Series.App} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("from", from.Format(time.RFC3339))
	q.Set("to", to.Format(time.RFC3339))
	u := *l.Base
	u.RawQuery = q.Encode() // sorted by key: the same notification gives the same link
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// reportSettings is embedded (yaml "-") in every channel type's settings: the report
// link that Decode sets from Env.Report, applied by New to every notification.
type reportSettings struct{ report *ReportLink }

func (r *reportSettings) setReportLink(l *ReportLink) { r.report = l }
func (r *reportSettings) reportLink() *ReportLink     { return r.report }

// ReportLinkOf returns the report link Decode gave channel settings s; nil when none.
func ReportLinkOf(s Settings) *ReportLink {
	if r, ok := s.(reportLinked); ok {
		return r.reportLink()
	}
	return nil
}

type reportLinked interface {
	setReportLink(*ReportLink)
	reportLink() *ReportLink
}

// reportNotifier sets every notification's ReportURL, then hands it to the channel.
type reportNotifier struct {
	Notifier
	link *ReportLink
}

// withReportLink wraps n so that its notifications carry l's link; n as is when l is nil.
func withReportLink(n Notifier, l *ReportLink) Notifier {
	if l == nil || l.Base == nil {
		return n
	}
	return &reportNotifier{Notifier: n, link: l}
}

// Notify implements Notifier.
func (r *reportNotifier) Notify(ctx context.Context, n Notification) error {
	if n.ReportURL == "" {
		n.ReportURL = r.link.URL(n)
	}
	return r.Notifier.Notify(ctx, n)
}

// Close closes the channel when it has anything to close (the kafka channel's writer).
func (r *reportNotifier) Close() error {
	if c, ok := r.Notifier.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
