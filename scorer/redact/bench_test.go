package redact

import (
	"strings"
	"testing"
)

// benchText is prose of a prompt and response (about 2 KiB) with digits, dates and
// code but no personal data; benchPII adds four values.
var benchText = strings.Repeat("The deployment on 2024-03-18 moved 3 services to version 1.24.3; latency fell by 12.5% and the error rate to 0.03. "+
	"Run `kubectl rollout status deploy/api -n prod` and check the dashboard at https://grafana.internal/d/abc123?from=now-6h. ", 8)

const benchPII = " Mail jonas.becker@mailbox.de, call +49 30 12345678, card 4242 4242 4242 4242, IBAN DE89 3704 0044 0532 0130 00."

// BenchmarkRedact is the cost of one Redact call with every built-in type, per text;
// bytes/s counts the text.
func BenchmarkRedact(b *testing.B) {
	r := All()
	for _, bc := range []struct{ name, text string }{{"clean", benchText}, {"pii", benchText + benchPII}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.text)))
			b.ReportAllocs()
			for b.Loop() {
				_ = r.Redact(bc.text)
			}
		})
	}
}
