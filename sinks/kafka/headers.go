package kafka

// The dead-letter header contract: every raterd-* header raterd sets on a Kafka message,
// in one place. The DLQ producer (DeadLetters) writes the dead-letter headers; the replay
// (ReplayDeadLetters) reads them, drops every header that starts with raterdHeaderPrefix,
// and sets the replay headers.

// raterdHeaderPrefix starts every header raterd adds to a message.
const raterdHeaderPrefix = "raterd-"

// Dead-letter headers: every dead letter carries why it was rejected and where it came
// from, after the original message's headers.
const (
	// HeaderErrorClass is the reason class of the rejection (invalid_json, too_large, …).
	HeaderErrorClass = "raterd-error-class"
	// HeaderError is the error text.
	HeaderError = "raterd-error"
	// HeaderSourceTopic is the topic the original message was read from.
	HeaderSourceTopic = "raterd-source-topic"
	// HeaderSourcePartition is the original message's partition, in decimal.
	HeaderSourcePartition = "raterd-source-partition"
	// HeaderSourceOffset is the original message's offset, in decimal.
	HeaderSourceOffset = "raterd-source-offset"
	// HeaderAttempts is how many times the message was tried before it was dead-lettered.
	HeaderAttempts = "raterd-attempts"
	// HeaderFirstSeen is when raterd first saw the message (RFC 3339, UTC).
	HeaderFirstSeen = "raterd-first-seen"
	// HeaderOriginalSize is set when the dead letter carries only a prefix of the value:
	// the size of the original value, in decimal.
	HeaderOriginalSize = "raterd-original-size"
	// HeaderHeadersClipped is set when the dead letter was too large for its topic even
	// with its value cut, so its original headers were clipped: how many of them were
	// dropped, in decimal (the first that fit DLQKeepHeaderBytes are kept, in order), and
	// raterd-error is cut to DLQKeepErrorBytes. The other raterd-* headers are all kept.
	HeaderHeadersClipped = "raterd-headers-clipped"
)

// HeaderInputPrefix starts the name an input message's own header gets on its dead letter
// when it is named like one of the dead-letter headers above: an input header
// "raterd-original-size" is kept as "raterd-input-raterd-original-size", so that every
// dead-letter header on a dead letter is raterd's own, exactly once, and a producer of the
// input cannot make a letter lie about its reason, source or truncation. Like every
// raterd-* header it is dropped on replay.
const HeaderInputPrefix = "raterd-input-"

// isDeadLetterHeader reports whether key is one of the headers DeadLetters sets (the
// constants above).
func isDeadLetterHeader(key string) bool {
	switch key {
	case HeaderErrorClass, HeaderError, HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset,
		HeaderAttempts, HeaderFirstSeen, HeaderOriginalSize, HeaderHeadersClipped:
		return true
	}
	return false
}

// Headers of a message replayed from a dead-letter topic. Every other raterd-* header of the
// dead letter is dropped on replay; the original headers are kept.
const (
	// HeaderReplayedFrom names the dead letter a message was replayed from:
	// "<dlq topic>/<partition>/<offset>".
	HeaderReplayedFrom = "raterd-replayed-from"
	// HeaderReplays counts the replays of a message: 1 on its first replay, and one more
	// each time it fails again, is dead-lettered (which keeps this header among the
	// original ones) and is replayed again.
	HeaderReplays = "raterd-replays"
)
