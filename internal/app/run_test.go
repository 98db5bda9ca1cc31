package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"raterd/consumer"
)

// fakeTopicChecker is a topicChecker whose answer the test sets. It counts its calls and,
// while block is set, waits for block to close (or its ctx to end) before answering.
type fakeTopicChecker struct {
	mu      sync.Mutex
	missing []string
	unowned map[string]int
	err     error
	block   chan struct{}
	calls   int
}

func (f *fakeTopicChecker) Check(ctx context.Context) (consumer.TopicReport, error) {
	f.mu.Lock()
	f.calls++
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return consumer.TopicReport{}, fmt.Errorf("fake metadata request: %w", ctx.Err())
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return consumer.TopicReport{Missing: slices.Clone(f.missing), Unowned: maps.Clone(f.unowned)}, f.err
}

func (f *fakeTopicChecker) setUnowned(unowned map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unowned = unowned
}

func (f *fakeTopicChecker) set(missing []string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.missing, f.err = missing, err
}

func (f *fakeTopicChecker) setBlock(block chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.block = block
}

func (f *fakeTopicChecker) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeOwner is a partitionOwner owning as many partitions of topic "t" as the test sets.
type fakeOwner struct{ n atomic.Int32 }

func (o *fakeOwner) Owned() []consumer.TopicPartition {
	parts := make([]consumer.TopicPartition, o.n.Load())
	for i := range parts {
		parts[i] = consumer.TopicPartition{Topic: "t", Partition: i}
	}
	return parts
}

// logBuffer collects log output written from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log lines containing s.
func (b *logBuffer) lines(s string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// readyzFixture is readiness wired to the admin server as run wires it, with fakes for
// the cluster and the group member.
type readyzFixture struct {
	rd     *readiness
	topics *fakeTopicChecker
	owner  *fakeOwner
	admin  *adminServer
	logs   *logBuffer
	readyz string
}

func newReadyzFixture(t *testing.T) *readyzFixture {
	t.Helper()
	f := &readyzFixture{topics: &fakeTopicChecker{}, owner: &fakeOwner{}, logs: &logBuffer{}}
	f.rd = newReadiness(t.Context(), f.topics, slog.New(slog.NewTextHandler(f.logs, nil)))
	f.rd.setOwner(f.owner)
	admin, err := newAdminServer(AdminConfig{}, prometheus.NewRegistry(), f.rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.admin = admin
	f.admin.ready.Store(true)
	srv := httptest.NewServer(f.admin.srv.Handler)
	t.Cleanup(srv.Close)
	f.readyz = srv.URL + "/readyz"
	return f
}

// waitIdle waits until no topic check is in flight.
func (f *readyzFixture) waitIdle(t *testing.T) {
	t.Helper()
	for range 200 {
		f.rd.mu.Lock()
		idle := f.rd.checking == nil
		f.rd.mu.Unlock()
		if idle {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("a topic check is still in flight after 2s")
}

func (f *readyzFixture) get(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get(f.readyz)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

const missingWarning = `kafka topic \"llm-traffic\" does not exist: raterd consumes nothing from it until it is created (then within kafka.topic_watch_interval and a rebalance)`

// TestReadyzNotReadyWhileNoPartitionAndTopicMissing is the negative control of the old
// /readyz, which answered 200 as soon as the pipeline was built: a member that owns no
// partition while a configured topic does not exist is not ready, and says why.
func TestReadyzNotReadyWhileNoPartitionAndTopicMissing(t *testing.T) {
	f := newReadyzFixture(t)
	f.rd.ttl = 0 // every request checks again
	f.topics.set([]string{"llm-traffic"}, nil)
	code, body := f.get(t)
	if want := "not ready: no partition assigned; topic \"llm-traffic\" does not exist\n"; code != http.StatusServiceUnavailable || body != want {
		t.Fatalf("/readyz = %d %q, want 503 %q", code, body, want)
	}
	if n := len(f.logs.lines(missingWarning)); n != 1 {
		t.Fatalf("%d warnings naming the missing topic, want 1:\n%s", n, f.logs)
	}

	// Once the topic exists: ready, even before a partition is assigned (the other
	// members may own them all).
	f.topics.set(nil, nil)
	if code, body := f.get(t); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz with every topic there = %d %q, want 200", code, body)
	}
	// Owning a partition is ready whatever the topics.
	f.topics.set([]string{"llm-traffic"}, nil)
	f.owner.n.Store(2)
	calls := f.topics.callCount()
	if code, body := f.get(t); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz owning partitions = %d %q, want 200", code, body)
	}
	if f.topics.callCount() != calls {
		t.Fatal("a member owning partitions asked the cluster for topic metadata")
	}
}

// TestReadyzNotReadyWhileTopicPartitionsUnowned: the topic exists (a broker that
// auto-creates topics made it on the group's own join) but no member owns its partitions:
// not ready, with the reason, and one warning.
func TestReadyzNotReadyWhileTopicPartitionsUnowned(t *testing.T) {
	f := newReadyzFixture(t)
	f.rd.ttl = 0
	f.topics.setUnowned(map[string]int{"llm-traffic": 4})
	code, body := f.get(t)
	want := "not ready: no partition assigned; topic \"llm-traffic\" has 4 partitions no member of the group owns (created after the group formed? the group rejoins to take them within kafka.topic_watch_interval)\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Fatalf("/readyz = %d %q, want 503 %q", code, body, want)
	}
	f.get(t)
	if n := len(f.logs.lines(`kafka topic \"llm-traffic\" has 4 partitions no member of the consumer group owns`)); n != 1 {
		t.Fatalf("%d warnings naming the unowned topic, want 1:\n%s", n, f.logs)
	}
	// Once a member owns them (after a restart), ready.
	f.topics.setUnowned(nil)
	if code, body := f.get(t); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz with the partitions owned = %d %q, want 200", code, body)
	}
}

// TestReadyzIdleMemberStaysReady: a member with no partition because the group has more
// members than partitions is idle, not broken: ready, and nothing is logged.
func TestReadyzIdleMemberStaysReady(t *testing.T) {
	f := newReadyzFixture(t)
	if code, body := f.get(t); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz = %d %q, want 200", code, body)
	}
	if s := f.logs.String(); s != "" {
		t.Fatalf("logged %q", s)
	}
}

// TestReadyzFalseBeforeStartAndAtShutdown: whatever the partitions and topics, /readyz is
// 503 until run sets ready and again once shutdown clears it.
func TestReadyzFalseBeforeStartAndAtShutdown(t *testing.T) {
	f := newReadyzFixture(t)
	f.owner.n.Store(1)
	for _, ready := range []bool{false, true, false} {
		f.admin.ready.Store(ready)
		code, body := f.get(t)
		if ready && code != http.StatusOK {
			t.Fatalf("ready: /readyz = %d %q", code, body)
		}
		if !ready && (code != http.StatusServiceUnavailable || body != "not ready\n") {
			t.Fatalf("not ready: /readyz = %d %q", code, body)
		}
	}
}

// TestReadinessCachesTopicCheck: probes within the TTL share one metadata answer.
func TestReadinessCachesTopicCheck(t *testing.T) {
	f := newReadyzFixture(t)
	f.topics.set([]string{"llm-traffic"}, nil)
	for range 20 {
		if code, _ := f.get(t); code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz = %d", code)
		}
	}
	if n := f.topics.callCount(); n != 1 {
		t.Fatalf("%d metadata checks for 20 probes within the TTL, want 1", n)
	}
	f.rd.mu.Lock()
	f.rd.ttl = 20 * time.Millisecond
	f.rd.mu.Unlock()
	time.Sleep(30 * time.Millisecond)
	f.topics.set(nil, nil)
	if code, _ := f.get(t); code != http.StatusOK {
		t.Fatalf("/readyz after the TTL, topic created = %d", code)
	}
	if n := f.topics.callCount(); n != 2 {
		t.Fatalf("%d metadata checks, want 2", n)
	}
}

// TestReadinessBoundsTheWait: a metadata check that hangs holds no probe longer than
// readiness.wait, is shared by concurrent probes, holds no lock (a member that owns a
// partition answers at once meanwhile), and ends at readiness.timeout.
func TestReadinessBoundsTheWait(t *testing.T) {
	f := newReadyzFixture(t)
	f.rd.ttl = 0
	f.topics.set([]string{"llm-traffic"}, nil)
	if code, _ := f.get(t); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d", code)
	}

	release := make(chan struct{})
	f.topics.setBlock(release)
	f.rd.mu.Lock()
	f.rd.wait, f.rd.timeout = 100*time.Millisecond, time.Minute
	f.rd.mu.Unlock()
	var wg sync.WaitGroup
	codes := make([]int, 8)
	took := make([]time.Duration, 8)
	for i := range codes {
		wg.Go(func() {
			start := time.Now()
			codes[i], _ = f.get(t)
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	for i := range codes {
		// The last answer stands while the check hangs.
		if codes[i] != http.StatusServiceUnavailable || took[i] > time.Second {
			t.Fatalf("probe %d: %d after %s while the check hangs, want 503 within ~100ms", i, codes[i], took[i])
		}
	}
	if n := f.topics.callCount(); n != 2 {
		t.Fatalf("%d metadata checks, want 2 (one in flight, shared)", n)
	}
	f.owner.n.Store(1)
	start := time.Now()
	if code, _ := f.get(t); code != http.StatusOK || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("owning a partition while a check hangs: %d after %s", code, time.Since(start))
	}
	close(release)
	f.waitIdle(t)

	// A check that never answers ends at the timeout; it is logged once, and the last
	// answer stands, saying the check now fails.
	f.owner.n.Store(0)
	f.topics.setBlock(make(chan struct{}))
	f.rd.mu.Lock()
	f.rd.wait, f.rd.timeout = time.Second, 50*time.Millisecond
	f.rd.mu.Unlock()
	start = time.Now()
	code, body := f.get(t)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `topic "llm-traffic" does not exist (as of the last answer; the latest metadata check failed: fake metadata request: context deadline exceeded)`) {
		t.Fatalf("/readyz with the check timing out = %d %q", code, body)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatalf("a check with a 50ms timeout held /readyz %s", time.Since(start))
	}
	f.get(t)
	if n := len(f.logs.lines("could not check whether the kafka topics exist")); n != 1 {
		t.Fatalf("%d warnings about the failing check, want 1:\n%s", n, f.logs)
	}
}

// TestReadinessLogsOnceAndOnChange: the warning naming a missing topic is logged once,
// then again only when the answer changes.
func TestReadinessLogsOnceAndOnChange(t *testing.T) {
	f := newReadyzFixture(t)
	f.rd.ttl = 0
	for _, missing := range [][]string{{"llm-traffic"}, {"llm-traffic"}, {"llm-traffic"}, nil, nil, {"llm-traffic"}, {"llm-traffic", "other"}} {
		f.topics.set(missing, nil)
		f.get(t)
	}
	if n := len(f.logs.lines(missingWarning)); n != 2 {
		t.Fatalf("%d warnings for llm-traffic, want 2 (missing, then missing again):\n%s", n, f.logs)
	}
	if n := len(f.logs.lines(`kafka topic \"llm-traffic\" exists now; the group takes its partitions within kafka.topic_watch_interval`)); n != 1 {
		t.Fatalf("%d lines about llm-traffic appearing, want 1:\n%s", n, f.logs)
	}
	if n := len(f.logs.lines(`kafka topic \"other\" does not exist`)); n != 1 {
		t.Fatalf("%d warnings for other, want 1:\n%s", n, f.logs)
	}
	if code, body := f.get(t); code != http.StatusServiceUnavailable || !strings.Contains(body, `topics "llm-traffic", "other" do not exist`) {
		t.Fatalf("/readyz = %d %q", code, body)
	}
}

// TestReadinessUnknownIsNotMissing: a metadata check that has never succeeded proves no
// topic missing, so /readyz stays as before (ready).
func TestReadinessUnknownIsNotMissing(t *testing.T) {
	f := newReadyzFixture(t)
	f.rd.ttl = 0
	f.topics.set(nil, errors.New("fake: broker unreachable"))
	if code, body := f.get(t); code != http.StatusOK {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	if n := len(f.logs.lines("could not check whether the kafka topics exist")); n != 1 {
		t.Fatalf("%d warnings about the failing check, want 1:\n%s", n, f.logs)
	}
}

// TestRunNotReadyWhileTopicMissing runs the run path against an in-process
// Kafka-protocol broker that does not auto-create topics (the case the user hit): with
// the input topic missing, the start-up warning names it and /readyz is 503 saying why.
// Once the topic exists /readyz turns 200 if this member got its partitions, and stays
// 503 saying that no member owns them if not; whether it gets them without a restart is
// up to topic discovery (not fixed yet: kafka-go rejoins the group in
// a loop while the topic is missing, and that loop sometimes stops early), so the test
// restarts raterd, as the warning says, and checks that it consumes.
func TestRunNotReadyWhileTopicMissing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	broker := cluster.ListenAddrs()[0]
	const topic = "llm-traffic"
	cfg := readyzRunConfig(t, broker, topic, "readyz-run")
	base := "http://" + cfg.Admin.Listen + "/readyz"
	logs := &logBuffer{}
	stop := startRun(t, cfg, logs)
	want := "not ready: no partition assigned; topic \"llm-traffic\" does not exist\n"
	waitReadyz(t, base, http.StatusServiceUnavailable, want, 30*time.Second)
	if n := len(logs.lines(missingWarning)); n != 1 {
		t.Fatalf("%d start-up warnings naming the topic, want 1:\n%s", n, tailString(logs.String(), 4000))
	}

	kc := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	res, err := kc.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil || res.Errors[topic] != nil {
		t.Fatalf("create %s: %v %v", topic, err, res)
	}
	values, _, _ := integrationTraffic(10)
	if err := Produce(context.Background(), []string{broker}, topic, values); err != nil {
		t.Fatal(err)
	}
	// Now the topic exists: ready if this member picked its partitions up, otherwise not
	// ready, saying that no member owns them (not "ready" while it consumes nothing).
	unowned := "not ready: no partition assigned; topic \"llm-traffic\" has 2 partitions no member of the group owns (created after the group formed? the group rejoins to take them within kafka.topic_watch_interval)\n"
	pollReadyz(t, base, 30*time.Second, "200 ready or 503 naming the unowned partitions", func(code int, body string) bool {
		return code == http.StatusOK && body == "ready\n" || code == http.StatusServiceUnavailable && body == unowned
	})
	stop()

	stop = startRun(t, cfg, logs)
	waitReadyz(t, base, http.StatusOK, "ready\n", 30*time.Second)
	waitScores(t, cfg.ScoresFile, len(values), 30*time.Second)
	stop()
}

// startRun starts run with cfg, logging to logs, and returns what stops it as SIGTERM
// does and checks that it returned cleanly.
func startRun(t *testing.T, cfg *Config, logs *logBuffer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil))) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("run returned %v after shutdown", err)
			}
		case <-time.After(cfg.Kafka.ShutdownTimeout + 15*time.Second):
			t.Fatal("run did not stop within the shutdown timeout")
		}
	}
	t.Cleanup(stop)
	return stop
}

// readyzRunConfig is a small run config on broker: one heuristic evaluator, scores to a
// file, the admin server on a free loopback port.
func readyzRunConfig(t *testing.T, broker, topic, group string) *Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	text := fmt.Sprintf(`
kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  batch: {max_records: 100, linger: 20ms}
  commit_interval: 100ms
  topic_watch_interval: 1s
judges:
  checks: {type: heuristic}
evaluators:
  - {name: refusal, judge: checks, check: refusal}
scores_file: %s
admin: {listen: %q}
`, broker, topic, group, filepath.Join(t.TempDir(), "scores.ndjson"), addr)
	cfg, err := ParseConfig([]byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// waitReadyz polls url until it answers code with body.
func waitReadyz(t *testing.T, url string, code int, body string, timeout time.Duration) {
	t.Helper()
	pollReadyz(t, url, timeout, fmt.Sprintf("%d %q", code, body), func(c int, b string) bool { return c == code && b == body })
}

// pollReadyz polls url until accept takes its answer, and returns that answer; after
// timeout it fails, naming want and the last answer.
func pollReadyz(t *testing.T, url string, timeout time.Duration, want string, accept func(code int, body string) bool) (int, string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if accept(resp.StatusCode, string(b)) {
				return resp.StatusCode, string(b)
			}
			last = fmt.Sprintf("%d %q", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not %s after %s; last: %s", url, want, timeout, last)
	return 0, ""
}

// waitScores waits until the scores file holds n lines.
func waitScores(t *testing.T, path string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	got := 0
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if got = bytes.Count(b, []byte("\n")); got >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %d score rows after %s, want %d", path, got, timeout, n)
}

func TestDescribeMissing(t *testing.T) {
	if got := describeMissing([]string{"a"}); got != `topic "a" does not exist` {
		t.Error(got)
	}
	if got := describeMissing([]string{"a", "b"}); got != `topics "a", "b" do not exist` {
		t.Error(got)
	}
}

// tailString returns the last n bytes of s.
func tailString(s string, n int) string { return s[max(0, len(s)-n):] }

// TestReadinessMetrics: the missing-topic and unowned-partition gauges follow the topic
// check, and a collection starts a check when none ran.
func TestReadinessMetrics(t *testing.T) {
	topics := &fakeTopicChecker{missing: []string{"llm-traffic"}, unowned: map[string]int{"other": 2}}
	rd := newReadiness(t.Context(), topics, slog.New(slog.DiscardHandler))
	reader := sdkmetric.NewManualReader()
	if err := rd.registerMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("raterd/app")); err != nil {
		t.Fatal(err)
	}
	collect := func() map[string]int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
					key := m.Name
					if v, ok := dp.Attributes.Value("topic"); ok {
						key += "/" + v.AsString()
					}
					got[key] = dp.Value
				}
			}
		}
		return got
	}
	want := map[string]int64{"raterd.kafka.topics.missing": 1, "raterd.kafka.partitions.unowned/other": 2}
	if got := collect(); !maps.Equal(got, want) {
		t.Fatalf("gauges = %v, want %v", got, want)
	}
	topics.mu.Lock()
	topics.missing, topics.unowned = nil, nil
	topics.mu.Unlock()
	rd.mu.Lock()
	rd.checked = time.Time{} // the cached answer expires
	rd.mu.Unlock()
	if got := collect(); !maps.Equal(got, map[string]int64{"raterd.kafka.topics.missing": 0}) {
		t.Fatalf("gauges once the topic exists = %v, want missing 0 and no unowned partitions", got)
	}
}
