package app

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"raterd/scorer/pool"
	"raterd/sinks/alert/notify"
)

// typoConfig is validConfig with a typo at every depth, and one unknown key with no near
// neighbour (kafka.colour).
const typoConfig = `kafka:
  brokers: [127.0.0.1:9092]
  topics: [llm-traffic]
  worker: 4
  colour: blue
clickhouse:
  addrs: [127.0.0.1:9000]
judges:
  checks: {type: heuristic}
  prometheus:
    type: openai
    model: prometheus-7b-v2.0
    endpoint: "http://127.0.0.1:8000/v1"
evaluators:
  - {name: pii, judge: checks, check: pii}
  - {name: helpful, judge: prometheus, criteria: "Is it helpful?", sampel_rate: 0.5}
alerting:
  channels:
    oncall: {type: webhook, urll: "https://hooks.example.com/raterd"}
  rules:
    - name: refusals
      evaluators: [pii]
      detector: threshold
      threshold: {stat: pass_rate, alert: 0.9, windw: 30m}
      channels: [oncall]
telemetri: {log_level: debug}
`

func TestUnknownKeysAreListedByPath(t *testing.T) {
	_, err := ParseConfig([]byte(typoConfig), func(string) string { return "" })
	want := strings.Join([]string{
		`config: unknown key "kafka.worker" (line 4); did you mean "kafka.workers"?`,
		`config: unknown key "kafka.colour" (line 5)`,
		`config: unknown key "judges.prometheus.endpoint" (line 13); did you mean "judges.prometheus.endpoints"?`,
		`config: unknown key "evaluators[1].sampel_rate" (line 16); did you mean "evaluators[1].sample_rate"?`,
		`config: unknown key "alerting.channels.oncall.urll" (line 19); did you mean "alerting.channels.oncall.url"?`,
		`config: unknown key "alerting.rules[0].threshold.windw" (line 24); did you mean "alerting.rules[0].threshold.window"?`,
		`config: unknown key "telemetri" (line 26); did you mean "telemetry"?`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("err =\n%v\nwant\n%s", err, want)
	}
	var uk *UnknownKeyError
	if !errors.As(err, &uk) || uk.Path != "kafka.worker" || uk.Line != 4 || uk.Suggestion != "kafka.workers" {
		t.Fatalf("errors.As: %+v", uk)
	}
}

func TestUnknownKeyAtEachDepth(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"top level", "clickhouse:\n", "clikhouse: {}\nclickhouse:\n",
			`config: unknown key "clikhouse" (line 5); did you mean "clickhouse"?`},
		{"section", "topics: [llm-traffic]", "topics: [llm-traffic]\n  worker: 4",
			`config: unknown key "kafka.worker" (line 5); did you mean "kafka.workers"?`},
		{"nested struct", "topics: [llm-traffic]", "topics: [llm-traffic]\n  batch: {linger: 1s, max_record: 10}",
			`config: unknown key "kafka.batch.max_record" (line 5); did you mean "kafka.batch.max_records"?`},
		{"list item", `criteria: "Is it helpful?"`, `criteria: "Is it helpful?", sampel_rate: 0.5`,
			`config: unknown key "evaluators[1].sampel_rate" (line 15); did you mean "evaluators[1].sample_rate"?`},
		{"map value", "model: prometheus-7b-v2.0", "model: prometheus-7b-v2.0\n    endpoint: x",
			`config: unknown key "judges.pool-a.endpoint" (line 12); did you mean "judges.pool-a.endpoints"?`},
		{"inline struct of a map value", "model: prometheus-7b-v2.0", "model: prometheus-7b-v2.0\n    rate_limit: {request_per_second: 3}",
			`config: unknown key "judges.pool-a.rate_limit.request_per_second" (line 12); did you mean "judges.pool-a.rate_limit.requests_per_second"?`},
		{"keyed unmarshaler", "model: prometheus-7b-v2.0", "model: prometheus-7b-v2.0\n    breaker: {failure: 3}",
			`config: unknown key "judges.pool-a.breaker.failure" (line 12); did you mean "judges.pool-a.breaker.failures"?`},
		{"list in a map value", `url: "http://127.0.0.1:8000/v1"}`, `url: "http://127.0.0.1:8000/v1", max_inflight: 4}`,
			`config: unknown key "judges.pool-a.endpoints[0].max_inflight" (line 12); did you mean "judges.pool-a.endpoints[0].max_in_flight"?`},
		{"no suggestion", "topics: [llm-traffic]", "topics: [llm-traffic]\n  zookeeper: z:2181",
			`config: unknown key "kafka.zookeeper" (line 5)`},
		{"case", "topics: [llm-traffic]", "topics: [llm-traffic]\n  Workers: 4",
			`config: unknown key "kafka.Workers" (line 5); did you mean "kafka.workers"?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(validConfig, tc.from, tc.to, 1)
			if text == validConfig {
				t.Fatalf("%q is not in validConfig", tc.from)
			}
			_, err := ParseConfig([]byte(text), func(string) string { return "" })
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant  %s", err, tc.want)
			}
		})
	}
}

func TestUnknownKeysInAlerting(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"interval: 5s", "intervall: 5s",
			`config: unknown key "alerting.intervall" (line 18); did you mean "alerting.interval"?`},
		{"{max_attempts: 4}", "{max_attempt: 4}",
			`config: unknown key "alerting.channels.oncall.delivery.max_attempt" (line 20); did you mean "alerting.channels.oncall.delivery.max_attempts"?`},
		{"am: {type: alertmanager, urls:", "am: {type: alertmanager, url:",
			`config: unknown key "alerting.channels.am.url" (line 22); did you mean "alerting.channels.am.urls"?`},
		{"detector: threshold", "detector: threshold\n      treshold: {alert: 1}",
			`config: unknown key "alerting.rules[0].treshold" (line 29); did you mean "alerting.rules[0].threshold"?`},
		{"interval: 5s", "interval: 5s\n  silences: [{matchers: {rule: x}, end_at: 2030-01-01T00:00:00Z}]",
			`config: unknown key "alerting.silences[0].end_at" (line 19); did you mean "alerting.silences[0].ends_at"?`},
	} {
		text := strings.Replace(validConfig+alertingSection, tc.from, tc.to, 1)
		_, err := ParseConfig([]byte(text), func(string) string { return "" })
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s → %s: err = %v\nwant %s", tc.from, tc.to, err, tc.want)
		}
	}
	// Detector and canary settings are inline structs of their own.
	canary := strings.Replace(validConfig+alertingSection, "detector: threshold\n      threshold: {stat: pass_rate, alert: 0.9, window: 30m}",
		"detector: canary\n      canary: {candidate: \"m-2*\", baseline: m-1, alpha: 0.01, min_sample: 50}\n      cusum: {k: 0.1, warm_upp: 10}", 1)
	_, err := ParseConfig([]byte(canary), func(string) string { return "" })
	want := `config: unknown key "alerting.rules[0].canary.min_sample" (line 29); did you mean "alerting.rules[0].canary.min_samples"?` + "\n" +
		`config: unknown key "alerting.rules[0].cusum.warm_upp" (line 30); did you mean "alerting.rules[0].cusum.warm_up"?`
	if err == nil || err.Error() != want {
		t.Errorf("canary: err = %v\nwant %s", err, want)
	}
}

// TestKnownKeysPass is the negative control: valid configs, anchors and merge keys
// included, have no unknown key.
func TestKnownKeysPass(t *testing.T) {
	for name, text := range map[string]string{
		"valid":     validConfig,
		"alerting":  validConfig + alertingSection,
		"demo":      demoConfig,
		"empty":     "",
		"not a map": "[1, 2]",
		"anchors and merges": validConfig + `
redis:
  breaker: &brk {failures: 3, cooldown: 5s}
scoring: {max_explanation_bytes: 512}
` + strings.Replace(alertingSection, "oncall: {type: webhook,", "base: &hook {type: webhook, timeout: 5s}\n    oncall: {<<: *hook,", 1),
	} {
		if err := checkKeys([]byte(text)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseConfig([]byte(validConfig+alertingSection), func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
}

// TestUnknownKeysUnderMergesAndAliases: a typo in a merged or aliased mapping is reported
// once, at the key's line.
func TestUnknownKeysUnderMergesAndAliases(t *testing.T) {
	text := strings.Replace(validConfig, "  pool-a:\n", "  base: &base {type: openai, timout: 5s}\n  pool-a:\n    <<: *base\n", 1) +
		"  - {<<: *e, name: again}\n"
	text = strings.Replace(text, "{name: pii, judge: checks, check: pii}", "&e {name: pii, judge: checks, check: pii, sampl_rate: 1}", 1)
	want := `config: unknown key "judges.base.timout" (line 9); did you mean "judges.base.timeout"?` + "\n" +
		`config: unknown key "evaluators[0].sampl_rate" (line 16); did you mean "evaluators[0].sample_rate"?`
	if err := checkKeys([]byte(text)); err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

// TestExampleConfigsHaveNoUnknownKeys: every raterd config the repository ships or
// documents: the example files, the Kubernetes ConfigMap, docker-compose's config, and
// every yaml block of the README and docs (fragments are checked for their keys only; a
// yaml block that is not raterd configuration needs another info string, e.g. ```yml).
func TestExampleConfigsHaveNoUnknownKeys(t *testing.T) {
	texts := map[string]string{}
	for _, f := range []string{"starter.yaml", "../../testdata/evaluators.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts[f] = string(data)
	}
	data, err := os.ReadFile("../../deploy/kubernetes/raterd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for dec, i := yaml.NewDecoder(bytes.NewReader(data)), 0; ; i++ {
		var doc struct {
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if c, ok := doc.Data["raterd.yaml"]; ok {
			texts["deploy/kubernetes/raterd.yaml ConfigMap"] = c
		}
	}
	data, err = os.ReadFile("../../docker-compose.yml")
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
	for name, c := range compose.Configs {
		texts["docker-compose.yml configs."+name] = c.Content
	}
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	for _, f := range append(docs, "../../README.md") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rest := string(data)
		for n := 0; ; n++ {
			var block string
			var ok bool
			if _, rest, ok = strings.Cut(rest, "```yaml\n"); !ok {
				break
			}
			if block, rest, ok = strings.Cut(rest, "```"); !ok {
				t.Fatalf("%s: unterminated yaml block", f)
			}
			texts[fmt.Sprintf("%s yaml block %d", f, n)] = block
			blocks++
		}
	}
	if blocks < 4 || len(texts) < blocks+4 {
		t.Fatalf("found %d doc blocks, %d configs in all: the test lost its inputs", blocks, len(texts))
	}
	for name, text := range texts {
		if strings.TrimSpace(text) == "" {
			t.Errorf("%s: empty", name)
		}
		if err := checkKeys([]byte(text)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestChannelSettingsFollowTheRegistry: the walker knows every channel type of notify's
// registry, with exactly the keys notify.Decode accepts.
func TestChannelSettingsFollowTheRegistry(t *testing.T) {
	for _, typ := range notify.Types() {
		st := channelSettingsType(typ)
		if st == nil {
			t.Errorf("channel type %q: channelSettingsType does not know it", typ)
			continue
		}
		probe := map[string]yaml.Node{"zz_probe": {Kind: yaml.ScalarNode, Value: "x"}}
		_, err := notify.Decode("c", typ, probe, notify.Env{ClickHouse: true, KafkaBrokers: []string{"k:9092"}})
		_, list, ok := strings.Cut(err.Error(), " channel (")
		list, _, ok2 := strings.Cut(list, ", delivery)")
		if !ok || !ok2 {
			t.Fatalf("channel type %q: notify.Decode error %q does not list the keys", typ, err)
		}
		w := &keyWalker{sets: map[reflect.Type]*keySet{}}
		if got := strings.Join(w.keysOf(st).names, ", "); got != list {
			t.Errorf("channel type %q: walker keys %q, notify.Decode takes %q", typ, got, list)
		}
	}
}

// TestKeyedUnmarshalersTakeTheirTags: a type whose keys the walker checks despite its
// own UnmarshalYAML accepts every key of its tags, and refuses others.
func TestKeyedUnmarshalersTakeTheirTags(t *testing.T) {
	w := &keyWalker{sets: map[reflect.Type]*keySet{}}
	names := w.keysOf(reflect.TypeFor[pool.Breaker]()).names
	if !slices.Equal(names, []string{"cooldown", "failures", "health_path"}) {
		t.Fatalf("pool.Breaker keys: %v", names)
	}
	var b pool.Breaker
	if err := yaml.Unmarshal([]byte("{failures: 3, cooldown: 1s, health_path: /h}"), &b); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte("{failure: 3}"), &b); err == nil {
		t.Fatal("pool.Breaker accepted an unknown key")
	}
}

func TestNearestKey(t *testing.T) {
	known := []string{"brokers", "l", "sample_rate", "timeout", "url", "warn", "workers"}
	for name, want := range map[string]string{
		"worker": "workers", "wokrers": "workers", "sampel_rate": "sample_rate", "urll": "url",
		"URL": "url", "k": "", "ur": "url", "timeuot": "timeout", "banana": "", "": "", "samplerate": "sample_rate",
	} {
		if got := nearestKey(name, known); got != want {
			t.Errorf("nearestKey(%q) = %q, want %q", name, got, want)
		}
	}
	keys := slices.Sorted(maps.Keys(map[string]bool{"a": true}))
	if nearestKey("b", keys) != "" {
		t.Error("a one-letter key suggested another")
	}
}
