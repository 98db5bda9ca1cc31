package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/validate"
)

// Kafka message headers of an alerts-topic message, for consumers that filter without
// decoding the value.
const (
	// KafkaHeaderState is the notification's state: pending, firing or resolved.
	KafkaHeaderState = "raterd-alert-state"
	// KafkaHeaderRule is the rule's name.
	KafkaHeaderRule = "raterd-alert-rule"
)

// KafkaChannelConfig is a Kafka alerts-topic channel: each notification is one message,
// keyed by its AlertID (so all changes of one alert land on one partition, in order),
// whose value is the JSON of the Notification (as the webhook sends it), with the
// KafkaHeaderState and KafkaHeaderRule headers. Writes wait for every in-sync replica
// (acks=all). Errors a retry would meet again (message too large, invalid topic, topic
// not authorized) are permanent (ErrPermanent); the others are transient.
type KafkaChannelConfig struct {
	// Brokers are host:port bootstrap addresses. Required (the caller may fill in raterd's
	// kafka.brokers when the section leaves them out).
	Brokers []string `yaml:"brokers"`
	// Topic receives the notifications. It is created on first use where the brokers
	// allow auto-creation; create it beforehand otherwise. Default "raterd.alerts".
	Topic string `yaml:"topic"`
	// Timeout bounds one write, the replicas' acknowledgement included. Default 10s; at
	// most 5m.
	Timeout time.Duration `yaml:"timeout"`

	reportSettings `yaml:"-"` // alerting.report_url, set by Decode
}

// Validate fills defaults and rejects bad values; key prefixes the key names in errors.
func (c *KafkaChannelConfig) Validate(key string) error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%s.brokers: at least one broker is required", key)
	}
	for i, b := range c.Brokers {
		if !validate.HostPort(b) {
			return fmt.Errorf("%s.brokers[%d]: %q is not host:port", key, i, b)
		}
	}
	if c.Topic == "" {
		c.Topic = "raterd.alerts"
	}
	if !validate.KafkaTopic(c.Topic) {
		return fmt.Errorf("%s.topic: %q is not a Kafka topic name (1–249 of [a-zA-Z0-9._-], not . or ..)", key, c.Topic)
	}
	return validateChannelTimeout(key+".timeout", &c.Timeout, 10*time.Second)
}

// KafkaChannel is the Kafka alerts-topic channel; see KafkaChannelConfig. Close it to
// release its connections.
type KafkaChannel struct {
	name string
	w    *kafka.Writer
	tr   *kafka.Transport // owned, closed by Close; nil when the caller's
}

// NewKafkaChannel returns the Kafka channel called name. A nil transport gets one of its
// own: kafka-go's shared DefaultTransport caches topic metadata process-wide, which
// would hide an alerts topic created after another client's last refresh. Pass one to
// reuse raterd's TLS or SASL settings. It validates cfg, filling defaults.
func NewKafkaChannel(name string, cfg KafkaChannelConfig, transport kafka.RoundTripper) (*KafkaChannel, error) {
	if err := cfg.Validate(name); err != nil {
		return nil, err
	}
	k := &KafkaChannel{name: name}
	if transport == nil {
		k.tr = &kafka.Transport{}
		transport = k.tr
	}
	k.w = &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Topic:                  cfg.Topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		AllowAutoTopicCreation: true,
		BatchTimeout:           time.Millisecond, // one message per call: do not linger
		WriteTimeout:           cfg.Timeout,
		ReadTimeout:            cfg.Timeout,
		// A few quick tries for leader changes; the Deliverer retries beyond that.
		MaxAttempts: 3,
		Transport:   transport,
	}
	return k, nil
}

// Name implements Notifier.
func (k *KafkaChannel) Name() string { return k.name }

// Notify implements Notifier: it returns once every in-sync replica has the message.
func (k *KafkaChannel) Notify(ctx context.Context, n Notification) error {
	value, err := encodeNotification(n)
	if err != nil {
		return fmt.Errorf("kafka %q: %w", k.name, err)
	}
	msg := kafka.Message{Key: []byte(n.AlertID), Value: value, Headers: []kafka.Header{
		{Key: KafkaHeaderState, Value: []byte(n.State)},
		{Key: KafkaHeaderRule, Value: []byte(n.Rule)},
	}}
	err = k.w.WriteMessages(ctx, msg)
	if err == nil {
		return nil
	}
	// One message: a WriteErrors holds its error alone.
	cause := err
	if werrs, ok := err.(kafka.WriteErrors); ok && len(werrs) == 1 && werrs[0] != nil {
		cause = werrs[0]
	}
	for _, p := range []kafka.Error{kafka.MessageSizeTooLarge, kafka.InvalidTopic, kafka.TopicAuthorizationFailed} {
		if errors.Is(cause, p) {
			return fmt.Errorf("kafka %q: %w: write alert %s to %s: %w", k.name, ErrPermanent, n.AlertID, k.w.Topic, cause)
		}
	}
	return fmt.Errorf("kafka %q: write alert %s to %s: %w", k.name, n.AlertID, k.w.Topic, cause)
}

// Close flushes and closes the producer and its own transport's connections.
func (k *KafkaChannel) Close() error {
	err := k.w.Close()
	if k.tr != nil {
		k.tr.CloseIdleConnections()
	}
	if err != nil {
		return fmt.Errorf("kafka %q: close: %w", k.name, err)
	}
	return nil
}

// kafkaType is the kafka entry of the channel registry: brokers default to the
// application's.
var kafkaType = ChannelType{
	Type:     "kafka",
	Settings: func() Settings { return &KafkaChannelConfig{} },
	Defaults: func(s Settings, env Env) {
		if c := s.(*KafkaChannelConfig); len(c.Brokers) == 0 {
			c.Brokers = env.KafkaBrokers
		}
	},
	New: func(name string, s Settings, deps Deps) (Notifier, error) {
		if deps.KafkaTransport == nil {
			return NewKafkaChannel(name, *s.(*KafkaChannelConfig), nil)
		}
		tr := deps.KafkaTransport()
		k, err := NewKafkaChannel(name, *s.(*KafkaChannelConfig), tr)
		if err != nil {
			return nil, err
		}
		k.tr = tr // owned: Close closes its connections
		return k, nil
	},
}
