package cache

import (
	"encoding/binary"
	"time"
)

// envelopeHeader is the size of the expiry that precedes every value stored in Redis:
// the unix time in nanoseconds at which the value expires, big-endian.
const envelopeHeader = 8

// maxEnvelopeTTL bounds the TTL stored in an envelope, and so how far ahead of now a
// decoded expiry may lie. A value written in an older format (plain JSON, text) reads as
// an expiry decades ahead and is rejected by this bound rather than served as a payload.
const maxEnvelopeTTL = 366 * 24 * time.Hour

// encodeEnvelope returns [8-byte big-endian unix-nanosecond expiry][payload].
func encodeEnvelope(expires time.Time, payload []byte) []byte {
	b := make([]byte, envelopeHeader+len(payload))
	binary.BigEndian.PutUint64(b, uint64(expires.UnixNano()))
	copy(b[envelopeHeader:], payload)
	return b
}

// decodeEnvelope splits a stored value into its expiry and payload. ok is false for a
// value that is not a live envelope as of now: too short, or an expiry that is not after
// now or lies more than maxEnvelopeTTL ahead (an older format, corruption, or a value
// past its expiry that Redis has not dropped yet). The payload aliases b and is non-nil
// when ok, even when empty.
func decodeEnvelope(b []byte, now time.Time) (expires time.Time, payload []byte, ok bool) {
	if len(b) < envelopeHeader {
		return time.Time{}, nil, false
	}
	ns := int64(binary.BigEndian.Uint64(b))
	nowNS := now.UnixNano()
	if ns <= nowNS || ns-nowNS > int64(maxEnvelopeTTL) {
		return time.Time{}, nil, false
	}
	return time.Unix(0, ns), b[envelopeHeader:], true
}
