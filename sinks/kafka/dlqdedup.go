package kafka

import (
	"math"
	"strconv"
)

// A source message can have several dead letters: `raterd run --from` rewinds the group
// over a range whose invalid records were dead-lettered before, and they are dead-lettered
// again, with the same raterd-source-topic, -partition and -offset. A replay run replays
// each source message at most once: replayDedup remembers the source coordinates of the
// letters the run replays (or finds replayed), and a later letter of the same source
// message is a ReplayDuplicate.

// sourceKey is a source message's coordinates in 16 bytes: the index of its topic among
// the run's source topics, its partition and its offset.
type sourceKey struct {
	topic     uint32
	partition int32
	offset    int64
}

// letterRef is the partition and offset of the first dead letter of a source message,
// within the dead-letter topic of that source (16 bytes with padding).
type letterRef struct {
	partition int32
	offset    int64
}

// replayDedup is the set of source messages one replay run has replayed, selected for
// replay, or found replayed by an earlier run restricted to their class. It holds at most
// one entry per dead letter the run reads, and the run reads at most, on each partition it
// is assigned, from its start to the end offset it saw when it started: its size is
// bounded by that range. An entry is 32 bytes of key and value, under 100 bytes with the
// map's overhead (45 to 85 on Go 1.26; TestReplayDedupMemory). It lives as long as the
// run; nothing is kept between runs.
type replayDedup struct {
	topics map[string]uint32 // source topic -> index in the run's sources
	seen   map[sourceKey]letterRef
}

// newReplayDedup returns an empty set for a run over the sources.
func newReplayDedup(sources []string) *replayDedup {
	d := &replayDedup{topics: make(map[string]uint32, len(sources)), seen: map[sourceKey]letterRef{}}
	for _, s := range sources {
		if _, ok := d.topics[s]; !ok {
			d.topics[s] = uint32(len(d.topics))
		}
	}
	return d
}

// key is l's source coordinates. There are none (false) when the letter lacks one of the
// raterd-source-topic, -partition and -offset headers, when its raterd-source-topic is
// not the topic it is replayed to, or when its source partition is beyond Kafka's int32.
func (d *replayDedup) key(l ReplayLetter) (sourceKey, bool) {
	topic, ok := d.topics[l.SourceTopic]
	if !ok || l.OriginTopic != l.SourceTopic || l.SourcePartition < 0 || l.SourcePartition > math.MaxInt32 || l.SourceOffset < 0 {
		return sourceKey{}, false
	}
	return sourceKey{topic: topic, partition: int32(l.SourcePartition), offset: l.SourceOffset}, true
}

// apply turns l, whose Action the replay state decided, into a ReplayDuplicate (with
// DuplicateOf set) when a letter of the same source message was replayed, or selected
// for replay, earlier in the run, or was found done by an earlier run restricted to its
// class; otherwise it remembers l when it is such a letter. Letters skipped by the filter
// are neither: a later run for their class replays them. Truncated letters are not
// remembered (the full value was never replayed), but one of a source message already
// replayed is a duplicate. A letter without source coordinates (see key) is left as it
// is.
func (d *replayDedup) apply(l *ReplayLetter) {
	if replayDedupOff {
		return
	}
	switch l.Action {
	case ReplayProduce, ReplayTruncated, ReplayAlreadyDone:
	default:
		return
	}
	k, ok := d.key(*l)
	if !ok {
		return
	}
	first, seen := d.seen[k]
	switch {
	case seen && l.Action != ReplayAlreadyDone:
		l.Action = ReplayDuplicate
		l.DuplicateOf = l.Topic + "/" + strconv.Itoa(int(first.partition)) + "/" + strconv.FormatInt(first.offset, 10)
	case seen, l.Action == ReplayTruncated, l.OriginalSize > 0, l.Partition < 0 || l.Partition > math.MaxInt32:
	default:
		d.seen[k] = letterRef{partition: int32(l.Partition), offset: l.Offset}
	}
}
