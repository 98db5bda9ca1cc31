package kafka

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	kafkago "github.com/segmentio/kafka-go"

	"raterd/record"
)

// letterOf is the dead letter raterd's DLQ producer writes for the source message at
// topic/partition/offset (deadLetterMessage: its headers exactly), as a replay reads it at
// dlqPartition/dlqOffset of the dead-letter topic, with its action decided by state.
func letterOf(state replayState, filter, class, topic string, partition int, offset int64, dlqPartition int, dlqOffset int64) ReplayLetter {
	m := deadLetterMessage(record.DeadLetter{
		Source: record.Source{Topic: topic, Partition: partition, Offset: offset},
		Key:    fmt.Appendf(nil, "k-%d-%d", partition, offset), Value: []byte(`{"model":`),
		Reason: class, Error: "bad input", FirstSeen: time.Unix(0, 0), Attempts: 1,
	})
	m.Partition, m.Offset = dlqPartition, dlqOffset
	l := parseDeadLetter(m, topic)
	l.Action = state.decide(filter, l)
	return l
}

// TestReplayDedupRescoredRange is the reported case: 51 invalid records, dead-lettered
// once when consumed and once more by raterd run --from over the same range (102 dead
// letters on two partitions, keyed like raterd's producer writes them). One run replays
// each source message once and counts the 51 others as duplicates, naming the first
// letter of each.
func TestReplayDedupRescoredRange(t *testing.T) {
	const bad = 51
	state, _ := parseReplayState(-1, "", 0)
	d := newReplayDedup([]string{"traffic"})
	var stats DLQReplayStats
	replayed := map[[2]int64]int{} // source partition, offset -> replays
	next := map[int]int64{}        // dlq partition -> next offset
	for pass := range 2 {          // consumed, then rescored
		for i := range bad {
			p, off := i%3, int64(100+i)
			dp := (i + pass) % 2 // the second letter can be on another dlq partition
			l := letterOf(state, "", "invalid_json", "traffic", p, off, dp, next[dp])
			next[dp]++
			d.apply(&l)
			stats.count(l)
			switch {
			case l.Action == ReplayProduce:
				replayed[[2]int64{int64(p), off}]++
			case l.Action != ReplayDuplicate:
				t.Fatalf("letter %s: action %s", l.Coordinates(), l.Action)
			case pass == 0:
				t.Fatalf("first letter of source traffic/%d/%d is a duplicate (of %s)", p, off, l.DuplicateOf)
			case l.DuplicateOf == "" || l.DuplicateOf == l.Coordinates():
				t.Fatalf("duplicate %s names %q as its first letter", l.Coordinates(), l.DuplicateOf)
			}
		}
	}
	if stats.Read != 2*bad || stats.Replayed != bad || stats.Duplicates != bad || len(replayed) != bad {
		t.Fatalf("read %d, replayed %d, duplicates %d, %d source messages; want %d, %d, %d, %d",
			stats.Read, stats.Replayed, stats.Duplicates, len(replayed), 2*bad, bad, bad, bad)
	}
	for k, n := range replayed {
		if n != 1 {
			t.Errorf("source traffic/%d/%d replayed %d times", k[0], k[1], n)
		}
	}
	// Bounded: one entry per source message replayed, never more than the letters read.
	if len(d.seen) != bad {
		t.Errorf("the set holds %d source messages, want %d", len(d.seen), bad)
	}
}

// TestReplayDedupKeys: only the same topic, partition and offset is the same source
// message; letters without source coordinates, or naming another source topic than the
// one they are replayed to, are never deduplicated.
func TestReplayDedupKeys(t *testing.T) {
	state, _ := parseReplayState(-1, "", 0)
	d := newReplayDedup([]string{"traffic", "orders", "traffic"})
	first := letterOf(state, "", "invalid_json", "traffic", 1, 41, 0, 0)
	d.apply(&first)
	if first.Action != ReplayProduce {
		t.Fatalf("first letter: %s", first.Action)
	}
	for _, c := range []struct {
		name string
		l    ReplayLetter
		want ReplayAction
	}{
		{"same source message", letterOf(state, "", "invalid_json", "traffic", 1, 41, 1, 7), ReplayDuplicate},
		{"same, other class", letterOf(state, "", "judge_failed", "traffic", 1, 41, 0, 8), ReplayDuplicate},
		{"other offset", letterOf(state, "", "invalid_json", "traffic", 1, 42, 0, 9), ReplayProduce},
		{"other partition", letterOf(state, "", "invalid_json", "traffic", 2, 41, 0, 10), ReplayProduce},
		{"other topic", letterOf(state, "", "invalid_json", "orders", 1, 41, 0, 0), ReplayProduce},
	} {
		d.apply(&c.l)
		if c.l.Action != c.want {
			t.Errorf("%s: %s, want %s", c.name, c.l.Action, c.want)
		}
		if c.want == ReplayDuplicate && c.l.DuplicateOf != "traffic.dlq/0/0" {
			t.Errorf("%s: duplicate of %q, want traffic.dlq/0/0", c.name, c.l.DuplicateOf)
		}
	}

	// No source coordinates: replayed every time, as before.
	for _, strip := range []string{HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset} {
		for i := range 2 {
			m := deadLetterMessage(record.DeadLetter{Source: record.Source{Topic: "traffic", Partition: 3, Offset: 5}, Reason: "invalid_json"})
			m.Partition, m.Offset = 0, int64(20+i)
			hs := m.Headers[:0:0]
			for _, h := range m.Headers {
				if h.Key != strip {
					hs = append(hs, h)
				}
			}
			m.Headers = hs
			l := parseDeadLetter(m, "traffic")
			l.Action = state.decide("", l)
			d.apply(&l)
			if l.Action != ReplayProduce {
				t.Errorf("without %s, letter %d: %s, want replay", strip, i, l.Action)
			}
		}
	}
	// raterd-source-topic names another topic than the dead-letter topic's: replayed.
	for i := range 2 {
		m := deadLetterMessage(record.DeadLetter{Source: record.Source{Topic: "elsewhere", Partition: 3, Offset: 6}, Reason: "invalid_json"})
		m.Topic, m.Partition, m.Offset = "traffic.dlq", 0, int64(30+i)
		l := parseDeadLetter(m, "traffic")
		l.Action = state.decide("", l)
		d.apply(&l)
		if l.Action != ReplayProduce {
			t.Errorf("source topic header elsewhere, letter %d: %s, want replay", i, l.Action)
		}
	}
}

// TestReplayDedupAcrossActions: letters skipped by the filter and truncated ones do not
// count as replayed (a later whole letter of the same message is replayed); a truncated
// letter of a message already replayed is a duplicate; a letter an earlier run restricted
// to its class handled stays "already replayed" and makes a later letter of the same
// message a duplicate.
func TestReplayDedupAcrossActions(t *testing.T) {
	// Offsets below 10 of class invalid_json were handled by an earlier invalid_json run.
	state := replayState{next: 0, classes: map[string]int64{"invalid_json": 10}}
	d := newReplayDedup([]string{"traffic"})
	steps := []struct {
		name      string
		filter    string
		class     string
		src       int64
		dlqOffset int64
		truncated bool
		want      ReplayAction
	}{
		{"done by the class run", "", "invalid_json", 1, 2, false, ReplayAlreadyDone},
		{"its second letter, also done", "", "invalid_json", 1, 3, false, ReplayAlreadyDone},
		{"its letter after the class run", "", "invalid_json", 1, 12, false, ReplayDuplicate},
		{"skipped by filter", "invalid_json", "too_large", 2, 13, false, ReplaySkipFilter},
		{"same message, the class asked for", "invalid_json", "invalid_json", 2, 14, false, ReplayProduce},
		{"truncated first", "", "too_large", 3, 15, true, ReplayTruncated},
		{"then whole", "", "too_large", 3, 16, false, ReplayProduce},
		{"then truncated again", "", "too_large", 3, 17, true, ReplayDuplicate},
	}
	for _, s := range steps {
		l := letterOf(state, s.filter, s.class, "traffic", 0, s.src, 0, s.dlqOffset)
		if s.truncated {
			l.OriginalSize = 1 << 21
			l.Action = state.decide(s.filter, l)
		}
		d.apply(&l)
		if l.Action != s.want {
			t.Errorf("%s: %s, want %s", s.name, l.Action, s.want)
		}
	}
	if len(d.seen) != 3 {
		t.Errorf("the set holds %d source messages, want 3", len(d.seen))
	}
}

// TestReplayDedupMemory states the bound: the set costs under 100 bytes per source
// message it holds (16-byte key, 16-byte value and the map's overhead: 45 to 85 bytes on
// Go 1.26, depending on how full the map's tables are; n is a full case).
func TestReplayDedupMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 10 MB")
	}
	const n = 120_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := newReplayDedup([]string{"traffic"})
	for i := range n {
		l := ReplayLetter{Topic: "traffic.dlq", Offset: int64(i), SourceTopic: "traffic", OriginTopic: "traffic",
			SourcePartition: i % 12, SourceOffset: int64(i), Action: ReplayProduce}
		d.apply(&l)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	t.Logf("%d source messages: %.1f bytes each", len(d.seen), perEntry)
	if len(d.seen) != n || perEntry > 100 {
		t.Fatalf("%d entries at %.1f bytes each; want %d under 100 bytes", len(d.seen), perEntry, n)
	}
	runtime.KeepAlive(d)
}

// The set's key and value are compact: 16 bytes each.
func TestReplayDedupEntrySize(t *testing.T) {
	if k, v := unsafe.Sizeof(sourceKey{}), unsafe.Sizeof(letterRef{}); k != 16 || v != 16 {
		t.Fatalf("sourceKey is %d bytes, letterRef %d; want 16 each", k, v)
	}
}

// TestDeadLetterForgedHeaders: an input message that carries headers named like raterd's
// dead-letter headers (and replay headers) gets a dead letter whose raterd-* headers are
// raterd's own, once each; the forged ones are kept renamed (raterd-input-*), are not read
// by the replay, and do not travel on with the replayed message. A letter of an older
// raterd, with the forged headers before raterd's under their own names, reads the same.
func TestDeadLetterForgedHeaders(t *testing.T) {
	forged := []record.Header{
		{Key: "traceparent", Value: []byte("00-abc-def-01")},
		{Key: HeaderErrorClass, Value: []byte("forged_class")},
		{Key: HeaderError, Value: []byte("forged error")},
		{Key: HeaderSourceTopic, Value: []byte("elsewhere")},
		{Key: HeaderSourcePartition, Value: []byte("9")},
		{Key: HeaderSourceOffset, Value: []byte("999")},
		{Key: HeaderAttempts, Value: []byte("1000")},
		{Key: HeaderFirstSeen, Value: []byte("1970-01-01T00:00:00Z")},
		{Key: HeaderOriginalSize, Value: []byte("12345678")},
	}
	d := record.DeadLetter{
		Source: record.Source{Topic: "traffic", Partition: 3, Offset: 42}, Key: []byte("k"), Value: []byte(`{"model":`),
		Headers: forged, Reason: "invalid_json", Error: "unexpected end of JSON input", Attempts: 1, FirstSeen: time.Unix(5, 0),
	}
	m := deadLetterMessage(d)
	m.Partition, m.Offset = 3, 7
	byKey := map[string][]string{}
	for _, h := range m.Headers {
		byKey[h.Key] = append(byKey[h.Key], string(h.Value))
	}
	for _, h := range forged[1:] {
		if got := byKey[h.Key]; h.Key != HeaderOriginalSize && len(got) != 1 {
			t.Errorf("%s: %q on the dead letter, want raterd's one", h.Key, got)
		}
		if got := byKey[HeaderInputPrefix+h.Key]; len(got) != 1 || got[0] != string(h.Value) {
			t.Errorf("%s%s: %q, want the input's %q", HeaderInputPrefix, h.Key, got, h.Value)
		}
	}
	if got := byKey[HeaderOriginalSize]; len(got) != 0 {
		t.Errorf("%s: %q on a letter that keeps the whole value", HeaderOriginalSize, got)
	}
	if got := byKey["traceparent"]; len(got) != 1 {
		t.Errorf("traceparent: %q, want the input's kept as it is", got)
	}

	// An older raterd appended its headers after the forged ones, unrenamed.
	old := m
	old.Headers = nil
	for _, h := range forged {
		old.Headers = append(old.Headers, kafkago.Header{Key: h.Key, Value: h.Value})
	}
	for _, h := range m.Headers {
		if !strings.HasPrefix(h.Key, HeaderInputPrefix) && h.Key != "traceparent" {
			old.Headers = append(old.Headers, h)
		}
	}
	for name, msg := range map[string]kafkago.Message{"renamed": m, "older raterd": old} {
		l := parseDeadLetter(msg, "traffic")
		if l.ErrorClass != "invalid_json" || l.Error != d.Error || l.OriginTopic != "traffic" || l.SourcePartition != 3 ||
			l.SourceOffset != 42 || l.OriginalSize != 0 {
			t.Errorf("%s: the replay read %+v, want raterd's headers only", name, l)
		}
		r := replayMessage(msg, l)
		for _, h := range r.Headers {
			if strings.HasPrefix(h.Key, raterdHeaderPrefix) && h.Key != HeaderReplayedFrom && h.Key != HeaderReplays {
				t.Errorf("%s: the replayed message carries %s=%q", name, h.Key, h.Value)
			}
		}
		if len(r.Headers) != 3 || r.Headers[0].Key != "traceparent" {
			t.Errorf("%s: replayed headers %v, want traceparent and the two replay headers", name, r.Headers)
		}
	}
}
