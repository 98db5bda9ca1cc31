package main

import (
	"strings"
	"testing"

	"raterd/sinks/kafka"
)

func TestDLQCommandLineMistakes(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"dlq"}, "Usage: raterd dlq replay"},
		{[]string{"dlq", "purge"}, `unknown subcommand "purge"`},
		{[]string{"dlq", "replay", "--limit", "-1"}, "--limit -1"},
		{[]string{"dlq", "replay", "--error-class", ""}, "--error-class"},
		{[]string{"dlq", "replay", "--error-class", "invalid json"}, "--error-class"},
		{[]string{"dlq", "replay", "--error-class", "\xd0"}, `--error-class "\xd0": not valid UTF-8`},
		{[]string{"dlq", "replay", "--error-class", "invalid\x00json"}, "--error-class"},
		{[]string{"dlq", "replay", "--bogus"}, "bogus"},
	} {
		var stdout, stderr strings.Builder
		if code := runMain(c.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("raterd %v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
	var stdout, stderr strings.Builder
	if code := runMain([]string{"dlq", "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "raterd-replayed-from") {
		t.Errorf("raterd dlq --help: exit %d, stdout %q", code, stdout.String())
	}
	stdout.Reset()
	if code := runMain([]string{"--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "dlq ") {
		t.Errorf("raterd --help does not list dlq: %q", stdout.String())
	}
}

func TestPrintReplaySummary(t *testing.T) {
	var b strings.Builder
	printReplaySummary(&b, "raterd.dlq-replay", dlqReplayOptions{errorClass: "missing_field", dryRun: true, limit: 3}, kafka.DLQReplayStats{
		Partitions: 2, Read: 11, Replayed: 3, SkippedByFilter: 5, Truncated: 1, Duplicates: 2, LimitReached: true,
		Classes:       map[string]int64{"missing_field": 6, "invalid_json": 5},
		MissingTopics: []string{"other.dlq"},
		Unassigned:    1,
	})
	for _, want := range []string{
		"group raterd.dlq-replay, error class missing_field, dry run",
		"would replay       3  (stopped at --limit 3)",
		"skipped by filter  5",
		"truncated          1",
		"duplicates skipped 2  (a dead letter of the same source topic/partition/offset was replayed before",
		"errors             0",
		"dead letters read  11 in 2 partitions",
		"by error class     invalid_json 5, missing_field 6",
		"other.dlq does not exist",
		"note: 1 dead-letter partitions are held by another member of group raterd.dlq-replay",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

// TestDryRunLine: a dry run lists what it would replay, truncated letters and duplicates
// (naming the first letter of the source message), and nothing else.
func TestDryRunLine(t *testing.T) {
	base := kafka.ReplayLetter{Topic: "traffic.dlq", Partition: 1, Offset: 60, ErrorClass: "invalid_json", Error: "bad input",
		SourceTopic: "traffic", OriginTopic: "traffic", SourcePartition: 2, SourceOffset: 41, Key: []byte("k"), Size: 9}
	for _, c := range []struct {
		action      kafka.ReplayAction
		duplicateOf string
		want        string
	}{
		{kafka.ReplayProduce, "", `traffic.dlq/1/60  would replay -> traffic (partition 2)  class=invalid_json key="k" bytes=9 replays=0  bad input`},
		{kafka.ReplayDuplicate, "traffic.dlq/0/3", `traffic.dlq/1/60  duplicate of traffic.dlq/0/3 (source traffic/2/41): skipped  class=invalid_json key="k" bytes=9 replays=0  bad input`},
		{kafka.ReplayAlreadyDone, "", ""},
		{kafka.ReplaySkipFilter, "", ""},
	} {
		l := base
		l.Action, l.DuplicateOf = c.action, c.duplicateOf
		got, ok := dryRunLine(l)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s:\n got %q, %v\nwant %q", l.Action, got, ok, c.want)
		}
	}
}
