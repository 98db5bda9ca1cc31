package pool

import (
	"math"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestValidateDefaults(t *testing.T) {
	c := Config{Endpoints: []Endpoint{{URL: "http://gpu-0:8000/v1/"}, {URL: "https://gpu-1/v1", MaxInFlight: 16}}}
	if err := c.Validate("judges.a"); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Endpoints:   []Endpoint{{URL: "http://gpu-0:8000/v1", MaxInFlight: 64}, {URL: "https://gpu-1/v1", MaxInFlight: 16}},
		Concurrency: Concurrency{Mode: ModeAdaptive, Min: 1, LatencyTolerance: 2},
		Timeout:     time.Minute, Deadline: 5 * time.Minute, MaxAttempts: 3,
		Breaker: Breaker{Failures: 5, Cooldown: 10 * time.Second},
	}
	if c.Endpoints[0] != want.Endpoints[0] || c.Endpoints[1] != want.Endpoints[1] || c.Concurrency != want.Concurrency ||
		c.Timeout != want.Timeout || c.Deadline != want.Deadline || c.MaxAttempts != want.MaxAttempts || c.Breaker != want.Breaker {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if got := c.Concurrency.initialLimit(64); got != 8 {
		t.Errorf("initial limit for 64 = %d, want 8", got)
	}
	if got := c.Concurrency.initialLimit(4); got != 4 {
		t.Errorf("initial limit for 4 = %d, want 4", got)
	}

	d := Config{DNS: &DNS{Name: "vllm.judges.svc", Port: 8000}, Timeout: 10 * time.Minute}
	if err := d.Validate("judges.b"); err != nil {
		t.Fatal(err)
	}
	if got := *d.DNS; got != (DNS{Name: "vllm.judges.svc", Port: 8000, Scheme: "http", Refresh: 30 * time.Second, MaxInFlight: 64}) {
		t.Errorf("dns defaults: %+v", got)
	}
	if d.Deadline != 10*time.Minute {
		t.Errorf("deadline defaults to the longer timeout: got %s", d.Deadline)
	}
}

func TestValidateRejects(t *testing.T) {
	ep := func(u string) []Endpoint { return []Endpoint{{URL: u}} }
	ok := ep("http://gpu:8000")
	dns := func(f func(*DNS)) *DNS {
		d := &DNS{Name: "vllm", Port: 8000}
		f(d)
		return d
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // the error starts with it
	}{
		{"nothing", Config{}, "judges.pool-a.endpoints: required"},
		{"both", Config{Endpoints: ok, DNS: &DNS{Name: "x", Port: 1}}, "judges.pool-a.dns: conflicts"},
		{"scheme", Config{Endpoints: []Endpoint{{URL: "http://a"}, {URL: "ftp://x"}}}, `judges.pool-a.endpoints[1].url: "ftp://x" is not an http(s) URL`},
		{"not a URL", Config{Endpoints: ep("gpu:8000")}, "judges.pool-a.endpoints[0].url:"},
		{"no host", Config{Endpoints: ep("http:///v1")}, "judges.pool-a.endpoints[0].url:"},
		{"query", Config{Endpoints: ep("http://a/v1?x=1")}, "judges.pool-a.endpoints[0].url:"},
		{"fragment", Config{Endpoints: ep("http://a/v1#x")}, "judges.pool-a.endpoints[0].url:"},
		{"duplicate", Config{Endpoints: []Endpoint{{URL: "http://a/v1"}, {URL: "http://a/v1/"}}}, "judges.pool-a.endpoints[1].url:"},
		{"max_in_flight negative", Config{Endpoints: []Endpoint{{URL: "http://a", MaxInFlight: -1}}}, "judges.pool-a.endpoints[0].max_in_flight:"},
		{"max_in_flight huge", Config{Endpoints: []Endpoint{{URL: "http://a", MaxInFlight: 4097}}}, "judges.pool-a.endpoints[0].max_in_flight:"},
		{"dns name", Config{DNS: dns(func(d *DNS) { d.Name = "" })}, "judges.pool-a.dns.name:"},
		{"dns name URL", Config{DNS: dns(func(d *DNS) { d.Name = "http://x" })}, "judges.pool-a.dns.name:"},
		{"dns port", Config{DNS: dns(func(d *DNS) { d.Port = 0 })}, "judges.pool-a.dns.port:"},
		{"dns port big", Config{DNS: dns(func(d *DNS) { d.Port = 65536 })}, "judges.pool-a.dns.port:"},
		{"dns scheme", Config{DNS: dns(func(d *DNS) { d.Scheme = "grpc" })}, "judges.pool-a.dns.scheme:"},
		{"dns path relative", Config{DNS: dns(func(d *DNS) { d.Path = "v1" })}, "judges.pool-a.dns.path:"},
		{"dns path query", Config{DNS: dns(func(d *DNS) { d.Path = "/v1?a=b" })}, "judges.pool-a.dns.path:"},
		{"dns refresh", Config{DNS: dns(func(d *DNS) { d.Refresh = time.Millisecond })}, "judges.pool-a.dns.refresh:"},
		{"dns max_in_flight", Config{DNS: dns(func(d *DNS) { d.MaxInFlight = 5000 })}, "judges.pool-a.dns.max_in_flight:"},
		{"mode", Config{Endpoints: ok, Concurrency: Concurrency{Mode: "aimd"}}, "judges.pool-a.concurrency.mode:"},
		{"min negative", Config{Endpoints: ok, Concurrency: Concurrency{Min: -1}}, "judges.pool-a.concurrency.min:"},
		{"min above ceiling", Config{Endpoints: []Endpoint{{URL: "http://a", MaxInFlight: 4}}, Concurrency: Concurrency{Min: 5}}, "judges.pool-a.concurrency.min:"},
		{"initial", Config{Endpoints: ok, Concurrency: Concurrency{Initial: -2}}, "judges.pool-a.concurrency.initial:"},
		{"tolerance 1", Config{Endpoints: ok, Concurrency: Concurrency{LatencyTolerance: 1}}, "judges.pool-a.concurrency.latency_tolerance:"},
		{"tolerance NaN", Config{Endpoints: ok, Concurrency: Concurrency{LatencyTolerance: math.NaN()}}, "judges.pool-a.concurrency.latency_tolerance:"},
		{"tolerance Inf", Config{Endpoints: ok, Concurrency: Concurrency{LatencyTolerance: math.Inf(1)}}, "judges.pool-a.concurrency.latency_tolerance:"},
		{"timeout", Config{Endpoints: ok, Timeout: -time.Second}, "judges.pool-a.timeout:"},
		{"deadline", Config{Endpoints: ok, Timeout: 2 * time.Second, Deadline: time.Second}, "judges.pool-a.deadline:"},
		{"max_attempts", Config{Endpoints: ok, MaxAttempts: 11}, "judges.pool-a.max_attempts:"},
		{"max_attempts negative", Config{Endpoints: ok, MaxAttempts: -1}, "judges.pool-a.max_attempts:"},
		{"breaker failures", Config{Endpoints: ok, Breaker: Breaker{Failures: -1}}, "judges.pool-a.breaker.failures:"},
		{"breaker cooldown", Config{Endpoints: ok, Breaker: Breaker{Cooldown: 6 * time.Minute}}, "judges.pool-a.breaker.cooldown:"},
		{"breaker health_path", Config{Endpoints: ok, Breaker: Breaker{HealthPath: "http://x/health"}}, "judges.pool-a.breaker.health_path:"},
		{"requests_per_second", Config{Endpoints: ok, RateLimit: RateLimit{RequestsPerSecond: -1}}, "judges.pool-a.rate_limit.requests_per_second:"},
		{"tokens_per_second", Config{Endpoints: ok, RateLimit: RateLimit{TokensPerSecond: math.NaN()}}, "judges.pool-a.rate_limit.tokens_per_second:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate("judges.pool-a")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error starting with %q", err, tc.want)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	decode := func(s string) (Config, error) {
		var c Config
		dec := yaml.NewDecoder(strings.NewReader(s))
		dec.KnownFields(true)
		err := dec.Decode(&c)
		return c, err
	}
	c, err := decode(`
endpoints:
  - url: http://gpu-0:8000/v1
    max_in_flight: 32
concurrency: {mode: fixed, min: 2, initial: 4, latency_tolerance: 1.5}
timeout: 30s
deadline: 2m
max_attempts: 4
breaker: {failures: 3, cooldown: 5s, health_path: ""}
rate_limit: {requests_per_second: 10, tokens_per_second: 5000}
`)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Breaker.HealthPathSet || c.Breaker.HealthPath != "" || c.Breaker.Failures != 3 || c.Breaker.Cooldown != 5*time.Second {
		t.Errorf("breaker: %+v", c.Breaker)
	}
	if c.Endpoints[0].MaxInFlight != 32 || c.Concurrency.Mode != ModeFixed || c.MaxAttempts != 4 || c.RateLimit.TokensPerSecond != 5000 {
		t.Errorf("config: %+v", c)
	}
	if err := c.Validate("j"); err != nil {
		t.Fatal(err)
	}

	c, err = decode("endpoints: [{url: http://a}]\nbreaker: {failures: 2}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Breaker.HealthPathSet {
		t.Error("health_path absent, but HealthPathSet")
	}
	if _, err := decode("endpoints: [{url: http://a}]\nbreaker: {failure: 2}\n"); err == nil || !strings.Contains(err.Error(), "failure") {
		t.Errorf("unknown breaker key: got %v", err)
	}
	if _, err := decode("endpoints: [{url: http://a}]\nbreaker: {health_path: [1]}\n"); err == nil {
		t.Error("health_path list: no error")
	}
}
