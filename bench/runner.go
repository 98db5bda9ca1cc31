package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"raterd/consumer"
	"raterd/internal/app"
	"raterd/internal/cli"
	"raterd/internal/telemetry"
	"raterd/sinks/clickhouse"
	sinkkafka "raterd/sinks/kafka"
)

// runBench runs the benchmark. The report is returned whenever something was measured,
// also with an error (which then says what went wrong).
func runBench(ctx context.Context, o benchOptions, progress io.Writer) (*benchReport, error) {
	b := &bencher{
		o: o, progress: progress,
		logger: slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: slog.LevelWarn})),
		suffix: strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	b.topic = "raterd-bench-" + b.suffix
	defer b.cleanup()
	rep := &benchReport{
		Version: cli.Version(), Started: time.Now().UTC(),
		Machine: benchMachine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
			OS: runtime.GOOS + "/" + runtime.GOARCH, LoadBefore: loadAvg()},
	}
	err := b.run(ctx, rep)
	rep.Machine.LoadAfter = loadAvg()
	rep.Problems = b.problems
	rep.Targets = benchTargets(rep)
	rep.Notes = benchNotes(rep, o)
	if err == nil && len(b.problems) > 0 {
		err = fmt.Errorf("%d problem(s): %s", len(b.problems), strings.Join(b.problems, "; "))
	}
	if len(rep.Runs) == 0 && len(rep.Pools) == 0 {
		return nil, err
	}
	return rep, err
}

func (b *bencher) run(ctx context.Context, rep *benchReport) error {
	o := b.o
	kc, err := kafkaConnection(o, os.Getenv)
	if err != nil {
		return err
	}
	b.kafka = kc
	chCfg := clickhouse.Config{Addrs: []string{o.clickhouse}, Database: "default"}
	if err := chCfg.Validate("clickhouse"); err != nil {
		return fmt.Errorf("--clickhouse: %w", err)
	}
	conn, err := clickhouse.Open(ctx, chCfg)
	if err != nil {
		return fmt.Errorf("--clickhouse: %w", err)
	}
	b.ch = conn
	if err := b.kafka.CheckConnection(ctx, "kafka", 30*time.Second); err != nil {
		return fmt.Errorf("%s: %w", b.kafkaFlags(), err)
	}
	if o.pools != "" {
		rep.Settings = benchSettings{Records: o.poolRecords, Traffic: "unique", Seed: o.seed, Partitions: o.partitions, Judge: benchJudgeSim,
			Simulator: b.simDescription(), PoolInitial: o.poolInitial}
		return b.runPools(ctx, rep)
	}
	if o.judge == benchJudgeSim {
		if err := b.startSimulator(ctx); err != nil {
			return err
		}
	}

	// The configuration of the raterd runs; its evaluators also serve the naive baseline
	// and the expected row counts.
	cfg, err := b.config(b.topic, "probe", "probe", "probe:", true, "", nil)
	if err != nil {
		return err
	}
	for _, e := range cfg.Evaluators {
		b.evalNames = append(b.evalNames, e.Name)
	}
	rep.Settings = benchSettings{
		Records: o.records, Traffic: "unique", InvalidShare: o.invalid, Seed: o.seed, Partitions: o.partitions,
		Judge: o.judge, Evaluators: b.evalNames, Topic: b.topic, Format: o.format,
	}
	otlp := o.format != benchFormatRaterd
	if otlp {
		rep.Settings.SpansPerMessage = o.spansPerMessage
	}
	if o.zipf > 0 {
		rep.Settings.Traffic, rep.Settings.ZipfS, rep.Settings.Distinct = "zipf", o.zipf, o.distinct
	}
	if o.baselines {
		rep.Settings.NaiveRecords = o.naiveRecords
	}
	if rep.Settings.Redact, err = o.redactTypes(); err != nil {
		return err
	}
	if b.sim != nil {
		rep.Settings.Simulator = b.simDescription()
	}

	b.logf("generating %d records (%s traffic)…", o.records, rep.Settings.Traffic)
	values, info := benchTraffic(o, o.seed, o.records, "b"+b.suffix)
	perRecord := expectedRows(cfg.Evaluators, values)
	var wantRows int64
	for _, n := range perRecord {
		wantRows += int64(n)
	}
	info.TasksPerRecord = float64(wantRows) / float64(max(info.Valid, 1))
	rep.Traffic = info
	b.logf("%d messages (%d valid, %d invalid, %.1f MiB); prompts %d–%d chars (mean %d), responses %d–%d (mean %d); %d distinct prompts, %d distinct prompt+response pairs",
		info.Messages, info.Valid, info.Invalid, float64(info.Bytes)/(1<<20), info.PromptChars[0], info.PromptChars[2], info.PromptChars[1],
		info.ResponseChars[0], info.ResponseChars[2], info.ResponseChars[1], info.DistinctPrompts, info.DistinctPairs)

	if err := b.createTopic(ctx, b.topic); err != nil {
		return err
	}
	b.logf("producing to %s (%d partitions)…", b.topic, o.partitions)
	pstart := time.Now()
	if err := app.ProduceOver(ctx, b.kafka, b.topic, values); err != nil {
		return err
	}
	b.logf("produced %d messages in %s", len(values), time.Since(pstart).Round(time.Millisecond))

	// --format otlp_*: the same valid records as OTLP exports on a topic of their own.
	var otlpSpec raterdSpec
	if otlp {
		topic := b.topic + "-" + strings.ReplaceAll(o.format, "_", "-")
		ov, oinfo, err := otlpValues(values, o.format, chatsPerMessage(o.spansPerMessage), uint64(o.seed), topic)
		if err != nil {
			return err
		}
		rows, recs, skipped, err := otlpExpected(cfg.Evaluators, o.format, ov)
		if err != nil {
			return err
		}
		if recs != int64(info.Valid) || rows != wantRows || skipped != int64(oinfo.Spans)-recs {
			return fmt.Errorf("--format %s: the exports decode to %d records, %d rows, %d skipped spans; want %d, %d, %d", o.format, recs, rows, skipped, info.Valid, wantRows, int64(oinfo.Spans)-recs)
		}
		rep.Traffic.OTLP = &oinfo
		b.logf("%s: %d valid records as %d exports (%.1f spans, %.1f records, %.1f resources per export; %d invalid messages left out; %.1f MiB)",
			o.format, oinfo.Records, oinfo.Messages, oinfo.SpansPerMessage, oinfo.RecordsPerMessage, float64(oinfo.Resources)/float64(max(oinfo.Messages, 1)),
			oinfo.InvalidLeftOut, float64(oinfo.Bytes)/(1<<20))
		if err := b.createTopic(ctx, topic); err != nil {
			return err
		}
		pstart := time.Now()
		if err := app.ProduceOver(ctx, b.kafka, topic, ov); err != nil {
			return err
		}
		b.logf("produced %d messages to %s in %s", len(ov), topic, time.Since(pstart).Round(time.Millisecond))
		otlpSpec = raterdSpec{name: otlpRunName(o.format), topic: topic, keySpace: "otlp", cache: true, format: o.format,
			desc:     fmt.Sprintf("raterd on the same valid records as %s exports (topic_formats), Redis cache (cold: a fresh key space of its own)", o.format),
			messages: int64(len(ov)), wantRows: rows, spansPerMessage: oinfo.SpansPerMessage}
	}
	values, perRecord = nil, nil // the runs read Kafka; free the generated traffic before measuring
	total := int64(o.records)

	if o.baselines {
		r, err := b.runBare(ctx, total)
		if err != nil {
			return err
		}
		rep.Runs = append(rep.Runs, r)
	}
	main, err := b.runRaterd(ctx, raterdSpec{name: runRaterd, desc: "raterd, Redis cache (cold: a fresh key space)", topic: b.topic,
		keySpace: "cold", cache: true, messages: total, wantRows: wantRows, profile: o.cpuprofile})
	if err != nil {
		return err
	}
	rep.Runs = append(rep.Runs, main)
	rep.Profile = o.cpuprofile
	if rep.Settings.Redact != nil {
		r, err := b.runRaterd(ctx, raterdSpec{name: runRedact, topic: b.topic, keySpace: "redact", cache: true, messages: total, wantRows: wantRows,
			desc:   fmt.Sprintf("raterd with scoring.redact types %v, Redis cache (cold: a fresh key space)", rep.Settings.Redact),
			redact: rep.Settings.Redact})
		if err != nil {
			return err
		}
		rep.Runs = append(rep.Runs, r)
	}
	if otlp {
		r, err := b.runRaterd(ctx, otlpSpec)
		if err != nil {
			return err
		}
		rep.Runs = append(rep.Runs, r)
	}
	if o.warm {
		r, err := b.runRaterd(ctx, raterdSpec{name: runWarm, desc: "raterd, the same Redis key space again (all cached), a new stack", topic: b.topic,
			keySpace: "cold", cache: true, messages: total, wantRows: wantRows})
		if err != nil {
			return err
		}
		rep.Runs = append(rep.Runs, r)
	}
	if o.baselines {
		r, err := b.runRaterd(ctx, raterdSpec{name: runNoCache, desc: "raterd, cache off (no Redis, memory_bytes: -1)", topic: b.topic,
			messages: total, wantRows: wantRows})
		if err != nil {
			return err
		}
		rep.Runs = append(rep.Runs, r)
		r, err = b.runNaive(ctx, cfg, int64(o.naiveRecords))
		if err != nil {
			return err
		}
		rep.Runs = append(rep.Runs, r)
	}
	rep.Ratios = benchRatios(rep.Runs)

	if o.latency > 0 {
		rate, basis := o.latencyRate, "--latency-rate"
		if rate == 0 {
			rate, basis = main.RecordsPerSecond/2, fmt.Sprintf("half of the %s run's %.0f records/s", runRaterd, main.RecordsPerSecond)
		}
		lat, r, err := b.runLatency(ctx, rate)
		if lat != nil {
			lat.RateBasis = basis
			rep.Latency = lat
			rep.Runs = append(rep.Runs, r)
		}
		if err != nil {
			return err
		}
	}

	if o.soak > 0 {
		soak, r, err := b.runSoak(ctx)
		if soak != nil {
			rep.Soak = soak
			if err == nil {
				rep.Runs = append(rep.Runs, r)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// kafkaConnection is the connection every Kafka client of the benchmark uses: to --kafka,
// plaintext; with --config, with that raterd.yaml's kafka.tls and kafka.sasl, to its
// kafka.brokers unless --kafka is given.
func kafkaConnection(o benchOptions, getenv func(string) string) (consumer.Config, error) {
	c := consumer.Config{Brokers: []string{o.kafka}, Topics: []string{"raterd-bench"}}
	if o.config != "" {
		cfg, err := app.LoadConfig(o.config, getenv)
		if err != nil {
			return c, fmt.Errorf("--config %s: %w", o.config, err)
		}
		c.TLS, c.SASL = cfg.Kafka.TLS, cfg.Kafka.SASL
		if !o.kafkaSet {
			c.Brokers = cfg.Kafka.Brokers
		}
	}
	if err := c.Validate("kafka"); err != nil {
		return c, fmt.Errorf("--config %s: %w", o.config, err)
	}
	return c, nil
}

// kafkaFlags names where the benchmark's Kafka connection comes from, for errors.
func (b *bencher) kafkaFlags() string {
	if b.o.config == "" {
		return "--kafka " + b.o.kafka
	}
	return fmt.Sprintf("--config %s (kafka.brokers %v)", b.o.config, b.kafka.Brokers)
}

// config returns the raterd configuration of one run: the benchmark's evaluators on the
// given topic, group and database, with Redis under keyPrefix or no cache at all; format
// other than "" and raterd sets the topic's input format (kafka.topic_formats); redactTypes
// other than nil sets scoring.redact.types.
func (b *bencher) config(topic, group, db, keyPrefix string, withCache bool, format string, redactTypes []string) (*app.Config, error) {
	redisSection := fmt.Sprintf("redis: {addrs: [%q], key_prefix: %q}", b.o.redis, keyPrefix)
	if !withCache {
		redisSection = "redis: {memory_bytes: -1}"
	}
	judges := "  checks: {type: heuristic}\n"
	evaluators := ""
	for _, check := range []string{"refusal", "empty", "truncated", "repetition", "pii", "json"} {
		evaluators += fmt.Sprintf("  - {name: %s, judge: checks, check: %s}\n", check, check)
	}
	if b.o.judge == benchJudgeSim {
		var eps []string
		for _, u := range b.simURLs {
			eps = append(eps, fmt.Sprintf("{url: %q, max_in_flight: %d}", u, b.poolMaxInFlight()))
		}
		judges += fmt.Sprintf("  sim:\n    type: openai\n    model: judgesim-bench\n    endpoints: [%s]\n    timeout: %s\n%s",
			strings.Join(eps, ", "), b.poolTimeout(), b.poolConcurrency)
		evaluators += "  - {name: helpfulness, judge: sim, criteria: \"Does the response address the request accurately, completely and concisely?\"}\n"
	}
	formats := ""
	if format != "" && format != benchFormatRaterd {
		formats = fmt.Sprintf("  topic_formats: {%q: %s}\n", topic, format)
	}
	if b.maxInFlightRecords > 0 {
		formats += fmt.Sprintf("  max_in_flight_records: %d\n", b.maxInFlightRecords)
	}
	scoring := ""
	if redactTypes != nil {
		scoring = "scoring: {redact: {types: [" + quotedList(redactTypes) + "]}}\n"
	}
	text := fmt.Sprintf(`
kafka:
  brokers: [%s]
  topics: [%q]
  group_id: %q
  start_offset: earliest
%s%s
clickhouse:
  addrs: [%q]
  database: %s
judges:
%sevaluators:
%s%sadmin: {listen: "off"}
telemetry: {log_level: warn}
`, quotedList(b.kafka.Brokers), topic, group, formats, redisSection, b.o.clickhouse, db, judges, evaluators, scoring)
	cfg, err := app.ParseConfig([]byte(text), func(k string) string {
		switch k {
		case "RATERD_CLICKHOUSE_USER", "RATERD_CLICKHOUSE_PASSWORD":
			return os.Getenv(k)
		}
		return ""
	})
	if err != nil {
		return nil, fmt.Errorf("bench config: %w", err)
	}
	// The benchmark's connection (--config): its TLS and SASL, checked as raterd checks them.
	cfg.Kafka.TLS, cfg.Kafka.SASL = b.kafka.TLS, b.kafka.SASL
	if err := cfg.Kafka.Validate("kafka"); err != nil {
		return nil, fmt.Errorf("bench config: %w", err)
	}
	return cfg, nil
}

// quotedList is ss as the items of a YAML flow list, each quoted.
func quotedList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// startSimulator starts judgesim in a process of its own (see simProcess) with the
// benchmark's model, and points the judge config at its endpoints.
func (b *bencher) startSimulator(ctx context.Context) error {
	if err := b.o.sim.Validate(); err != nil {
		return fmt.Errorf("--judgesim-*: %w", err)
	}
	p, err := startSimProcess(ctx, b.o.simBin, b.o.sim, b.simFlags(b.o.simEndpoints)...)
	if err != nil {
		return err
	}
	b.sim, b.simURLs = p, p.URLs()
	b.closers = append(b.closers, p.stop)
	return nil
}

// simDescription names the simulator model of the report.
func (b *bencher) simDescription() string {
	o := b.o
	desc := fmt.Sprintf("judgesim process, %d endpoint(s)", o.simEndpoints)
	if o.pools != "" {
		desc = "judgesim process per pool size (--pools " + o.pools + ")"
	}
	if o.simProfile != "" {
		desc += ", profile " + o.simProfile
		if len(o.simExplicit) > 0 {
			desc += " with " + strings.Join(o.simExplicit, " ")
		}
	} else {
		c := o.sim
		desc += fmt.Sprintf(", %d seqs, step %s + %s/seq, prefill %s/token", c.MaxSeqs, c.StepBase, c.StepPerSeq, c.PrefillPerToken)
	}
	if o.simSpeeds != "" {
		desc += ", speeds " + o.simSpeeds
	}
	return desc
}

// poolMaxInFlight is the judge endpoints' max_in_flight in the benchmark's config.
func (b *bencher) poolMaxInFlight() int {
	if b.maxInFlight > 0 {
		return b.maxInFlight
	}
	return 128
}

// poolTimeout is the judge's per-attempt timeout: a profile with reasoning-length answers
// takes seconds per request, more while the server queues.
func (b *bencher) poolTimeout() time.Duration {
	if b.o.simProfile != "" {
		return time.Minute
	}
	return 10 * time.Second
}

// simFlags are the judgesim flags of the benchmark's pool of n endpoints. The latency
// model's flags are passed only where given (or without a profile), so that a profile's
// values stand.
func (b *bencher) simFlags(n int) []string {
	args := []string{"-endpoints", strconv.Itoa(n)}
	if b.o.simProfile != "" {
		args = append(args, "-profile", b.o.simProfile)
		args = append(args, b.o.simExplicit...)
	} else {
		args = append(args, simArgs(b.o.sim)...)
	}
	if b.o.simSpeeds != "" {
		args = append(args, "-speeds", b.o.simSpeeds)
	}
	return args
}

// createTopic creates a fresh topic and waits until every partition has a leader.
func (b *bencher) createTopic(ctx context.Context, topic string) error {
	tr := b.kafka.Transport()
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(b.kafka.Brokers...), Timeout: 30 * time.Second, Transport: tr}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: b.o.partitions, ReplicationFactor: 1}}})
	if err != nil {
		return fmt.Errorf("%s: create topic %s: %w", b.kafkaFlags(), topic, b.kafka.ConnectionError("kafka", err))
	}
	if err := resp.Errors[topic]; err != nil {
		return fmt.Errorf("%s: create topic %s: %w", b.kafkaFlags(), topic, err)
	}
	b.topics = append(b.topics, topic, sinkkafka.DLQTopic(topic))
	for deadline := time.Now().Add(30 * time.Second); ; {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		ready := err == nil && len(md.Topics) == 1 && len(md.Topics[0].Partitions) == b.o.partitions && md.Topics[0].Error == nil
		if ready {
			for _, p := range md.Topics[0].Partitions {
				ready = ready && p.Error == nil && p.Leader.Host != ""
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: topic %s has no leaders after 30s (%v)", b.kafkaFlags(), topic, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// migrate creates a fresh database with raterd's schema.
func (b *bencher) migrate(ctx context.Context, db string) error {
	b.dbs = append(b.dbs, db)
	if _, err := clickhouse.Migrate(ctx, b.ch, db, telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		return fmt.Errorf("--clickhouse %s: migrate %s: %w", b.o.clickhouse, db, err)
	}
	return nil
}

// countRows returns SELECT count() FROM db.scores FINAL.
func (b *bencher) countRows(ctx context.Context, db string) (int64, error) {
	var n uint64
	if err := b.ch.QueryRow(ctx, "SELECT count() FROM "+db+".scores FINAL").Scan(&n); err != nil {
		return 0, fmt.Errorf("--clickhouse %s: count %s.scores: %w", b.o.clickhouse, db, err)
	}
	return int64(n), nil
}

// waitRows polls db.scores FINAL until it holds want rows or the deadline passes, and
// returns the last count.
func (b *bencher) waitRows(ctx context.Context, db string, want int64, deadline time.Time) (int64, error) {
	for {
		n, err := b.countRows(ctx, db)
		if err != nil || n >= want || time.Now().After(deadline) {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// cleanup removes what the benchmark created, unless --keep; it runs when ctx has ended
// too, on a context of its own.
func (b *bencher) cleanup() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	if b.ch == nil {
		return
	}
	defer b.ch.Close()
	if b.o.keep {
		b.logf("kept topics %v, databases %v, Redis keys %v*", b.topics, b.dbs, b.prefixes)
		return
	}
	// Each step has its own deadline: a loaded server can take a while over one of them.
	step := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Minute)
	}
	for _, db := range b.dbs {
		ctx, cancel := step()
		if err := b.ch.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			b.logf("cleanup: drop database %s: %v", db, err)
		}
		cancel()
	}
	if len(b.topics) > 0 {
		ctx, cancel := step()
		tr := b.kafka.Transport()
		client := &kafka.Client{Addr: kafka.TCP(b.kafka.Brokers...), Timeout: time.Minute, Transport: tr}
		if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: b.topics}); err != nil {
			b.logf("cleanup: delete topics %v: %v", b.topics, b.kafka.ConnectionError("kafka", err))
		}
		tr.CloseIdleConnections()
		cancel()
	}
	if len(b.prefixes) > 0 {
		ctx, cancel := step()
		defer cancel()
		rc := redis.NewClient(&redis.Options{Addr: b.o.redis})
		defer rc.Close()
		for _, p := range b.prefixes {
			iter := rc.Scan(ctx, 0, p+"*", 1000).Iterator()
			var keys []string
			for iter.Next(ctx) {
				if keys = append(keys, iter.Val()); len(keys) == 1000 {
					_ = rc.Unlink(ctx, keys...).Err()
					keys = keys[:0]
				}
			}
			if len(keys) > 0 {
				_ = rc.Unlink(ctx, keys...).Err()
			}
			if err := iter.Err(); err != nil {
				b.logf("cleanup: redis keys %s*: %v", p, err)
			}
		}
	}
}
