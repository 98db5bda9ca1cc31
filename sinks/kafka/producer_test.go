package kafka

import "testing"

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
