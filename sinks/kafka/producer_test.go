package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	kafkago "github.com/segmentio/kafka-go"

	"raterd/record"
	"raterd/sinks"
)

func TestDLQTopic(t *testing.T) {
	tests := map[string]string{
		"traffic":          "traffic.dlq",
		"llm.requests.v1":  "llm.requests.v1.dlq",
		"traffic.dlq":      "traffic.dlq.dlq",
		"":                 ".dlq",
		"tenant_a-traffic": "tenant_a-traffic.dlq",
	}
	for in, want := range tests {
		if got := DLQTopic(in); got != want {
			t.Errorf("DLQTopic(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestClassify: authorization and invalid-request errors of the brokers are permanent;
// passing ones (leader moves, timeouts, an unknown partition while a topic is created)
// are not.
func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{kafkago.TopicAuthorizationFailed, ClassAuthorization},
		{kafkago.ClusterAuthorizationFailed, ClassAuthorization},
		{kafkago.SASLAuthenticationFailed, ClassAuthorization},
		{fmt.Errorf("write: %w", kafkago.InvalidTopic), ClassInvalid},
		{kafkago.RecordListTooLarge, ClassMessageTooLarge},
		{kafkago.NotLeaderForPartition, ""},
		{kafkago.LeaderNotAvailable, ""},
		{kafkago.UnknownTopicOrPartition, ""},
		{kafkago.RequestTimedOut, ""},
		{context.DeadlineExceeded, ""},
		{errors.New("dial tcp: connection refused"), ""},
	}
	for _, tt := range tests {
		if got := sinks.PermanentClass(classify(tt.err)); got != tt.want {
			t.Errorf("classify(%v): class %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestPendingLetterCut: the value is cut first (when over DLQKeepBytes), then the
// original headers are clipped in order within DLQKeepHeaderBytes, the dropped ones
// counted, and raterd-error clipped; then there is nothing more to cut.
func TestPendingLetterCut(t *testing.T) {
	l := pendingLetter{d: record.DeadLetter{
		Value: make([]byte, DLQKeepBytes+1), Error: strings.Repeat("e", 3*DLQKeepErrorBytes),
		Headers: []record.Header{{Key: "a", Value: []byte("1")}, {Key: "big", Value: make([]byte, DLQKeepHeaderBytes)}, {Key: "b", Value: []byte("2")}},
	}}
	if !l.cut() || l.step != stepValueCut || len(l.d.Value) != DLQKeepBytes || l.d.OriginalSize != DLQKeepBytes+1 || len(l.d.Headers) != 3 {
		t.Fatalf("first cut: step %d, value %d bytes, original size %d, %d headers", l.step, len(l.d.Value), l.d.OriginalSize, len(l.d.Headers))
	}
	if !l.cut() || l.step != stepHeadersClipped || l.dropped != 1 || len(l.d.Headers) != 2 || l.d.Headers[0].Key != "a" || l.d.Headers[1].Key != "b" {
		t.Fatalf("second cut: step %d, dropped %d, headers %v", l.step, l.dropped, l.d.Headers)
	}
	if len(l.d.Error) > DLQKeepErrorBytes+len("…") {
		t.Errorf("raterd-error kept %d bytes", len(l.d.Error))
	}
	m := l.message()
	if v, _ := headerPresent(m, HeaderHeadersClipped); v != "1" || header(m, HeaderSourceOffset) == "" {
		t.Errorf("message headers %v", m.Headers)
	}
	if l.cut() {
		t.Error("a third cut")
	}
}
