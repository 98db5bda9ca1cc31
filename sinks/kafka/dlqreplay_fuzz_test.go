package kafka

import (
	"bytes"
	"maps"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	kafkago "github.com/segmentio/kafka-go"

	"raterd/record"
)

// Fuzz targets for what a DLQ replay reads from Kafka: a dead letter's headers
// (parseDeadLetter) and a replay group's commit metadata (parseReplayState). Seed
// corpora: testdata/fuzz/FuzzParseDeadLetter and testdata/fuzz/FuzzParseReplayState.

// fzReplayHeaderKeys are the header names a one-digit key in a fuzz input stands for, so
// that the fuzzer reaches raterd's headers without guessing their names.
var fzReplayHeaderKeys = []string{
	HeaderErrorClass, HeaderError, HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset,
	HeaderOriginalSize, HeaderReplays, HeaderAttempts, HeaderReplayedFrom, "traceparent",
}

// fzHeaders reads "key=value" lines; a key of one digit is fzReplayHeaderKeys[digit].
func fzHeaders(blob []byte) []kafkago.Header {
	if len(blob) == 0 {
		return nil
	}
	var hs []kafkago.Header
	for line := range bytes.SplitSeq(blob, []byte("\n")) {
		k, v, _ := bytes.Cut(line, []byte("="))
		key := string(k)
		if len(k) == 1 && k[0] >= '0' && k[0] <= '9' {
			key = fzReplayHeaderKeys[k[0]-'0']
		}
		hs = append(hs, kafkago.Header{Key: key, Value: v})
	}
	return hs
}

// fzLastHeader is the value of the last header named key, and whether there is one.
func fzLastHeader(hs []kafkago.Header, key string) (string, bool) {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == key {
			return string(hs[i].Value), true
		}
	}
	return "", false
}

// fzLastRaterd is fzLastHeader for a dead-letter header as parseDeadLetter reads it: only
// from the last raterd-error-class on (anywhere when there is none).
func fzLastRaterd(hs []kafkago.Header, key string) (string, bool) {
	from := 0
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == HeaderErrorClass {
			from = i
			break
		}
	}
	return fzLastHeader(hs[from:], key)
}

// FuzzParseDeadLetter: arbitrary headers never crash the parser; the message's
// coordinates, key and size are copied; the last of a repeated header counts, a
// dead-letter header only from the last raterd-error-class on (forged ones before it do
// not); numbers are never negative (unknown ones are -1 for the source coordinates, 0
// otherwise); a letter is truncated exactly when raterd's block has the original-size
// header. Replaying it and dead-lettering the replay again keeps the original non-raterd
// headers, drops raterd's old ones and counts one replay more. The same headers on an
// input message, dead-lettered by deadLetterMessage, never change what the letter says.
func FuzzParseDeadLetter(f *testing.F) {
	f.Add([]byte("0=invalid_json\n1=invalid character 'x'\n3=2\n4=17"), []byte("k"), []byte("{x"), 3, int64(42))
	f.Add([]byte("traceparent=00-abc-01\n5=2097152\n6=3"), []byte(nil), []byte("{\"model\":"), 0, int64(0))
	f.Add([]byte("3=-1\n4=nan\n5=0\n6=-2"), []byte(nil), []byte(nil), 1, int64(9))
	f.Add([]byte("6=9223372036854775806"), []byte("key"), []byte("v"), 0, int64(1))
	// Forged dead-letter headers before raterd's block.
	f.Add([]byte("5=1\n0=forged\n3=9\n4=9\n0=invalid_json\n3=1\n4=2"), []byte("k"), []byte("{"), 0, int64(3))
	f.Add([]byte("5=7\n2=other\n1=lie\n0=invalid_json\n2=traffic"), []byte(nil), []byte("{"), 1, int64(4))
	f.Fuzz(func(t *testing.T, blob, key, value []byte, partition int, offset int64) {
		hs := fzHeaders(blob)
		m := kafkago.Message{Topic: "traffic.dlq", Partition: partition, Offset: offset, Key: key, Value: value, Headers: hs}
		l := parseDeadLetter(m, "traffic")
		if l.Topic != m.Topic || l.Partition != partition || l.Offset != offset || !bytes.Equal(l.Key, key) ||
			l.Size != len(value) || l.SourceTopic != "traffic" || l.Action != ReplayProduce {
			t.Fatalf("coordinates not copied: %+v", l)
		}
		if l.SourcePartition < -1 || l.SourceOffset < -1 || l.OriginalSize < 0 || l.Replays < 0 {
			t.Fatalf("negative number: %+v", l)
		}
		if c, _ := fzLastRaterd(hs, HeaderErrorClass); l.ErrorClass != c {
			t.Fatalf("error class %q, last header says %q", l.ErrorClass, c)
		}
		if e, _ := fzLastRaterd(hs, HeaderError); l.Error != e {
			t.Fatalf("error %q, last header says %q", l.Error, e)
		}
		if o, _ := fzLastRaterd(hs, HeaderSourceTopic); l.OriginTopic != o {
			t.Fatalf("origin topic %q, last header says %q", l.OriginTopic, o)
		}
		if _, ok := fzLastRaterd(hs, HeaderOriginalSize); ok != (l.OriginalSize > 0) {
			t.Fatalf("original-size header present %v, OriginalSize %d", ok, l.OriginalSize)
		}
		if v, ok := fzLastRaterd(hs, HeaderSourcePartition); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 && l.SourcePartition != n {
				t.Fatalf("source partition %d, header says %q", l.SourcePartition, v)
			}
		}
		if parseDeadLetter(m, "traffic").Coordinates() != l.Coordinates() {
			t.Fatal("not deterministic")
		}
		if !strings.HasPrefix(l.Coordinates(), "traffic.dlq/") {
			t.Fatalf("coordinates %q", l.Coordinates())
		}

		r := replayMessage(m, l)
		if r.Topic != "traffic" || r.Partition != l.SourcePartition || !bytes.Equal(r.Key, key) || !bytes.Equal(r.Value, value) {
			t.Fatalf("replayed message: %+v", r)
		}
		var kept []kafkago.Header
		for _, h := range hs {
			if !strings.HasPrefix(h.Key, raterdHeaderPrefix) {
				kept = append(kept, h)
			}
		}
		if len(r.Headers) != len(kept)+2 {
			t.Fatalf("replay has %d headers, want the %d original ones and 2 of raterd's", len(r.Headers), len(kept))
		}
		for i, h := range kept {
			if r.Headers[i].Key != h.Key || !bytes.Equal(r.Headers[i].Value, h.Value) {
				t.Fatalf("original header %d changed: %+v", i, r.Headers[i])
			}
		}
		if from, _ := fzLastHeader(r.Headers, HeaderReplayedFrom); from != l.Coordinates() {
			t.Fatalf("replayed-from %q, want %q", from, l.Coordinates())
		}
		// The replay fails again: dead-lettered with raterd's headers appended.
		again := r
		again.Topic, again.Partition, again.Offset = "traffic.dlq", 0, 7
		again.Headers = append(append([]kafkago.Header(nil), r.Headers...),
			kafkago.Header{Key: HeaderErrorClass, Value: []byte("invalid_json")},
			kafkago.Header{Key: HeaderSourcePartition, Value: []byte("5")},
			kafkago.Header{Key: HeaderSourceOffset, Value: []byte("99")},
		)
		l2 := parseDeadLetter(again, "traffic")
		if l2.ErrorClass != "invalid_json" || l2.SourcePartition != 5 || l2.SourceOffset != 99 || l2.OriginalSize != 0 {
			t.Fatalf("dead letter of the replay: %+v", l2)
		}
		// The headers as an input message's: its dead letter says what raterd says.
		in := make([]record.Header, len(hs))
		for i, h := range hs {
			in[i] = record.Header{Key: h.Key, Value: h.Value}
		}
		dl := deadLetterMessage(record.DeadLetter{Source: record.Source{Topic: "traffic", Partition: 2, Offset: 11},
			Key: key, Value: value, Headers: in, Reason: "invalid_utf8", Error: "bad", Attempts: 1})
		dl.Partition, dl.Offset = 0, 12
		l3 := parseDeadLetter(dl, "traffic")
		if l3.ErrorClass != "invalid_utf8" || l3.Error != "bad" || l3.OriginTopic != "traffic" || l3.SourcePartition != 2 ||
			l3.SourceOffset != 11 || l3.OriginalSize != 0 {
			t.Fatalf("dead letter of a message with headers %q: %+v", blob, l3)
		}
		counts := map[string]int{}
		for _, h := range dl.Headers {
			counts[h.Key]++
		}
		for _, k := range []string{HeaderErrorClass, HeaderError, HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset, HeaderAttempts, HeaderFirstSeen} {
			if counts[k] != 1 {
				t.Fatalf("dead letter has %d %s headers, want raterd's only", counts[k], k)
			}
		}
		if counts[HeaderOriginalSize] != 0 {
			t.Fatalf("dead letter of an untruncated message has %s", HeaderOriginalSize)
		}
		// The count saturates at the largest int rather than wrapping around.
		if want := min(l.Replays, math.MaxInt-1) + 1; l2.Replays != want {
			t.Fatalf("replays %d after one more replay of a letter replayed %d times, want %d", l2.Replays, l.Replays, want)
		}
	})
}

// FuzzParseReplayState: arbitrary commit metadata never crashes the parser and is either
// refused with an error that quotes it, or read into a state that starts at the
// committed offset (at least the log start, never negative) and keeps only the classes
// ahead of it. The state survives writing it back as metadata, and advancing it never
// moves any class's start backwards.
func FuzzParseReplayState(f *testing.F) {
	f.Add(int64(10), `{"v":1,"classes":{"invalid_json":25,"too_large":5}}`, int64(0), "invalid_json", int64(30))
	f.Add(int64(-1), ``, int64(3), "", int64(4))
	f.Add(int64(0), `{"v":2}`, int64(0), "x", int64(1))
	f.Add(int64(5), `{"v":1,"classes":{"a":-9223372036854775808}}`, int64(-7), "a", int64(-1))
	f.Add(int64(5), `not json`, int64(0), "", int64(0))
	f.Fuzz(func(t *testing.T, committed int64, metadata string, logStart int64, class string, position int64) {
		s, err := parseReplayState(committed, metadata, logStart)
		if want := max(committed, logStart, 0); s.next != want {
			t.Fatalf("next = %d, want max(%d, %d, 0)", s.next, committed, logStart)
		}
		if err != nil {
			if metadata == "" || !utf8.ValidString(err.Error()) || !strings.Contains(err.Error(), strconv.Quote(metadata)) {
				t.Fatalf("error for %q: %v", metadata, err)
			}
			return
		}
		if s.classes == nil {
			t.Fatal("nil classes")
		}
		for c, off := range s.classes {
			if off <= s.next {
				t.Fatalf("class %q at %d is not ahead of next %d", c, off, s.next)
			}
		}
		if (s.metadata() == "") != (len(s.classes) == 0) {
			t.Fatalf("metadata %q for %d classes", s.metadata(), len(s.classes))
		}
		back, err := parseReplayState(s.next, s.metadata(), logStart)
		if err != nil || back.next != s.next || !maps.Equal(back.classes, s.classes) {
			t.Fatalf("round trip of %+v: %+v, %v", s, back, err)
		}
		if s.start(class) < s.next || s.start("") != s.next {
			t.Fatalf("start(%q) = %d, next %d", class, s.start(class), s.next)
		}
		before := map[string]int64{"": s.start(""), class: s.start(class)}
		for c := range s.classes {
			before[c] = s.start(c)
		}
		s.advance(class, position)
		for c, b := range before {
			if s.start(c) < b {
				t.Fatalf("advance(%q, %d) moved class %q back from %d to %d", class, position, c, b, s.start(c))
			}
			// A run for one class starts exactly where its letters stop being done. (The
			// start of an all-classes run, c == "", is next, whatever classes say.)
			if c != "" && (s.done(c, s.start(c)) || s.start(c) > 0 && !s.done(c, s.start(c)-1)) {
				t.Fatalf("done(%q) disagrees with start %d", c, s.start(c))
			}
		}
		if class != "" && position > s.next && s.start(class) < position {
			t.Fatalf("advance(%q, %d): start %d", class, position, s.start(class))
		}
		// A class that is not valid UTF-8 would be rewritten by encoding/json, losing a
		// filtered run's progress: replays refuse it (and every class CheckErrorClass
		// refuses), and every class they take survives the commit metadata.
		if class != "" && CheckErrorClass(class) != nil {
			return
		}
		if !utf8.ValidString(class) {
			t.Fatalf("CheckErrorClass accepts %q, which is not valid UTF-8", class)
		}
		if back, err := parseReplayState(s.next, s.metadata(), logStart); err != nil || !maps.Equal(back.classes, s.classes) {
			t.Fatalf("round trip after advance: %+v, %v", back, err)
		}
	})
}
