// Package notify is the notification layer of raterd's alerting: the Notification an
// alert's state change produces, the Notifier interface channels implement, the channels
// themselves (webhook, Slack, Alertmanager, a Kafka topic, the ClickHouse alerts table),
// the Deliverer that queues and retries a channel's deliveries off the scoring path, and
// the channel registry (Decode, New) that turns a channel's configuration, by its type,
// into a Notifier.
//
// It knows nothing of rules or detectors: package raterd/sinks/alert, the lifecycle layer,
// produces the notifications and hands them to Deliverers.
package notify

import (
	"context"
	"time"
)

// Series identifies what a rule watches: one evaluator's scores of one model in one app,
// by one judge.
type Series struct {
	Model     string `json:"model"`
	App       string `json:"app"`
	Evaluator string `json:"evaluator"`
	Judge     string `json:"judge"`
}

// Alert lifecycle states carried by a Notification.
const (
	StatePending  = "pending"  // the rule's detector alerts, for less than the rule's `for`
	StateFiring   = "firing"   // it has alerted for the rule's `for`: responders are told
	StateResolved = "resolved" // it stopped alerting (or the alert was silenced away)
)

// Example is one scored record behind an alert, for a responder to look at.
type Example struct {
	RecordID string  `json:"record_id"`
	Score    float64 `json:"score"`
}

// Notification is one state change of one alert (a rule on a series), with what a
// responder needs: what was observed against what was expected and its interval, since
// when, on how many records, a few example records and the SQL to drill down.
type Notification struct {
	// AlertID is stable for a rule × series: every state change of the alert carries it.
	AlertID  string `json:"alert_id"`
	Rule     string `json:"rule"`
	Series   Series `json:"series"`
	State    string `json:"state"` // StatePending, StateFiring or StateResolved
	Severity string `json:"severity"`
	// Observed is the detector's statistic on the rubric scale (a mean or a rate);
	// Expected is the baseline or threshold, and [Lower, Upper] the interval of the
	// observation (or, for a canary, of the difference).
	Observed   float64   `json:"observed"`
	Expected   float64   `json:"expected"`
	Lower      float64   `json:"lower"`
	Upper      float64   `json:"upper"`
	SampleSize int64     `json:"sample_size"`
	Since      time.Time `json:"since"` // when the alert entered its current episode
	At         time.Time `json:"at"`    // when this change happened
	// NoData is set when the alert fires because the series stopped sending records.
	NoData bool `json:"no_data,omitempty"`
	// Fired is set on firing notifications and on the resolution of an episode that
	// fired; a resolution without it closes an alert that was only pending, which
	// channels that never show pending alerts (Slack by default, Alertmanager) skip.
	Fired        bool      `json:"fired"`
	Examples     []Example `json:"examples,omitempty"`
	Message      string    `json:"message"`
	DrilldownSQL string    `json:"drilldown_sql"`
	// ReportURL links to raterd's HTML report of the series around the alert (its
	// evaluator, model and app, from before the episode began to just after At); set
	// when alerting.report_url is configured (ReportLink), empty otherwise.
	ReportURL string `json:"report_url,omitempty"`
}

// Notifier delivers notifications to one channel (a webhook, Slack, Alertmanager, a
// Kafka topic, the ClickHouse alerts table). Notify returns once the channel accepted the
// notification; the caller retries a failed delivery with backoff, off the scoring path.
type Notifier interface {
	// Name is the channel's name in the configuration, for logs and metrics.
	Name() string
	Notify(ctx context.Context, n Notification) error
}
