package kafka

import (
	"context"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	kafkago "github.com/segmentio/kafka-go"
)

// deadLetter builds a dead letter as DeadLetters writes it: the original headers,
// then raterd's.
func deadLetter(original []kafkago.Header, class string, sourcePartition string, truncated bool) kafkago.Message {
	hs := append([]kafkago.Header{}, original...)
	hs = append(hs,
		kafkago.Header{Key: HeaderErrorClass, Value: []byte(class)},
		kafkago.Header{Key: HeaderError, Value: []byte("bad input")},
		kafkago.Header{Key: HeaderSourceTopic, Value: []byte("traffic")},
		kafkago.Header{Key: HeaderSourcePartition, Value: []byte(sourcePartition)},
		kafkago.Header{Key: HeaderSourceOffset, Value: []byte("41")},
		kafkago.Header{Key: HeaderAttempts, Value: []byte("1")},
		kafkago.Header{Key: HeaderFirstSeen, Value: []byte("2026-11-28T12:00:00Z")},
	)
	if truncated {
		hs = append(hs, kafkago.Header{Key: HeaderOriginalSize, Value: []byte("2000000")})
	}
	return kafkago.Message{Topic: "traffic.dlq", Partition: 2, Offset: 17, Key: []byte("k1"), Value: []byte(`{"model":`), Headers: hs}
}

func TestReplayMessageKeepsOriginalHeadersAndCountsReplays(t *testing.T) {
	original := []kafkago.Header{
		{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: "x-tenant", Value: []byte("a")},
		{Key: "x-tenant", Value: []byte("b")}, // repeats are kept, in order
		// From an earlier replay of the same record, which failed again.
		{Key: HeaderReplayedFrom, Value: []byte("traffic.dlq/0/3")},
		{Key: HeaderReplays, Value: []byte("2")},
	}
	m := deadLetter(original, "invalid_json", "1", false)
	l := parseDeadLetter(m, "traffic")
	want := ReplayLetter{
		Topic: "traffic.dlq", Partition: 2, Offset: 17, ErrorClass: "invalid_json", Error: "bad input",
		SourceTopic: "traffic", OriginTopic: "traffic", SourcePartition: 1, SourceOffset: 41, Replays: 2, Key: []byte("k1"), Size: len(m.Value),
	}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("parseDeadLetter:\n got %+v\nwant %+v", l, want)
	}
	r := replayMessage(m, l)
	if r.Topic != "traffic" || r.Partition != 1 || string(r.Key) != "k1" || string(r.Value) != `{"model":` {
		t.Fatalf("replayed message goes to %s/%d with key %q value %q", r.Topic, r.Partition, r.Key, r.Value)
	}
	wantHeaders := []kafkago.Header{
		original[0], original[1], original[2],
		{Key: HeaderReplayedFrom, Value: []byte("traffic.dlq/2/17")},
		{Key: HeaderReplays, Value: []byte("3")},
	}
	if !reflect.DeepEqual(r.Headers, wantHeaders) {
		t.Fatalf("replayed headers:\n got %v\nwant %v", r.Headers, wantHeaders)
	}
}

func TestParseDeadLetterTruncatedAndUnknownPartition(t *testing.T) {
	l := parseDeadLetter(deadLetter(nil, "too_large", "x", true), "traffic")
	if l.OriginalSize != 2000000 || l.SourcePartition != -1 || l.Replays != 0 {
		t.Fatalf("got %+v; want truncated (2000000 bytes), unknown partition, no replays", l)
	}
	if r := replayMessage(deadLetter(nil, "too_large", "x", false), l); r.Partition != -1 {
		t.Fatalf("partition %d for an unknown source partition; want -1 (by key)", r.Partition)
	}
}

// TestReplayStateFilteredRunThenAll: a run restricted to one class replays that class and
// leaves the others replayable; a later run for all classes replays only the others; a
// third replays nothing.
func TestReplayStateFilteredRunThenAll(t *testing.T) {
	classes := []string{"a", "b", "a", "b", "a", "b", "a", "b"} // offsets 10..17
	const logStart, end = 10, 18
	letter := func(off int64) ReplayLetter {
		return ReplayLetter{Offset: off, ErrorClass: classes[off-logStart]}
	}
	// run reads from the state's start to end and returns the actions, the new state
	// (committed and reloaded from its commit) and the replayed offsets.
	run := func(s replayState, class string) (replayState, map[ReplayAction]int, []int64) {
		t.Helper()
		actions := map[ReplayAction]int{}
		var replayed []int64
		for off := s.start(class); off < end; off++ {
			a := s.decide(class, letter(off))
			actions[a]++
			if a == ReplayProduce {
				replayed = append(replayed, off)
			}
		}
		s.advance(class, end)
		reloaded, err := parseReplayState(s.next, s.metadata(), logStart)
		if err != nil {
			t.Fatal(err)
		}
		return reloaded, actions, replayed
	}

	s, err := parseReplayState(-1, "", logStart)
	if err != nil || s.next != logStart {
		t.Fatalf("fresh state: %+v %v", s, err)
	}
	s, actions, replayed := run(s, "a")
	if !reflect.DeepEqual(replayed, []int64{10, 12, 14, 16}) || actions[ReplaySkipFilter] != 4 {
		t.Fatalf("class a: replayed %v, actions %v", replayed, actions)
	}
	if s.next != logStart || s.classes["a"] != end || s.metadata() == "" {
		t.Fatalf("after class a: %+v (metadata %q); want next unchanged, a at %d", s, s.metadata(), end)
	}
	if _, _, again := run(s, "a"); len(again) != 0 {
		t.Fatalf("class a again replayed %v", again)
	}
	s, actions, replayed = run(s, "")
	if !reflect.DeepEqual(replayed, []int64{11, 13, 15, 17}) || actions[ReplayAlreadyDone] != 4 {
		t.Fatalf("all classes: replayed %v, actions %v", replayed, actions)
	}
	if s.next != end || s.metadata() != "" {
		t.Fatalf("after all: %+v (metadata %q); want next %d and no class ahead", s, s.metadata(), end)
	}
	if _, actions, again := run(s, ""); len(again) != 0 || len(actions) != 0 {
		t.Fatalf("all again: replayed %v, read %v", again, actions)
	}
}

func TestReplayStateDecideOrder(t *testing.T) {
	s := replayState{next: 5, classes: map[string]int64{"a": 8}}
	for _, c := range []struct {
		filter string
		l      ReplayLetter
		want   ReplayAction
	}{
		{"", ReplayLetter{Offset: 4, ErrorClass: "b"}, ReplayAlreadyDone},
		{"", ReplayLetter{Offset: 7, ErrorClass: "a"}, ReplayAlreadyDone},
		{"", ReplayLetter{Offset: 7, ErrorClass: "b"}, ReplayProduce},
		{"", ReplayLetter{Offset: 7, ErrorClass: "b", OriginalSize: 9}, ReplayTruncated},
		{"a", ReplayLetter{Offset: 9, ErrorClass: "b", OriginalSize: 9}, ReplaySkipFilter},
		{"a", ReplayLetter{Offset: 9, ErrorClass: "a", OriginalSize: 9}, ReplayTruncated},
		{"a", ReplayLetter{Offset: 9, ErrorClass: "a"}, ReplayProduce},
	} {
		if got := s.decide(c.filter, c.l); got != c.want {
			t.Errorf("decide(filter %q, %+v) = %s, want %s", c.filter, c.l, got, c.want)
		}
	}
	if got := s.start("a"); got != 8 {
		t.Errorf("start(a) = %d, want 8", got)
	}
	if got := s.start("b"); got != 5 {
		t.Errorf("start(b) = %d, want 5", got)
	}
}

func TestParseReplayStateRejectsForeignMetadata(t *testing.T) {
	for _, md := range []string{"hello", `{"v":2}`, `{"classes":{"a":3}}`} {
		if _, err := parseReplayState(3, md, 0); err == nil || !strings.Contains(err.Error(), "metadata") {
			t.Errorf("metadata %q: err = %v, want one about the metadata", md, err)
		}
	}
	// Classes at or behind the committed offset are dropped; the log start bounds next.
	s, err := parseReplayState(4, `{"v":1,"classes":{"a":3,"b":9}}`, 6)
	if err != nil || s.next != 6 || !reflect.DeepEqual(s.classes, map[string]int64{"b": 9}) {
		t.Fatalf("got %+v, %v", s, err)
	}
}

func TestSourcePartitionBalancer(t *testing.T) {
	b := &sourcePartitionBalancer{}
	if got := b.Balance(kafkago.Message{Partition: 2, Key: []byte("k")}, 0, 1, 2, 3); got != 2 {
		t.Errorf("source partition 2 of 4: balanced to %d", got)
	}
	// Unknown, or gone (the topic shrank or was recreated smaller): by key, stably.
	for _, p := range []int{-1, 7} {
		first := b.Balance(kafkago.Message{Partition: p, Key: []byte("k")}, 0, 1, 2)
		if first < 0 || first > 2 || b.Balance(kafkago.Message{Partition: p, Key: []byte("k")}, 0, 1, 2) != first {
			t.Errorf("partition %d: not a stable partition by key (%d)", p, first)
		}
	}
}

// An absurd replay count (the largest int) saturates instead of wrapping to a negative
// count that the next dead letter would read as none.
func TestReplayCountSaturates(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   string
	}{
		{strconv.Itoa(math.MaxInt - 1), strconv.Itoa(math.MaxInt)},
		{strconv.Itoa(math.MaxInt), strconv.Itoa(math.MaxInt)},
		{"99999999999999999999999", "1"}, // not an int: no count, a first replay
	} {
		m := deadLetter([]kafkago.Header{{Key: HeaderReplays, Value: []byte(tc.header)}}, "invalid_json", "1", false)
		r := replayMessage(m, parseDeadLetter(m, "traffic"))
		if got := r.Headers[len(r.Headers)-1]; got.Key != HeaderReplays || string(got.Value) != tc.want {
			t.Errorf("replays %s: replayed with %s=%s, want %s", tc.header, got.Key, got.Value, tc.want)
		}
	}
}

// A replay filtered by an error class stores its progress under the class in JSON commit
// metadata: a class JSON would rewrite (invalid UTF-8), or that no dead letter carries, is
// refused before anything is read.
func TestReplayRefusesUnusableErrorClasses(t *testing.T) {
	for _, class := range []string{"invalid_json", "too_large", "schema-v2.x"} {
		if err := CheckErrorClass(class); err != nil {
			t.Errorf("CheckErrorClass(%q) = %v", class, err)
		}
	}
	for class, want := range map[string]string{
		"":                       "empty",
		"\xd0":                   "UTF-8",
		"invalid\xffjson":        "UTF-8",
		"invalid json":           "space",
		"tab\there":              "space",
		"nul\x00":                "printable",
		strings.Repeat("x", 201): "over 200",
	} {
		if err := CheckErrorClass(class); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckErrorClass(%q) = %v, want an error with %q", class, err, want)
		}
		if class == "" {
			continue // no filter
		}
		// Refused before connecting: the broker address is never dialled.
		_, err := ReplayDeadLetters(context.Background(), DLQReplayConfig{Brokers: []string{"127.0.0.1:1"}, Sources: []string{"traffic"}, GroupID: "g", ErrorClass: class})
		if err == nil || !strings.Contains(err.Error(), "error class "+strconv.Quote(class)) || !strings.Contains(err.Error(), want) {
			t.Errorf("ReplayDeadLetters with class %q: %v", class, err)
		}
	}
}
