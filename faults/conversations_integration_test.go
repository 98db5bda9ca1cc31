package faults

// Conversations on the real stack: the real raterd binary, the shared Kafka and
// ClickHouse of scripts/services.sh. Conversations interleave across the partitions of a
// keyed topic; the first raterd is killed with SIGKILL while every conversation is open,
// a second joins the group while the restarted first holds them open again (a rebalance
// mid-conversation), and at the end every conversation has exactly one transcript row
// with all its turns, every turn exactly one record row, after FINAL; a late turn of a
// judged conversation adds a version 2 row of its own.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/testkit"
	"raterd/internal/testkit/chtest"
)

// conversation test sizes: conversations × turns, half of the turns before the kill.
const (
	convCount = 40
	convTurns = 4
	// convTimeout is the inactivity timeout: longer than a kill, a restart and a
	// rebalance take, so no conversation closes early; the conversations without an end
	// marker close on it at the end.
	convTimeout = 40 * time.Second
)

// conversationTurn is turn k (from 0) of conversation c as a raterd record, keyed by the
// conversation id; the last turn of even conversations carries the end marker.
func conversationTurn(prefix string, c, k int) kafka.Message {
	conv := fmt.Sprintf("%s-conv-%03d", prefix, c)
	meta := ""
	if k == convTurns-1 && c%2 == 0 {
		meta = `,"metadata":{"conversation.end":"true"}`
	}
	ts := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC).Add(time.Duration(c)*time.Second + time.Duration(k)*10*time.Second)
	answer := fmt.Sprintf("Answer %d to conversation %d: the order ships tomorrow.", k, c)
	if k == convTurns-1 && c%4 == 1 {
		answer = "I'm sorry, I can't help with that. Please contact support."
	}
	v := fmt.Sprintf(`{"id":"%s-t%d","timestamp":%q,"model":"support-llm","app":"helpdesk","conversation_id":%q,"prompt":"Question %d about my order","response":%q%s}`,
		conv, k, ts.Format(time.RFC3339), conv, k, answer, meta)
	return kafka.Message{Key: []byte(conv), Value: []byte(v)}
}

// produceKeyed writes msgs with the key hash partitioner, as a producer that keys by
// conversation does: each conversation lands on one partition.
func produceKeyed(t *testing.T, broker, topic string, msgs []kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

var handedOverRE = regexp.MustCompile(`conversation_records_handed_over=(\d+)`)

func TestIntegrationConversationsSurviveKillAndRebalance(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	chAddr := testkit.Service(t, "RATERD_TEST_CLICKHOUSE", "ClickHouse")
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group, db := "conv-"+suffix, "conv-"+suffix, "conv_"+suffix
	conn := chtest.Migrated(t, chAddr, db)
	kc := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	createTopic(t, kc, topic)

	bin := filepath.Join(t.TempDir(), "raterd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/raterd")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "raterd.yaml")
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  session_timeout: 6s
clickhouse:
  addrs: [%s]
  database: %s
judges:
  checks: {type: heuristic}
evaluators:
  - {name: empty, judge: checks, check: empty}
  - {name: conv_unresolved, judge: checks, check: unresolved, scope: conversation}
conversations:
  inactivity_timeout: %s
admin: {listen: "off"}
`, broker, topic, group, chAddr, db, convTimeout)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	newProc := func(name string) *proc {
		return &proc{name: name, dir: dir, log: filepath.Join(dir, name+".log"), args: []string{bin, "run", "--config", cfgPath}}
	}
	count := func(query string) int64 {
		var n uint64
		if err := conn.QueryRow(ctx, fmt.Sprintf(query, db)).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return int64(n)
	}
	recordRows := func() int64 { return count("SELECT count() FROM %s.scores FINAL WHERE evaluator = 'empty'") }

	// Phase 1: the first half of every conversation's turns, interleaved.
	var first, second []kafka.Message
	for k := range convTurns {
		for c := range convCount {
			m := conversationTurn(suffix, c, k)
			if k < convTurns/2 {
				first = append(first, m)
			} else {
				second = append(second, m)
			}
		}
	}
	produceKeyed(t, broker, topic, first)

	a := newProc("raterd-a")
	defer func() { _ = a.stop(syscall.SIGKILL, 5*time.Second) }()
	if err := a.start(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(time.Minute, func() bool { return recordRows() == int64(len(first)) }) {
		t.Fatalf("record rows = %d, want %d; log:\n%s", recordRows(), len(first), a.tail(30))
	}
	// Every turn is written, and every conversation is open: nothing may be committed past
	// a conversation's first turn.
	time.Sleep(2 * time.Second) // two commit intervals
	ends := endOffsets(t, kc, topic)
	for part, off := range committed(ctx, kc, group, topic) {
		if off > 0 && ends[part] > 0 {
			t.Fatalf("partition %d committed at %d (end %d) while its conversations are open", part, off, ends[part])
		}
	}
	if err := a.stop(syscall.SIGKILL, 5*time.Second); !isSignalExit(err) {
		t.Fatalf("raterd-a did not die of SIGKILL: %v", err)
	}

	// The killed member is back and rebuilds the conversations from the uncommitted turns;
	// a second member joins while they are open.
	if err := a.start(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(time.Minute, func() bool { return len(assignedRE.FindAllString(readFile(a.log), -1)) >= 2 }) { // the log holds both runs
		t.Fatalf("restarted raterd-a got no partitions; log:\n%s", a.tail(30))
	}
	time.Sleep(3 * time.Second) // it reads the replayed turns into open conversations
	b := newProc("raterd-b")
	defer func() { _ = b.stop(syscall.SIGKILL, 5*time.Second) }()
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	// The rebalance happened while raterd-a held open conversations: it handed their
	// records over (the fault was met).
	if !waitFor(time.Minute, func() bool {
		for _, m := range handedOverRE.FindAllStringSubmatch(readFile(a.log), -1) {
			if n, _ := strconv.Atoi(m[1]); n > 0 {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("raterd-a handed no open conversation over in the rebalance; log:\n%s", a.tail(40))
	}

	// Phase 2: the rest of the turns. Even conversations end with the end marker, odd
	// ones on the inactivity timeout.
	produceKeyed(t, broker, topic, second)
	waitCommitted(t, a, kc, group, topic, nil)

	// A late turn of conversation 0, judged (end marker) after the conversation was: it
	// opens version 2, a row of its own.
	late := conversationTurn(suffix, 0, convTurns-1)
	late.Value = []byte(strings.Replace(string(late.Value), fmt.Sprintf(`"id":"%s-conv-000-t%d"`, suffix, convTurns-1), fmt.Sprintf(`"id":"%s-conv-000-late"`, suffix), 1))
	produceKeyed(t, broker, topic, []kafka.Message{late})
	waitCommitted(t, a, kc, group, topic, nil)

	for _, p := range []*proc{a, b} {
		if err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
			t.Errorf("%s exited with %v on SIGTERM; log:\n%s", p.name, err, p.tail(30))
		}
	}
	if got, want := recordRows(), int64(convCount*convTurns+1); got != want {
		t.Errorf("record rows after FINAL = %d, want %d (one per turn)", got, want)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT conversation_id, conversation_version, turn_count, close_reason, scope, offset, last_offset
FROM %s.scores FINAL WHERE evaluator = 'conv_unresolved' ORDER BY conversation_id`, db))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	reasons := map[string]int{}
	lateConv := fmt.Sprintf("%s-conv-000", suffix)
	lateSeen := false
	for rows.Next() {
		var conv, reason, scope string
		var version, turns uint32
		var first, last uint64
		if err := rows.Scan(&conv, &version, &turns, &reason, &scope, &first, &last); err != nil {
			t.Fatal(err)
		}
		if conv == lateConv && version == 2 {
			lateSeen = true
			if turns != 1 || reason != "end_marker" || first != last {
				t.Errorf("the late turn's version 2: %d turns, close reason %q, offsets %d–%d; want 1 turn, end_marker", turns, reason, first, last)
			}
			continue
		}
		if seen[conv] {
			t.Errorf("conversation %s has more than one transcript row of version 1", conv)
		}
		seen[conv] = true
		reasons[reason]++
		if turns != convTurns || version != 1 || scope != "conversation" || last <= first {
			t.Errorf("conversation %s: %d turns, version %d, scope %q, offsets %d–%d; want all %d turns in version 1",
				conv, turns, version, scope, first, last, convTurns)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !lateSeen {
		t.Errorf("no version 2 row for %s's late turn", lateConv)
	}
	if len(seen) != convCount {
		t.Errorf("%d conversations have a transcript row, want %d", len(seen), convCount)
	}
	if reasons["end_marker"] != convCount/2 || reasons["timeout"] != convCount/2 {
		t.Errorf("close reasons = %v, want %d end_marker and %d timeout", reasons, convCount/2, convCount/2)
	}
	t.Logf("%d conversations × %d turns across %d partitions: kill -9 and a rebalance mid-conversation; close reasons %v", convCount, convTurns, partitions, reasons)
}

// assignedRE finds raterd's log line for a generation's partitions.
var assignedRE = regexp.MustCompile(`msg="kafka group: partitions assigned"`)

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
