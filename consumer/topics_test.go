package consumer

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestTopicCheckerMissingAndPresent against an in-process Kafka-protocol broker that does
// not auto-create topics: missing topics are reported in configuration order, asking does
// not create them, and a created one is reported present.
func TestTopicCheckerMissingAndPresent(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "there"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	broker := cluster.ListenAddrs()[0]
	c := NewTopicChecker(Config{Brokers: []string{broker}, Topics: []string{"b-missing", "there", "a-missing"}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		missing, err := c.Missing(ctx)
		if err != nil || !slices.Equal(missing, []string{"b-missing", "a-missing"}) {
			t.Fatalf("Missing = %v, %v; want [b-missing a-missing]", missing, err)
		}
	}
	kc := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	if _, err := kc.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: "a-missing", NumPartitions: 1, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	if missing, err := c.Missing(ctx); err != nil || !slices.Equal(missing, []string{"b-missing"}) {
		t.Fatalf("Missing after creating a-missing = %v, %v; want [b-missing]", missing, err)
	}
}

// TestTopicCheckerBounded: a broker that accepts connections and never answers holds the
// check no longer than its context.
func TestTopicCheckerBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // held open, unanswered, until the test ends
		}
	}()
	c := NewTopicChecker(Config{Brokers: []string{ln.Addr().String()}, Topics: []string{"t"}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	missing, err := c.Missing(ctx)
	if err == nil || missing != nil {
		t.Fatalf("Missing on a silent broker = %v, %v; want an error", missing, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Missing took %s with a 200ms context", took)
	}
}

// TestTransportFor: the check connects as the group's dialer does.
func TestTransportFor(t *testing.T) {
	if tr := transportFor(nil, []string{"t"}); tr.TLS != nil || tr.SASL != nil || tr.Dial != nil || !slices.Equal(tr.MetadataTopics, []string{"t"}) {
		t.Fatalf("nil dialer: %+v", tr)
	}
	tlsCfg := &tls.Config{ServerName: "kafka.example", MinVersion: tls.VersionTLS12}
	mech := plain.Mechanism{Username: "u", Password: "p"}
	d := &kafka.Dialer{ClientID: "raterd", Timeout: 3 * time.Second, TLS: tlsCfg, SASLMechanism: mech}
	tr := transportFor(d, []string{"t"})
	if tr.TLS != tlsCfg || tr.SASL != mech || tr.ClientID != "raterd" || tr.DialTimeout != 3*time.Second || tr.Dial == nil {
		t.Fatalf("dialer settings not carried: %+v", tr)
	}

	// The dialer's resolver and dial function are used.
	var dialed string
	d = &kafka.Dialer{
		Resolver: fakeResolver{"kafka.example": {"127.0.0.9"}},
		DialFunc: func(_ context.Context, _, address string) (net.Conn, error) {
			dialed = address
			return nil, net.ErrClosed
		},
	}
	if _, err := transportFor(d, nil).Dial(context.Background(), "tcp", "kafka.example:9092"); err == nil || dialed != "127.0.0.9:9092" {
		t.Fatalf("dialed %q (%v), want 127.0.0.9:9092", dialed, err)
	}
}

// fakeResolver is a kafka.Resolver answering from a map.
type fakeResolver map[string][]string

func (r fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	return r[host], nil
}
