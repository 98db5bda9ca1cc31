package scorer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	"raterd/record"
)

// Task types, as in FLAMe's unified format.
const (
	// TaskPointwise rates one response on a numeric scale.
	TaskPointwise = "pointwise"
	// TaskClassification assigns one of a fixed set of labels.
	TaskClassification = "classification"
)

// Record fields an evaluator may read. Only the declared fields reach the judge and the
// cache key, so a prompt-only evaluator hits the cache on every repeated prompt.
const (
	FieldPrompt    = "prompt" // the prompt, or the chat messages rendered as text
	FieldResponse  = "response"
	FieldReference = "reference"
)

// knownFields lists the record fields an evaluator may read.
func knownFields() []string { return []string{FieldPrompt, FieldResponse, FieldReference} }

// Scale is the numeric range of a pointwise score.
type Scale struct {
	// Min is the lowest score. Default 1 (pointwise), 0 (heuristic checks).
	Min float64 `yaml:"min"`
	// Max is the highest score. Default 5 (pointwise), 1 (heuristic checks).
	Max float64 `yaml:"max"`
}

// Match restricts an evaluator to some traffic. Empty lists match everything.
type Match struct {
	// Models are path.Match globs over the record's model, e.g. "support-llm-*".
	Models []string `yaml:"models"`
	// Apps are path.Match globs over the record's app.
	Apps []string `yaml:"apps"`
}

// Evaluator is one quality question asked of live traffic (a rubric), loaded from the
// evaluators section of the config file.
type Evaluator struct {
	// Name identifies the evaluator in score rows and metrics. Required, unique.
	Name string `yaml:"name"`
	// Judge names the judge pool (a key of the judges section) that answers. Required.
	Judge string `yaml:"judge"`
	// Task is the task type: pointwise (default) or classification.
	Task string `yaml:"task"`
	// Check names the built-in check when Judge is a heuristic judge (refusal, empty,
	// truncated, repetition, pii, json). Must be empty for other judges.
	Check string `yaml:"check"`
	// Criteria is the evaluation criteria given to model judges. Required for them.
	Criteria string `yaml:"criteria"`
	// Scale is the pointwise range. Default 1–5 for model judges, 0–1 for checks.
	Scale Scale `yaml:"scale"`
	// Fields are the record fields the judge reads. Default [prompt, response].
	Fields []string `yaml:"fields"`
	// Match limits the evaluator to some models and apps. Default: all traffic.
	Match Match `yaml:"match"`
	// SampleRate is the share of matching records judged, in (0,1]. Deterministic on the
	// record id, so evaluators with equal rates judge the same records. Default 1; an
	// unset or 0 value means 1 (to stop an evaluator, remove it).
	SampleRate float64 `yaml:"sample_rate"`
	// CacheTTL is how long a verdict stays cached. Default 24h; 0 after defaults means
	// "default", a negative value is rejected.
	CacheTTL time.Duration `yaml:"cache_ttl"`

	rubricVersion string
}

// Prepare fills defaults and validates the evaluator; key is its position in the config
// (e.g. "evaluators[2]") so that errors name the bad key. isHeuristic says whether the
// named judge is a heuristic judge. It computes the rubric version.
func (e *Evaluator) Prepare(key string, isHeuristic bool) error {
	if e.Name == "" {
		return fmt.Errorf("%s.name: required", key)
	}
	key = fmt.Sprintf("%s (%s)", key, e.Name)
	if e.Judge == "" {
		return fmt.Errorf("%s.judge: required", key)
	}
	if e.Task == "" {
		e.Task = TaskPointwise
		if isHeuristic {
			e.Task = TaskClassification
		}
	}
	if e.Task != TaskPointwise && e.Task != TaskClassification {
		return fmt.Errorf("%s.task: %q is not one of pointwise, classification", key, e.Task)
	}
	if isHeuristic {
		if e.Check == "" {
			return fmt.Errorf("%s.check: required for a heuristic judge (one of %s)", key, strings.Join(HeuristicChecks(), ", "))
		}
		if !slices.Contains(HeuristicChecks(), e.Check) {
			return fmt.Errorf("%s.check: unknown check %q (one of %s)", key, e.Check, strings.Join(HeuristicChecks(), ", "))
		}
		if e.Scale == (Scale{}) {
			e.Scale = Scale{Min: 0, Max: 1}
		}
		if len(e.Fields) == 0 {
			e.Fields = heuristicFields(e.Check)
		}
		// Every check judges the response; without it in fields it would read an input
		// that is not in the cache key. (json without prompt always expects JSON.)
		if !slices.Contains(e.Fields, FieldResponse) {
			return fmt.Errorf("%s.fields: check %q reads the response; leave fields unset or include response", key, e.Check)
		}
	} else {
		if e.Check != "" {
			return fmt.Errorf("%s.check: only heuristic judges run checks; judge %q is not one", key, e.Judge)
		}
		if strings.TrimSpace(e.Criteria) == "" {
			return fmt.Errorf("%s.criteria: required for a model judge", key)
		}
		if e.Scale == (Scale{}) {
			e.Scale = Scale{Min: 1, Max: 5}
		}
		if len(e.Fields) == 0 {
			e.Fields = []string{FieldPrompt, FieldResponse}
		}
	}
	if !(e.Scale.Max > e.Scale.Min) || math.IsInf(e.Scale.Max, 0) || math.IsInf(e.Scale.Min, 0) {
		return fmt.Errorf("%s.scale: max (%g) must be greater than min (%g)", key, e.Scale.Max, e.Scale.Min)
	}
	if e.Task == TaskPointwise && !isHeuristic && (e.Scale.Min != math.Trunc(e.Scale.Min) || e.Scale.Max != math.Trunc(e.Scale.Max) || e.Scale.Max-e.Scale.Min > 100) {
		return fmt.Errorf("%s.scale: a pointwise scale must have integer bounds at most 100 apart, got %g–%g", key, e.Scale.Min, e.Scale.Max)
	}
	for i, f := range e.Fields {
		if !slices.Contains(knownFields(), f) {
			return fmt.Errorf("%s.fields[%d]: unknown field %q (one of %s)", key, i, f, strings.Join(knownFields(), ", "))
		}
	}
	if !slices.Contains(e.Fields, FieldResponse) && !slices.Contains(e.Fields, FieldPrompt) {
		return fmt.Errorf("%s.fields: must include prompt or response", key)
	}
	for i, g := range append(slices.Clone(e.Match.Models), e.Match.Apps...) {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("%s.match: bad glob %q (#%d): %w", key, g, i, err)
		}
	}
	if e.SampleRate == 0 {
		e.SampleRate = 1
	}
	if e.SampleRate < 0 || e.SampleRate > 1 || math.IsNaN(e.SampleRate) {
		return fmt.Errorf("%s.sample_rate: %g is not in (0,1]", key, e.SampleRate)
	}
	if e.CacheTTL < 0 {
		return fmt.Errorf("%s.cache_ttl: %s is negative", key, e.CacheTTL)
	}
	if e.CacheTTL == 0 {
		e.CacheTTL = 24 * time.Hour
	}
	e.rubricVersion = e.computeRubricVersion()
	return nil
}

// RubricVersion is a stable hash of everything that changes the judge's input for this
// evaluator (task, check, criteria, scale, fields). Sampling, matching and TTL are left
// out: they choose which records are judged, not how.
func (e *Evaluator) RubricVersion() string { return e.rubricVersion }

func (e *Evaluator) computeRubricVersion() string {
	h := sha256.New()
	for _, s := range []string{"rubric-v1", e.Task, e.Check, e.Criteria, fmt.Sprintf("%g:%g", e.Scale.Min, e.Scale.Max), strings.Join(e.Fields, ",")} {
		writeField(h, s)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Applies reports whether the evaluator judges this record: the match filters hold and
// the record falls in the deterministic sample.
func (e *Evaluator) Applies(r *record.Record) bool {
	if !globsMatch(e.Match.Models, r.Model) || !globsMatch(e.Match.Apps, r.App) {
		return false
	}
	return InSample(r.ID, e.SampleRate)
}

// Reads reports whether the evaluator reads the named record field.
func (e *Evaluator) Reads(field string) bool { return slices.Contains(e.Fields, field) }

// InSample reports whether a record id falls in a sample of the given rate. The decision
// depends only on the id, so every evaluator with the same rate picks the same records and
// a replay picks them again.
func InSample(id string, rate float64) bool {
	if rate >= 1 {
		return true
	}
	sum := sha256.Sum256([]byte(id))
	u := binary.BigEndian.Uint64(sum[:8])
	return float64(u>>11)/(1<<53) < rate
}

func globsMatch(globs []string, s string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

// writeField writes a length-prefixed string so that field boundaries cannot be forged
// by content ("ab"+"c" and "a"+"bc" hash differently).
func writeField(h interface{ Write([]byte) (int, error) }, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	_, _ = h.Write(n[:])
	_, _ = h.Write([]byte(s))
}

// ErrUnknownJudge is returned when an evaluator names a judge that is not configured.
var ErrUnknownJudge = errors.New("unknown judge")
