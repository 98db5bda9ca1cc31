package notify

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"go.yaml.in/yaml/v3"
)

// registry holds every channel type, by its `type` value, in the order error messages
// list them. Adding a channel type is one file (its settings with yaml tags and Validate,
// its Notifier, and its ChannelType) and one entry here.
var registry = newRegistry(
	webhookType,
	slackType,
	alertmanagerType,
	kafkaType,
	clickhouseType,
)

// Settings are a channel type's decoded settings (WebhookConfig, SlackConfig, …).
type Settings interface {
	// Validate fills defaults and rejects bad values; key prefixes the key names in
	// errors.
	Validate(key string) error
}

// RenotifyBound is implemented by the settings of a channel that ends an alert by itself
// unless the alert is sent again in time (Alertmanager's resolve_timeout): every rule
// notifying such a channel must re-notify more often than Limit.
type RenotifyBound interface {
	// RenotifyBound returns the bound and the settings key that sets it.
	RenotifyBound() (limit time.Duration, key string)
}

// Env is what channel settings take from the rest of the application's configuration
// when they are decoded.
type Env struct {
	// KafkaBrokers are the application's Kafka brokers, the default of a kafka channel's.
	KafkaBrokers []string
	// ClickHouse says the application has a ClickHouse connection (a clickhouse channel
	// needs it); ClickHouseDatabase is its database, the default of a clickhouse
	// channel's.
	ClickHouse         bool
	ClickHouseDatabase string
	// ClickHouseInsertSettings are the settings of every insert into raterd's tables
	// (chsql.InsertSettings of the clickhouse section): on a cluster, the synchronous
	// Distributed insert and the quorum.
	ClickHouseInsertSettings map[string]any
	// Report, when set (alerting.report_url), links every notification of the channel
	// to the HTML report of its series and window (Notification.ReportURL).
	Report *ReportLink
}

// Deps are what channels are built with.
type Deps struct {
	// HTTPClient posts the HTTP channels' requests; nil: a client of each channel's own.
	HTTPClient *http.Client
	// ClickHouse is the connection the clickhouse channel writes on (not owned).
	ClickHouse driver.Conn
	// KafkaTransport makes each kafka channel's transport, which the channel owns and
	// closes (raterd passes consumer.Config.Transport: the kafka section's TLS and SASL);
	// nil: a plaintext transport of the channel's own.
	KafkaTransport func() *kafka.Transport
}

// ChannelType is one entry of the channel registry: how the settings of a channel of the
// type are decoded, validated and built into a Notifier.
type ChannelType struct {
	// Type is the value of the channel's `type` key.
	Type string
	// Settings returns fresh settings to decode the channel's keys into: a pointer to a
	// struct whose yaml tags are the keys the type takes.
	Settings func() Settings
	// Available, when set, says why the application cannot host a channel of the type
	// (nil: it can); it is checked before the keys are decoded.
	Available func(env Env) error
	// Defaults, when set, fills the decoded settings' defaults that come from the
	// application, before Validate.
	Defaults func(s Settings, env Env)
	// New builds the channel called name from settings that Validate accepted.
	New func(name string, s Settings, deps Deps) (Notifier, error)
}

type channelRegistry struct {
	types map[string]ChannelType
	order []string
}

func newRegistry(types ...ChannelType) channelRegistry {
	r := channelRegistry{types: map[string]ChannelType{}}
	for _, t := range types {
		r.types[t.Type] = t
		r.order = append(r.order, t.Type)
	}
	return r
}

// list names the types: "a, b or c".
func (r channelRegistry) list() string {
	if len(r.order) < 2 {
		return strings.Join(r.order, "")
	}
	return strings.Join(r.order[:len(r.order)-1], ", ") + " or " + r.order[len(r.order)-1]
}

// Types returns the channel types, in the order error messages list them.
func Types() []string { return append([]string(nil), registry.order...) }

// Decode decodes the keys of a channel of type typ (its configuration's inline keys
// besides type and delivery) into the type's settings, fills their defaults from env and
// validates them. Errors name the keys under key (e.g. "alerting.channels.oncall"),
// keeping the configuration file's line numbers.
func Decode(key, typ string, keys map[string]yaml.Node, env Env) (Settings, error) {
	t, ok := registry.types[typ]
	switch {
	case typ == "":
		return nil, fmt.Errorf("%s.type: required (%s)", key, registry.list())
	case !ok:
		return nil, fmt.Errorf("%s.type: %q is not %s", key, typ, registry.list())
	}
	if t.Available != nil {
		if err := t.Available(env); err != nil {
			return nil, fmt.Errorf("%s.type: %w", key, err)
		}
	}
	s := t.Settings()
	if err := decodeInline(key, typ, keys, s); err != nil {
		return nil, err
	}
	if t.Defaults != nil {
		t.Defaults(s, env)
	}
	if err := s.Validate(key); err != nil {
		return nil, err
	}
	if r, ok := s.(reportLinked); ok && env.Report != nil {
		r.setReportLink(env.Report)
	}
	return s, nil
}

// New builds the channel called name of type typ from settings Decode returned.
func New(typ, name string, s Settings, deps Deps) (Notifier, error) {
	t, ok := registry.types[typ]
	if !ok {
		return nil, fmt.Errorf("%q is not %s", typ, registry.list())
	}
	if s == nil {
		return nil, errors.New("channel settings not decoded")
	}
	n, err := t.New(name, s, deps)
	if err != nil {
		return nil, err
	}
	return withReportLink(n, ReportLinkOf(s)), nil
}

// decodeInline decodes a channel's inline keys into its type's settings, refusing keys
// the type does not have (the config file's line numbers stay in errors).
func decodeInline(key, typ string, settings map[string]yaml.Node, out any) error {
	known := map[string]bool{}
	t := reflect.TypeOf(out).Elem()
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			known[tag] = true
		}
	}
	node := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		if !known[k] {
			return fmt.Errorf("%s.%s: not a key of a %s channel (%s, delivery)", key, k, typ, strings.Join(slices.Sorted(maps.Keys(known)), ", "))
		}
		v := settings[k]
		node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, &v)
	}
	if err := node.Decode(out); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}
