package consumer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/consumer/conversation"
	"raterd/record"
)

// settableClock is a clock a test moves by hand, safe for concurrent use.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *settableClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// conversationMessages interleaves two conversations' turns with records of none:
// offsets 0 and 2 are conversation c1, 1 has no conversation, 3 is conversation c2.
func conversationMessages() []kafka.Message {
	values := []string{
		`{"id":"t0","model":"m","conversation_id":"c1","prompt":"hi","response":"hello"}`,
		`{"id":"t1","model":"m","prompt":"alone","response":"single"}`,
		`{"id":"t2","model":"m","conversation_id":"c1","prompt":"refund?","response":"done"}`,
		`{"id":"t3","model":"m","conversation_id":"c2","prompt":"order?","response":"shipped"}`,
	}
	out := make([]kafka.Message, len(values))
	for i, v := range values {
		out[i] = kafka.Message{Topic: "t", Partition: 0, Offset: int64(i), Key: []byte(fmt.Sprint("c", i)), Value: []byte(v)}
	}
	return out
}

func TestOpenConversationsHoldTheirOffsetsUntilTheirRowsAreWritten(t *testing.T) {
	clock := &settableClock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	asm, err := conversation.New(record.ScopeConversation, conversation.Config{InactivityTimeout: time.Minute, CheckInterval: 5 * time.Millisecond}, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	reader := &fakeReader{msgs: conversationMessages(), commits: map[TopicPartition]int64{}}
	sink := &recordingSink{}
	p, err := New(testConfig(), reader, fakeScorer{}, sink, sink, Options{Assemblers: []*conversation.Assembler{asm}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	tp := TopicPartition{"t", 0}
	rows := func() int {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return len(sink.rows)
	}
	waitFor(t, "the four records' rows", 10*time.Second, func() bool { return rows() >= 4 })
	// Every record is scored and written, but offset 0 is held by the open conversation
	// c1: nothing may be committed past it, or a crash would lose the conversation.
	time.Sleep(50 * time.Millisecond) // several commit intervals
	if c := reader.committed()[tp]; c > 0 {
		t.Fatalf("committed %d while conversation c1 (offset 0) is open", c)
	}

	clock.add(time.Minute) // the inactivity timeout passes: both conversations close
	waitFor(t, "the commit past both conversations", 10*time.Second, func() bool { return reader.committed()[tp] == 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	sink.mu.Lock()
	defer sink.mu.Unlock()
	transcripts := map[string]record.Score{}
	for _, r := range sink.rows {
		if r.Source.Offset == 0 && r.RecordID != "t0" || r.RecordID == "c2@t/0/3" {
			transcripts[r.RecordID] = r
		}
	}
	if len(sink.rows) != 6 || len(transcripts) != 2 {
		t.Fatalf("rows = %+v, want 4 record rows and 2 transcript rows", sink.rows)
	}
	if _, ok := transcripts["c1@t/0/0"]; !ok {
		t.Fatalf("no transcript row for c1: %+v", transcripts)
	}
	if s := asm.Stats(); s.Closed[record.CloseTimeout] != 2 || s.Open != 0 {
		t.Fatalf("assembler stats = %+v", s)
	}
}

func TestRevokedConversationOffsetsAreReadAgainByTheNextOwner(t *testing.T) {
	tr := NewOffsetTracker()
	tp := TopicPartition{"t", 0}
	acks := make([]*messageAck, 4)
	for off := range 4 {
		epoch, err := tr.TrackEpoch(tp, int64(off))
		if err != nil {
			t.Fatal(err)
		}
		acks[off] = newMessageAck(tr, tp, int64(off), epoch)
	}
	// Offsets 0 and 2 are held by an open conversation; every batch is written.
	acks[0].n.Add(1)
	acks[2].n.Add(1)
	for _, a := range acks {
		a.Release()
	}
	if got := tr.Committable()[tp]; got != 0 {
		t.Fatalf("committable = %d with offset 0 held", got)
	}
	// The partition is revoked: the conversation is dropped and its offsets abandoned.
	acks[0].abandon()
	acks[2].abandon()
	if n := tr.PendingIn([]TopicPartition{tp}); n != 0 {
		t.Fatalf("pending in the revoked partition = %d: the revoke would wait for records that never finish", n)
	}

	// The partition comes back at the committed offset 0: the abandoned offsets are
	// accepted again, the done ones are skipped as before.
	tr.Assigned(map[TopicPartition]int64{tp: 0})
	for off, wantErr := range []bool{false, true, false, true} {
		if err := tr.Track(tp, int64(off)); (err != nil) != wantErr {
			t.Fatalf("Track(%d) after the partition came back: err = %v, want error %v", off, err, wantErr)
		}
	}
	tr.Done(tp, 0)
	tr.Done(tp, 2)
	if got := tr.Committable()[tp]; got != 4 {
		t.Fatalf("committable after the rebuilt conversation = %d, want 4", got)
	}

	// Had another member moved the group past the abandoned offsets, the state goes; a
	// batch of the old state finishing late marks nothing in the new one.
	tr2 := NewOffsetTracker()
	old := make([]*messageAck, 3)
	for off := range 3 {
		epoch, err := tr2.TrackEpoch(tp, int64(7+off))
		if err != nil {
			t.Fatal(err)
		}
		old[off] = newMessageAck(tr2, tp, int64(7+off), epoch)
	}
	old[0].n.Add(1) // held by a conversation, dropped at the revoke
	old[0].abandon()
	tr2.Assigned(map[TopicPartition]int64{tp: 8})
	epoch, err := tr2.TrackEpoch(tp, 8)
	if err != nil {
		t.Fatalf("Track(8) on a partition whose abandoned offsets another member processed: %v", err)
	}
	if _, err := tr2.TrackEpoch(tp, 9); err != nil {
		t.Fatal(err)
	}
	old[2].Release() // the old state's batch of offset 9 finishes late
	tr2.DoneIn(tp, 8, epoch)
	if got := tr2.Committable()[tp]; got != 9 {
		t.Fatalf("committable = %d, want 9: offset 9 of the new state is not done", got)
	}

	// A partition with abandoned offsets that this member is not assigned again is
	// forgotten (its state would otherwise stay for good).
	tr3 := NewOffsetTracker()
	epoch, _ = tr3.TrackEpoch(tp, 3)
	tr3.AbandonIn(tp, epoch, 3)
	tr3.Assigned(map[TopicPartition]int64{{"t", 1}: 0})
	if err := tr3.Track(tp, 0); err != nil {
		t.Fatalf("the forgotten partition does not start afresh: %v", err)
	}
}
