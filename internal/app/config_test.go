package app

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"raterd/scorer"
)

const validConfig = `
kafka:
  brokers: [127.0.0.1:9092]
  topics: [llm-traffic]
clickhouse:
  addrs: [127.0.0.1:9000]
judges:
  checks: {type: heuristic}
  pool-a:
    type: openai
    model: prometheus-7b-v2.0
    endpoints: [{url: "http://127.0.0.1:8000/v1"}]
evaluators:
  - {name: pii, judge: checks, check: pii}
  - {name: helpful, judge: pool-a, criteria: "Is it helpful?"}
`

func TestParseConfigDefaultsAndEnv(t *testing.T) {
	env := map[string]string{
		"RATERD_KAFKA_BROKERS":        "k1:9092, k2:9092",
		"RATERD_CLICKHOUSE_ADDR":      "ch:9000",
		"RATERD_CLICKHOUSE_PASSWORD":  "s3cret",
		"RATERD_REDIS_ADDR":           "redis:6379",
		"RATERD_JUDGE_POOL_A_API_KEY": "key-a",
	}
	cfg, err := ParseConfig([]byte(validConfig), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Kafka.Brokers, ",") != "k1:9092,k2:9092" || cfg.ClickHouse.Addrs[0] != "ch:9000" ||
		cfg.ClickHouse.Password != "s3cret" || cfg.Redis.Addrs[0] != "redis:6379" || cfg.Judges["pool-a"].APIKey != "key-a" {
		t.Fatalf("env overrides not applied: %+v", cfg)
	}
	if cfg.Kafka.GroupID != "raterd" || cfg.Kafka.Batch.MaxRecords != 256 || cfg.Kafka.CommitInterval != time.Second ||
		cfg.ClickHouse.Database != "raterd" || cfg.Admin.Listen != "127.0.0.1:9464" || cfg.Redis.Timeout != 250*time.Millisecond {
		t.Fatalf("defaults not filled: %+v", cfg)
	}
	if cfg.Evaluators[0].RubricVersion() == "" || cfg.Evaluators[1].Scale.Max != 5 {
		t.Fatalf("evaluators not prepared: %+v", cfg.Evaluators)
	}
}

// TestRedisClusterEnv: RATERD_REDIS_CLUSTER sets redis.cluster either way, and a value
// that is not a boolean is an error naming the variable.
func TestRedisClusterEnv(t *testing.T) {
	for _, tc := range []struct{ file, env string }{{"false", "true"}, {"true", "false"}, {"true", ""}} {
		data := validConfig + "redis: {addrs: [\"a:1\"], cluster: " + tc.file + "}\n"
		cfg, err := ParseConfig([]byte(data), func(k string) string {
			if k == "RATERD_REDIS_CLUSTER" {
				return tc.env
			}
			return ""
		})
		want := tc.env == "true" || tc.env == "" && tc.file == "true"
		if err != nil || cfg.Redis.Cluster != want {
			t.Fatalf("file %s, env %q: cluster %v, %v; want %v", tc.file, tc.env, cfg != nil && cfg.Redis.Cluster, err, want)
		}
	}
	_, err := ParseConfig([]byte(validConfig), func(k string) string {
		if k == "RATERD_REDIS_CLUSTER" {
			return "yes please"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "RATERD_REDIS_CLUSTER (redis.cluster)") {
		t.Fatalf("bad RATERD_REDIS_CLUSTER: %v", err)
	}
}

func TestParseConfigRejectsNamingTheKey(t *testing.T) {
	tests := []struct {
		name, edit, want string
	}{
		{"unknown key", "kafka:\n  brokerz: [x:1]\n", "brokerz"},
		{"no topics", strings.Replace(validConfig, "topics: [llm-traffic]", "topics: []", 1), "kafka.topics"},
		{"bad broker", strings.Replace(validConfig, "127.0.0.1:9092", "localhost", 1), "kafka.brokers[0]"},
		{"bad start offset", strings.Replace(validConfig, "topics: [llm-traffic]", "topics: [t]\n  start_offset: middle", 1), "kafka.start_offset"},
		{"negative linger", strings.Replace(validConfig, "topics: [llm-traffic]", "topics: [t]\n  batch: {linger: -1s}", 1), "kafka.batch.linger"},
		{"undefined judge", strings.Replace(validConfig, "judge: checks", "judge: nope", 1), "evaluators[0] (pii).judge"},
		{"bad check", strings.Replace(validConfig, "check: pii", "check: vibes", 1), "evaluators[0] (pii).check"},
		{"bad judge type", strings.Replace(validConfig, "{type: heuristic}", "{type: magic}", 1), "judges.checks.type"},
		{"duplicate evaluator", strings.Replace(validConfig, "name: helpful", "name: pii", 1), "evaluators[1].name"},
		{"bad endpoint", strings.Replace(validConfig, "http://127.0.0.1:8000/v1", "ftp://x", 1), "judges.pool-a.endpoints[0].url"},
		{"topic name Kafka refuses", strings.Replace(validConfig, "topics: [llm-traffic]", `topics: ["llm traffic"]`, 1), "kafka.topics[0]"},
		{"topic too long for its dead-letter topic", strings.Replace(validConfig, "topics: [llm-traffic]", "topics: ["+strings.Repeat("t", 247)+"]", 1), "kafka.topics[0]"},
		{"bad log level", validConfig + "telemetry: {log_level: loud}\n", "telemetry.log_level"},
		{"redis cluster db", validConfig + "redis: {addrs: [\"a:1\", \"b:1\"], db: 2}\n", "redis.db"},
		{"redis cluster with master_name", validConfig + "redis: {addrs: [\"a:1\"], cluster: true, master_name: m}\n", "redis.cluster: true conflicts with redis.master_name"},
		{"redis one-seed cluster db", validConfig + "redis: {addrs: [\"a:1\"], cluster: true, db: 1}\n", "redis.db"},
		{"in-flight bytes below batch bytes", strings.Replace(validConfig, "topics: [llm-traffic]", "topics: [t]\n  batch: {max_bytes: 100000000}", 1), "kafka.max_in_flight_bytes"},
		{"reward without labels asked to classify", strings.Replace(validConfig, "  pool-a:\n", "  rm: {type: reward, model: m, endpoints: [{url: \"http://127.0.0.1:8000\"}]}\n  pool-a:\n", 1) +
			"  - {name: c, judge: rm, task: classification, positive_label: good}\n", "evaluators[2] (c).task"},
		{"reward settings on an openai judge", strings.Replace(validConfig, "model: prometheus-7b-v2.0", "model: p\n    reward: {api: tei-predict}", 1), "judges.pool-a.reward"},
		{"openai keys on a reward judge", strings.Replace(validConfig, "type: openai", "type: reward\n    logprobs: true", 1), "judges.pool-a.logprobs"},
		{"pool keys on a heuristic judge", strings.Replace(validConfig, "{type: heuristic}", "{type: heuristic, timeout: 5s}", 1), "judges.checks: a heuristic judge takes no other keys"},
		{"bad reward api", strings.Replace(validConfig, "type: openai", "type: reward\n    reward: {api: grpc}", 1), "judges.pool-a.reward.api"},
		{"bad format", strings.Replace(validConfig, `criteria: "Is it helpful?"`, `criteria: "x", format: gpt`, 1), "evaluators[1] (helpful).format"},
		{"pairwise without candidates", strings.Replace(validConfig, `criteria: "Is it helpful?"`, `criteria: "x", task: pairwise, fields: [prompt, response]`, 1), "evaluators[1] (helpful).fields"},
		{"classification without labels", strings.Replace(validConfig, `criteria: "Is it helpful?"`, `criteria: "x", task: classification`, 1), "evaluators[1] (helpful).labels"},
		{"level off the scale", strings.Replace(validConfig, `criteria: "Is it helpful?"`, `criteria: "x", levels: {9: "great"}`, 1), "evaluators[1] (helpful).levels.9"},
		{"no cache with redis", validConfig + "redis: {addrs: [\"127.0.0.1:6379\"], memory_bytes: -1}\n", "redis.memory_bytes"},
		{"cache timeout too long", validConfig + "redis: {timeout: 1m}\n", "redis.timeout"},
		{"breaker below its cooldown", validConfig + "redis: {breaker: {cooldown: 5s, max_cooldown: 1s}}\n", "redis.breaker.max_cooldown"},
		{"bad yaml type", strings.Replace(validConfig, "topics: [llm-traffic]", "topics: 5", 1), "line"},
		{"score events without an endpoint", validConfig + "score_events: {}\n", "score_events.endpoint: required"},
		{"score events endpoint a URL", validConfig + "score_events: {endpoint: \"http://c:4317\"}\n", "score_events.endpoint"},
		{"score events inherit a bad endpoint", validConfig + "telemetry: {otlp_endpoint: c}\nscore_events: {}\n", "telemetry.otlp_endpoint's"},
		{"score events batch over the queue", validConfig + "score_events: {endpoint: \"c:4317\", queue_size: 8, batch_size: 9}\n", "score_events.batch_size"},
		{"score events unknown key", validConfig + "score_events: {endpoint: \"c:4317\", queue: 8}\n", `unknown key "score_events.queue"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.edit), func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %q", err, tt.want)
			}
		})
	}
}

// TestScoreEventsConfig: the score_events section is off by default, inherits the
// telemetry collector (endpoint and insecure) when it names none, and keeps its own.
func TestScoreEventsConfig(t *testing.T) {
	noEnv := func(string) string { return "" }
	cfg, err := ParseConfig([]byte(validConfig), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ScoreEvents != nil {
		t.Fatalf("score_events on by default: %+v", cfg.ScoreEvents)
	}
	cfg, err = ParseConfig([]byte(validConfig+"telemetry: {otlp_endpoint: \"otelcol:4317\", otlp_insecure: true}\nscore_events: {}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.ScoreEvents; e.Endpoint != "otelcol:4317" || e.Insecure == nil || !*e.Insecure || e.QueueSize != 2048 || e.Timeout != 10*time.Second {
		t.Fatalf("score_events did not inherit the telemetry collector or fill defaults: %+v", e)
	}
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "env-col:4317"}
	cfg, err = ParseConfig([]byte(validConfig+"score_events: {}\n"), func(k string) string { return env[k] })
	if err != nil || cfg.ScoreEvents.Endpoint != "env-col:4317" || *cfg.ScoreEvents.Insecure {
		t.Fatalf("score_events with OTEL_EXPORTER_OTLP_ENDPOINT: %+v, %v", cfg, err)
	}
	own := validConfig + `telemetry: {otlp_endpoint: "otelcol:4317", otlp_insecure: true}
score_events:
  endpoint: "events.example.com:443"
  headers: {x-api-key: k}
  timeout: 2s
  queue_size: 100
  batch_size: 10
  interval: 200ms
  max_explanation_bytes: 64
  skip_untraced: true
`
	cfg, err = ParseConfig([]byte(own), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.ScoreEvents; e.Endpoint != "events.example.com:443" || *e.Insecure || e.Headers["x-api-key"] != "k" ||
		e.Timeout != 2*time.Second || e.QueueSize != 100 || e.BatchSize != 10 || e.Interval != 200*time.Millisecond ||
		e.MaxExplanationBytes != 64 || !e.SkipUntraced {
		t.Fatalf("score_events keys not read: %+v", e)
	}
}

func TestJudgeEnvName(t *testing.T) {
	for in, want := range map[string]string{"pool-a": "POOL_A", "vllm.main": "VLLM_MAIN", "x--y_": "X_Y"} {
		if got := scorer.JudgeAPIKeyEnv(in); got != "RATERD_JUDGE_"+want+"_API_KEY" {
			t.Errorf("JudgeAPIKeyEnv(%q) = %q, want RATERD_JUDGE_%s_API_KEY", in, got, want)
		}
	}
}

func TestStarterConfigParses(t *testing.T) {
	cfg, err := LoadConfig("starter.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Evaluators) != 7 || cfg.Judges["judge-pool"].Endpoints[0].MaxInFlight != 32 {
		t.Fatalf("starter config: %+v", cfg)
	}
}

// TestEvaluatorExamplesParse keeps testdata/evaluators.yaml, the documented example of
// every task type, format and judge type, valid.
func TestEvaluatorExamplesParse(t *testing.T) {
	cfg, err := LoadConfig("../../testdata/evaluators.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	tasks := map[string]bool{}
	formats := map[string]bool{}
	scopes := map[string]bool{}
	for _, e := range cfg.Evaluators {
		tasks[e.Task] = true
		formats[e.Format] = true
		scopes[e.EffectiveScope()] = true
		if e.RubricVersion() == "" {
			t.Errorf("evaluator %s has no rubric version", e.Name)
		}
	}
	for _, want := range []string{"pointwise", "classification", "pairwise"} {
		if !tasks[want] {
			t.Errorf("no %s example", want)
		}
	}
	// Every format, the guards' native ones included (llama-guard-4 is llama-guard-3's).
	for _, want := range []string{"flame", "prometheus2", "selene", "lynx", "llama-guard-3", "shieldgemma", "granite-guardian", "granite-guardian-3.3", "qwen3guard"} {
		if !formats[want] {
			t.Errorf("no %s example", want)
		}
	}
	for _, want := range []string{"record", "conversation", "trace"} {
		if !scopes[want] {
			t.Errorf("no %s-scope example", want)
		}
	}
	if cfg.Judges["reward-model"].Reward.API != "vllm-pooling" || cfg.Judges["selene"].DNS == nil {
		t.Errorf("judges: %+v", cfg.Judges)
	}
}

// TestDeployConfigsParse keeps the shipped Kubernetes config valid as the code changes.
func TestDeployConfigsParse(t *testing.T) {
	data, err := os.ReadFile("../../deploy/kubernetes/raterd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	found := false
	for {
		var doc struct {
			Kind     string                `yaml:"kind"`
			Metadata struct{ Name string } `yaml:"metadata"`
			Data     map[string]string     `yaml:"data"`
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if doc.Kind == "ConfigMap" && doc.Data["raterd.yaml"] != "" {
			found = true
			env := map[string]string{"RATERD_KAFKA_BROKERS": "kafka:9092", "RATERD_CLICKHOUSE_ADDR": "clickhouse:9000", "RATERD_REDIS_ADDR": "redis:6379"}
			if _, err := ParseConfig([]byte(doc.Data["raterd.yaml"]), func(k string) string { return env[k] }); err != nil {
				t.Errorf("%s ConfigMap: %v", doc.Metadata.Name, err)
			}
		}
	}
	if !found {
		t.Fatal("no raterd.yaml ConfigMap in deploy/kubernetes/raterd.yaml")
	}
}

// TestComposeConfigParses keeps every raterd config inlined in docker-compose.yml valid:
// the default stack's and the cluster profile's.
func TestComposeConfigParses(t *testing.T) {
	data, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Configs map[string]struct {
			Content string `yaml:"content"`
		} `yaml:"configs"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"raterd-config", "raterd-cluster-config"} {
		content := compose.Configs[name].Content
		if content == "" {
			t.Fatalf("docker-compose.yml has no configs.%s.content", name)
		}
		if _, err := ParseConfig([]byte(content), func(string) string { return "" }); err != nil {
			t.Errorf("docker-compose.yml configs.%s: %v", name, err)
		}
	}
}

// TestSampleRateZeroParsesAsOff: an explicit sample_rate: 0 is accepted and switches the
// evaluator off; an absent key means 1; out-of-range rates are refused naming the key.
func TestSampleRateZeroParsesAsOff(t *testing.T) {
	text := strings.Replace(validConfig, "check: pii}", "check: pii, sample_rate: 0}", 1)
	cfg, err := ParseConfig([]byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	pii, helpful := cfg.Evaluators[0], cfg.Evaluators[1]
	if !pii.Off() || *pii.SampleRate != 0 {
		t.Errorf("sample_rate: 0 parsed as %v (off %v), want 0 and off", *pii.SampleRate, pii.Off())
	}
	if helpful.Off() || helpful.SampleRate == nil || *helpful.SampleRate != 1 {
		t.Errorf("absent sample_rate parsed as %v (off %v), want 1", helpful.SampleRate, helpful.Off())
	}
	for _, bad := range []string{"-0.5", "1.01", ".nan"} {
		text := strings.Replace(validConfig, "check: pii}", "check: pii, sample_rate: "+bad+"}", 1)
		_, err := ParseConfig([]byte(text), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), "evaluators[0] (pii).sample_rate: ") {
			t.Errorf("sample_rate: %s: err = %v, want one naming evaluators[0] (pii).sample_rate", bad, err)
		}
	}
}
