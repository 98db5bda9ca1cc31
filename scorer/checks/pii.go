package checks

import (
	"fmt"
	"strings"

	"raterd/scorer/redact"
)

// NamePII is the name of the check that fails a response that carries personal data.
const NamePII = "pii"

// piiKinds are the kinds of personal data the pii check reports, in its explanation's
// order, with the words the explanation uses for them.
var piiKinds = []struct{ typ, suffix string }{
	{redact.TypeEmail, ""},
	{redact.TypePhone, ""},
	{redact.TypeCard, " (Luhn-valid)"},
	{redact.TypeIBAN, " (mod-97-valid)"},
	{redact.TypeSSN, ""},
	{redact.TypeIP, ""},
}

// checkPIIResponse fails a response that contains an e-mail address, a phone number, a
// payment card number, an IBAN, a US social security number or an IP address, as the
// detectors of package redact find them. The explanation names the types found and
// their counts, never the values, because it is stored in ClickHouse next to the score.
func checkPIIResponse(r *redact.Redactor, s string) Result {
	counts := r.Count(s)
	if len(counts) == 0 {
		return Result{Value: 1, Label: "clean", Confidence: 1, Explanation: "No e-mail address, phone number, payment card number, IBAN, US SSN or IP address found."}
	}
	var parts []string
	for _, k := range piiKinds {
		if n := counts[k.typ]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s×%d%s", k.typ, n, k.suffix))
		}
	}
	conf := 1.0
	if len(counts) == 1 && counts[redact.TypePhone] > 0 {
		conf = 0.8 // phone shapes are the loosest rule
	}
	return Result{Value: 0, Label: "pii", Confidence: conf, Explanation: "Found: " + strings.Join(parts, ", ") + "."}
}
