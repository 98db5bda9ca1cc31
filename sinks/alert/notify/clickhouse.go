package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/chsql"
	"raterd/internal/validate"
)

// ClickHouseChannelConfig is the ClickHouse alerts-table channel: each notification
// inserts the alert's whole row into <database>.alerts (created by `raterd migrate`,
// migration 2), with updated_at = the notification's time. The table is a
// ReplacingMergeTree(updated_at), so after merges, or with SELECT … FINAL, one row per
// alert remains: its latest state. A resent insert adds an identical row, which merges
// away. Pending notifications are written too: the table is the alerts' history.
//
// The channel writes on a connection the caller opened with sinks.OpenClickHouse (raterd's
// own), through the native protocol's block insert as the score sinks do, which works on
// ClickHouse 18.16 too.
type ClickHouseChannelConfig struct {
	// Database holds the alerts table. Default "raterd"; the caller should fill in raterd's
	// clickhouse.database when the section leaves it out.
	Database string `yaml:"database"`
	// Timeout bounds one insert. Default 10s; at most 5m.
	Timeout time.Duration `yaml:"timeout"`

	reportSettings `yaml:"-"` // alerting.report_url, set by Decode

	// InsertSettings are sent with every insert: Env.ClickHouseInsertSettings
	// (chsql.InsertSettings of the clickhouse section; on a cluster the synchronous
	// Distributed insert and the quorum), set by the registry's Defaults. Not a YAML key.
	InsertSettings map[string]any `yaml:"-"`
}

// Validate fills defaults and rejects bad values; key prefixes the key names in errors.
func (c *ClickHouseChannelConfig) Validate(key string) error {
	if c.Database == "" {
		c.Database = chsql.DefaultDatabase
	}
	if !validate.SQLIdentifier(c.Database) {
		return fmt.Errorf("%s.database: %q is not a plain identifier", key, c.Database)
	}
	return validateChannelTimeout(key+".timeout", &c.Timeout, 10*time.Second)
}

// alertColumns is the explicit insert column list of <database>.alerts: named, so that
// columns added by later migrations (with defaults) never break this writer.
const alertColumns = "alert_id, rule, evaluator, model, app, judge, state, severity, observed, expected, " +
	"interval_low, interval_high, sample_size, since, updated_at, example_record_ids, message, drilldown_sql"

// ClickHouseChannel is the alerts-table channel; see ClickHouseChannelConfig. It does
// not own its connection.
type ClickHouseChannel struct {
	name     string
	conn     driver.Conn
	timeout  time.Duration
	insertQ  string
	settings map[string]any
}

// NewClickHouseChannel returns the alerts-table channel called name, writing on conn. It
// validates cfg, filling defaults.
func NewClickHouseChannel(name string, conn driver.Conn, cfg ClickHouseChannelConfig) (*ClickHouseChannel, error) {
	if err := cfg.Validate(name); err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, fmt.Errorf("%s: no ClickHouse connection (configure clickhouse)", name)
	}
	return &ClickHouseChannel{name: name, conn: conn, timeout: cfg.Timeout, settings: cfg.InsertSettings,
		insertQ: fmt.Sprintf("INSERT INTO %s.alerts (%s)", cfg.Database, alertColumns)}, nil
}

// Name implements Notifier.
func (c *ClickHouseChannel) Name() string { return c.name }

// Notify implements Notifier: one single-row insert, acknowledged by ClickHouse.
// Times are stored to the second (DateTime); a notification without At gets the
// current time as updated_at.
func (c *ClickHouseChannel) Notify(ctx context.Context, n Notification) error {
	switch n.State {
	case StatePending, StateFiring, StateResolved:
	default:
		return fmt.Errorf("clickhouse %q: %w: alert %s has state %q, which the alerts table cannot hold", c.name, ErrPermanent, n.AlertID, n.State)
	}
	updated := n.At
	if updated.IsZero() {
		updated = time.Now()
	}
	ids := make([]string, len(n.Examples))
	for i, e := range n.Examples {
		ids[i] = e.RecordID
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if len(c.settings) > 0 {
		ctx = ch.Context(ctx, ch.WithSettings(c.settings))
	}
	batch, err := c.conn.PrepareBatch(ctx, c.insertQ)
	if err != nil {
		return fmt.Errorf("clickhouse %q: prepare insert of alert %s: %w", c.name, n.AlertID, err)
	}
	defer func() { _ = batch.Abort() }()
	if err := batch.Append(n.AlertID, n.Rule, n.Series.Evaluator, n.Series.Model, n.Series.App, n.Series.Judge,
		n.State, n.Severity, n.Observed, n.Expected, n.Lower, n.Upper, uint64(max(n.SampleSize, 0)),
		chDateTime(n.Since), chDateTime(updated), ids, n.Message, n.DrilldownSQL); err != nil {
		return fmt.Errorf("clickhouse %q: %w: append alert %s: %v", c.name, ErrPermanent, n.AlertID, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("clickhouse %q: insert alert %s: %w", c.name, n.AlertID, err)
	}
	return nil
}

// chDateTime clamps t into the range of ClickHouse's DateTime (1970 to 2106), in UTC.
func chDateTime(t time.Time) time.Time {
	lo, hi := time.Unix(0, 0), time.Unix(1<<32-1, 0)
	switch {
	case t.Before(lo):
		return lo.UTC()
	case t.After(hi):
		return hi.UTC()
	}
	return t.UTC()
}

// clickhouseType is the clickhouse entry of the channel registry: it needs the
// application's ClickHouse, whose database is the default.
var clickhouseType = ChannelType{
	Type:     "clickhouse",
	Settings: func() Settings { return &ClickHouseChannelConfig{} },
	Available: func(env Env) error {
		if !env.ClickHouse {
			return errors.New("a clickhouse channel needs the clickhouse section")
		}
		return nil
	},
	Defaults: func(s Settings, env Env) {
		c := s.(*ClickHouseChannelConfig)
		if c.Database == "" {
			c.Database = env.ClickHouseDatabase
		}
		c.InsertSettings = env.ClickHouseInsertSettings
	},
	New: func(name string, s Settings, deps Deps) (Notifier, error) {
		return NewClickHouseChannel(name, deps.ClickHouse, *s.(*ClickHouseChannelConfig))
	},
}
