package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/consumer"
	"raterd/internal/app"
	"raterd/internal/testkit"
	sinkkafka "raterd/sinks/kafka"
)

func header(m kafka.Message, key string) (string, bool) {
	v, ok := "", false
	for _, h := range m.Headers {
		if h.Key == key {
			v, ok = string(h.Value), true // the last one, as raterd reads them
		}
	}
	return v, ok
}

// dlqTestConfig is a small raterd.yaml: heuristic checks only, scores to a file, and
// kafka.max_record_bytes low enough for over-size messages of both kinds (kept whole, and
// truncated to a prefix).
func dlqTestConfig(t *testing.T, broker, topic, group string) (*app.Config, string) {
	t.Helper()
	text := fmt.Sprintf(`
kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  max_record_bytes: 4096
  batch: {max_records: 50, linger: 20ms}
  commit_interval: 100ms
scores_file: %s
judges:
  checks: {type: heuristic}
evaluators:
  - {name: refusal, judge: checks, check: refusal}
admin: {listen: "off"}
telemetry: {log_level: warn}
`, broker, topic, group, filepath.Join(t.TempDir(), "scores.ndjson"))
	path := filepath.Join(t.TempDir(), "raterd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := app.ParseConfig([]byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg, path
}

// replayCLI runs `raterd dlq replay --config path args...` and returns its stdout.
func replayCLI(t *testing.T, path string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	argv := append([]string{"dlq", "replay", "--config", path}, args...)
	if code := runMain(argv, &stdout, &stderr); code != 0 {
		t.Fatalf("raterd %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), code, stdout.String(), stderr.String())
	}
	t.Logf("raterd %s\n%s%s", strings.Join(argv[3:], " "), stderr.String(), stdout.String())
	return stdout.String()
}

// summaryCount reads a count from the replay summary, e.g. "replayed" or "truncated".
func summaryCount(t *testing.T, out, label string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + ` +(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("summary has no %q line:\n%s", label, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

type replayCounts struct{ replayed, skipped, truncated, already, duplicates, errors int }

// summaryCounts reads the counts of a replay summary whose replayed line is replayedLabel.
func summaryCounts(t *testing.T, out, replayedLabel string) replayCounts {
	t.Helper()
	return replayCounts{
		summaryCount(t, out, replayedLabel), summaryCount(t, out, "skipped by filter"), summaryCount(t, out, "truncated"),
		summaryCount(t, out, "already replayed"), summaryCount(t, out, "duplicates skipped"), summaryCount(t, out, "errors"),
	}
}

func checkSummary(t *testing.T, out, replayedLabel string, want replayCounts) {
	t.Helper()
	if got := summaryCounts(t, out, replayedLabel); got != want {
		t.Fatalf("summary counts %+v, want %+v:\n%s", got, want, out)
	}
}

// TestDLQReplay dead-letters invalid records through the real pipeline, replays them
// with `raterd dlq replay` against the real broker, and checks exactly which messages come
// back to the source topic, with which headers; a second run replays nothing, a record
// that fails again shows its replay count, a run restricted to one class leaves the
// others replayable, and truncated dead letters are counted, never replayed.
func TestDLQReplay(t *testing.T) {
	s := testkit.RequireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group := "it-dlqreplay-"+suffix, "it-dlqreplay-"+suffix
	testkit.CreateTopic(t, s.Kafka, topic, 2)
	cfg, path := dlqTestConfig(t, s.Kafka, topic, group)

	tenant := kafka.Header{Key: "x-tenant", Value: []byte("acme")}
	var msgs []kafka.Message
	for i := range 20 {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "ok-%d", i),
			Value: fmt.Appendf(nil, `{"id":"ok-%d","model":"m","prompt":"p","response":"Sure, here it is."}`, i)})
	}
	bad := map[string][]string{
		consumer.ReasonInvalidJSON:  {`{"model":"m","response":"unterminated`, `{"model":`, `not json at all`},
		consumer.ReasonMissingField: {`{"response":"no model 1"}`, `{"response":"no model 2"}`, `{"model":"m","prompt":"no response 3"}`, `{"model":"m","prompt":"no response 4"}`},
		consumer.ReasonInvalidUTF8:  {"{\"model\":\"m\",\"response\":\"bad \xff 1\"}", "{\"model\":\"m\",\"response\":\"bad \xfe 2\"}"},
		// Over the 4096-byte cap: kept whole in the dead letter.
		consumer.ReasonTooLarge: {`{"model":"m","response":"` + strings.Repeat("x", 5000) + `"}`},
	}
	// Over the cap and over 64 KiB: the dead letter keeps a prefix (raterd-original-size).
	truncatedValue := `{"model":"m","response":"` + strings.Repeat("y", 100<<10) + `"}`
	badValues := map[string]string{} // key -> value
	classOf := map[string]string{}   // key -> error class
	for class, values := range bad {
		for i, v := range values {
			key := fmt.Sprintf("bad-%s-%d", class, i)
			badValues[key], classOf[key] = v, class
			msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(v), Headers: []kafka.Header{tenant}})
		}
	}
	msgs = append(msgs, kafka.Message{Key: []byte("bad-truncated"), Value: []byte(truncatedValue), Headers: []kafka.Header{tenant}})
	classOf["bad-truncated"] = consumer.ReasonTooLarge
	const invalid = 11
	testkit.ProduceMessages(t, s.Kafka, topic, msgs)

	stats, _ := runGroup(t, cfg, int64(len(msgs)))
	if stats.DeadLetters != invalid {
		t.Fatalf("pipeline dead-lettered %d messages, want %d", stats.DeadLetters, invalid)
	}
	dlq := sinkkafka.DLQTopic(topic)
	letters := map[string]kafka.Message{} // coordinates -> dead letter
	for _, m := range testkit.ReadTopic(t, s.Kafka, dlq, nil) {
		letters[testkit.Coordinates(m)] = m
	}
	if len(letters) != invalid {
		t.Fatalf("%s holds %d dead letters, want %d", dlq, len(letters), invalid)
	}

	// replayed reads what came back to the source topic since ends, and checks each
	// message against the dead letter it names.
	replayedSince := func(ends map[int]int64, wantReplays string) []kafka.Message {
		t.Helper()
		got := testkit.ReadTopic(t, s.Kafka, topic, ends)
		for _, m := range got {
			from, _ := header(m, sinkkafka.HeaderReplayedFrom)
			letter, ok := letters[from]
			if !ok {
				t.Fatalf("replayed message %s names dead letter %q, which is not in %s", testkit.Coordinates(m), from, dlq)
			}
			if !bytes.Equal(m.Key, letter.Key) || !bytes.Equal(m.Value, letter.Value) {
				t.Errorf("replayed message %s: key %q, %d value bytes; its dead letter %s has key %q, %d bytes", testkit.Coordinates(m), m.Key, len(m.Value), from, letter.Key, len(letter.Value))
			}
			if want := badValues[string(m.Key)]; string(m.Value) != want {
				t.Errorf("replayed message %s (key %s) does not carry the original value", testkit.Coordinates(m), m.Key)
			}
			if p, _ := header(letter, sinkkafka.HeaderSourcePartition); strconv.Itoa(m.Partition) != p {
				t.Errorf("replayed message %s went to partition %d; its source partition was %s", testkit.Coordinates(m), m.Partition, p)
			}
			if n, _ := header(m, sinkkafka.HeaderReplays); n != wantReplays {
				t.Errorf("replayed message %s: %s = %q, want %q", testkit.Coordinates(m), sinkkafka.HeaderReplays, n, wantReplays)
			}
			var keys []string
			for _, h := range m.Headers {
				keys = append(keys, h.Key)
			}
			if want := []string{"x-tenant", sinkkafka.HeaderReplayedFrom, sinkkafka.HeaderReplays}; strings.Join(keys, ",") != strings.Join(want, ",") {
				t.Errorf("replayed message %s has headers %v, want %v (original ones, raterd's dropped, replay ones added)", testkit.Coordinates(m), keys, want)
			}
		}
		return got
	}
	classes := func(ms []kafka.Message) map[string]int {
		out := map[string]int{}
		for _, m := range ms {
			out[classOf[string(m.Key)]]++
		}
		return out
	}

	// A dry run restricted to missing_field lists the four and changes nothing.
	ends := testkit.EndOffsets(t, s.Kafka, topic)
	out := replayCLI(t, path, "--error-class", consumer.ReasonMissingField, "--dry-run")
	checkSummary(t, out, "would replay", replayCounts{replayed: 4, skipped: invalid - 4})
	if n := strings.Count(out, "would replay ->"); n != 4 {
		t.Errorf("dry run lists %d letters, want 4:\n%s", n, out)
	}
	if got := testkit.ReadTopic(t, s.Kafka, topic, ends); len(got) != 0 {
		t.Fatalf("a dry run produced %d messages", len(got))
	}

	// Replay missing_field: exactly those four come back, with their headers.
	out = replayCLI(t, path, "--error-class", consumer.ReasonMissingField)
	checkSummary(t, out, "replayed", replayCounts{replayed: 4, skipped: invalid - 4})
	first := replayedSince(ends, "1")
	if c := classes(first); len(first) != 4 || c[consumer.ReasonMissingField] != 4 {
		t.Fatalf("replayed %d messages of classes %v, want the 4 missing_field ones", len(first), c)
	}

	// Running it again replays nothing.
	ends = testkit.EndOffsets(t, s.Kafka, topic)
	out = replayCLI(t, path, "--error-class", consumer.ReasonMissingField)
	checkSummary(t, out, "replayed", replayCounts{})
	if got := testkit.ReadTopic(t, s.Kafka, topic, ends); len(got) != 0 {
		t.Fatalf("a second replay produced %d messages", len(got))
	}

	// The records are still invalid: the pipeline dead-letters them again, and the new
	// dead letters show that they were replayed once.
	stats2, _ := runGroup(t, cfg, 4)
	if stats2.DeadLetters != 4 {
		t.Fatalf("the replayed records: %d dead-lettered again, want 4 (%+v)", stats2.DeadLetters, stats2)
	}
	again := 0
	for _, m := range testkit.ReadTopic(t, s.Kafka, dlq, nil) {
		if _, seen := letters[testkit.Coordinates(m)]; seen {
			continue
		}
		letters[testkit.Coordinates(m)] = m
		if n, _ := header(m, sinkkafka.HeaderReplays); n == "1" {
			again++
		}
	}
	if len(letters) != invalid+4 || again != 4 {
		t.Fatalf("%s: %d dead letters, %d new ones with %s 1; want %d and 4", dlq, len(letters), again, sinkkafka.HeaderReplays, invalid+4)
	}
	ends = testkit.EndOffsets(t, s.Kafka, topic)
	out = replayCLI(t, path, "--error-class", consumer.ReasonMissingField)
	// It reads on from where the last missing_field run stopped: only the new letters.
	checkSummary(t, out, "replayed", replayCounts{replayed: 4})
	if second := replayedSince(ends, "2"); len(second) != 4 {
		t.Fatalf("second missing_field replay produced %d messages, want 4", len(second))
	}

	// All classes, dry run: the missing_field letters are done, the truncated one is only
	// counted.
	ends = testkit.EndOffsets(t, s.Kafka, topic)
	out = replayCLI(t, path, "--dry-run")
	checkSummary(t, out, "would replay", replayCounts{replayed: 6, truncated: 1, already: 8})
	if !strings.Contains(out, "truncated: 65536 of ") {
		t.Errorf("the dry run does not list the truncated letter:\n%s", out)
	}
	// Then for real, in two runs: --limit 4, then the rest.
	out = replayCLI(t, path, "--limit", "4")
	if summaryCount(t, out, "replayed") != 4 || !strings.Contains(out, "stopped at --limit 4") {
		t.Fatalf("--limit 4:\n%s", out)
	}
	truncated := summaryCount(t, out, "truncated")
	out = replayCLI(t, path)
	if summaryCount(t, out, "replayed") != 2 || summaryCount(t, out, "errors") != 0 {
		t.Fatalf("the rest after --limit 4: want 2 replayed:\n%s", out)
	}
	truncated += summaryCount(t, out, "truncated")
	if truncated != 1 {
		t.Fatalf("the truncated letter was counted %d times over the two runs, want once", truncated)
	}
	rest := replayedSince(ends, "1")
	if c := classes(rest); len(rest) != 6 || c[consumer.ReasonInvalidJSON] != 3 || c[consumer.ReasonInvalidUTF8] != 2 || c[consumer.ReasonTooLarge] != 1 {
		t.Fatalf("replayed %d messages of classes %v; want invalid_json 3, invalid_utf8 2, too_large 1 (not the truncated one)", len(rest), c)
	}

	// Nothing is left, and no dead letter was replayed twice.
	out = replayCLI(t, path)
	checkSummary(t, out, "replayed", replayCounts{})
	if summaryCount(t, out, "dead letters read") != 0 {
		t.Errorf("a run after everything was replayed read dead letters:\n%s", out)
	}
	seen := map[string]bool{}
	for _, m := range testkit.ReadTopic(t, s.Kafka, topic, nil) {
		from, ok := header(m, sinkkafka.HeaderReplayedFrom)
		if !ok {
			continue
		}
		if seen[from] {
			t.Errorf("dead letter %s was replayed twice", from)
		}
		seen[from] = true
		if _, trunc := header(letters[from], sinkkafka.HeaderOriginalSize); trunc {
			t.Errorf("truncated dead letter %s was replayed", from)
		}
	}
	if len(seen) != invalid-1+4 {
		t.Errorf("%d dead letters replayed in all, want %d (every one but the truncated)", len(seen), invalid-1+4)
	}
}

// runGroup runs raterd's pipeline for cfg until total messages are done.
func runGroup(t *testing.T, cfg *app.Config, total int64) (consumer.Stats, *app.Stack) {
	t.Helper()
	a, err := app.New(context.Background(), cfg, app.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Pipeline.Run(ctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for a.Pipeline.Stats().Done < total {
		if time.Now().After(deadline) {
			cancel()
			<-errc
			t.Fatalf("group %s: only %d of %d messages done after 2 minutes", cfg.Kafka.GroupID, a.Pipeline.Stats().Done, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	return a.Pipeline.Stats(), a.Stack
}

// TestDLQReplayAfterRescore is the reported case end to end: 51 invalid records among
// valid ones are dead-lettered when consumed, and again when raterd run --from rewinds
// the group over them (102 dead letters, two per source message). raterd dlq replay
// --dry-run lists 51 to replay and 51 duplicates; the replay produces each invalid
// record once to the source topic and reports the 51 duplicates skipped; a second run
// has nothing to read.
func TestDLQReplayAfterRescore(t *testing.T) {
	s := testkit.RequireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group := "it-dlqrescore-"+suffix, "it-dlqrescore-"+suffix
	testkit.CreateTopic(t, s.Kafka, topic, 2)
	cfg, path := dlqTestConfig(t, s.Kafka, topic, group)

	const good, bad = 30, 51
	at := time.Now().Add(-time.Hour)
	var msgs []kafka.Message
	for i := range good + bad {
		m := kafka.Message{Key: fmt.Appendf(nil, "ok-%d", i), Time: at,
			Value: fmt.Appendf(nil, `{"id":"ok-%d","model":"m","prompt":"p","response":"Sure, here it is."}`, i)}
		if i >= good {
			m.Key, m.Value = fmt.Appendf(nil, "bad-%d", i), fmt.Appendf(nil, `{"model":"m","response":"unterminated %d`, i)
		}
		msgs = append(msgs, m)
	}
	testkit.ProduceMessages(t, s.Kafka, topic, msgs)
	if stats, _ := runGroup(t, cfg, good+bad); stats.DeadLetters != bad {
		t.Fatalf("first pass dead-lettered %d records, want %d", stats.DeadLetters, bad)
	}
	// raterd run --from: rewind the (stopped) group before the records, and score again.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := app.RewindGroup(context.Background(), cfg, at.Add(-time.Hour), logger); err != nil {
		t.Fatal(err)
	}
	if stats, _ := runGroup(t, cfg, good+bad); stats.DeadLetters != bad {
		t.Fatalf("rescore dead-lettered %d records, want %d again", stats.DeadLetters, bad)
	}
	dlq := sinkkafka.DLQTopic(topic)
	letters := map[string]kafka.Message{} // coordinates -> dead letter
	perSource := map[string]int{}         // source coordinates -> dead letters
	sourceOf := func(letter kafka.Message) string {
		tp, _ := header(letter, sinkkafka.HeaderSourceTopic)
		p, _ := header(letter, sinkkafka.HeaderSourcePartition)
		o, _ := header(letter, sinkkafka.HeaderSourceOffset)
		return tp + "/" + p + "/" + o
	}
	for _, m := range testkit.ReadTopic(t, s.Kafka, dlq, nil) {
		letters[testkit.Coordinates(m)] = m
		perSource[sourceOf(m)]++
	}
	if len(letters) != 2*bad || len(perSource) != bad {
		t.Fatalf("%s: %d dead letters of %d source messages, want %d of %d", dlq, len(letters), len(perSource), 2*bad, bad)
	}

	ends := testkit.EndOffsets(t, s.Kafka, topic)
	// Errors, not fatal, up to the check of the source topic: with the deduplication off
	// (the raterd_no_replay_dedup negative control) the test goes on to show the
	// duplicates landing there.
	out := replayCLI(t, path, "--dry-run")
	if got, want := summaryCounts(t, out, "would replay"), (replayCounts{replayed: bad, duplicates: bad}); got != want {
		t.Errorf("dry run summary counts %+v, want %+v", got, want)
	}
	if n, d := strings.Count(out, "would replay ->"), strings.Count(out, ": skipped"); n != bad || d != bad {
		t.Errorf("dry run lists %d letters to replay and %d duplicates, want %d and %d:\n%s", n, d, bad, bad, out)
	}
	if got := testkit.ReadTopic(t, s.Kafka, topic, ends); len(got) != 0 {
		t.Fatalf("a dry run produced %d messages", len(got))
	}

	out = replayCLI(t, path)
	if got, want := summaryCounts(t, out, "replayed"), (replayCounts{replayed: bad, duplicates: bad}); got != want {
		t.Errorf("replay summary counts %+v, want %+v", got, want)
	}
	replayedSources := map[string]int{}
	keys := map[string]int{}
	replayed := testkit.ReadTopic(t, s.Kafka, topic, ends)
	for _, m := range replayed {
		from, _ := header(m, sinkkafka.HeaderReplayedFrom)
		letter, ok := letters[from]
		if !ok {
			t.Fatalf("replayed message %s names dead letter %q, which is not in %s", testkit.Coordinates(m), from, dlq)
		}
		replayedSources[sourceOf(letter)]++
		keys[string(m.Key)]++
	}
	if len(replayed) != bad || len(replayedSources) != bad || len(keys) != bad {
		t.Errorf("%s got %d replayed messages of %d source messages (%d keys); want each of the %d once", topic, len(replayed), len(replayedSources), len(keys), bad)
	}
	for src, n := range replayedSources {
		if n != 1 {
			t.Errorf("source message %s replayed %d times", src, n)
		}
	}

	out = replayCLI(t, path)
	checkSummary(t, out, "replayed", replayCounts{})
	if summaryCount(t, out, "dead letters read") != 0 {
		t.Errorf("a run after the replay read dead letters:\n%s", out)
	}
}
