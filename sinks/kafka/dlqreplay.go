package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	kafkago "github.com/segmentio/kafka-go"
)

// ReplayAction is what a replay does with one dead letter.
type ReplayAction int

// What a replay does with a dead letter, in the order it decides.
const (
	// ReplayProduce: produced back to its source topic (or, in a dry run, it would be).
	ReplayProduce ReplayAction = iota
	// ReplayAlreadyDone: replayed by an earlier run restricted to its error class.
	ReplayAlreadyDone
	// ReplaySkipFilter: another error class than the one asked for; left for a later run.
	ReplaySkipFilter
	// ReplayTruncated: the dead letter keeps only a prefix of the value (it was over
	// kafka.max_record_bytes); it is never replayed, only counted, and not counted again.
	ReplayTruncated
	// ReplayDuplicate: another dead letter of the same source message (same
	// raterd-source-topic, -partition and -offset: the record was dead-lettered again, as
	// by raterd run --from) was replayed earlier in the run, or found replayed by an
	// earlier run restricted to its class; skipped, so the source message is replayed once.
	ReplayDuplicate
)

// String is the action as the replay's output names it.
func (a ReplayAction) String() string {
	switch a {
	case ReplayProduce:
		return "replay"
	case ReplayAlreadyDone:
		return "already replayed"
	case ReplaySkipFilter:
		return "skipped by filter"
	case ReplayTruncated:
		return "truncated"
	case ReplayDuplicate:
		return "duplicate"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// ReplayLetter is one dead letter as a replay read it, and what it does with it.
type ReplayLetter struct {
	// Topic, Partition and Offset locate the dead letter in its dead-letter topic.
	Topic     string
	Partition int
	Offset    int64
	// ErrorClass and Error come from the raterd-error-class and raterd-error headers.
	ErrorClass, Error string
	// SourceTopic is where the letter is replayed to: the topic of the dead-letter topic.
	SourceTopic string
	// OriginTopic is the raterd-source-topic header, the topic the original message was
	// read from ("" without it); raterd's dead letters have SourceTopic there.
	OriginTopic string
	// SourcePartition and SourceOffset locate the original message; -1 when the headers
	// lack them (the replay then picks the partition by key).
	SourcePartition int
	SourceOffset    int64
	// OriginalSize is the size of the original value when the letter keeps only a prefix.
	OriginalSize int
	// Replays is how often the original message was replayed before (its raterd-replays).
	Replays int
	// Key is the original message's key.
	Key []byte
	// Size is the number of value bytes the dead letter holds.
	Size int
	// Action is what the run does with the letter.
	Action ReplayAction
	// DuplicateOf is, when Action is ReplayDuplicate, the coordinates (see Coordinates) of
	// the earlier dead letter of the same source message.
	DuplicateOf string
}

// Coordinates is "<dlq topic>/<partition>/<offset>", the value of HeaderReplayedFrom.
func (l ReplayLetter) Coordinates() string {
	return l.Topic + "/" + strconv.Itoa(l.Partition) + "/" + strconv.FormatInt(l.Offset, 10)
}

// parseDeadLetter reads a dead letter's raterd headers. The dead-letter headers
// (isDeadLetterHeader) count only in raterd's block: from the last HeaderErrorClass on,
// which raterd writes first of its headers, after the original ones (all of the headers
// when there is none, a letter not written by raterd). An input message's forged
// dead-letter headers come before that block (and a current raterd renames them, see
// HeaderInputPrefix), so they are never read. HeaderReplays is read from anywhere: the
// replay sets it on the source message, and a letter of a replayed message keeps it among
// the original headers. When a header repeats, the last one counts.
func parseDeadLetter(m kafkago.Message, sourceTopic string) ReplayLetter {
	l := ReplayLetter{
		Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, SourceTopic: sourceTopic,
		SourcePartition: -1, SourceOffset: -1, Key: m.Key, Size: len(m.Value),
	}
	block := raterdBlock(m.Headers)
	for i, h := range m.Headers {
		if i < block && isDeadLetterHeader(h.Key) {
			continue
		}
		v := string(h.Value)
		switch h.Key {
		case HeaderErrorClass:
			l.ErrorClass = v
		case HeaderError:
			l.Error = v
		case HeaderSourceTopic:
			l.OriginTopic = v
		case HeaderSourcePartition:
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				l.SourcePartition = n
			}
		case HeaderSourceOffset:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				l.SourceOffset = n
			}
		case HeaderOriginalSize:
			// Present means truncated, whatever its value says.
			l.OriginalSize = 1
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				l.OriginalSize = n
			}
		case HeaderReplays:
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				l.Replays = n
			}
		}
	}
	return l
}

// raterdBlock is the index of the last HeaderErrorClass of hs, where the headers raterd
// appended to a dead letter start; 0 when there is none.
func raterdBlock(hs []kafkago.Header) int {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == HeaderErrorClass {
			return i
		}
	}
	return 0
}

// replayMessage is the message a dead letter is replayed as: its original key, value and
// headers (without raterd's), plus HeaderReplayedFrom and HeaderReplays, for the source
// partition when known (Partition -1 otherwise: the balancer picks one by key).
// HeaderReplays saturates at the largest int rather than wrapping around.
func replayMessage(m kafkago.Message, l ReplayLetter) kafkago.Message {
	hs := make([]kafkago.Header, 0, len(m.Headers)+2)
	for _, h := range m.Headers {
		if !strings.HasPrefix(h.Key, raterdHeaderPrefix) {
			hs = append(hs, h)
		}
	}
	hs = append(hs,
		kafkago.Header{Key: HeaderReplayedFrom, Value: []byte(l.Coordinates())},
		kafkago.Header{Key: HeaderReplays, Value: []byte(strconv.Itoa(min(l.Replays, math.MaxInt-1) + 1))},
	)
	return kafkago.Message{Topic: l.SourceTopic, Partition: l.SourcePartition, Key: m.Key, Value: m.Value, Headers: hs}
}

// replayState is a replay group's progress on one dead-letter partition: every letter
// below next is done, and so is every letter of class c below classes[c] (set by runs
// restricted to one error class, which leave other classes for later). It is stored as
// the group's committed offset (next) and the commit's metadata (classes), in one commit.
type replayState struct {
	next    int64
	classes map[string]int64
}

// replayMetadata is the JSON form of replayState.classes in the commit metadata.
type replayMetadata struct {
	V       int              `json:"v"`
	Classes map[string]int64 `json:"classes,omitempty"`
}

// parseReplayState reads a committed offset (-1: none) and its metadata; logStart is the
// partition's first offset.
func parseReplayState(committed int64, metadata string, logStart int64) (replayState, error) {
	s := replayState{next: max(committed, logStart, 0), classes: map[string]int64{}}
	if metadata == "" {
		return s, nil
	}
	var md replayMetadata
	if err := json.Unmarshal([]byte(metadata), &md); err != nil || md.V != 1 {
		return s, fmt.Errorf("commit metadata %q is not a raterd replay state", metadata)
	}
	for c, off := range md.Classes {
		if off > s.next {
			s.classes[c] = off
		}
	}
	return s, nil
}

// metadata is the commit metadata for s ("" when no class is ahead of next).
func (s replayState) metadata() string {
	if len(s.classes) == 0 {
		return ""
	}
	b, _ := json.Marshal(replayMetadata{V: 1, Classes: s.classes})
	return string(b)
}

// start is the first offset a run for class (all classes when "") has to read.
func (s replayState) start(class string) int64 {
	if class == "" {
		return s.next
	}
	return max(s.next, s.classes[class])
}

// done reports whether the letter of class at offset was handled by an earlier run.
func (s replayState) done(class string, offset int64) bool {
	return offset < s.next || offset < s.classes[class]
}

// advance records that a run for class (all when "") handled every letter it read below
// position.
func (s *replayState) advance(class string, position int64) {
	if class == "" {
		s.next = max(s.next, position)
		for c, off := range s.classes {
			if off <= s.next {
				delete(s.classes, c)
			}
		}
		return
	}
	if position > s.next && position > s.classes[class] {
		s.classes[class] = position
	}
}

// decide says what a run for class does with l.
func (s replayState) decide(class string, l ReplayLetter) ReplayAction {
	switch {
	case s.done(l.ErrorClass, l.Offset):
		return ReplayAlreadyDone
	case class != "" && l.ErrorClass != class:
		return ReplaySkipFilter
	case l.OriginalSize > 0:
		return ReplayTruncated
	}
	return ReplayProduce
}

// maxErrorClassBytes bounds an error class a replay filters by: raterd's classes are short
// names, and the class goes into the commit metadata, which brokers cap (4 KiB by default).
const maxErrorClassBytes = 200

// CheckErrorClass says why class cannot be an error class to replay (nil when it can): a
// class is a short name of printable characters without spaces, valid UTF-8 (a filtered
// run stores its progress under the class in JSON commit metadata, which would rewrite
// invalid UTF-8 and so lose that progress).
func CheckErrorClass(class string) error {
	switch {
	case class == "":
		return errors.New("empty")
	case !utf8.ValidString(class):
		return errors.New("not valid UTF-8")
	case len(class) > maxErrorClassBytes:
		return fmt.Errorf("%d bytes, over %d", len(class), maxErrorClassBytes)
	case strings.ContainsFunc(class, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		return errors.New("contains a space or a character that is not printable")
	}
	return nil
}

// DLQReplayConfig configures ReplayDeadLetters.
type DLQReplayConfig struct {
	// Brokers are the Kafka bootstrap addresses. Required.
	Brokers []string
	// Sources are the source topics; their dead-letter topics (DLQTopic) are read and each
	// letter is produced back to the topic it came from. Required.
	Sources []string
	// GroupID is the consumer group that holds the replay's progress. Required.
	GroupID string
	// ErrorClass, when set, replays only dead letters of this class (raterd-error-class);
	// the others stay replayable by a later run.
	ErrorClass string
	// DryRun reads and reports, and neither produces nor commits nor joins the group.
	DryRun bool
	// Limit is the most dead letters replayed; 0: no limit.
	Limit int
	// MaxRecordBytes is kafka.max_record_bytes, the size cap of a message value: a dead
	// letter holds at most that much value plus headers (the headroom DeadLetters
	// allows). Default 1 MiB.
	MaxRecordBytes int
	// BatchSize is how many letters are produced, then committed, at once. Default 256.
	BatchSize int
	// Dialer connects the replay's consumer group; nil: kafka-go's default (plaintext).
	// Pass consumer.Config.Dialer() for the config's TLS and SASL.
	Dialer *kafkago.Dialer
	// Transport connects the replay's client and producer; nil: a plaintext one of its
	// own. Pass consumer.Config.Transport() for the config's TLS and SASL. The replay
	// closes its idle connections when it returns.
	Transport *kafkago.Transport
	// OnLetter, when set, is called with every dead letter read and its action, before it
	// is produced.
	OnLetter func(ReplayLetter)
	// OnProgress, when set, is called when a partition starts, after every batch and when
	// a partition ends.
	OnProgress func(ReplayProgress)
}

// ReplayProgress is where a replay stands.
type ReplayProgress struct {
	Topic     string
	Partition int
	// Start, Position and End are the partition's first offset to read, the next offset
	// to read and the end offset seen at start.
	Start, Position, End int64
	// Done is set on the last call for the partition.
	Done bool
	// Totals are the totals of the run so far.
	Totals DLQReplayStats
}

// DLQReplayStats are a replay's totals.
type DLQReplayStats struct {
	Partitions      int   // dead-letter partitions read
	Read            int64 // dead letters read
	Replayed        int64 // produced back and acknowledged (dry run: that would be)
	AlreadyReplayed int64 // handled by an earlier run restricted to their class
	Duplicates      int64 // another letter of the same source message was replayed (ReplayDuplicate): skipped
	SkippedByFilter int64 // of another error class than asked for
	Truncated       int64 // only a prefix kept: never replayed
	Errors          int64 // failed to produce
	// Classes counts the letters read per error class.
	Classes map[string]int64
	// MissingTopics are dead-letter topics that do not exist (nothing was dead-lettered).
	MissingTopics []string
	// Unassigned counts dead-letter partitions the group gave to another member (another
	// replay running at the same time): this run did not read them.
	Unassigned int
	// LimitReached is set when the run stopped at Limit.
	LimitReached bool
}

func (s *DLQReplayStats) count(l ReplayLetter) {
	s.Read++
	if s.Classes == nil {
		s.Classes = map[string]int64{}
	}
	s.Classes[l.ErrorClass]++
	switch l.Action {
	case ReplayProduce:
		s.Replayed++
	case ReplayAlreadyDone:
		s.AlreadyReplayed++
	case ReplaySkipFilter:
		s.SkippedByFilter++
	case ReplayTruncated:
		s.Truncated++
	case ReplayDuplicate:
		s.Duplicates++
	}
}

// sourcePartitionBalancer sends a message to the partition it names (its source
// partition), or by key when it names none or one the topic does not have.
type sourcePartitionBalancer struct{ hash kafkago.Hash }

// Balance implements kafkago.Balancer.
func (b *sourcePartitionBalancer) Balance(msg kafkago.Message, partitions ...int) int {
	if msg.Partition >= 0 && slices.Contains(partitions, msg.Partition) {
		return msg.Partition
	}
	return b.hash.Balance(msg, partitions...)
}

// ReplayDeadLetters re-injects dead letters into their source topics after a fix: it reads
// the dead-letter topic of every source topic, and produces each letter back to the topic
// and partition it came from, with its original key, value and headers, without raterd's
// headers but with HeaderReplayedFrom and HeaderReplays.
//
// Progress is a consumer group (cfg.GroupID) that the run joins: on each partition it
// assigns, the run reads from the group's committed position to the end offset seen at
// the start, so it terminates; it commits after each batch only once the brokers
// acknowledged every produced message (acks=all), so a second run does not replay a
// letter twice. A crash between a produce and its commit replays at most that batch again
// (raterd's score rows are idempotent). A run restricted to an error class records its
// progress for that class alone (in the commit metadata): letters of other classes stay
// replayable. Truncated letters are counted and never replayed.
//
// A run replays each source message at most once: a dead letter whose source coordinates
// (raterd-source-topic, -partition, -offset) are those of a letter the run replayed or
// selected before, or found replayed by an earlier run restricted to its class, is a
// ReplayDuplicate (counted in Duplicates, not produced, committed past like the others).
// raterd run --from dead-letters the invalid records of its range again, so each has two
// letters. The run keeps one entry (a 16-byte key and the first letter's 16-byte
// position; under 100 bytes with the map's overhead) per such source message: at most one
// per dead letter in its range, from its start to the end offsets seen at start. Letters
// without those headers are not deduplicated. Nothing is kept across runs: a letter whose
// source message was replayed from a letter behind the group's committed offset (by an
// earlier run) is replayed again.
//
// The stats are returned with the error, which ends the run at the first failure.
func ReplayDeadLetters(ctx context.Context, cfg DLQReplayConfig) (DLQReplayStats, error) {
	var stats DLQReplayStats
	switch {
	case len(cfg.Brokers) == 0:
		return stats, errors.New("dlq replay: kafka.brokers: at least one broker is required")
	case len(cfg.Sources) == 0:
		return stats, errors.New("dlq replay: kafka.topics: at least one topic is required")
	case cfg.GroupID == "":
		return stats, errors.New("dlq replay: group_id: required")
	case cfg.Limit < 0:
		return stats, fmt.Errorf("dlq replay: limit: %d is negative", cfg.Limit)
	case cfg.MaxRecordBytes < 0:
		return stats, fmt.Errorf("dlq replay: kafka.max_record_bytes: %d is negative", cfg.MaxRecordBytes)
	}
	if cfg.ErrorClass != "" {
		if err := CheckErrorClass(cfg.ErrorClass); err != nil {
			return stats, fmt.Errorf("dlq replay: error class %q: %w", cfg.ErrorClass, err)
		}
	}
	if cfg.MaxRecordBytes == 0 {
		cfg.MaxRecordBytes = 1 << 20
	}
	maxMessageBytes := cfg.MaxRecordBytes + dlqHeadroom
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 256
	}
	// Not kafka-go's shared DefaultTransport, whose metadata cache can be seconds stale.
	tr := cfg.Transport
	if tr == nil {
		tr = &kafkago.Transport{}
	}
	defer tr.CloseIdleConnections()
	client := &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr}

	sourceOf := map[string]string{}
	dlqs := make([]string, 0, len(cfg.Sources))
	for _, s := range cfg.Sources {
		sourceOf[DLQTopic(s)] = s
		dlqs = append(dlqs, DLQTopic(s))
	}
	meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: dlqs})
	if err != nil {
		return stats, fmt.Errorf("dlq replay: metadata of %v: %w", dlqs, err)
	}
	partitions := map[string][]int{}
	for _, t := range meta.Topics {
		switch {
		case errors.Is(t.Error, kafkago.UnknownTopicOrPartition):
		case t.Error != nil:
			return stats, fmt.Errorf("dlq replay: metadata of %s: %w", t.Name, t.Error)
		default:
			for _, p := range t.Partitions {
				partitions[t.Name] = append(partitions[t.Name], p.ID)
			}
		}
	}
	var existing []string
	for _, d := range dlqs {
		if len(partitions[d]) == 0 {
			stats.MissingTopics = append(stats.MissingTopics, d)
		} else {
			existing = append(existing, d)
		}
	}
	if len(existing) == 0 {
		return stats, nil
	}

	r := &replayer{cfg: cfg, client: client, sourceOf: sourceOf, stats: &stats, maxMessageBytes: maxMessageBytes, dedup: newReplayDedup(cfg.Sources)}
	assigned := partitions
	if !cfg.DryRun {
		// Joining the group keeps two replays from replaying the same partition: each
		// member gets its own partitions, and a member that joins later ends the
		// generation, which fails the other's next commit.
		cg, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
			ID: cfg.GroupID, Brokers: cfg.Brokers, Topics: existing, StartOffset: kafkago.FirstOffset, Dialer: cfg.Dialer,
			Timeout: 10 * time.Second, JoinGroupBackoff: time.Second,
		})
		if err != nil {
			return stats, fmt.Errorf("dlq replay: consumer group %s: %w", cfg.GroupID, err)
		}
		defer cg.Close()
		gen, err := cg.Next(ctx)
		if err != nil {
			return stats, fmt.Errorf("dlq replay: join consumer group %s: %w", cfg.GroupID, err)
		}
		r.gen = gen
		assigned = map[string][]int{}
		for topic, as := range gen.Assignments {
			for _, a := range as {
				assigned[topic] = append(assigned[topic], a.ID)
			}
		}
		r.writer = &kafkago.Writer{
			Addr:         kafkago.TCP(cfg.Brokers...),
			Balancer:     &sourcePartitionBalancer{},
			RequiredAcks: kafkago.RequireAll,
			BatchTimeout: time.Millisecond, // WriteMessages is called with whole batches
			BatchBytes:   int64(maxMessageBytes),
			Transport:    tr,
		}
		defer r.writer.Close()
	}
	if len(assigned) == 0 {
		return stats, fmt.Errorf("dlq replay: consumer group %s assigned no partition to this run: is another replay running?", cfg.GroupID)
	}
	for topic, ids := range partitions {
		stats.Unassigned += len(ids) - len(assigned[topic])
	}

	states, err := r.loadStates(ctx, assigned)
	if err != nil {
		return stats, err
	}
	topics := make([]string, 0, len(assigned))
	for t := range assigned {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, topic := range topics {
		ids := slices.Clone(assigned[topic])
		sort.Ints(ids)
		for _, id := range ids {
			if stats.LimitReached {
				return stats, nil
			}
			stats.Partitions++
			if err := r.replayPartition(ctx, topic, id, states[topicPartition{topic, id}]); err != nil {
				return stats, err
			}
		}
	}
	return stats, nil
}

// topicPartition keys the per-partition state of a replay.
type topicPartition struct {
	topic     string
	partition int
}

// partitionState is what a replay knows of a partition when it starts.
type partitionState struct {
	state      replayState
	start, end int64
}

// replayer runs one ReplayDeadLetters call.
type replayer struct {
	cfg             DLQReplayConfig
	maxMessageBytes int // the largest dead letter: value and headers
	client          *kafkago.Client
	gen             *kafkago.Generation // nil in a dry run
	writer          *kafkago.Writer     // nil in a dry run
	sourceOf        map[string]string
	stats           *DLQReplayStats
	dedup           *replayDedup // the source messages replayed so far in the run
}

// loadStates reads the group's committed positions and the partitions' offsets.
func (r *replayer) loadStates(ctx context.Context, assigned map[string][]int) (map[topicPartition]partitionState, error) {
	committed, err := r.client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: r.cfg.GroupID, Topics: assigned})
	if err != nil {
		return nil, fmt.Errorf("dlq replay: committed offsets of group %s: %w", r.cfg.GroupID, err)
	}
	if committed.Error != nil {
		return nil, fmt.Errorf("dlq replay: committed offsets of group %s: %w", r.cfg.GroupID, committed.Error)
	}
	firsts := map[string][]kafkago.OffsetRequest{}
	lasts := map[string][]kafkago.OffsetRequest{}
	for topic, ids := range assigned {
		for _, id := range ids {
			firsts[topic] = append(firsts[topic], kafkago.FirstOffsetOf(id))
			lasts[topic] = append(lasts[topic], kafkago.LastOffsetOf(id))
		}
	}
	first, err := r.client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: firsts})
	if err != nil {
		return nil, fmt.Errorf("dlq replay: first offsets: %w", err)
	}
	last, err := r.client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: lasts})
	if err != nil {
		return nil, fmt.Errorf("dlq replay: end offsets: %w", err)
	}
	out := map[topicPartition]partitionState{}
	for topic, ps := range first.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("dlq replay: first offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			out[topicPartition{topic, p.Partition}] = partitionState{start: p.FirstOffset, end: -1}
		}
	}
	for topic, ps := range last.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("dlq replay: end offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			key := topicPartition{topic, p.Partition}
			s := out[key]
			s.end = p.LastOffset
			out[key] = s
		}
	}
	commits := map[topicPartition]kafkago.OffsetFetchPartition{}
	for topic, ps := range committed.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("dlq replay: committed offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			commits[topicPartition{topic, p.Partition}] = p
		}
	}
	for topic, ids := range assigned {
		for _, id := range ids {
			key := topicPartition{topic, id}
			s, ok := out[key]
			if !ok || s.end < 0 {
				return nil, fmt.Errorf("dlq replay: no offsets for %s/%d", topic, id)
			}
			c, ok := commits[key]
			if !ok {
				c.CommittedOffset = -1
			}
			st, err := parseReplayState(c.CommittedOffset, c.Metadata, s.start)
			if err != nil {
				return nil, fmt.Errorf("dlq replay: group %s, %s/%d: %w", r.cfg.GroupID, topic, id, err)
			}
			s.state = st
			s.start = st.start(r.cfg.ErrorClass)
			out[key] = s
		}
	}
	return out, nil
}

// replayPartition replays one dead-letter partition from its start to the end offset seen
// when the run started.
func (r *replayer) replayPartition(ctx context.Context, topic string, partition int, ps partitionState) error {
	progress := func(position int64, done bool) {
		if r.cfg.OnProgress != nil {
			r.cfg.OnProgress(ReplayProgress{Topic: topic, Partition: partition, Start: ps.start, Position: position, End: ps.end, Done: done, Totals: *r.stats})
		}
	}
	progress(ps.start, false)
	if ps.start >= ps.end {
		progress(ps.start, true)
		return nil
	}
	reader := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: r.cfg.Brokers, Topic: topic, Partition: partition,
		MinBytes: 1, MaxBytes: max(2*r.maxMessageBytes, 10<<20), MaxWait: 250 * time.Millisecond,
	})
	defer reader.Close()
	if err := reader.SetOffset(ps.start); err != nil {
		return fmt.Errorf("dlq replay: %s/%d: seek to %d: %w", topic, partition, ps.start, err)
	}
	state := ps.state
	position := ps.start
	var batch []kafkago.Message
	var offsets []int64
	batchBytes := 0
	flush := func() error {
		defer func() { batch, offsets, batchBytes = batch[:0], offsets[:0], 0 }()
		if r.cfg.DryRun {
			return nil
		}
		done := position
		var werr error
		if len(batch) > 0 {
			if err := r.writer.WriteMessages(ctx, batch...); err != nil {
				// Whatever came before the first failed message is acknowledged; commit
				// up to it, so that a rerun starts there.
				failed := len(batch)
				done = offsets[0]
				var we kafkago.WriteErrors
				if errors.As(err, &we) && len(we) == len(batch) {
					first := slices.IndexFunc(we, func(e error) bool { return e != nil })
					failed = we.Count()
					if first >= 0 {
						done = offsets[first]
					}
				}
				r.stats.Replayed -= int64(failed)
				r.stats.Errors += int64(failed)
				werr = fmt.Errorf("dlq replay: produce %d dead letters of %s/%d back to %s: %w", len(batch), topic, partition, r.sourceOf[topic], err)
			}
		}
		state.advance(r.cfg.ErrorClass, done)
		if err := r.commit(ctx, topic, partition, state); err != nil {
			return errors.Join(werr, err)
		}
		return werr
	}
	for position < ps.end {
		m, err := reader.FetchMessage(ctx)
		if err != nil {
			readErr := fmt.Errorf("dlq replay: read %s/%d at %d: %w", topic, partition, position, err)
			if ctx.Err() != nil {
				// Interrupted: the batch was neither produced nor committed (a rerun reads
				// it again), so it is no failure to produce, and not replayed either.
				if !r.cfg.DryRun {
					r.stats.Replayed -= int64(len(batch))
				}
				return readErr
			}
			return errors.Join(readErr, flush())
		}
		if m.Offset >= ps.end {
			break
		}
		l := parseDeadLetter(m, r.sourceOf[topic])
		l.Action = state.decide(r.cfg.ErrorClass, l)
		r.dedup.apply(&l)
		r.stats.count(l)
		if r.cfg.OnLetter != nil {
			r.cfg.OnLetter(l)
		}
		position = m.Offset + 1
		if l.Action == ReplayProduce {
			batch = append(batch, replayMessage(m, l))
			offsets = append(offsets, m.Offset)
			batchBytes += len(m.Value) + len(m.Key)
		}
		limit := r.cfg.Limit > 0 && r.stats.Replayed >= int64(r.cfg.Limit)
		if limit || len(batch) >= r.cfg.BatchSize || batchBytes >= 16<<20 {
			if err := flush(); err != nil {
				return err
			}
			progress(position, false)
		}
		if limit {
			r.stats.LimitReached = true
			break
		}
	}
	if err := flush(); err != nil {
		return err
	}
	progress(position, true)
	return nil
}

// commit stores the partition's state as the group's committed offset and metadata, as
// the member of the generation the run joined.
func (r *replayer) commit(ctx context.Context, topic string, partition int, s replayState) error {
	resp, err := r.client.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{
		GroupID: r.cfg.GroupID, GenerationID: int(r.gen.ID), MemberID: r.gen.MemberID,
		Topics: map[string][]kafkago.OffsetCommit{topic: {{Partition: partition, Offset: s.next, Metadata: s.metadata()}}},
	})
	if err != nil {
		return fmt.Errorf("dlq replay: commit %s/%d for group %s: %w", topic, partition, r.cfg.GroupID, err)
	}
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error == nil {
				continue
			}
			if errors.Is(p.Error, kafkago.RebalanceInProgress) || errors.Is(p.Error, kafkago.IllegalGeneration) || errors.Is(p.Error, kafkago.UnknownMemberId) {
				return fmt.Errorf("dlq replay: commit %s/%d: group %s rebalanced (another replay joined?); run again to go on from the last commit: %w", topic, partition, r.cfg.GroupID, p.Error)
			}
			return fmt.Errorf("dlq replay: commit %s/%d for group %s: %w", topic, partition, r.cfg.GroupID, p.Error)
		}
	}
	return nil
}
