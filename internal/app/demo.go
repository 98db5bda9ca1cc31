package app

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"raterd/consumer"
	"raterd/consumer/conversation"
	"raterd/internal/cli"
	"raterd/internal/genaitrace"
	"raterd/internal/judgesim"
	"raterd/internal/report/htmlreport"
	"raterd/internal/telemetry"
	"raterd/internal/trafficgen"
	"raterd/record"
	"raterd/scorer"
	"raterd/sinks/clickhouse"
)

const demoTopic = "llm-traffic"

// demoAgentTopic carries the demo's agent runs: OTLP GenAI spans (invoke_agent, chat,
// execute_tool), one trace per message keyed by trace id, as an OTel Collector's Kafka
// exporter writes them with partition_traces_by_id.
const demoAgentTopic = "agent-runs"

// demoAgentRuns is how many agent runs the demo produces.
const demoAgentRuns = 200

// demoConfig is the embedded default configuration of `raterd demo`: every heuristic
// check, plus a pointwise helpfulness rubric (FLAMe format) and a pairwise preference of
// each response over its candidate (Prometheus 2 format, both orders) judged by the
// in-process judgesim simulator through the openai judge (the same client that talks to
// vLLM).
const demoConfig = `
kafka:
  topics: [llm-traffic, agent-runs]
  topic_formats: {agent-runs: otlp_proto}
  group_id: raterd-demo
  batch: {max_records: 256, linger: 50ms}
  workers: 4
  commit_interval: 200ms
judges:
  checks: {type: heuristic}
  judgesim:
    type: openai
    model: judgesim-7b
    endpoints: [{url: "http://JUDGESIM/v1", max_in_flight: 64}]
    timeout: 10s
evaluators:
  - {name: refusal, judge: checks, check: refusal}
  - {name: empty, judge: checks, check: empty}
  - {name: truncated, judge: checks, check: truncated}
  - {name: repetition, judge: checks, check: repetition}
  - {name: pii, judge: checks, check: pii}
  - {name: json_validity, judge: checks, check: json}
  - name: helpfulness
    judge: judgesim
    task: pointwise
    scale: {min: 1, max: 5}
    fields: [prompt, response]
    sample_rate: 0.5
    criteria: >-
      Does the response address the user's request accurately, completely and concisely?
      5 = fully helpful and correct, 1 = unhelpful, wrong or a refusal of a benign request.
  - name: preference
    judge: judgesim
    task: pairwise
    format: prometheus2
    criteria: Which response answers the user's request more helpfully and accurately?
  - {name: conv_unresolved, judge: checks, check: unresolved, scope: conversation}
  - {name: conv_frustration, judge: checks, check: frustration, scope: conversation}
  - {name: conv_repetition, judge: checks, check: turn_repetition, scope: conversation}
  - name: conv_resolution
    judge: judgesim
    scope: conversation
    task: classification
    labels: [resolved, unresolved]
    fields: [transcript]
    criteria: By the end of the conversation, did the assistant resolve the user's problem?
  - {name: run_tool_calls, judge: checks, check: tool_calls, scope: trace}
  - {name: run_grounded, judge: checks, check: grounded_answer, scope: trace}
# The demo reads its whole backlog in seconds: a conversation closes one second after its
# last turn was read (or at its end marker); event-time gaps of the generated traffic
# never split one.
conversations: {inactivity_timeout: 1s, gap: 1h, check_interval: 100ms}
traces: {inactivity_timeout: 1s, gap: 1h, check_interval: 100ms}
admin: {listen: "off"}
`

// DemoOptions are the settings of `raterd demo`.
type DemoOptions struct {
	// Traffic is the JSON-lines traffic file; when it is missing, the same traffic is
	// generated in memory.
	Traffic string
	// ClickHouse, when set, also writes scores there (native host:port).
	ClickHouse string
	// Redis, when set, is the cache instead of the in-process one.
	Redis string
	// Out is the NDJSON file for the score rows.
	Out string
	// Report, when set, is the HTML quality report the demo writes at the end (see
	// `raterd report html`): built from Out, or when Out is empty from the rows as they
	// were written. Empty: no report.
	Report string
	// Quiet turns the progress lines off.
	Quiet bool
	// Format is how the traffic travels on the topic: raterd (default: its JSON lines as
	// they are), otlp_proto or otlp_json (the valid records as OTLP GenAI spans, as an
	// OpenTelemetry Collector's Kafka exporter writes them) or mixed (half of each, read
	// with format auto).
	Format string
}

// Demo traffic formats (--format); otlp_proto and otlp_json are the consumer's.
const (
	demoFormatMixed = "mixed"
	// demoSpansPerMessage is how many chats one OTLP message holds: a Collector batch.
	demoSpansPerMessage = 64
)

// DemoFormats lists the values of DemoOptions.Format.
func DemoFormats() []string {
	return []string{consumer.FormatRaterd, consumer.FormatOTLPProto, consumer.FormatOTLPJSON, demoFormatMixed}
}

// demoTraffic turns the demo's JSON lines into the messages of the given format and
// returns them with the topic's input format and a line describing them. Lines that are
// not valid records (the demo's bad input) travel as they are in every format and are
// dead-lettered.
func demoTraffic(lines [][]byte, format string) (msgs [][]byte, topicFormat, desc string, err error) {
	switch format {
	case "", consumer.FormatRaterd:
		return lines, consumer.FormatRaterd, "raterd JSON records, one per message", nil
	case consumer.FormatOTLPProto, consumer.FormatOTLPJSON:
		msgs, spans, err := otlpTraffic(lines, format)
		return msgs, format, fmt.Sprintf("%s: %d GenAI chat spans in OTLP exports of up to %d (each trace also holds an HTTP and a database span, skipped)", format, spans, demoSpansPerMessage), err
	case demoFormatMixed:
		half := len(lines) / 2
		otlp, spans, err := otlpTraffic(lines[half:], consumer.FormatOTLPProto)
		msgs := append(slices.Clone(lines[:half]), otlp...)
		return msgs, consumer.FormatAuto, fmt.Sprintf("mixed, read with format auto: %d raterd JSON messages and %d GenAI spans in otlp_proto exports", half, spans), err
	}
	return nil, "", "", fmt.Errorf("--format %q: want one of %s", format, strings.Join(DemoFormats(), ", "))
}

// otlpTraffic encodes the valid records among lines as OTLP exports: per app (the
// resource's service.name), up to demoSpansPerMessage chats per message. Other lines are
// kept as they are.
func otlpTraffic(lines [][]byte, format string) (msgs [][]byte, spans int, err error) {
	byApp := map[string][]*record.Record{}
	var apps []string
	for _, line := range lines {
		r, err := consumer.Decode(line, record.Source{}, time.Unix(1, 0), 0)
		if err != nil {
			msgs = append(msgs, line)
			continue
		}
		if _, ok := byApp[r.App]; !ok {
			apps = append(apps, r.App)
		}
		byApp[r.App] = append(byApp[r.App], r)
	}
	seed := uint64(0)
	for _, app := range apps {
		for recs := range slices.Chunk(byApp[app], demoSpansPerMessage) {
			seed++
			chats := make([]genaitrace.Chat, len(recs))
			for i, r := range recs {
				chats[i] = genaitrace.FromRecord(r)
			}
			td := genaitrace.Traces(genaitrace.Options{Service: cmp.Or(app, "demo-app"), Seed: seed, Start: recs[0].Timestamp, NonGenAI: 1}, chats)
			marshal := genaitrace.MarshalProto
			if format == consumer.FormatOTLPJSON {
				marshal = genaitrace.MarshalJSON
			}
			b, err := marshal(td)
			if err != nil {
				return nil, 0, fmt.Errorf("demo traffic as %s: %w", format, err)
			}
			msgs = append(msgs, b)
			spans += len(recs)
		}
	}
	return msgs, spans, nil
}

func loadTraffic(path string) ([][]byte, string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return trafficgen.Generate(trafficgen.DefaultOptions()), "generated (trafficgen.DefaultOptions)", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("traffic: %w", err)
	}
	var msgs [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		if line := sc.Bytes(); len(bytes.TrimSpace(line)) > 0 {
			msgs = append(msgs, bytes.Clone(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("traffic %s: %w", path, err)
	}
	return msgs, path, nil
}

// Demo runs the whole pipeline on embedded defaults: an in-process Kafka-protocol broker,
// the judgesim simulator and the embedded config, then prints a summary on stdout.
func Demo(ctx context.Context, o DemoOptions, stdout, stderr io.Writer) error {
	if o.Report == "-" {
		return errors.New(`demo --report -: the summary is on stdout; give a file name, or "" for no report`)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	lines, source, err := loadTraffic(o.Traffic)
	if err != nil {
		return err
	}
	msgs, topicFormat, trafficDesc, err := demoTraffic(lines, o.Format)
	if err != nil {
		return err
	}

	// An in-process Kafka-protocol broker: the pipeline below talks to it over TCP exactly
	// as it talks to Apache Kafka.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, demoTopic, demoAgentTopic), kfake.AllowAutoTopicCreation())
	if err != nil {
		return fmt.Errorf("in-process kafka: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	// The judge pool simulator, served on loopback and reached through the openai judge.
	sim := judgesim.New(judgesim.Config{MaxSeqs: 64, StepBase: 200 * time.Microsecond, StepPerSeq: 2 * time.Microsecond, PrefillPerToken: 200 * time.Nanosecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("judgesim listener: %w", err)
	}
	simSrv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = simSrv.Serve(ln) }()
	defer sim.Close()
	defer simSrv.Close()

	cfgText := strings.Replace(demoConfig, "JUDGESIM", ln.Addr().String(), 1)
	cfg, err := ParseConfig([]byte(cfgText), func(k string) string {
		switch k {
		case "RATERD_KAFKA_BROKERS":
			return strings.Join(brokers, ",")
		case "RATERD_REDIS_ADDR":
			return o.Redis
		case "RATERD_CLICKHOUSE_ADDR":
			return o.ClickHouse
		}
		return ""
	})
	if err != nil {
		return fmt.Errorf("embedded demo config: %w", err)
	}
	cfg.ScoresFile = o.Out
	cfg.Kafka.Format = topicFormat
	// Each demo starts a fresh scores file (the sink itself appends, as `run` needs).
	if err := os.Remove(o.Out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("demo --out: %w", err)
	}

	// Multi-turn support conversations, keyed by conversation id, for the conversation
	// evaluators; they travel as raterd records, so only where the topic reads those.
	var convKeys, convValues [][]byte
	if topicFormat == consumer.FormatRaterd || topicFormat == consumer.FormatAuto {
		convKeys, convValues = demoConversationTraffic()
		trafficDesc += fmt.Sprintf("; plus %d turns of %d support conversations (raterd records keyed by conversation id)", len(convValues), trafficgen.DefaultConversationOptions().Count)
	}
	agentKeys, agentValues, err := demoAgentTraffic()
	if err != nil {
		return err
	}
	trafficDesc += fmt.Sprintf("; and on topic %s, %d agent runs as OTLP GenAI spans (invoke_agent, chat, execute_tool), a trace per message", demoAgentTopic, demoAgentRuns)
	fmt.Fprintf(stdout, "raterd demo %s: %d messages from %s → in-process Kafka %s\ninput: %s\n", cli.Version(), len(msgs)+len(convValues)+len(agentValues), source, brokers[0], trafficDesc)
	// The producer connects as the pipeline does: the demo config's kafka section.
	if err := ProduceOver(ctx, cfg.Kafka, demoTopic, msgs); err != nil {
		return err
	}
	if len(convValues) > 0 {
		if err := produceWith(ctx, cfg.Kafka.Brokers, demoTopic, convKeys, convValues, cfg.Kafka.Transport()); err != nil {
			return err
		}
	}
	if err := produceWith(ctx, cfg.Kafka.Brokers, demoAgentTopic, agentKeys, agentValues, cfg.Kafka.Transport()); err != nil {
		return err
	}

	if o.ClickHouse != "" {
		conn, err := clickhouse.Open(ctx, *cfg.ClickHouse)
		if err != nil {
			return err
		}
		_, err = clickhouse.Migrate(ctx, conn, cfg.ClickHouse.Database, telemetry.Settings{Logger: logger})
		_ = conn.Close()
		if err != nil {
			return err
		}
	}

	summary := newScoreSummary()
	if o.Report != "" && o.Out == "" {
		// No NDJSON file to read back: the report folds the rows in as they are written.
		summary.report = htmlreport.NewAggregator(htmlreport.Options{})
	}
	a, err := New(ctx, cfg, Options{Logger: logger, AlsoScores: summary})
	if err != nil {
		return err
	}
	defer a.Close()
	st, p := a.Stack, a.Pipeline

	fmt.Fprintf(stdout, "evaluators: %d (cache: %s; scores → %s", len(cfg.Evaluators), st.CacheDesc, o.Out)
	if o.ClickHouse != "" {
		fmt.Fprintf(stdout, " and ClickHouse %s", o.ClickHouse)
	}
	fmt.Fprintln(stdout, ")")

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	start := time.Now()
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(runCtx) }()

	total := int64(len(msgs) + len(convValues) + len(agentValues))
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	poll := time.NewTicker(10 * time.Millisecond) // completion check; progress prints 4 times a second
	defer poll.Stop()
	deadline := time.After(5 * time.Minute)
wait:
	for {
		select {
		case err := <-runErr:
			return fmt.Errorf("pipeline stopped early: %w", err)
		case <-ctx.Done():
			break wait
		case <-poll.C:
		case <-deadline:
			cancelRun()
			<-runErr
			return fmt.Errorf("demo did not finish in 5 minutes (%d of %d messages done)", p.Stats().Done, total)
		case <-tick.C:
			if !o.Quiet {
				s := p.Stats()
				fmt.Fprintf(stderr, "  %5.1f%%  %d/%d messages done, %d scores, %.0f msg/s\n",
					100*float64(s.Done)/float64(total), s.Done, total, s.Scores, float64(s.Done)/time.Since(start).Seconds())
			}
		}
		if p.Stats().Done >= total && conversationsSettled(p) {
			break
		}
	}
	elapsed := time.Since(start)
	if !o.Quiet {
		s := p.Stats()
		fmt.Fprintf(stderr, "  %5.1f%%  %d/%d messages done, %d scores, %.0f msg/s\n",
			100*float64(s.Done)/float64(total), s.Done, total, s.Scores, float64(s.Done)/elapsed.Seconds())
	}
	cancelRun()
	if err := <-runErr; err != nil {
		return err
	}
	// The pipeline has stopped: every row is in the NDJSON file (the sink syncs each
	// batch) and in the summary.
	var report demoReport
	if o.Report != "" {
		report = writeDemoReport(o, summary)
	}
	printDemoSummary(stdout, p.Stats(), st.Scorer.Totals(), summary, sim.Stats(), elapsed, p.Assemblers(), report)
	if report.err != nil {
		return fmt.Errorf("demo --report %s: %w", o.Report, report.err)
	}
	return nil
}

// demoReport is what became of the demo's HTML report: its path and source, or why it
// was not written.
type demoReport struct {
	path, source string
	rows         int
	err          error
}

// writeDemoReport writes the HTML report of the demo's rows to o.Report: from the NDJSON
// file o.Out, or from the rows summary folded in when there is no file.
func writeDemoReport(o DemoOptions, summary *scoreSummary) demoReport {
	r := demoReport{path: o.Report}
	var d htmlreport.Data
	if o.Out != "" {
		r.source = o.Out
		d, r.err = htmlreport.FromNDJSONFile(o.Out, htmlreport.Options{})
		if r.err != nil {
			return r
		}
	} else {
		r.source = "the rows written"
		summary.mu.Lock()
		d = summary.report.Data()
		summary.mu.Unlock()
	}
	r.rows = d.Rows
	r.err = htmlreport.WriteFile(o.Report, d)
	return r
}

// demoConversationTraffic is the demo's support conversations
// (trafficgen.DefaultConversationOptions), keyed by conversation id.
func demoConversationTraffic() (keys, values [][]byte) {
	return trafficgen.ConversationLines(trafficgen.DefaultConversationOptions())
}

// DemoExtraTraffic returns what `raterd demo` produces besides its traffic file: the
// support conversations on its traffic topic (raterd records, in the raterd and mixed
// formats only) and the agent runs on topic agent-runs (OTLP protobuf). Tests count
// the demo's expected rows from them.
func DemoExtraTraffic() (conversations, agentRuns [][]byte, err error) {
	_, conversations = demoConversationTraffic()
	_, agentRuns, err = demoAgentTraffic()
	return conversations, agentRuns, err
}

// demoAgentTraffic is the demo's agent runs (genaitrace.SampleAgentRuns: grounded
// answers, ungrounded ones, ignored tool errors, bad arguments), one OTLP export per run
// keyed by its trace id, starting when the demo's generated traffic does.
func demoAgentTraffic() (keys, values [][]byte, err error) {
	runs := genaitrace.SampleAgentRuns(demoAgentRuns, 1)
	// The runs happen when the generated traffic does, so that the demo's report charts
	// one afternoon, not a year between the two.
	start := trafficgen.DefaultOptions().Start
	for i := range runs {
		td := genaitrace.AgentRuns(genaitrace.Options{Service: "support-agent", Seed: 1, First: i, Start: start}, runs[i:i+1])
		b, err := genaitrace.MarshalProto(td)
		if err != nil {
			return nil, nil, fmt.Errorf("demo agent runs: %w", err)
		}
		traceID, _ := genaitrace.AgentIDs(1, i)
		keys = append(keys, []byte(traceID.String()))
		values = append(values, b)
	}
	return keys, values, nil
}

// conversationsSettled reports whether no conversation is open and every closed one's
// rows are written.
func conversationsSettled(p *consumer.Pipeline) bool {
	closed := int64(0)
	for _, a := range p.Assemblers() {
		s := a.Stats()
		if s.Open > 0 {
			return false
		}
		for reason, n := range s.Closed {
			if reason != conversation.NotAgentRun {
				closed += n
			}
		}
	}
	return p.Stats().Transcripts >= closed
}

// printConversationLines prints a summary line per assembler: the conversations (agent
// runs) judged as a whole and how they closed.
func printConversationLines(w io.Writer, assemblers []*conversation.Assembler) {
	for _, a := range assemblers {
		s := a.Stats()
		total := int64(0)
		reasons := make([]string, 0, len(s.Closed))
		for r, n := range s.Closed {
			if r == conversation.NotAgentRun {
				continue
			}
			total += n
			reasons = append(reasons, fmt.Sprintf("%s %d", r, n))
		}
		sort.Strings(reasons)
		if a.Scope() == record.ScopeTrace {
			fmt.Fprintf(w, "agent runs\t%d\t(traces with tool or agent spans, judged whole by the trace-scope evaluators; closed by %s; %d traces of model calls alone left to the record evaluators)\n",
				total, strings.Join(reasons, ", "), s.Closed[conversation.NotAgentRun])
			continue
		}
		fmt.Fprintf(w, "conversations\t%d\t(%d records judged whole by the conversation-scope evaluators; closed by %s; %d records split across partitions)\n",
			total, s.Added, strings.Join(reasons, ", "), s.Split)
	}
}

// Produce loads messages into the topic with a real Kafka producer, keyed by line number,
// over plaintext without SASL (ProduceOver connects as a kafka section says).
func Produce(ctx context.Context, brokers []string, topic string, values [][]byte) error {
	// Its own transport: the shared default caches topic metadata across clients.
	return produceWith(ctx, brokers, topic, nil, values, &kafka.Transport{})
}

// ProduceOver is Produce to kc's brokers through kc's connection (kc.Transport(): the
// kafka.tls and kafka.sasl sections). Call kc.Validate first.
func ProduceOver(ctx context.Context, kc consumer.Config, topic string, values [][]byte) error {
	return produceWith(ctx, kc.Brokers, topic, nil, values, kc.Transport())
}

// produceWith is Produce over transport (a kafka section's Transport: its TLS and SASL),
// whose idle connections it closes. keys, when set, are the messages' keys (a
// conversation id keeps its turns on one partition); nil keys by line number.
func produceWith(ctx context.Context, brokers []string, topic string, keys, values [][]byte, transport *kafka.Transport) error {
	defer transport.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, BatchSize: 500,
		BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: transport}
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "%d", i), Value: v}
		if keys != nil {
			msgs[i].Key = keys[i]
		}
	}
	for len(msgs) > 0 {
		n := min(len(msgs), 1000)
		if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
			return fmt.Errorf("produce to %s: %w", topic, err)
		}
		msgs = msgs[n:]
	}
	return nil
}

// scoreSummary aggregates written rows per evaluator and model for the demo's table.
type scoreSummary struct {
	mu   sync.Mutex
	aggs map[[2]string]*scoreAgg
	// report, when set, folds every row in for the demo's HTML report (when the demo
	// writes no NDJSON file to build it from).
	report *htmlreport.Aggregator
}

type scoreAgg struct {
	rows, ok, cached int
	sum              float64
}

func newScoreSummary() *scoreSummary { return &scoreSummary{aggs: map[[2]string]*scoreAgg{}} }

// WriteScores implements consumer.ScoreSink.
func (s *scoreSummary) WriteScores(_ context.Context, rows []record.Score) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		k := [2]string{r.Evaluator, r.Model}
		a := s.aggs[k]
		if a == nil {
			a = &scoreAgg{}
			s.aggs[k] = a
		}
		a.rows++
		if r.Cached {
			a.cached++
		}
		if r.Status == record.StatusOK {
			a.ok++
			a.sum += r.Value
		}
		if s.report != nil {
			s.report.Add(&r)
		}
	}
	return nil
}

func printDemoSummary(w io.Writer, ps consumer.Stats, ss scorer.BatchStats, sum *scoreSummary, sim judgesim.Stats, elapsed time.Duration, assemblers []*conversation.Assembler, report demoReport) {
	fmt.Fprintf(w, "\nraterd demo summary\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "messages\t%d\t(%d decoded into %d records, %d dead-lettered)\n", ps.Done, ps.Valid, ps.Records, ps.DeadLetters)
	if ps.Skipped > 0 {
		fmt.Fprintf(tw, "skipped\t%d\t(parts of messages skipped on purpose: spans that are not model calls, such as HTTP and database spans, and model calls without an answer)\n", ps.Skipped)
	}
	fmt.Fprintf(tw, "score rows\t%d\t(%d batches)\n", ps.Scores, ps.Batches)
	printConversationLines(tw, assemblers)
	// The built-in checks are never cached (cheaper to run again): the rate is over the
	// model judgements, the ones the cache can answer.
	hitRate, cacheable := 0.0, ss.Tasks-ss.Uncached
	if cacheable > 0 {
		hitRate = 100 * float64(ss.CacheHits+ss.Deduplicated+ss.InFlightJoins) / float64(cacheable)
	}
	fmt.Fprintf(tw, "cache hit rate\t%.1f%%\t(of %d model judgements: %d cache hits, %d in-batch duplicates, %d joined in flight; %d built-in checks are not cached)\n",
		hitRate, cacheable, ss.CacheHits, ss.Deduplicated, ss.InFlightJoins, ss.Uncached)
	names := make([]string, 0, len(ss.JudgeCallsBy))
	for name := range ss.JudgeCallsBy {
		names = append(names, name)
	}
	sort.Strings(names)
	var parts []string
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("%s %d", name, ss.JudgeCallsBy[name]))
	}
	fmt.Fprintf(tw, "judge calls\t%d\t(%s; the judgesim simulator answered %d requests)\n", ss.JudgeCalls, strings.Join(parts, ", "), sim.Completed)
	fmt.Fprintf(tw, "throughput\t%.0f records/s\t(%.2fs)\n", float64(ps.Records+ps.DeadLetters)/elapsed.Seconds(), elapsed.Seconds())
	switch {
	case report.path == "":
	case report.err != nil:
		fmt.Fprintf(tw, "report\t%s\t(not written: %v)\n", report.path, report.err)
	default:
		fmt.Fprintf(tw, "report\t%s\t(open it in a browser: trends, model comparisons, position bias, failures per judge and the lowest-scored records, from %d score rows in %s; one self-contained HTML file, no ClickHouse needed)\n",
			report.path, report.rows, report.source)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nscores per evaluator and model (mean over ok rows)\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "evaluator\tmodel\trows\tmean\tcached\t\n")
	sum.mu.Lock()
	keys := make([][2]string, 0, len(sum.aggs))
	for k := range sum.aggs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		a := sum.aggs[k]
		mean := "-"
		if a.ok > 0 {
			mean = fmt.Sprintf("%.3f", a.sum/float64(a.ok))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t\n", k[0], k[1], a.rows, mean, a.cached)
	}
	sum.mu.Unlock()
	tw.Flush()
}
