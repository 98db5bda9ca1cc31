package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"raterd/consumer"
	"raterd/internal/cli"
	"raterd/internal/memlimit"
)

// Run serves until ctx ends, then drains and returns. First it sets the Go runtime's soft
// memory limit (memory_limit, GOMEMLIMIT or the cgroup's; internal/memlimit) and logs
// which source set what limit.
func Run(ctx context.Context, cfg *Config) error {
	logger := NewLogger(cfg.Telemetry)
	if _, err := memlimit.Apply(logger, os.Getenv("GOMEMLIMIT"), cfg.MemoryLimit, os.DirFS("/"), nil); err != nil {
		return fmt.Errorf("memory_limit: %w", err)
	}
	return run(ctx, cfg, logger)
}

// run is Run with the logger given (tests read what it logs).
func run(ctx context.Context, cfg *Config, logger *slog.Logger) error {
	tel, err := NewTelemetry(ctx, cfg.Telemetry)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	if cfg.ClickHouse == nil && cfg.ScoresFile == "" {
		return errors.New("config: clickhouse.addrs (or RATERD_CLICKHOUSE_ADDR) is required for run")
	}

	// nil: the dialer NewPipeline builds the group reader with (cfg.Kafka.Dialer(): the
	// kafka section's TLS and SASL), so the check reaches the cluster as the group does.
	rd := newReadiness(ctx, consumer.NewTopicChecker(cfg.Kafka, nil), logger)
	if err := rd.registerMetrics(tel.Meters.Meter("raterd/app")); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	var admin *adminServer
	if cfg.Admin.Listen != "off" {
		admin, err = newAdminServer(cfg.Admin, tel.Registry, rd, logger)
		if err != nil {
			return err
		}
		if admin.report, err = newReportEndpoint(cfg, logger); err != nil {
			return err
		}
		if warning := cfg.Admin.exposure(); warning != "" {
			logger.Warn(warning)
		}
		ln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin.listen: %w", err)
		}
		go func() {
			if err := admin.serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("admin server stopped", "err", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = admin.srv.Shutdown(sctx)
		}()
	}

	// A wrong password or certificate, or a listener of another protocol, ends the start
	// here in seconds, naming the config key, instead of a group that retries quietly. A
	// broker down or unreachable is not fatal: the group waits for it, /readyz says so.
	if err := cfg.Kafka.CheckConnection(ctx, "kafka", kafkaCheckTimeout); err != nil {
		var keyErr *consumer.ConnectionKeyError
		if errors.As(err, &keyErr) {
			return err
		}
		logger.Warn("kafka connection check failed; the consumer group keeps trying", "err", err)
	}

	// Checked (and a missing topic logged) before New joins the group: where the broker
	// auto-creates topics, the group's own metadata request creates a missing one, and the
	// member owns none of its partitions until the topic watcher has the group rejoin.
	rd.lookup(ctx, topicCheckTimeout)

	a, err := New(ctx, cfg, Options{Logger: logger, Telemetry: tel})
	if err != nil {
		return err
	}
	defer a.Close()
	if owner, ok := a.reader.(partitionOwner); ok {
		rd.setOwner(owner)
	}
	st, p := a.Stack, a.Pipeline
	formats := make([]string, len(cfg.Kafka.Topics))
	for i, t := range cfg.Kafka.Topics {
		formats[i] = t + "=" + cfg.Kafka.FormatOf(t)
	}
	logger.Info("raterd running", "version", cli.Version(), "topics", cfg.Kafka.Topics, "formats", formats, "group", cfg.Kafka.GroupID,
		"evaluators", len(cfg.Evaluators), "cache", st.CacheDesc, "admin", cfg.Admin.Listen)
	if admin != nil {
		admin.ready.Store(true)
		// Not ready while draining: load balancers and rollouts see the shutdown at once.
		stop := context.AfterFunc(ctx, func() { admin.ready.Store(false) })
		defer stop()
	}
	err = p.Run(ctx)
	s := p.Stats()
	logger.Info("raterd stopped", "fetched", s.Fetched, "done", s.Done, "scores", s.Scores, "dead_letters", s.DeadLetters, "commits", s.Commits)
	return err
}

// partitionOwner is what readiness asks the consumer-group member
// (consumer.GroupReader): the partitions it owns now.
type partitionOwner interface {
	Owned() []consumer.TopicPartition
}

var _ partitionOwner = (*consumer.GroupReader)(nil) // what NewPipeline's reader is

// topicChecker says which configured topics do not exist, and which have partitions no
// member of the group owns (consumer.TopicChecker).
type topicChecker interface {
	Check(ctx context.Context) (consumer.TopicReport, error)
}

const (
	// topicCheckTTL is how long one answer of the topic check is used: however often
	// /readyz is asked, the cluster gets at most one metadata request per TTL.
	topicCheckTTL = 5 * time.Second
	// kafkaCheckTimeout bounds the connection check at start (consumer.Config.CheckConnection).
	kafkaCheckTimeout = 5 * time.Second
	// topicCheckTimeout bounds one topic check: connecting (TLS, SASL) and the request.
	topicCheckTimeout = 2 * time.Second
	// readyzWait is the longest /readyz waits for a topic check in flight: less than
	// topicCheckTimeout and than Kubernetes' default 1s probe timeout. A slower check
	// goes on in the background, and its answer serves the next probe.
	readyzWait = 500 * time.Millisecond
)

// readiness decides /readyz once the pipeline runs: ready while this member owns a
// partition; while it owns none, ready unless a configured topic does not exist or has
// partitions no member of the group owns (a topic created after the group formed, which
// the group takes within kafka.topic_watch_interval and a rebalance; a broker that
// auto-creates topics creates it on the group's own join). A member idle because the group has more members
// than partitions is ready; one idle for those reasons consumes nothing, and /readyz says
// so. It also logs, once and again whenever the answer changes, which configured topics
// are missing or unowned.
//
// The topic check is cached for ttl, bounded by timeout, shared by concurrent callers,
// and never runs under the lock: callers wait for it at most as long as they say, then
// go by the last answer.
type readiness struct {
	topics topicChecker
	logger *slog.Logger
	base   context.Context // checks end with it
	ttl    time.Duration
	// timeout bounds one check; wait bounds how long /readyz waits for one.
	timeout, wait time.Duration

	mu       sync.Mutex
	owner    partitionOwner       // nil until the pipeline is built
	checked  time.Time            // when the last check ended; zero before the first
	report   consumer.TopicReport // as of the last check that succeeded
	lastErr  error                // why the last check failed; nil when it succeeded
	checking chan struct{}        // closed when the check in flight ends; nil when none runs
	logged   []string             // the topics last logged as missing
	// loggedUnowned are the topics last logged as having partitions no member owns.
	loggedUnowned []string
}

// newReadiness checks topics (no owner yet: set it with setOwner), logging to logger;
// its checks end with ctx.
func newReadiness(ctx context.Context, topics topicChecker, logger *slog.Logger) *readiness {
	return &readiness{topics: topics, logger: logger, base: ctx,
		ttl: topicCheckTTL, timeout: topicCheckTimeout, wait: readyzWait}
}

// registerMetrics registers raterd.kafka.topics.missing and
// raterd.kafka.partitions.unowned: the configured topics that do not exist, and the
// partitions of existing ones no member of the group owns, as of the topic check
// (cached topicCheckTTL; a collection starts one when the answer is older, waiting at most
// readyzWait for it).
func (r *readiness) registerMetrics(m metric.Meter) error {
	missing, err := m.Int64ObservableGauge("raterd.kafka.topics.missing", metric.WithUnit("{topic}"),
		metric.WithDescription("configured Kafka topics that do not exist: raterd consumes nothing from them"))
	if err != nil {
		return err
	}
	unowned, err := m.Int64ObservableGauge("raterd.kafka.partitions.unowned", metric.WithUnit("{partition}"),
		metric.WithDescription("partitions of configured topics no member of the consumer group owns, by topic (taken within kafka.topic_watch_interval)"))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		report, _ := r.lookup(ctx, readyzWait)
		o.ObserveInt64(missing, int64(len(report.Missing)))
		for topic, n := range report.Unowned {
			o.ObserveInt64(unowned, int64(n), metric.WithAttributes(attribute.String("topic", topic)))
		}
		return nil
	}, missing, unowned)
	return err
}

// setOwner sets the group member whose partitions decide readiness.
func (r *readiness) setOwner(o partitionOwner) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.owner = o
}

// notReady says why the running pipeline is not ready, "" when it is. It waits at most
// r.wait (and not past ctx) for a topic check.
func (r *readiness) notReady(ctx context.Context) string {
	r.mu.Lock()
	owner, wait := r.owner, r.wait
	r.mu.Unlock()
	if owner == nil || len(owner.Owned()) > 0 {
		return ""
	}
	report, err := r.lookup(ctx, wait)
	var reasons []string
	if len(report.Missing) > 0 {
		reasons = append(reasons, describeMissing(report.Missing))
	}
	if len(report.Unowned) > 0 {
		reasons = append(reasons, describeUnowned(report.Unowned))
	}
	if len(reasons) == 0 {
		// All exist and are owned, or not known otherwise (the check fails and never
		// succeeded).
		return ""
	}
	why := "no partition assigned; " + strings.Join(reasons, "; ")
	if err != nil {
		why += fmt.Sprintf(" (as of the last answer; the latest metadata check failed: %v)", err)
	}
	return why
}

// lookup returns the report of the last successful check, and the error of the last
// check when it failed. A cached answer younger than r.ttl is returned at once;
// otherwise a check starts (or the one in flight is joined) and lookup waits for it at most
// wait, and not past ctx, before going by the previous answer.
func (r *readiness) lookup(ctx context.Context, wait time.Duration) (consumer.TopicReport, error) {
	r.mu.Lock()
	if !r.checked.IsZero() && time.Since(r.checked) < r.ttl {
		defer r.mu.Unlock()
		return r.report, r.lastErr
	}
	done := r.checking
	if done == nil {
		done = make(chan struct{})
		r.checking = done
		// Not bound to ctx: the check serves every caller, and the next probe when this
		// one stops waiting. r.timeout bounds it.
		go r.check(done, r.timeout)
	}
	r.mu.Unlock()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-ctx.Done():
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.report, r.lastErr
}

// check asks the cluster which topics are missing (within timeout), records the answer,
// closes done and logs what changed: each topic that went missing (a warning), each that
// came back, and a check that started failing.
func (r *readiness) check(done chan struct{}, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(r.base, timeout)
	report, err := r.topics.Check(ctx)
	cancel()

	r.mu.Lock()
	prevErr := r.lastErr
	r.checked, r.lastErr = time.Now(), err
	var gone, back, stranded []string
	if err == nil {
		missing, unowned := report.Missing, slices.Sorted(maps.Keys(report.Unowned))
		gone, back = diff(r.logged, missing), diff(missing, r.logged)
		stranded = diff(r.loggedUnowned, unowned)
		r.report, r.logged, r.loggedUnowned = report, missing, unowned
	}
	r.checking = nil
	r.mu.Unlock()
	// Logged before done closes: whoever waited for this answer finds its log lines out.
	defer close(done)

	for _, t := range gone {
		r.logger.Warn(fmt.Sprintf("kafka topic %q does not exist: raterd consumes nothing from it until it is created (then within kafka.topic_watch_interval and a rebalance)", t), "topic", t)
	}
	for _, t := range stranded {
		r.logger.Warn(fmt.Sprintf("kafka topic %q has %d partitions no member of the consumer group owns (created after the group formed?): the group rejoins to take them within kafka.topic_watch_interval",
			t, report.Unowned[t]), "topic", t, "partitions", report.Unowned[t])
	}
	for _, t := range back {
		r.logger.Info(fmt.Sprintf("kafka topic %q exists now; the group takes its partitions within kafka.topic_watch_interval", t), "topic", t)
	}
	if err != nil && prevErr == nil && r.base.Err() == nil { // not when run is ending
		r.logger.Warn("could not check whether the kafka topics exist; /readyz goes by the last answer", "err", err)
	}
}

// diff returns the elements of b that are not in a.
func diff(a, b []string) []string {
	var out []string
	for _, s := range b {
		if !slices.Contains(a, s) {
			out = append(out, s)
		}
	}
	return out
}

// describeMissing says which topics do not exist: `topic "a" does not exist`, `topics
// "a", "b" do not exist`.
func describeMissing(topics []string) string {
	quoted := make([]string, len(topics))
	for i, t := range topics {
		quoted[i] = fmt.Sprintf("%q", t)
	}
	if len(quoted) == 1 {
		return "topic " + quoted[0] + " does not exist"
	}
	return "topics " + strings.Join(quoted, ", ") + " do not exist"
}

// describeUnowned says which topics have partitions no member of the group owns, sorted
// by topic: `topic "a" has 4 partitions no member of the group owns (...)`.
func describeUnowned(unowned map[string]int) string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(unowned)) {
		parts = append(parts, fmt.Sprintf("topic %q has %d partitions no member of the group owns", t, unowned[t]))
	}
	return strings.Join(parts, "; ") + " (created after the group formed? the group rejoins to take them within kafka.topic_watch_interval)"
}
