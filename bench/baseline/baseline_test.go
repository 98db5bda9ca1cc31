package baseline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"raterd/scorer"
	"raterd/sinks/clickhouse"
)

func TestConfigValidateNamesTheBadKey(t *testing.T) {
	kafka := func(mutate func(*KafkaConfig)) KafkaConfig {
		k := KafkaConfig{Brokers: []string{"127.0.0.1:9092"}, Topic: "t", GroupID: "g"}
		mutate(&k)
		return k
	}
	prepared := &scorer.Evaluator{Name: "refusal", Judge: "checks", Check: "refusal"}
	if err := prepared.Prepare("evaluators[0]", scorer.KindHeuristic); err != nil {
		t.Fatal(err)
	}
	ch := clickhouse.Config{Addrs: []string{"127.0.0.1:9000"}}
	judge := scorer.NewHeuristicJudge()
	for _, tc := range []struct {
		name, want string
		validate   func() error
	}{
		{"no brokers", "kafka.brokers", func() error {
			c := BareConfig{Kafka: kafka(func(k *KafkaConfig) { k.Brokers = nil })}
			return c.Validate()
		}},
		{"no topic", "kafka.topic", func() error {
			c := BareConfig{Kafka: kafka(func(k *KafkaConfig) { k.Topic = "" })}
			return c.Validate()
		}},
		{"no group", "kafka.group_id", func() error {
			c := BareConfig{Kafka: kafka(func(k *KafkaConfig) { k.GroupID = "" })}
			return c.Validate()
		}},
		{"broker not host:port", "kafka.brokers[0]", func() error {
			c := BareConfig{Kafka: kafka(func(k *KafkaConfig) { k.Brokers = []string{"localhost"} })}
			return c.Validate()
		}},
		{"negative records", "kafka.records", func() error {
			c := BareConfig{Kafka: kafka(func(k *KafkaConfig) { k.Records = -1 })}
			return c.Validate()
		}},
		{"negative commit interval", "commit_interval", func() error {
			c := BareConfig{Kafka: kafka(func(*KafkaConfig) {}), CommitInterval: -time.Second}
			return c.Validate()
		}},
		{"no evaluators", "evaluators", func() error {
			c := NaiveConfig{Kafka: kafka(func(*KafkaConfig) {}), Judge: judge, ClickHouse: ch}
			return c.Validate()
		}},
		{"unprepared evaluator", "evaluators[1]", func() error {
			c := NaiveConfig{Kafka: kafka(func(*KafkaConfig) {}), Evaluators: []*scorer.Evaluator{prepared, {Name: "x"}}, Judge: judge, ClickHouse: ch}
			return c.Validate()
		}},
		{"no judge", "judge", func() error {
			c := NaiveConfig{Kafka: kafka(func(*KafkaConfig) {}), Evaluators: []*scorer.Evaluator{prepared}, ClickHouse: ch}
			return c.Validate()
		}},
		{"no clickhouse", "clickhouse.addrs", func() error {
			c := NaiveConfig{Kafka: kafka(func(*KafkaConfig) {}), Evaluators: []*scorer.Evaluator{prepared}, Judge: judge}
			return c.Validate()
		}},
		{"valid naive", "", func() error {
			c := NaiveConfig{Kafka: kafka(func(*KafkaConfig) {}), Evaluators: []*scorer.Evaluator{prepared}, Judge: judge, ClickHouse: ch}
			return c.Validate()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want+":")):
				t.Fatalf("Validate: %v; want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestRunRejectsAnInvalidConfigBeforeConnecting(t *testing.T) {
	if _, err := RunBare(context.Background(), BareConfig{}); err == nil || !strings.Contains(err.Error(), "kafka.brokers") {
		t.Errorf("RunBare(zero config) = %v; want an error naming kafka.brokers", err)
	}
	if _, err := RunNaive(context.Background(), NaiveConfig{}); err == nil || !strings.Contains(err.Error(), "kafka.brokers") {
		t.Errorf("RunNaive(zero config) = %v; want an error naming kafka.brokers", err)
	}
}

// TestStopErr: a run that ends because its context ended has not failed: no error
// without a record count, one naming how far it got with one; any other error stands.
func TestStopErr(t *testing.T) {
	failure := errors.New("insert failed")
	if err := stopErr(context.Background(), failure, 3, 0); err != failure {
		t.Errorf("live context: stopErr = %v, want the error itself", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := stopErr(ctx, failure, 3, 0); err != nil {
		t.Errorf("ended context, no record count: stopErr = %v, want nil", err)
	}
	err := stopErr(ctx, failure, 3, 10)
	if !errors.Is(err, context.Canceled) || !strings.Contains(fmt.Sprint(err), "stopped after 3 of 10 records") {
		t.Errorf("ended context, 10 records wanted: stopErr = %v, want context.Canceled after 3 of 10 records", err)
	}
}

func TestResultRates(t *testing.T) {
	r := Result{Records: 500, Elapsed: 2 * time.Second, CPU: CPUTime{User: 300 * time.Millisecond, System: 200 * time.Millisecond}}
	if got := r.RecordsPerSecond(); got != 250 {
		t.Errorf("RecordsPerSecond = %v, want 250", got)
	}
	if got := r.CPUPerRecord(); got != time.Millisecond {
		t.Errorf("CPUPerRecord = %v, want 1ms", got)
	}
	if (Result{}).RecordsPerSecond() != 0 || (Result{}).CPUPerRecord() != 0 {
		t.Error("an empty result must report zero rates, not divide by zero")
	}
}
