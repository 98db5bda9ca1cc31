package scorer

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"raterd/scorer/redact"
)

// Redaction is a redact setting (scoring.redact, or an evaluator's redact): which
// personal data to mask in the text sent to judges and in stored explanations. In YAML it
// is either "off" or a mapping with types and patterns:
//
//	redact:
//	  types: [email, phone, card, iban, us_ssn, ip]   # or [all]
//	  patterns:
//	    - {name: employee_id, pattern: '\bEMP-[0-9]{6}\b'}
type Redaction struct {
	// Off is set by "redact: off": mask nothing (an evaluator's off overrides
	// scoring.redact).
	Off bool `yaml:"-"`
	// Types are the built-in types to mask: email, phone, card, iban, us_ssn, ip, or all.
	Types []string `yaml:"types"`
	// Patterns are operator-supplied kinds of personal data, each {name, pattern} with an
	// RE2 pattern; matches are masked as "[NAME]".
	Patterns []redact.Pattern `yaml:"patterns"`
}

// UnmarshalYAML reads "off" (or false) or a mapping of types and patterns; unknown keys
// are errors, as with a strict decoder.
func (r *Redaction) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "off", "false":
			*r = Redaction{Off: true}
			return nil
		}
		return fmt.Errorf("line %d: redact: %q is neither off nor a mapping of types and patterns", n.Line, n.Value)
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch k := n.Content[i].Value; k {
			case "types", "patterns":
			default:
				return fmt.Errorf("line %d: field %s not found in type scorer.Redaction", n.Content[i].Line, k)
			}
		}
	}
	type plain Redaction // no methods: no recursion
	return n.Decode((*plain)(r))
}

// Redactor builds the Redactor of the setting, nil for off; key names the setting in
// errors (e.g. "scoring.redact").
func (r *Redaction) Redactor(key string) (*redact.Redactor, error) {
	if r == nil || r.Off {
		return nil, nil
	}
	return redact.New(key, redact.Config{Types: r.Types, Patterns: r.Patterns})
}
