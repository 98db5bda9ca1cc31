package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.yaml.in/yaml/v3"

	"raterd/record"
	"raterd/sinks"
	"raterd/sinks/alert"
)

// AlertingConfig is the alerting section: rules (with their detectors, lifecycle and
// silences, see alert.Config), the channels they notify, and where alert state lives.
type AlertingConfig struct {
	alert.Config `yaml:",inline"`
	// State is where alert state lives: redis (shared by every raterd process, survives
	// restarts; the default when redis.addrs is set) or memory (this process only).
	State string `yaml:"state"`
	// KeyPrefix prefixes the Redis keys of alert state. Default redis.key_prefix + "alert:".
	KeyPrefix string `yaml:"key_prefix"`
	// Channels are the notification channels, by name; rules refer to them.
	Channels map[string]*ChannelConfig `yaml:"channels"`
}

// Alert state stores.
const (
	AlertStateRedis  = "redis"
	AlertStateMemory = "memory"
)

// Channel types.
const (
	ChannelWebhook      = "webhook"
	ChannelSlack        = "slack"
	ChannelAlertmanager = "alertmanager"
	ChannelKafka        = "kafka"
	ChannelClickHouse   = "clickhouse"
)

// ChannelConfig is one notification channel: its type, the type's keys inline (see
// docs/configuration.md), and how its deliveries are queued and retried.
type ChannelConfig struct {
	// Type is webhook, slack, alertmanager, kafka or clickhouse. Required.
	Type string `yaml:"type"`
	// Delivery bounds the channel's queue and retries.
	Delivery alert.DeliveryConfig `yaml:"delivery"`
	// Settings are the type's keys, decoded by Validate into the type's config.
	Settings map[string]yaml.Node `yaml:",inline"`

	webhook      *alert.WebhookConfig
	slack        *alert.SlackConfig
	alertmanager *alert.AlertmanagerConfig
	kafka        *alert.KafkaChannelConfig
	clickhouse   *alert.ClickHouseChannelConfig
}

// validate fills defaults and rejects bad or conflicting values, naming the key; c is the
// whole config, validated up to this section.
func (a *AlertingConfig) validate(key string, c *Config) error {
	if err := a.Config.Validate(key); err != nil {
		return err
	}
	switch a.State {
	case "":
		a.State = AlertStateMemory
		if len(c.Redis.Addrs) > 0 {
			a.State = AlertStateRedis
		}
	case AlertStateMemory:
	case AlertStateRedis:
		if len(c.Redis.Addrs) == 0 {
			return fmt.Errorf("%s.state: redis needs redis.addrs", key)
		}
	default:
		return fmt.Errorf("%s.state: %q is not redis or memory", key, a.State)
	}
	if a.KeyPrefix == "" {
		a.KeyPrefix = c.Redis.KeyPrefix + "alert:"
	}
	for _, name := range sortedKeys(a.Channels) {
		ch, ckey := a.Channels[name], key+".channels."+name
		if ch == nil {
			return fmt.Errorf("%s: empty channel definition", ckey)
		}
		if err := ch.validate(ckey, name, c); err != nil {
			return err
		}
	}
	for i, r := range a.Rules {
		for j, name := range r.Channels {
			ch, ok := a.Channels[name]
			if !ok {
				return fmt.Errorf("%s.rules[%d] (%s).channels[%d]: %q is not defined under %s.channels", key, i, r.Name, j, name, key)
			}
			// Alertmanager ends an alert by itself after resolve_timeout unless it is
			// sent again: the rule must re-notify within it.
			if am := ch.alertmanager; am != nil && (r.Renotify == 0 || r.Renotify >= am.ResolveTimeout) {
				return fmt.Errorf("%s.rules[%d] (%s).renotify: %s; alertmanager channel %q needs re-notification below its resolve_timeout (%s), e.g. renotify: %s",
					key, i, r.Name, r.Renotify, name, am.ResolveTimeout, am.ResolveTimeout/2)
			}
		}
	}
	return nil
}

func (ch *ChannelConfig) validate(key, name string, c *Config) error {
	var target any
	switch ch.Type {
	case ChannelWebhook:
		ch.webhook = &alert.WebhookConfig{}
		target = ch.webhook
	case ChannelSlack:
		ch.slack = &alert.SlackConfig{}
		target = ch.slack
	case ChannelAlertmanager:
		ch.alertmanager = &alert.AlertmanagerConfig{}
		target = ch.alertmanager
	case ChannelKafka:
		ch.kafka = &alert.KafkaChannelConfig{}
		target = ch.kafka
	case ChannelClickHouse:
		if c.ClickHouse == nil {
			return fmt.Errorf("%s.type: a clickhouse channel needs the clickhouse section", key)
		}
		ch.clickhouse = &alert.ClickHouseChannelConfig{}
		target = ch.clickhouse
	case "":
		return fmt.Errorf("%s.type: required (webhook, slack, alertmanager, kafka or clickhouse)", key)
	default:
		return fmt.Errorf("%s.type: %q is not webhook, slack, alertmanager, kafka or clickhouse", key, ch.Type)
	}
	if err := decodeInline(key, ch.Type, ch.Settings, target); err != nil {
		return err
	}
	var err error
	switch {
	case ch.webhook != nil:
		err = ch.webhook.Validate(key)
	case ch.slack != nil:
		err = ch.slack.Validate(key)
	case ch.alertmanager != nil:
		err = ch.alertmanager.Validate(key)
	case ch.kafka != nil:
		if len(ch.kafka.Brokers) == 0 {
			ch.kafka.Brokers = c.Kafka.Brokers
		}
		err = ch.kafka.Validate(key)
	case ch.clickhouse != nil:
		if ch.clickhouse.Database == "" {
			ch.clickhouse.Database = c.ClickHouse.Database
		}
		err = ch.clickhouse.Validate(key)
	}
	if err != nil {
		return err
	}
	return ch.Delivery.Validate(key + ".delivery")
}

// decodeInline decodes a channel's inline keys into its type's config, refusing keys the
// type does not have (the config file's line numbers stay in errors).
func decodeInline(key, typ string, settings map[string]yaml.Node, out any) error {
	known := map[string]bool{}
	t := reflect.TypeOf(out).Elem()
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			known[tag] = true
		}
	}
	node := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, k := range sortedKeys(settings) {
		if !known[k] {
			return fmt.Errorf("%s.%s: not a key of a %s channel (%s, delivery)", key, k, typ, strings.Join(sortedKeys(known), ", "))
		}
		v := settings[k]
		node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, &v)
	}
	if err := node.Decode(out); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// alertsAfter writes score rows to the durable sinks and hands them to the alert manager
// only once those acknowledged them: a batch retried after a failed write is observed
// once. (Replays after a crash are observed again; the detectors tolerate that.)
type alertsAfter struct {
	sinks.MultiScoreSink
	alerts *alert.Manager
}

// WriteScores implements consumer.ScoreSink.
func (a alertsAfter) WriteScores(ctx context.Context, rows []record.Score) error {
	if err := a.MultiScoreSink.WriteScores(ctx, rows); err != nil {
		return err
	}
	return a.alerts.WriteScores(ctx, rows)
}

// deliveryDrain bounds how long closing waits for the channels' queued notifications.
const deliveryDrain = 10 * time.Second

// buildAlerting builds the channels (each behind a Deliverer), the alert state store and
// the Manager. The closers close the Manager first (its final evaluation enqueues), then
// drain the channels, then the Redis client.
func buildAlerting(ctx context.Context, cfg *Config, ch driver.Conn, httpClient *http.Client, logger *slog.Logger, meters metric.MeterProvider) (*alert.Manager, []io.Closer, error) {
	a := cfg.Alerting
	logger = logger.With("component", "alerting")
	var closers []io.Closer
	fail := func(err error) (*alert.Manager, []io.Closer, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i].Close()
		}
		return nil, nil, err
	}
	var store alert.Store
	if a.State == AlertStateRedis {
		client := redis.NewUniversalClient(alertRedisOptions(cfg.Redis))
		closers = append(closers, client)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := client.Ping(pctx).Err(); err != nil {
			// Not fatal: scoring goes on; alerting keeps its observations (bounded) until Redis answers.
			logger.Warn("redis not answering at start; alert state waits for it", "addrs", cfg.Redis.Addrs, "err", err)
		}
		cancel()
		store = alert.NewRedisStore(client, a.KeyPrefix)
	}
	channels := map[string]alert.Channel{}
	var deliverers []*alert.Deliverer
	for _, name := range sortedKeys(a.Channels) {
		c := a.Channels[name]
		var n alert.Notifier
		var err error
		switch {
		case c.webhook != nil:
			n, err = alert.NewWebhook(name, *c.webhook, httpClient)
		case c.slack != nil:
			n, err = alert.NewSlack(name, *c.slack, httpClient)
		case c.alertmanager != nil:
			n, err = alert.NewAlertmanager(name, *c.alertmanager, httpClient)
		case c.kafka != nil:
			n, err = alert.NewKafkaChannel(name, *c.kafka, nil)
		case c.clickhouse != nil:
			n, err = alert.NewClickHouseChannel(name, ch, *c.clickhouse)
		}
		if err == nil {
			var d *alert.Deliverer
			if d, err = alert.NewDeliverer(n, c.Delivery, alert.DeliveryOptions{Logger: logger, MeterProvider: meters}); err == nil {
				channels[name] = d
				deliverers = append(deliverers, d)
			}
		}
		if err != nil {
			closers = append(closers, drainDeliverers(deliverers))
			return fail(fmt.Errorf("alerting.channels.%s: %w", name, err))
		}
	}
	closers = append(closers, drainDeliverers(deliverers))
	db := "raterd"
	if cfg.ClickHouse != nil {
		db = cfg.ClickHouse.Database
	}
	m, err := alert.NewManager(a.Config, alert.Options{Store: store, Channels: channels, Database: db,
		Logger: logger, MeterProvider: meters})
	if err != nil {
		return fail(err)
	}
	return m, append(closers, m), nil
}

// alertRedisOptions are the cache's connection settings with timeouts and retries fit
// for alert state: off the scoring path, so a slow round trip costs nothing but a late
// evaluation.
func alertRedisOptions(cfg RedisConfig) *redis.UniversalOptions {
	timeout := max(cfg.Timeout, 2*time.Second)
	opts := &redis.UniversalOptions{
		Addrs: cfg.Addrs, MasterName: cfg.MasterName, Username: cfg.Username, Password: cfg.Password,
		SentinelUsername: cfg.Username, SentinelPassword: cfg.Password, DB: cfg.DB,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout,
	}
	if cfg.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return opts
}

// drainDeliverers closes the Deliverers together, within deliveryDrain.
func drainDeliverers(ds []*alert.Deliverer) io.Closer {
	return closerFunc(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), deliveryDrain)
		defer cancel()
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		for _, d := range ds {
			wg.Go(func() {
				if err := d.Close(ctx); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	})
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
