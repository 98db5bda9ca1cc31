package app

import (
	"strings"
	"testing"

	"raterd/record"
	"raterd/scorer/redact"
)

const redactConfig = `
kafka:
  brokers: [127.0.0.1:9092]
  topics: [llm-traffic]
clickhouse:
  addrs: [127.0.0.1:9000]
judges:
  checks: {type: heuristic}
  pool-a:
    type: openai
    model: prometheus-7b-v2.0
    endpoints: [{url: "http://127.0.0.1:8000/v1"}]
scoring:
  redact:
    types: [email, card]
    patterns:
      - {name: employee_id, pattern: '\bEMP-[0-9]{6}\b'}
evaluators:
  - {name: pii, judge: checks, check: pii}
  - {name: helpful, judge: pool-a, criteria: "Is it helpful?"}
  - {name: raw, judge: pool-a, criteria: "Is it helpful?", redact: off}
  - {name: all, judge: pool-a, criteria: "Is it helpful?", redact: {types: [all]}}
`

// TestRedactConfig: scoring.redact reaches model-judge evaluators (their inputs and
// rubric versions), an evaluator's redact overrides it, checks see the raw text.
func TestRedactConfig(t *testing.T) {
	noEnv := func(string) string { return "" }
	cfg, err := ParseConfig([]byte(redactConfig), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ParseConfig([]byte(validConfig), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	r := &record.Record{Prompt: "I am EMP-123456, mail bob@corp.io, call 555-123-4567"}
	r.Response = r.Prompt
	byName := map[string]string{}
	for _, e := range cfg.Evaluators {
		in := e.Inputs(r)
		byName[e.Name] = in[len(in)-1].Text // the response
	}
	want := map[string]string{
		"pii":     r.Prompt,
		"helpful": "I am [EMPLOYEE_ID], mail [EMAIL], call 555-123-4567",
		"raw":     r.Prompt,
		"all":     "I am EMP-123456, mail [EMAIL], call [PHONE]",
	}
	for name, w := range want {
		if byName[name] != w {
			t.Errorf("%s reads %q, want %q", name, byName[name], w)
		}
	}
	if cfg.Evaluators[0].Redactor() != nil || cfg.Evaluators[2].Redactor() != nil {
		t.Error("checks or redact: off got a redactor")
	}
	// The check's version is unchanged; redaction changes a model judge's.
	if cfg.Evaluators[0].RubricVersion() != plain.Evaluators[0].RubricVersion() {
		t.Error("scoring.redact changed the pii check's rubric version")
	}
	if cfg.Evaluators[1].RubricVersion() == plain.Evaluators[1].RubricVersion() ||
		cfg.Evaluators[2].RubricVersion() != plain.Evaluators[1].RubricVersion() ||
		cfg.Evaluators[3].RubricVersion() == cfg.Evaluators[1].RubricVersion() {
		t.Error("rubric versions do not follow the redact setting")
	}
	if !cfg.Evaluators[3].Redactor().Has(redact.TypeIP) {
		t.Error("types: [all] lacks ip")
	}
}

func TestRedactConfigErrors(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, c := range []struct{ edit, repl, want string }{
		{"types: [email, card]", "types: [email, cards]", `scoring.redact.types[1]: unknown type "cards"`},
		{"pattern: '\\bEMP-[0-9]{6}\\b'", "pattern: '('", `scoring.redact.patterns[0].pattern: error parsing regexp`},
		{"redact: off}", "redact: {types: [nope]}}", `evaluators[2] (raw).redact.types[0]: unknown type "nope"`},
		{"check: pii}", "check: pii, redact: {types: [email]}}", `evaluators[0] (pii).redact: the built-in checks read the raw text`},
		{"types: [email, card]", "typo: [email]", `unknown key "scoring.redact.typo"`},
		{"redact: off}", "redact: maybe}", `redact: "maybe" is neither off`},
	} {
		if !strings.Contains(redactConfig, c.edit) {
			t.Fatalf("%q is not in the config", c.edit)
		}
		_, err := ParseConfig([]byte(strings.Replace(redactConfig, c.edit, c.repl, 1)), noEnv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s → err %v, want %q", c.repl, err, c.want)
		}
	}
}
