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
	"raterd/scorer/checks"
	"raterd/scorer/format"
	"raterd/scorer/redact"
)

// Task types, as in FLAMe's unified format.
const (
	// TaskPointwise rates one response on a numeric scale.
	TaskPointwise = "pointwise"
	// TaskClassification assigns one of a fixed set of labels.
	TaskClassification = "classification"
	// TaskPairwise compares two answers to the same prompt: the record's response (the
	// first candidate) and one of its candidates (the second).
	TaskPairwise = "pairwise"
)

// JudgeKind says what kind of judge answers an evaluator; Prepare applies the rules of
// that kind.
type JudgeKind int

// Judge kinds.
const (
	// KindModel is a generative judge model prompted in a text-to-text format (openai).
	KindModel JudgeKind = iota
	// KindHeuristic is the built-in CPU checks.
	KindHeuristic
	// KindReward is a reward or classifier model that returns a number per item.
	KindReward
)

// Record fields an evaluator may read. Only the declared fields reach the judge and the
// cache key, so a prompt-only evaluator hits the cache on every repeated prompt.
const (
	FieldPrompt    = "prompt"   // the prompt, or the chat messages rendered as text
	FieldMessages  = "messages" // the chat messages rendered one per line as "role: content"
	FieldResponse  = "response"
	FieldReference = "reference"
	// FieldCandidates is the candidate a pairwise evaluator compares with the response
	// (see Evaluator.Candidate).
	FieldCandidates = "candidates"
	// FieldSystem is the system prompt the model was given, as is.
	FieldSystem = "system"
	// FieldContext is the retrieved documents, numbered: "[1] first\n\n[2] second"
	// (see RenderContext); empty when the record has none.
	FieldContext = "context"
	// FieldToolCalls is the model's tool calls, one per line as "name(arguments) ->
	// result" (see RenderToolCalls); empty when the record has none.
	FieldToolCalls = "tool_calls"
	// FieldTranscript is a transcript record's turns, numbered, as "[turn n] user: …",
	// "[turn n] assistant: …" and "[turn n] tool_call name(arguments) -> result" lines
	// (see RenderTranscript). Only evaluators of scope conversation or trace read it.
	FieldTranscript = "transcript"
	// FieldMetadataPrefix followed by a key reads one metadata value, e.g. "metadata.locale".
	FieldMetadataPrefix = "metadata."
)

// knownFields lists the record fields an evaluator may read, besides metadata keys.
func knownFields() []string {
	return []string{FieldPrompt, FieldMessages, FieldResponse, FieldReference, FieldCandidates, FieldSystem, FieldContext, FieldToolCalls, FieldTranscript}
}

// scopes lists the valid values of Evaluator.Scope.
func scopes() []string {
	return []string{record.ScopeRecord, record.ScopeConversation, record.ScopeTrace}
}

// Format names of the built-in prompt formats (templates under scorer/formats).
const (
	FormatFLAMe       = "flame"
	FormatPrometheus2 = "prometheus2"
	FormatSelene      = "selene"
	// FormatLynx is Patronus AI's Lynx prompt: is the response (ANSWER) faithful to the
	// retrieved context (DOCUMENT), given the prompt (QUESTION)? Classification with the
	// labels PASS and FAIL only.
	FormatLynx = "lynx"
)

// Lynx's fixed question: its labels (the first is the faithful one), the fields it
// reads, and the criteria an evaluator gets when it sets none (Lynx's prompt does not
// show them; they describe the evaluator).
const (
	lynxPass     = "PASS"
	lynxFail     = "FAIL"
	lynxCriteria = "Is the ANSWER faithful to the DOCUMENT: no new information beyond it, nothing that contradicts it?"
)

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
	// Scope is what the evaluator judges: record (the default; one request/response),
	// conversation (a transcript record assembling one conversation's turns) or trace (a
	// transcript record assembling one agent run's spans). An evaluator only applies to
	// records of its scope. A scope other than record enters the rubric version.
	Scope string `yaml:"scope"`
	// Judge names the judge pool (a key of the judges section) that answers. Required.
	Judge string `yaml:"judge"`
	// Task is the task type: pointwise (default for model and reward judges),
	// classification (default for heuristic checks) or pairwise.
	Task string `yaml:"task"`
	// Check names the built-in check when Judge is a heuristic judge: refusal, empty,
	// truncated, repetition, pii, json (scope record); turn_repetition, unresolved,
	// frustration (scope conversation); tool_calls, grounded_answer (scope trace). The
	// check's scope must be the evaluator's. Must be empty for other judges.
	Check string `yaml:"check"`
	// Criteria is the evaluation criteria given to model judges. Required for them, except
	// for guard formats: ShieldGemma's policy (required), Granite Guardian's custom risk
	// definition (optional), refused by Llama Guard and Qwen3Guard (their own categories).
	Criteria string `yaml:"criteria"`
	// Scale is the pointwise range. Default 1–5 for model judges, 0–1 for checks.
	Scale Scale `yaml:"scale"`
	// Levels describes what each pointwise score means, e.g. {1: "wrong", 5: "correct
	// and complete"}; keys must lie on the scale. Default: none (the scale's ends are
	// described generically).
	Levels map[int]string `yaml:"levels"`
	// Labels are a classification evaluator's classes, e.g. [supported, not_supported].
	// Required for classification by model judges; at least two, unique.
	Labels []string `yaml:"labels"`
	// PositiveLabel is the label that scores 1 (every other label scores 0), so a mean of
	// scores is a pass rate. Default: the first label.
	PositiveLabel string `yaml:"positive_label"`
	// Candidate is a glob over candidates[].model choosing the answer a pairwise evaluator
	// compares the record's response with; the first matching candidate is used and a
	// record without one is not judged. Default "*" (the first candidate).
	Candidate string `yaml:"candidate"`
	// Format is the prompt and output format the judge model was trained on: flame
	// (default), prometheus2 or selene; or a guard model's native format (llama-guard-3,
	// llama-guard-4, shieldgemma, shieldgemma-prompt, granite-guardian,
	// granite-guardian-3.3, qwen3guard: see guard.go), whose task is classification with
	// the guard's own labels. Model judges only.
	Format string `yaml:"format"`
	// System is how the format's system message meets the judge model's chat template:
	// native (a system turn) or fold (ahead of the user message, in one user turn, for
	// model families whose templates refuse a system turn: Mistral-7B-Instruct v0.2, on
	// which Prometheus 2 is built, and Gemma 2). Default: the format's (fold for
	// prometheus2, native for flame and selene). Model judges only; fold enters the
	// rubric version.
	System string `yaml:"system"`
	// Risk is the risk a granite-guardian evaluator asks about (its guardian_config's
	// risk_name, criteria_id on 3.3): harm (default), social_bias, jailbreak, violence,
	// profanity, sexual_content, unethical_behavior, harm_engagement, evasiveness,
	// groundedness, relevance, context_relevance, answer_relevance, function_call, or a
	// name of your own with criteria as its definition. Other evaluators: an error.
	Risk string `yaml:"risk"`
	// Guided, for a model judge with guided_decoding, constrains the judge's answers to
	// the format's output grammar (true, the default there) or not (false). The grammar
	// and the judge's guided_explanation_chars enter the rubric version when it is on.
	// An error with other judges.
	Guided *bool `yaml:"guided"`
	// Fields are the record fields the judge reads: prompt, messages, response,
	// reference, candidates, system, context, tool_calls, transcript and metadata.<key>.
	// Default [prompt, response]; pairwise [prompt, response, candidates]; model judges
	// of scope conversation or trace [transcript]. At least one of prompt, messages,
	// response and transcript: the others only inform the judge about them. transcript
	// is for scopes conversation and trace only.
	Fields []string `yaml:"fields"`
	// Match limits the evaluator to some models and apps. Default: all traffic.
	Match Match `yaml:"match"`
	// SampleRate is the share of matching records judged, in [0,1]. Deterministic on the
	// record id, so evaluators with equal rates judge the same records. Default (nil,
	// the key absent) 1; an explicit 0 switches the evaluator off: it matches no record,
	// so it writes no rows and makes no judge calls (see Off). Prepare sets a nil rate to
	// 1.
	SampleRate *float64 `yaml:"sample_rate"`
	// CacheTTL is how long a verdict stays cached. Default 24h; 0 after defaults means
	// "default", a negative value is rejected.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// Redact overrides scoring.redact for this evaluator: "off", or other types and
	// patterns (see Redaction). Default: scoring.redact. Model and reward judges only:
	// the built-in checks read the raw text (the pii check exists to find personal data),
	// and scoring.redact does not apply to them.
	Redact *Redaction `yaml:"redact"`

	rubricVersion string
	// redactDefault is scoring.redact (InheritRedaction); redactor is the setting in
	// force after Prepare, nil when nothing is masked.
	redactDefault *Redaction
	redactor      *redact.Redactor
	// guideVersion is the guide and explanation bound in force (useGuide), for the
	// rubric version; empty: answers are not guided.
	guideVersion string
	// guard is the guard family of a guard format, set by Prepare; nil for other formats.
	guard *guardFamily
}

// guardFamily is the evaluator's guard family (Prepare's, else looked up), nil when its
// format is not a guard's.
func (e *Evaluator) guardFamily() *guardFamily {
	if e.guard != nil && e.guard.name == e.Format {
		return e.guard
	}
	g, _ := guardFor(e.Format)
	return g
}

// InheritRedaction sets the redact setting the evaluator uses when its own Redact is
// unset (scoring.redact, already validated). Call it before Prepare.
func (e *Evaluator) InheritRedaction(r *Redaction) { e.redactDefault = r }

// Redactor returns the redactor applied to the evaluator's inputs and explanations, nil
// when nothing is masked. Valid after Prepare.
func (e *Evaluator) Redactor() *redact.Redactor { return e.redactor }

// prepareRedaction resolves the redact setting in force: the evaluator's own, else the
// inherited one; none for heuristic checks.
func (e *Evaluator) prepareRedaction(key string, kind JudgeKind) error {
	e.redactor = nil
	setting, own := e.Redact, e.Redact != nil
	if !own {
		setting = e.redactDefault
	}
	if setting == nil || setting.Off {
		return nil
	}
	if kind == KindHeuristic {
		if own {
			return fmt.Errorf("%s.redact: the built-in checks read the raw text (the pii check looks for personal data); redaction applies to model and reward judges", key)
		}
		return nil
	}
	rkey := "scoring.redact"
	if own {
		rkey = key + ".redact"
	}
	r, err := setting.Redactor(rkey)
	if err != nil {
		return err
	}
	e.redactor = r
	return nil
}

// Prepare fills defaults and validates the evaluator; key is its position in the config
// (e.g. "evaluators[2]") so that errors name the bad key, and kind is the kind of the
// judge it names. It computes the rubric version.
func (e *Evaluator) Prepare(key string, kind JudgeKind) error {
	if e.Name == "" {
		return fmt.Errorf("%s.name: required", key)
	}
	key = fmt.Sprintf("%s (%s)", key, e.Name)
	if e.Judge == "" {
		return fmt.Errorf("%s.judge: required", key)
	}
	if e.Scope != "" && !slices.Contains(scopes(), e.Scope) {
		return fmt.Errorf("%s.scope: %q is not one of %s", key, e.Scope, strings.Join(scopes(), ", "))
	}
	if e.Task == "" {
		e.Task = TaskPointwise
		if e.Format == FormatLynx && kind == KindModel {
			e.Task = TaskClassification // Lynx has no other task
		}
		if _, guard := guardFor(e.Format); kind == KindHeuristic || guard && kind == KindModel {
			e.Task = TaskClassification // a guard's task is classification
		}
	}
	if e.Risk != "" && kind != KindModel {
		return fmt.Errorf("%s.risk: only the granite-guardian formats take a risk", key)
	}
	if !slices.Contains([]string{TaskPointwise, TaskClassification, TaskPairwise}, e.Task) {
		return fmt.Errorf("%s.task: %q is not one of pointwise, classification, pairwise", key, e.Task)
	}
	if err := e.prepareForJudge(key, kind); err != nil {
		return err
	}
	if !(e.Scale.Max > e.Scale.Min) || math.IsInf(e.Scale.Max, 0) || math.IsInf(e.Scale.Min, 0) {
		return fmt.Errorf("%s.scale: max (%g) must be greater than min (%g)", key, e.Scale.Max, e.Scale.Min)
	}
	if e.Task == TaskPointwise && kind == KindModel && (e.Scale.Min != math.Trunc(e.Scale.Min) || e.Scale.Max != math.Trunc(e.Scale.Max) ||
		e.Scale.Max-e.Scale.Min > 100 || math.Abs(e.Scale.Min) > 1e6 || math.Abs(e.Scale.Max) > 1e6) {
		return fmt.Errorf("%s.scale: a pointwise scale must have integer bounds within ±1000000, at most 100 apart, got %g–%g", key, e.Scale.Min, e.Scale.Max)
	}
	if len(e.Levels) > 0 && (e.Task != TaskPointwise || kind != KindModel) {
		return fmt.Errorf("%s.levels: only pointwise evaluators of model judges describe levels", key)
	}
	for lvl, desc := range e.Levels {
		if float64(lvl) < e.Scale.Min || float64(lvl) > e.Scale.Max {
			return fmt.Errorf("%s.levels.%d: not on the scale %g–%g", key, lvl, e.Scale.Min, e.Scale.Max)
		}
		if strings.TrimSpace(desc) == "" {
			return fmt.Errorf("%s.levels.%d: empty description", key, lvl)
		}
	}
	if err := e.prepareLabels(key, kind); err != nil {
		return err
	}
	if err := e.prepareFields(key); err != nil {
		return err
	}
	for i, g := range append(slices.Clone(e.Match.Models), e.Match.Apps...) {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("%s.match: bad glob %q (#%d): %w", key, g, i, err)
		}
	}
	if e.SampleRate == nil {
		e.SampleRate = new(1.0)
	}
	if r := *e.SampleRate; !(r >= 0 && r <= 1) { // NaN fails both
		return fmt.Errorf("%s.sample_rate: %g is not in [0,1] (0 switches the evaluator off)", key, r)
	}
	if e.CacheTTL < 0 {
		return fmt.Errorf("%s.cache_ttl: %s is negative", key, e.CacheTTL)
	}
	if e.CacheTTL == 0 {
		e.CacheTTL = 24 * time.Hour
	}
	if e.CacheTTL > maxCacheTTL {
		return fmt.Errorf("%s.cache_ttl: %s is over a year (the cache's entries carry their expiry, at most a year ahead)", key, e.CacheTTL)
	}
	if err := e.prepareRedaction(key, kind); err != nil {
		return err
	}
	e.rubricVersion = e.computeRubricVersion()
	return nil
}

// prepareLynx applies the rules of the lynx format, which asks Lynx's one question in
// the form it was trained on: classification into PASS and FAIL (the default labels),
// over the prompt (or messages) as the QUESTION, the context as the DOCUMENT and the
// response as the ANSWER (default fields: prompt, context, response).
func (e *Evaluator) prepareLynx(key string) error {
	if e.Task != TaskClassification {
		return fmt.Errorf("%s.task: format lynx is classification only (PASS or FAIL), not %s", key, e.Task)
	}
	if len(e.Labels) == 0 {
		e.Labels = []string{lynxPass, lynxFail}
	}
	if !slices.Equal(e.Labels, []string{lynxPass, lynxFail}) {
		return fmt.Errorf("%s.labels: format lynx answers %s or %s, the labels Lynx was trained on; set labels: [%s, %s] or leave them unset", key, lynxPass, lynxFail, lynxPass, lynxFail)
	}
	if strings.TrimSpace(e.Criteria) == "" {
		e.Criteria = lynxCriteria
	}
	if len(e.Fields) == 0 {
		e.Fields = []string{FieldPrompt, FieldContext, FieldResponse}
	}
	for _, f := range e.Fields {
		if !slices.Contains([]string{FieldPrompt, FieldMessages, FieldContext, FieldResponse}, f) {
			return fmt.Errorf("%s.fields: format lynx reads the QUESTION (prompt or messages), the DOCUMENT (context) and the ANSWER (response), not %q", key, f)
		}
	}
	if !slices.Contains(e.Fields, FieldContext) || !slices.Contains(e.Fields, FieldResponse) {
		return fmt.Errorf("%s.fields: format lynx judges the response against the context; read both (e.g. [prompt, context, response])", key)
	}
	return nil
}

// prepareForJudge applies the defaults and rules of the judge kind.
func (e *Evaluator) prepareForJudge(key string, kind JudgeKind) error {
	switch kind {
	case KindHeuristic:
		if e.Task == TaskPairwise {
			return fmt.Errorf("%s.task: heuristic checks judge one response, not pairs", key)
		}
		if e.Check == "" {
			return fmt.Errorf("%s.check: required for a heuristic judge (one of %s)", key, strings.Join(HeuristicChecks(), ", "))
		}
		if !slices.Contains(HeuristicChecks(), e.Check) {
			return fmt.Errorf("%s.check: unknown check %q (one of %s)", key, e.Check, strings.Join(HeuristicChecks(), ", "))
		}
		if cs := checks.Scope(e.Check); cs != e.EffectiveScope() {
			return fmt.Errorf("%s.scope: check %q judges %s records, the evaluator's scope is %s; set scope: %s", key, e.Check, cs, e.EffectiveScope(), cs)
		}
		if e.Format != "" {
			return fmt.Errorf("%s.format: only model judges use a prompt format", key)
		}
		if e.System != "" {
			return fmt.Errorf("%s.system: only model judges send a system message", key)
		}
		if e.Scale == (Scale{}) {
			e.Scale = Scale{Min: 0, Max: 1}
		}
		if len(e.Fields) == 0 {
			e.Fields = heuristicFields(e.Check)
		}
		if e.EffectiveScope() != record.ScopeRecord {
			// A transcript check reads exactly its declared fields: all of them reach it,
			// and nothing else could.
			want := heuristicFields(e.Check)
			for _, f := range want {
				if !slices.Contains(e.Fields, f) {
					return fmt.Errorf("%s.fields: check %q reads %s; leave fields unset or list exactly those", key, e.Check, strings.Join(want, ", "))
				}
			}
			for i, f := range e.Fields {
				if !slices.Contains(want, f) {
					return fmt.Errorf("%s.fields[%d]: check %q reads %s, not %q", key, i, e.Check, strings.Join(want, ", "), f)
				}
			}
			return nil
		}
		// Every check judges the response; without it in fields it would read an input
		// that is not in the cache key. (json without prompt always expects JSON.)
		if !slices.Contains(e.Fields, FieldResponse) {
			return fmt.Errorf("%s.fields: check %q reads the response; leave fields unset or include response", key, e.Check)
		}
		for _, f := range e.Fields {
			if f != FieldPrompt && f != FieldResponse && f != FieldReference {
				return fmt.Errorf("%s.fields: check %q reads prompt and response, not %q", key, e.Check, f)
			}
		}
		return nil
	case KindReward:
		if e.Check != "" {
			return fmt.Errorf("%s.check: only heuristic judges run checks; judge %q is a reward model", key, e.Judge)
		}
		if e.Task == TaskPairwise {
			return fmt.Errorf("%s.task: reward judges score one response at a time; use a model judge for pairwise", key)
		}
		if e.Format != "" {
			return fmt.Errorf("%s.format: reward judges take no prompt format", key)
		}
		if e.System != "" {
			return fmt.Errorf("%s.system: reward judges take no system message", key)
		}
		if e.Scale == (Scale{}) {
			// A reward is unbounded; the scale only documents the expected range.
			e.Scale = Scale{Min: -1e9, Max: 1e9}
		}
		if len(e.Fields) == 0 {
			e.Fields = []string{FieldPrompt, FieldResponse}
		}
		return nil
	default:
		if e.Check != "" {
			return fmt.Errorf("%s.check: only heuristic judges run checks; judge %q is not one", key, e.Judge)
		}
		e.guard = nil
		if g, ok := guardFor(e.Format); ok {
			e.guard = g
			return e.prepareGuard(key, g)
		}
		if e.Risk != "" {
			return fmt.Errorf("%s.risk: only the granite-guardian formats take a risk", key)
		}
		if e.Format == FormatLynx {
			if err := e.prepareLynx(key); err != nil {
				return err
			}
		}
		if strings.TrimSpace(e.Criteria) == "" {
			return fmt.Errorf("%s.criteria: required for a model judge", key)
		}
		if e.Format == "" {
			e.Format = FormatFLAMe
		}
		if !slices.Contains([]string{FormatFLAMe, FormatLynx, FormatPrometheus2, FormatSelene}, e.Format) {
			return fmt.Errorf("%s.format: unknown format %q (one of %s, %s, %s, %s, or a guard: %s)", key, e.Format, FormatFLAMe, FormatLynx, FormatPrometheus2, FormatSelene, strings.Join(GuardFormats(), ", "))
		}
		if e.Format == FormatPrometheus2 && e.Task == TaskClassification {
			return fmt.Errorf("%s.format: prometheus2 has no classification format; use flame or selene", key)
		}
		switch e.System {
		case "":
			f, err := format.Lookup(e.Format)
			if err != nil {
				return fmt.Errorf("%s.format: %w", key, err)
			}
			e.System = f.SystemMode()
		case format.SystemNative, format.SystemFold:
		default:
			return fmt.Errorf("%s.system: %q is not %s or %s", key, e.System, format.SystemNative, format.SystemFold)
		}
		if e.Scale == (Scale{}) {
			e.Scale = Scale{Min: 1, Max: 5}
		}
		if len(e.Fields) == 0 {
			e.Fields = []string{FieldPrompt, FieldResponse}
			if e.Task == TaskPairwise {
				e.Fields = append(e.Fields, FieldCandidates)
			} else if e.EffectiveScope() != record.ScopeRecord {
				e.Fields = []string{FieldTranscript}
			}
		}
		return nil
	}
}

// prepareLabels checks the classification labels and the pairwise candidate glob.
func (e *Evaluator) prepareLabels(key string, kind JudgeKind) error {
	if e.Task != TaskClassification || kind == KindHeuristic {
		if len(e.Labels) > 0 || e.PositiveLabel != "" {
			return fmt.Errorf("%s.labels: only classification evaluators of model or reward judges have labels", key)
		}
	} else {
		if kind == KindModel && len(e.Labels) < 2 {
			return fmt.Errorf("%s.labels: a classification evaluator needs at least two labels", key)
		}
		for i, l := range e.Labels {
			if !validLabel(l) {
				return fmt.Errorf("%s.labels[%d]: %q must be 1–64 letters, digits, '_' or '-'", key, i, l)
			}
			if slices.Contains(e.Labels[:i], l) {
				return fmt.Errorf("%s.labels[%d]: %q repeats", key, i, l)
			}
		}
		if e.PositiveLabel == "" && len(e.Labels) > 0 {
			e.PositiveLabel = e.Labels[0]
		}
		if e.PositiveLabel == "" {
			return fmt.Errorf("%s.positive_label: required: the classifier's label that scores 1 (or list labels, the first scores 1)", key)
		}
		if e.PositiveLabel != "" && len(e.Labels) > 0 && !slices.Contains(e.Labels, e.PositiveLabel) {
			return fmt.Errorf("%s.positive_label: %q is not one of the labels", key, e.PositiveLabel)
		}
	}
	if e.Task != TaskPairwise {
		if e.Candidate != "" {
			return fmt.Errorf("%s.candidate: only pairwise evaluators choose a candidate", key)
		}
		return nil
	}
	if e.Candidate == "" {
		e.Candidate = "*"
	}
	if _, err := path.Match(e.Candidate, ""); err != nil {
		return fmt.Errorf("%s.candidate: bad glob %q: %w", key, e.Candidate, err)
	}
	return nil
}

// prepareFields checks the fields the evaluator reads against its task.
func (e *Evaluator) prepareFields(key string) error {
	for i, f := range e.Fields {
		if meta, ok := strings.CutPrefix(f, FieldMetadataPrefix); ok {
			if meta == "" {
				return fmt.Errorf("%s.fields[%d]: %q names no metadata key", key, i, f)
			}
		} else if !slices.Contains(knownFields(), f) {
			return fmt.Errorf("%s.fields[%d]: unknown field %q (one of %s, or metadata.<key>)", key, i, f, strings.Join(knownFields(), ", "))
		}
		if slices.Contains(e.Fields[:i], f) {
			return fmt.Errorf("%s.fields[%d]: %q repeats", key, i, f)
		}
	}
	if i := slices.Index(e.Fields, FieldTranscript); i >= 0 && e.EffectiveScope() == record.ScopeRecord {
		return fmt.Errorf("%s.fields[%d]: transcript is the turns of a conversation or agent run; only evaluators of scope %s or %s read it", key, i, record.ScopeConversation, record.ScopeTrace)
	}
	if e.Reads(FieldPrompt) && e.Reads(FieldMessages) {
		return fmt.Errorf("%s.fields: prompt already renders the messages when there is no prompt; list one of prompt, messages", key)
	}
	if e.Task == TaskPairwise {
		if !e.Reads(FieldResponse) || !e.Reads(FieldCandidates) {
			return fmt.Errorf("%s.fields: a pairwise evaluator compares the response with a candidate; include response and candidates", key)
		}
		return nil
	}
	if e.Reads(FieldCandidates) {
		return fmt.Errorf("%s.fields: only pairwise evaluators read candidates", key)
	}
	// system, context, tool_calls, reference and metadata describe what is judged; they
	// are not judged by themselves.
	if !e.Reads(FieldResponse) && !e.Reads(FieldPrompt) && !e.Reads(FieldMessages) && !e.Reads(FieldTranscript) {
		if e.EffectiveScope() != record.ScopeRecord {
			return fmt.Errorf("%s.fields: must include transcript, prompt, messages or response", key)
		}
		return fmt.Errorf("%s.fields: must include prompt, messages or response", key)
	}
	return nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 64 {
		return false
	}
	for _, c := range l {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// GuidedOn reports whether the evaluator lets its judge constrain answers to the format's
// grammar (the judge decides whether it does: guided_decoding).
func (e *Evaluator) GuidedOn() bool { return e.Guided == nil || *e.Guided }

// useGuide records that answers are decoded under the format's guides (fingerprint) with
// explanations of at most chars characters, and updates the rubric version.
func (e *Evaluator) useGuide(fingerprint string, chars int) {
	e.guideVersion = fmt.Sprintf("%s:%d", fingerprint, chars)
	e.rubricVersion = e.computeRubricVersion()
}

// RubricVersion is a stable hash of everything that changes the judge's input for this
// evaluator (task, check, criteria, scale, levels, labels, candidate choice, format,
// fields, redaction, a scope other than record). Sampling, matching and TTL are left out: they choose which records are judged,
// not how.
func (e *Evaluator) RubricVersion() string { return e.rubricVersion }

func (e *Evaluator) computeRubricVersion() string {
	h := sha256.New()
	// The v1 parts alone for evaluators that use none of the later settings (heuristic
	// checks), so their versions, and the history stored under them, stay stable.
	parts := []string{"rubric-v1", e.Task, checkRubricID(e.Check), e.Criteria, fmt.Sprintf("%g:%g", e.Scale.Min, e.Scale.Max), strings.Join(e.Fields, ",")}
	if e.Format != "" || len(e.Labels) > 0 || e.Candidate != "" || len(e.Levels) > 0 {
		parts = append(parts, "v2", e.Format, formatFingerprint(e.Format, e.Fields), strings.Join(e.Labels, ","), e.PositiveLabel, e.Candidate)
		parts = append(parts, e.Fields...) // one part each: a metadata key may hold a comma
		levels := make([]int, 0, len(e.Levels))
		for l := range e.Levels {
			levels = append(levels, l)
		}
		slices.Sort(levels)
		for _, l := range levels {
			parts = append(parts, fmt.Sprintf("%d", l), e.Levels[l])
		}
	}
	if sc := e.EffectiveScope(); sc != record.ScopeRecord {
		// A transcript is judged differently from one record; record-scope versions stay
		// as they were before scopes existed.
		parts = append(parts, "scope", sc)
	}
	if e.Risk != "" {
		// Only guard evaluators have one; versions of the others stay as they were.
		parts = append(parts, "risk", e.Risk)
	}
	if e.System == format.SystemFold {
		// A folded system message changes the judge's input; native keeps the versions
		// from before the setting existed.
		parts = append(parts, "system", format.SystemFold)
	}
	if e.guideVersion != "" {
		// Guided decoding changes what the judge can answer.
		parts = append(parts, "guided", e.guideVersion)
	}
	if e.redactor != nil {
		// Redaction changes what the judge reads; without it, versions stay as before.
		parts = append(parts, "redact", e.redactor.Fingerprint())
	}
	for _, s := range parts {
		writeField(h, s)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// EffectiveScope is the evaluator's scope: Scope, or record when it is unset.
func (e *Evaluator) EffectiveScope() string {
	if e.Scope == "" {
		return record.ScopeRecord
	}
	return e.Scope
}

// RecordScope is the scope of a record: record for an ordinary record (no Segment), the
// segment's scope for a transcript record.
func RecordScope(r *record.Record) string {
	if r.Segment == nil || r.Segment.Scope == "" {
		return record.ScopeRecord
	}
	return r.Segment.Scope
}

// Applies reports whether the evaluator judges this record: the record is of the
// evaluator's scope (a record-scope evaluator never judges a TracePart record, a span
// decoded only to complete its trace), the match filters hold, the record falls in the
// deterministic sample, and a pairwise evaluator finds its candidate.
func (e *Evaluator) Applies(r *record.Record) bool {
	sc := e.EffectiveScope()
	if RecordScope(r) != sc || sc == record.ScopeRecord && r.TracePart {
		return false
	}
	if !globsMatch(e.Match.Models, r.Model) || !globsMatch(e.Match.Apps, r.App) {
		return false
	}
	if e.Task == TaskPairwise {
		if _, ok := e.PairCandidate(r); !ok {
			return false
		}
	}
	return InSample(r.ID, e.rate())
}

// rate is the sample rate: SampleRate, or 1 when it is unset (before Prepare).
func (e *Evaluator) rate() float64 {
	if e.SampleRate == nil {
		return 1
	}
	return *e.SampleRate
}

// Off reports whether an explicit sample_rate: 0 switched the evaluator off: it applies
// to no record, so it is never judged and writes no rows.
func (e *Evaluator) Off() bool { return e.rate() == 0 }

// PairCandidate returns the candidate a pairwise evaluator compares the record's response
// with: the first whose model matches Candidate.
func (e *Evaluator) PairCandidate(r *record.Record) (record.Candidate, bool) {
	for _, c := range r.Candidates {
		if e.Candidate == "" || globMatch(e.Candidate, c.Model) {
			return c, true
		}
	}
	return record.Candidate{}, false
}

// Input is one record field as a judge reads it.
type Input struct {
	// Field is the evaluator field name: prompt, messages, response, reference,
	// candidates, system, context, tool_calls, transcript or metadata.<key>.
	Field string
	// Text is the field's content (for candidates: the chosen candidate's response; for
	// context and tool_calls: RenderContext and RenderToolCalls of the record's lists;
	// for transcript: RenderTranscript of the record's turns).
	Text string
}

// Inputs returns exactly the record fields the evaluator reads, in the order of Fields,
// with the personal data of the evaluator's redact setting masked. They are all a judge
// sees and all the cache key hashes.
func (e *Evaluator) Inputs(r *record.Record) []Input {
	in := make([]Input, 0, len(e.Fields))
	for _, f := range e.Fields {
		var text string
		switch f {
		case FieldPrompt:
			text = r.PromptText()
		case FieldMessages:
			text = (&record.Record{Messages: r.Messages}).PromptText()
		case FieldResponse:
			text = r.Response
		case FieldReference:
			text = r.Reference
		case FieldCandidates:
			c, _ := e.PairCandidate(r)
			text = c.Response
		case FieldSystem:
			text = r.System
		case FieldContext:
			text = RenderContext(r.Context)
		case FieldToolCalls:
			text = RenderToolCalls(r.ToolCalls)
		case FieldTranscript:
			text = RenderTranscript(TranscriptTurns(r))
		default:
			text = r.Metadata[strings.TrimPrefix(f, FieldMetadataPrefix)]
		}
		in = append(in, Input{Field: f, Text: e.redactor.Redact(text)})
	}
	return in
}

// RenderContext renders retrieved documents as a judge reads them: numbered from 1 in
// the record's order, "[n] " before each, a blank line between documents:
// "[1] doc one\n\n[2] doc two". An empty document keeps its number ("[2]"), so the
// numbers match the record's. No documents render as "".
func RenderContext(docs []string) string {
	var b strings.Builder
	for i, d := range docs {
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "[%d]", i+1)
		if d != "" {
			b.WriteByte(' ')
			b.WriteString(d)
		}
	}
	return b.String()
}

// RenderToolCalls renders tool calls as a judge reads them, one per line in the
// record's order: "name(arguments)", followed by " -> result" when the call has a
// result. A line break inside the name, arguments or result ("\n", "\r\n" or "\r",
// written as "\n") is followed by two spaces, so every call, and only a call, starts a
// line at its first column. Call ids are left out: they identify a call to the serving
// side, tell the judge nothing, and would make every cache key unique. No calls render
// as "".
func RenderToolCalls(calls []record.ToolCall) string {
	var b strings.Builder
	for i, c := range calls {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(indentLines(c.Name))
		b.WriteByte('(')
		b.WriteString(indentLines(c.Arguments))
		b.WriteByte(')')
		if c.Result != "" {
			b.WriteString(" -> ")
			b.WriteString(indentLines(c.Result))
		}
	}
	return b.String()
}

// indentLines writes every line break of s as "\n" followed by two spaces.
func indentLines(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\n  ")
}

// checkRubricID is how a built-in check enters the rubric version: its name, with the
// version of its behaviour once that changed after it shipped, so that rows scored before
// and after the change stay apart (a new rubric version adds rows; trends do not silently
// mix the two).
func checkRubricID(check string) string {
	if check == "pii" {
		return "pii@2" // issue 15: also finds IBANs, US SSNs and IP addresses
	}
	return check
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
	if !(rate > 0) { // 0 (off), negative or NaN: nothing is in the sample
		return false
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
		if globMatch(g, s) {
			return true
		}
	}
	return false
}

// globMatch is path.Match where '*' and '?' also match '/': model names such as
// "meta-llama/Llama-3.1-8B" are names, not paths. The pattern must have passed
// path.Match's syntax check.
func globMatch(glob, s string) bool {
	const sep = "\x00" // path.Match treats only '/' specially; NUL is an ordinary byte
	ok, _ := path.Match(strings.ReplaceAll(glob, "/", sep), strings.ReplaceAll(s, "/", sep))
	return ok
}

// writeField writes a length-prefixed string so that field boundaries cannot be forged
// by content ("ab"+"c" and "a"+"bc" hash differently).
func writeField(h interface{ Write([]byte) (int, error) }, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	_, _ = h.Write(n[:])
	_, _ = h.Write([]byte(s))
}

// maxCacheTTL is the longest cache_ttl: scorer/cache's Redis entries expire within a year.
const maxCacheTTL = 365 * 24 * time.Hour

// ErrUnknownJudge is returned when an evaluator names a judge that is not configured.
var ErrUnknownJudge = errors.New("unknown judge")

// formatFingerprint is the hash of a built-in format's data as it bears on prompts that
// read the given fields, so that editing a template changes the rubric version of every
// evaluator using it, except where the format vouches that prompts reading these fields
// render as before (format.Format.FingerprintFor: adding system, context and tool_calls
// left the versions of evaluators that do not read them unchanged).
func formatFingerprint(name string, fields []string) string {
	if name == "" {
		return ""
	}
	if g, ok := guardFor(name); ok {
		return g.fingerprint()
	}
	f, err := format.Lookup(name)
	if err != nil {
		return ""
	}
	return f.FingerprintFor(fields)
}
