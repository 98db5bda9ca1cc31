package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"raterd/internal/app"
	"raterd/internal/cli"
	"raterd/internal/text"
	"raterd/sinks/kafka"
)

const dlqUsage = `Usage: raterd dlq replay --config raterd.yaml [--error-class CLASS] [--dry-run] [--limit N]

Replays dead letters after a fix: reads <topic>.dlq of every kafka.topics entry and produces
each dead letter back to its source topic and partition, with its original key, value and
headers (raterd's headers dropped; raterd-replayed-from and raterd-replays added). Progress
is the consumer group <kafka.group_id>.dlq-replay: a second run replays nothing twice. A run
stops at the end offsets it saw when it started. Dead letters that keep only a prefix of an
over-size value (raterd-original-size) are counted, never replayed. A run replays each
source message (raterd-source-topic, -partition, -offset) once: a second dead letter of it,
as "raterd run --from" writes for the invalid records of its range, is skipped and counted
as a duplicate.

Run "raterd dlq replay --help" for the flags.
`

// progressInterval is how often a long replay reports its progress on stderr.
const progressInterval = 2 * time.Second

// cmdDLQ dispatches the dlq subcommands.
func cmdDLQ(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return cli.ErrUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, dlqUsage)
		return nil
	case "replay":
		return cmdDLQReplay(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "raterd dlq: unknown subcommand %q\n\n%s", args[0], dlqUsage)
	return cli.ErrUsage
}

// dlqReplayOptions are the flags of `raterd dlq replay`.
type dlqReplayOptions struct {
	errorClass string
	dryRun     bool
	limit      int
}

// dlqReplayGroup is the consumer group holding the replay progress of raterd's group.
func dlqReplayGroup(group string) string { return group + ".dlq-replay" }

func cmdDLQReplay(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dlq replay", "dlq replay --config raterd.yaml [--error-class CLASS] [--dry-run] [--limit N]", stderr)
	configPath := fs.String("config", "raterd.yaml", "path of the YAML config file (kafka.brokers, kafka.topics, kafka.group_id)")
	var o dlqReplayOptions
	fs.StringVar(&o.errorClass, "error-class", "", "replay only dead letters of this class (raterd-error-class: invalid_json, invalid_utf8, missing_field, invalid_field, too_large, …); the others stay replayable")
	fs.BoolVar(&o.dryRun, "dry-run", false, "list and count what would be replayed (and the truncated and duplicate dead letters it would skip); produce and commit nothing")
	fs.IntVar(&o.limit, "limit", 0, "replay at most this many dead letters (0: all)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if o.limit < 0 {
		fmt.Fprintf(stderr, "raterd dlq replay: --limit %d: must be 0 (no limit) or more\n", o.limit)
		return fmt.Errorf("%w: --limit %d is negative", cli.ErrUsage, o.limit)
	}
	if cli.FlagGiven(fs, "error-class") {
		if err := kafka.CheckErrorClass(o.errorClass); err != nil {
			fmt.Fprintf(stderr, "raterd dlq replay: --error-class %q: %v; want a class name such as invalid_json, without spaces\n", o.errorClass, err)
			return fmt.Errorf("%w: --error-class %q is not a class name: %w", cli.ErrUsage, o.errorClass, err)
		}
	}
	cfg, err := app.LoadConfig(*configPath, os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := cli.SignalContext(stderr)
	defer stop()
	_, err = dlqReplay(ctx, cfg, o, stdout, stderr)
	return err
}

// dlqReplay runs a replay for cfg and prints, on stdout, what a dry run would replay and
// the summary; progress goes to stderr.
func dlqReplay(ctx context.Context, cfg *app.Config, o dlqReplayOptions, stdout, stderr io.Writer) (kafka.DLQReplayStats, error) {
	group := dlqReplayGroup(cfg.Kafka.GroupID)
	verb := "replayed"
	if o.dryRun {
		verb = "to replay"
	}
	last := time.Now()
	rcfg := kafka.DLQReplayConfig{
		Brokers: cfg.Kafka.Brokers, Sources: cfg.Kafka.Topics, GroupID: group,
		ErrorClass: o.errorClass, DryRun: o.dryRun, Limit: o.limit,
		MaxRecordBytes: cfg.Kafka.MaxRecordBytes,
		Dialer:         cfg.Kafka.Dialer(), Transport: cfg.Kafka.Transport(),
		OnProgress: func(p kafka.ReplayProgress) {
			switch {
			case p.Position == p.Start && !p.Done:
				if p.End > p.Start {
					fmt.Fprintf(stderr, "dlq replay: %s/%d: reading offsets %d..%d (%d dead letters)\n", p.Topic, p.Partition, p.Start, p.End, p.End-p.Start)
				}
			case p.Done || time.Since(last) >= progressInterval:
				if p.End > p.Start {
					fmt.Fprintf(stderr, "dlq replay: %s/%d: at offset %d of %d; %d %s so far\n", p.Topic, p.Partition, p.Position, p.End, p.Totals.Replayed, verb)
				}
				last = time.Now()
			}
		},
	}
	if o.dryRun {
		rcfg.OnLetter = func(l kafka.ReplayLetter) {
			if line, ok := dryRunLine(l); ok {
				fmt.Fprintln(stdout, line)
			}
		}
	}
	stats, err := kafka.ReplayDeadLetters(ctx, rcfg)
	err = cfg.Kafka.ConnectionError("kafka", err)
	printReplaySummary(stdout, group, o, stats)
	return stats, err
}

// dryRunLine is the line a dry run lists for l: dead letters it would replay, truncated
// ones and duplicates; false for the others.
func dryRunLine(l kafka.ReplayLetter) (string, bool) {
	var what string
	switch l.Action {
	case kafka.ReplayProduce:
		to := "by key"
		if l.SourcePartition >= 0 {
			to = "partition " + strconv.Itoa(l.SourcePartition)
		}
		what = "would replay -> " + l.SourceTopic + " (" + to + ")"
	case kafka.ReplayTruncated:
		what = "truncated: " + strconv.Itoa(l.Size) + " of " + strconv.Itoa(l.OriginalSize) + " bytes kept, not replayable"
	case kafka.ReplayDuplicate:
		what = "duplicate of " + l.DuplicateOf + " (source " + l.SourceTopic + "/" + strconv.Itoa(l.SourcePartition) + "/" +
			strconv.FormatInt(l.SourceOffset, 10) + "): skipped"
	default:
		return "", false
	}
	return fmt.Sprintf("%s  %s  class=%s key=%q bytes=%d replays=%d  %s",
		l.Coordinates(), what, l.ErrorClass, text.ClipMarkedAfter(string(l.Key), 40, text.Ellipsis), l.Size, l.Replays, text.ClipMarkedAfter(l.Error, 100, text.Ellipsis)), true
}

// printReplaySummary prints a replay's totals.
func printReplaySummary(w io.Writer, group string, o dlqReplayOptions, s kafka.DLQReplayStats) {
	mode := ""
	if o.dryRun {
		mode = ", dry run: nothing produced or committed"
	}
	filter := "all error classes"
	if o.errorClass != "" {
		filter = "error class " + o.errorClass
	}
	fmt.Fprintf(w, "raterd dlq replay summary (group %s, %s%s)\n", group, filter, mode)
	replayed := "replayed"
	if o.dryRun {
		replayed = "would replay"
	}
	limit := ""
	if s.LimitReached {
		limit = fmt.Sprintf("  (stopped at --limit %d)", o.limit)
	}
	fmt.Fprintf(w, "%-18s %d%s\n", replayed, s.Replayed, limit)
	fmt.Fprintf(w, "%-18s %d\n", "skipped by filter", s.SkippedByFilter)
	fmt.Fprintf(w, "%-18s %d  (value over kafka.max_record_bytes, only a prefix kept: not replayable)\n", "truncated", s.Truncated)
	fmt.Fprintf(w, "%-18s %d  (by an earlier run restricted to their class)\n", "already replayed", s.AlreadyReplayed)
	fmt.Fprintf(w, "%-18s %d  (a dead letter of the same source topic/partition/offset was replayed before: dead-lettered again, e.g. by run --from)\n", "duplicates skipped", s.Duplicates)
	fmt.Fprintf(w, "%-18s %d\n", "errors", s.Errors)
	fmt.Fprintf(w, "%-18s %d in %d partitions\n", "dead letters read", s.Read, s.Partitions)
	if len(s.Classes) > 0 {
		classes := make([]string, 0, len(s.Classes))
		for c, n := range s.Classes {
			if c == "" {
				c = "(none)"
			}
			classes = append(classes, c+" "+strconv.FormatInt(n, 10))
		}
		sort.Strings(classes)
		fmt.Fprintf(w, "%-18s %s\n", "by error class", strings.Join(classes, ", "))
	}
	if o.errorClass != "" && s.Read > 0 && s.Classes[o.errorClass] == 0 {
		fmt.Fprintf(w, "note: no dead letter read has error class %q\n", o.errorClass)
	}
	for _, t := range s.MissingTopics {
		fmt.Fprintf(w, "note: %s does not exist (nothing was dead-lettered from its topic)\n", t)
	}
	if s.Unassigned > 0 {
		fmt.Fprintf(w, "note: %d dead-letter partitions are held by another member of group %s (another replay running?) and were not read: run again once it has ended\n", s.Unassigned, group)
	}
}
