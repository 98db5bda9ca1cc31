package alert

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"raterd/sinks/alert/detect"
	"raterd/sinks/alert/notify"
)

// AlertingConfig is the alerting section of raterd's configuration: rules (with their
// detectors, lifecycle and silences, see Config), the channels they notify, and where
// alert state lives. Validate fills its defaults; Build makes the Manager from it.
type AlertingConfig struct {
	Config `yaml:",inline"`
	// State is where alert state lives: redis (shared by every raterd process, survives
	// restarts; the default when redis.addrs is set) or memory (this process only).
	State string `yaml:"state"`
	// KeyPrefix prefixes the Redis keys of alert state. Default redis.key_prefix + "alert:".
	KeyPrefix string `yaml:"key_prefix"`
	// Channels are the notification channels, by name; rules refer to them.
	Channels map[string]*ChannelConfig `yaml:"channels"`
	// ReportURL is the external base URL of raterd's HTML report (the admin server's
	// GET /report, as a responder's browser reaches it, e.g.
	// https://raterd.example.com/report). When set, every notification links to the
	// report of its series and window (notify.Notification.ReportURL; notify.ReportLink
	// says which window). Default: no link.
	ReportURL string `yaml:"report_url"`
}

// Alert state stores (AlertingConfig.State).
const (
	StateRedis  = "redis"
	StateMemory = "memory"
)

// ChannelConfig is one notification channel: its type, the type's keys inline (see
// docs/configuration.md), and how its deliveries are queued and retried.
type ChannelConfig struct {
	// Type is a channel type of the registry (notify.Types): webhook, slack,
	// alertmanager, kafka or clickhouse. Required.
	Type string `yaml:"type"`
	// Delivery bounds the channel's queue and retries.
	Delivery notify.DeliveryConfig `yaml:"delivery"`
	// Settings are the type's keys, decoded by validation into the type's settings.
	Settings map[string]yaml.Node `yaml:",inline"`

	decoded notify.Settings
}

// Decoded returns the channel type's settings as validation decoded them and filled
// their defaults (*notify.WebhookConfig, *notify.SlackConfig, …); nil before.
func (ch *ChannelConfig) Decoded() notify.Settings { return ch.decoded }

// Env is what validating the alerting section takes from the rest of the application's
// configuration.
type Env struct {
	// Redis says the application has Redis (redis.addrs is set): alert state may live
	// there, and does by default.
	Redis bool
	// RedisKeyPrefix is redis.key_prefix: alert state's keys default to it + "alert:".
	RedisKeyPrefix string
	// Channels are what channel settings default to (the Kafka brokers, the ClickHouse
	// section).
	Channels notify.Env
}

// Validate fills defaults and rejects bad or conflicting values, naming the key under key
// (e.g. "alerting.channels.oncall.url: …").
func (a *AlertingConfig) Validate(key string, env Env) error {
	if err := a.Config.Validate(key); err != nil {
		return err
	}
	switch a.State {
	case "":
		a.State = StateMemory
		if env.Redis {
			a.State = StateRedis
		}
	case StateMemory:
	case StateRedis:
		if !env.Redis {
			return fmt.Errorf("%s.state: redis needs redis.addrs", key)
		}
	default:
		return fmt.Errorf("%s.state: %q is not redis or memory", key, a.State)
	}
	if a.KeyPrefix == "" {
		a.KeyPrefix = env.RedisKeyPrefix + "alert:"
	}
	if a.ReportURL != "" {
		base, err := notify.ParseReportURL(key+".report_url", a.ReportURL)
		if err != nil {
			return err
		}
		env.Channels.Report = &notify.ReportLink{Base: base, Spans: reportSpans(a.Rules)}
	}
	for _, name := range slices.Sorted(maps.Keys(a.Channels)) {
		ch, ckey := a.Channels[name], key+".channels."+name
		if ch == nil {
			return fmt.Errorf("%s: empty channel definition", ckey)
		}
		if err := ch.validate(ckey, env.Channels); err != nil {
			return err
		}
	}
	for i, r := range a.Rules {
		for j, name := range r.Channels {
			ch, ok := a.Channels[name]
			if !ok {
				return fmt.Errorf("%s.rules[%d] (%s).channels[%d]: %q is not defined under %s.channels", key, i, r.Name, j, name, key)
			}
			// A channel that ends an alert by itself unless it is sent again
			// (Alertmanager after resolve_timeout): the rule must re-notify within it.
			if b, ok := ch.decoded.(notify.RenotifyBound); ok {
				if limit, lkey := b.RenotifyBound(); r.Renotify == 0 || r.Renotify >= limit {
					return fmt.Errorf("%s.rules[%d] (%s).renotify: %s; %s channel %q needs re-notification below its %s (%s), e.g. renotify: %s",
						key, i, r.Name, r.Renotify, ch.Type, name, lkey, limit, limit/2)
				}
			}
		}
	}
	return nil
}

// reportSpans are, per rule, how far before an episode's start its report link starts:
// a threshold rule's window (default detect.DefaultThresholdWindow); the other detectors take
// notify.ReportDefaultSpan.
func reportSpans(rules []*RuleConfig) map[string]time.Duration {
	spans := map[string]time.Duration{}
	for _, r := range rules {
		if r == nil || r.Detector != DetectorThreshold {
			continue
		}
		w := detect.DefaultThresholdWindow
		if r.Threshold != nil && r.Threshold.Window > 0 {
			w = r.Threshold.Window
		}
		spans[r.Name] = w
	}
	return spans
}

// validate decodes and validates the type's settings through the channel registry, then
// the delivery settings.
func (ch *ChannelConfig) validate(key string, env notify.Env) error {
	s, err := notify.Decode(key, ch.Type, ch.Settings, env)
	if err != nil {
		return err
	}
	ch.decoded = s
	return ch.Delivery.Validate(key + ".delivery")
}
