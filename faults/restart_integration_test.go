package faults

// How long a restarted raterd takes to commit again: a measurement, not a check. It is
// opt-in (RATERD_MEASURE_RESTART=1) and asserts nothing about time, so CI never depends
// on a timing; docs/reliability.md ("Restart") holds the figures and this command:
//
//	eval "$(scripts/services.sh env)"
//	RATERD_MEASURE_RESTART=1 RATERD_RESTART_SESSION_TIMEOUTS=30s,default,6s go test -count=1 -v -run TestMeasureRestart ./faults/
//
// It runs against the shared services (Kafka and ClickHouse of scripts/services.sh), on a
// topic, group and database of its own.

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/consumer"
	"raterd/internal/testkit"
	"raterd/internal/testkit/chtest"
)

// restartRecords is how many records are produced while raterd is down, for the
// restarted process to score and commit.
const restartRecords = 3000

// TestMeasureRestart stops the real raterd binary (SIGTERM, or kill -9), produces
// restartRecords records while it is down, starts it again and times the new process:
// from its start to the group giving it the partitions (its log's "partitions assigned"),
// to the first commit that moves the group's offsets, and to the commit of every
// partition's end. Each session timeout of
// RATERD_RESTART_SESSION_TIMEOUTS (comma-separated; "default" leaves the key out, the
// default) is measured RATERD_RESTART_RUNS times (default 3) per way of stopping.
func TestMeasureRestart(t *testing.T) {
	if os.Getenv("RATERD_MEASURE_RESTART") == "" {
		t.Skip("a measurement: set RATERD_MEASURE_RESTART=1 to run it (docs/reliability.md, Restart)")
	}
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	chAddr := testkit.Service(t, "RATERD_TEST_CLICKHOUSE", "ClickHouse")
	runs := 3
	if s := os.Getenv("RATERD_RESTART_RUNS"); s != "" {
		var err error
		if runs, err = strconv.Atoi(s); err != nil || runs < 1 {
			t.Fatalf("RATERD_RESTART_RUNS=%q: want a positive number", s)
		}
	}
	timeouts := strings.Split(cmp.Or(os.Getenv("RATERD_RESTART_SESSION_TIMEOUTS"), "default"), ",")
	bin := filepath.Join(t.TempDir(), "raterd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/raterd")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	var table []string
	for _, st := range timeouts {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			name := fmt.Sprintf("session_timeout=%s/%s", st, sigName(sig))
			t.Run(name, func(t *testing.T) {
				assigned, first, all := measureRestart(t, bin, broker, chAddr, st, sig, runs)
				label := st
				if st == "default" {
					label = fmt.Sprintf("%s (default)", defaultSessionTimeout(t))
				}
				table = append(table, fmt.Sprintf("| %s | %s | %s | %s | %s |", label, sigName(sig), figures(assigned), figures(first), figures(all)))
			})
		}
	}
	t.Logf("\n| session_timeout | stopped with | restart → partitions assigned | restart → first commit | restart → all %d records committed |\n| --- | --- | --- | --- | --- |\n%s",
		restartRecords, strings.Join(table, "\n"))
}

// measureRestart drains a fresh topic with one raterd, then runs times: stop it with sig,
// produce restartRecords records, start it again and time its first commit and its
// commit of everything.
func measureRestart(t *testing.T, bin, broker, chAddr, sessionTimeout string, sig syscall.Signal, runs int) (assigned, first, all []time.Duration) {
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group, db := "restart-"+suffix, "restart-"+suffix, "restart_"+suffix
	chtest.Migrated(t, chAddr, db)
	kc := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	createTopic(t, kc, topic)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "raterd.yaml")
	session := ""
	if sessionTimeout != "default" {
		session = "\n  session_timeout: " + sessionTimeout
	}
	evals := ""
	for _, e := range checkEvaluators {
		evals += fmt.Sprintf("  - {name: %s, judge: checks, check: %s}\n", e[0], e[1])
	}
	// Defaults everywhere else: the commit interval (1s) is part of the figures.
	cfg := fmt.Sprintf("kafka:\n  brokers: [%s]\n  topics: [%s]\n  group_id: %s%s\nclickhouse:\n  addrs: [%s]\n  database: %s\njudges:\n  checks: {type: heuristic}\nevaluators:\n%sadmin: {listen: \"off\"}\n",
		broker, topic, group, session, chAddr, db, evals)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: "raterd", dir: dir, log: filepath.Join(dir, "raterd.log"), args: []string{bin, "run", "--config", cfgPath}}
	defer func() { _ = p.stop(syscall.SIGKILL, 5*time.Second) }()

	values, _ := traffic(suffix, restartRecords)
	produce(t, broker, topic, values)
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, p, kc, group, topic, nil)
	for i := range runs {
		if err := p.stop(sig, 60*time.Second); err != nil && !isSignalExit(err) {
			t.Fatalf("raterd exited with %v when stopped; log:\n%s", err, p.tail(30))
		}
		before := committed(ctx, kc, group, topic)
		values, _ := traffic(fmt.Sprintf("%s-%d", suffix, i), restartRecords)
		produce(t, broker, topic, values)
		logFrom := fileSize(p.log)
		start := time.Now()
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		f := waitCommitted(t, p, kc, group, topic, before)
		first, all = append(first, f.Sub(start)), append(all, time.Since(start))
		assigned = append(assigned, assignedAt(t, p.log, logFrom).Sub(start))
		t.Logf("run %d: partitions assigned %.1fs, first commit %.1fs, all committed %.1fs after the restart",
			i+1, assigned[i].Seconds(), first[i].Seconds(), all[i].Seconds())
	}
	if err := p.stop(syscall.SIGTERM, 60*time.Second); err != nil {
		t.Errorf("raterd exited with %v on SIGTERM; log:\n%s", err, p.tail(30))
	}
	return assigned, first, all
}

// defaultSessionTimeout is kafka.session_timeout when the config leaves it out.
func defaultSessionTimeout(t *testing.T) time.Duration {
	cfg := consumer.Config{Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"t"}}
	if err := cfg.Validate("kafka"); err != nil {
		t.Fatal(err)
	}
	return cfg.SessionTimeout
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// assignedAtRE is the time of raterd's log line for a generation's partitions.
var assignedAtRE = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg="kafka group: partitions assigned"`)

// assignedAt returns the time of the first "partitions assigned" line in the log after
// offset from: when the group gave the restarted process its partitions.
func assignedAt(t *testing.T, path string, from int64) time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := assignedAtRE.FindSubmatch(b[min(from, int64(len(b))):])
	if m == nil {
		t.Fatalf("%s: no partitions assigned after the restart", path)
	}
	at, err := time.Parse(time.RFC3339Nano, string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// waitCommitted polls the group's committed offsets every 20ms until they reach the end
// of every partition, and returns when they first moved past before (nil: any commit).
func waitCommitted(t *testing.T, p *proc, kc *kafka.Client, group, topic string, before map[int]int64) time.Time {
	t.Helper()
	ends := endOffsets(t, kc, topic)
	var first time.Time
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		c := committed(context.Background(), kc, group, topic)
		if first.IsZero() && c != nil {
			for part, off := range c {
				if off > before[part] {
					first = time.Now()
					break
				}
			}
		}
		if reachedEnd(c, ends) {
			return first
		}
		if !p.running() {
			t.Fatalf("raterd exited (%v); log:\n%s", p.err, p.tail(30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("not committed to the end in 3 minutes (committed %v, ends %v); log:\n%s", c, ends, p.tail(30))
		}
	}
}

// figures is "median (min–max)" of durations, in seconds.
func figures(ds []time.Duration) string {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return fmt.Sprintf("%.1f s (%.1f–%.1f)", s[len(s)/2].Seconds(), s[0].Seconds(), s[len(s)-1].Seconds())
}

func sigName(sig syscall.Signal) string {
	if sig == syscall.SIGKILL {
		return "kill -9"
	}
	return "SIGTERM"
}
