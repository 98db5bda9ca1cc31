// Package trafficgen generates deterministic, realistic LLM traffic for raterd: Kafka message
// values that follow the input record contract (docs/architecture.md, "Input record"), one JSON object
// per message.
//
// The traffic mixes several deployed models and apps; prompts from customer support, billing,
// coding, SQL, summarisation, "respond in JSON" extraction, e-mail drafting and configuration
// questions, as plain prompts or chat transcripts with a system message; and responses that are
// mostly good answers, with a few percent each of refusals, PII leaks, broken JSON, truncated
// answers, repetition loops, empty answers and long answers. Prompt popularity follows a Zipf
// distribution, so a cache sees repeated prompts and repeated prompt+response pairs. A share of
// the lines is deliberately invalid (not JSON, a required field missing, invalid UTF-8) so that
// dead-lettering has something to do.
//
// Options.ExactRepeats switches to traffic for cache benchmarks: prompts drawn by a Zipf
// distribution over DistinctPrompts ranks, each answered from a fixed set of AnswerVariants
// answers, so that prompts and prompt+response pairs repeat byte for byte; DistinctKeys counts
// the distinct ones, from which a benchmark knows the exact number of judge calls to expect.
//
// The output depends only on the Options: equal options give byte-identical output on every
// platform. testdata/traffic.jsonl at the repository root is Write(DefaultOptions()).
package trafficgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"raterd/internal/text"
	"raterd/record"
)

// Options control the generated traffic. DefaultOptions returns the defaults named below.
type Options struct {
	// Seed seeds the PCG generator. Equal options give byte-identical output; any value,
	// including 0, is a valid seed. Default 1.
	Seed int64
	// Count is the number of lines (message values) to generate, invalid lines included.
	// 0 generates nothing. Default 3000.
	Count int
	// DistinctPrompts is the number of distinct prompts the requests draw from; the most
	// popular ones are short, generic questions, the rest specific ones (with ExactRepeats,
	// all are specific ones). 0 selects the default, 800.
	DistinctPrompts int
	// ZipfS is the exponent s (> 1) of the Zipf distribution of prompt popularity: the
	// prompt of rank k (from 0) is asked with probability proportional to (1+k)^-s, so a
	// higher s concentrates traffic on fewer prompts. 0 selects the default, 1.1.
	ZipfS float64
	// ExactRepeats switches from the mixed traffic described in the package comment, where
	// each request samples its answer, to exact-repeat traffic for cache benchmarks: the
	// prompt of rank k and its answers are pure functions of Seed and k (byte-identical
	// whatever Count, DistinctPrompts and AnswerVariants are), prompts are 200–4,000
	// characters and answers 200–2,000, and everything an evaluator can read except
	// metadata — prompt or messages, response, reference, candidates — repeats exactly with
	// the prompt+response pair. Model, app (5% omit it), metadata, trace id, id and timestamp
	// still vary per request. Invalid lines follow InvalidShare as in the mixed traffic: set
	// it to 0 (as trafficgen -zipf-s does unless -invalid is given) for none. Prompts are
	// built in rank order and kept, so memory grows with the highest rank drawn (a few KB
	// per prompt, up to DistinctPrompts). Default false.
	ExactRepeats bool
	// AnswerVariants is, with ExactRepeats, the number of distinct answers each prompt gets.
	// 1 gives every prompt one fixed answer, so each prompt+response pair repeats as often as
	// its prompt. With n > 1, answer v (from 0) of a prompt is chosen with probability
	// proportional to (1+v)^-ZipfS, like a deployed model that mostly repeats itself; the
	// answers of a prompt are distinct as far as the prompt allows (DistinctKeys gives the
	// exact count). Must be 0 without ExactRepeats. 0 selects the default, 1.
	AnswerVariants int
	// InvalidShare is the share, in [0, 1], of lines that are deliberately invalid: not
	// JSON, JSON without "model", JSON without "response", or invalid UTF-8 in a string.
	// The number of invalid lines is Count×InvalidShare rounded to the nearest integer.
	// 0 means none. Default 0.01.
	InvalidShare float64
	// Start is the timestamp of the first record; record i is stamped Start + i×Interval
	// and rendered in RFC 3339 (UTC). The zero time selects the default,
	// 2026-11-28T12:00:00Z.
	Start time.Time
	// Interval is the time between the timestamps of consecutive records. 0 selects the
	// default, 1s.
	Interval time.Duration
}

const (
	defaultSeed            = 1
	defaultCount           = 3000
	defaultDistinctPrompts = 800
	defaultZipfS           = 1.1
	defaultInvalidShare    = 0.01
	defaultInterval        = time.Second
)

var defaultStart = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// DefaultOptions returns the options that produced testdata/traffic.jsonl.
func DefaultOptions() Options {
	return Options{
		Seed:            defaultSeed,
		Count:           defaultCount,
		DistinctPrompts: defaultDistinctPrompts,
		ZipfS:           defaultZipfS,
		InvalidShare:    defaultInvalidShare,
		Start:           defaultStart,
		Interval:        defaultInterval,
	}
}

// Validate reports every out-of-range option, naming it. Zero values are valid: they select
// the defaults documented on Options.
func (o Options) Validate() error {
	var errs []error
	if o.Count < 0 {
		errs = append(errs, fmt.Errorf("count: must be >= 0, got %d", o.Count))
	}
	if o.DistinctPrompts < 0 {
		errs = append(errs, fmt.Errorf("distinct_prompts: must be >= 0 (0 selects %d), got %d", defaultDistinctPrompts, o.DistinctPrompts))
	}
	if o.ZipfS != 0 && !(o.ZipfS > 1 && !math.IsInf(o.ZipfS, 1)) {
		errs = append(errs, fmt.Errorf("zipf_s: must be a finite number > 1 (0 selects %g), got %g", defaultZipfS, o.ZipfS))
	}
	if o.AnswerVariants < 0 {
		errs = append(errs, fmt.Errorf("answer_variants: must be >= 0 (0 selects 1), got %d", o.AnswerVariants))
	} else if o.AnswerVariants > 0 && !o.ExactRepeats {
		errs = append(errs, fmt.Errorf("answer_variants: applies only with exact_repeats, got %d without it", o.AnswerVariants))
	}
	if !(o.InvalidShare >= 0 && o.InvalidShare <= 1) {
		errs = append(errs, fmt.Errorf("invalid_share: must be in [0, 1], got %g", o.InvalidShare))
	}
	if o.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval: must be >= 0 (0 selects %s), got %s", defaultInterval, o.Interval))
	}
	if len(errs) == 0 {
		if n := o.zerosToDefaults(); !timesInRange(n.Start, n.Interval, n.Count) {
			errs = append(errs, fmt.Errorf("start: %d timestamps from %s every %s leave the years 0-9999 that RFC 3339 can express", n.Count, n.Start.Format(time.RFC3339), n.Interval))
		}
	}
	return errors.Join(errs...)
}

// timesInRange reports whether count timestamps from start every interval (> 0) all fall in
// the years 0-9999.
func timesInRange(start time.Time, interval time.Duration, count int) bool {
	inRange := func(t time.Time) bool { return t.Year() >= 0 && t.Year() <= 9999 }
	steps := int64(max(count-1, 0))
	if !inRange(start) || (steps > 0 && steps > math.MaxInt64/int64(interval)) {
		return false
	}
	return inRange(start.Add(time.Duration(steps) * interval))
}

// zerosToDefaults replaces the zero values that select a default.
func (o Options) zerosToDefaults() Options {
	d := DefaultOptions()
	if o.DistinctPrompts == 0 {
		o.DistinctPrompts = d.DistinctPrompts
	}
	if o.ZipfS == 0 {
		o.ZipfS = d.ZipfS
	}
	if o.ExactRepeats && o.AnswerVariants == 0 {
		o.AnswerVariants = 1
	}
	if o.Start.IsZero() {
		o.Start = d.Start
	}
	o.Start = o.Start.UTC()
	if o.Interval == 0 {
		o.Interval = d.Interval
	}
	return o
}

// withDefaults replaces zero and out-of-range values by their defaults.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	o = o.zerosToDefaults()
	o.Count = max(o.Count, 0)
	if o.DistinctPrompts < 0 {
		o.DistinctPrompts = d.DistinctPrompts
	}
	if !(o.ZipfS > 1 && !math.IsInf(o.ZipfS, 1)) {
		o.ZipfS = d.ZipfS
	}
	if o.AnswerVariants < 0 {
		o.AnswerVariants = 1
	}
	if !o.ExactRepeats {
		o.AnswerVariants = 0
	}
	if !(o.InvalidShare >= 0) {
		o.InvalidShare = 0
	}
	o.InvalidShare = min(o.InvalidShare, 1)
	if o.Interval < 0 {
		o.Interval = d.Interval
	}
	if !timesInRange(o.Start, o.Interval, o.Count) {
		o.Start, o.Interval = d.Start, d.Interval
	}
	return o
}

// Generate returns Count message values (JSON lines without the trailing newline),
// deterministic for equal Options. Zero options select their defaults; out-of-range ones
// (see Validate) are replaced by their defaults too.
func Generate(opts Options) [][]byte {
	g := newGenerator(opts)
	out := make([][]byte, 0, g.opts.Count)
	for range g.opts.Count {
		out = append(out, g.next())
	}
	return out
}

// Write writes Generate's output as JSON lines, each followed by "\n", streaming it rather
// than holding it in memory. It rejects invalid options (see Validate) before writing.
func Write(w io.Writer, opts Options) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	g := newGenerator(opts)
	bw := bufio.NewWriter(w)
	for range g.opts.Count {
		if _, err := bw.Write(g.next()); err != nil {
			return err
		}
		if err := bw.WriteByte('\n'); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// invalidKind is the way a deliberately invalid line is broken.
type invalidKind int

const (
	invNotJSON invalidKind = iota
	invMissingModel
	invMissingResponse
	invBadUTF8
	numInvalidKinds
)

var invalidKindNames = [numInvalidKinds]string{"not_json", "missing_model", "missing_response", "invalid_utf8"}

func (k invalidKind) String() string { return invalidKindNames[k] }

// generator produces the lines one at a time. All randomness comes from r, seeded from
// Options.Seed, and from per-prompt PCGs seeded from Seed and the prompt's rank, so a
// prompt's text does not depend on when it is first asked.
type generator struct {
	opts    Options
	r       *rand.Rand
	zipf    *rand.Zipf
	invalid []bool
	head    []int // faqs index of each head rank
	prompts map[int]*promptSpec
	seen    map[string]bool
	rep     *repeater // with ExactRepeats, instead of prompts, seen and head
	i       int

	// Bookkeeping for tests: what the last line was and totals per behaviour.
	last         lineInfo
	behaviours   [numBehaviours]int
	invalidKinds [numInvalidKinds]int
}

// lineInfo describes the line generate produced last.
type lineInfo struct {
	prompt    *promptSpec
	behaviour behaviour
	invalid   bool
	kind      invalidKind
	response  string
}

// seedSalt separates the per-prompt streams from the main one.
const seedSalt = 0x7261746572640a01

func newGenerator(opts Options) *generator {
	o := opts.withDefaults()
	r := rand.New(rand.NewPCG(uint64(o.Seed), seedSalt))
	g := &generator{
		opts:    o,
		r:       r,
		zipf:    rand.NewZipf(r, o.ZipfS, 1, uint64(o.DistinctPrompts-1)),
		invalid: make([]bool, o.Count),
		prompts: make(map[int]*promptSpec),
		seen:    make(map[string]bool),
	}
	n := int(math.Round(float64(o.Count) * o.InvalidShare))
	for _, i := range r.Perm(o.Count)[:n] {
		g.invalid[i] = true
	}
	if o.ExactRepeats {
		g.rep = newRepeater(o, r)
		return g
	}
	headN := min(len(faqs), o.DistinctPrompts/4)
	g.head = r.Perm(len(faqs))[:headN]
	return g
}

// prompt returns the prompt of popularity rank k, building it on first use.
func (g *generator) prompt(k int) *promptSpec {
	if p, ok := g.prompts[k]; ok {
		return p
	}
	r := rand.New(rand.NewPCG(uint64(g.opts.Seed)^seedSalt, uint64(k)))
	var p *promptSpec
	if k < len(g.head) {
		p = buildFAQ(r, faqs[g.head[k]])
	} else {
		// Long-tail prompts are specific; retry the rare collisions with an earlier one.
		for attempt := 0; ; attempt++ {
			p = buildTail(r)
			if !g.seen[p.text()] || attempt >= 20 {
				break
			}
		}
	}
	g.seen[p.text()] = true
	g.prompts[k] = p
	return p
}

var (
	regions   = []weighted[string]{{"us-east-1", 40}, {"us-west-2", 15}, {"eu-west-1", 25}, {"eu-central-1", 10}, {"ap-southeast-1", 10}}
	userTiers = []weighted[string]{{"free", 50}, {"pro", 35}, {"enterprise", 15}}
	clients   = []string{"vscode/1.96.2", "vscode/1.95.3", "jetbrains/2025.3", "neovim/0.11.1"}
)

// next returns the next line.
func (g *generator) next() []byte {
	if g.rep != nil {
		return g.nextRepeat()
	}
	i := g.i
	g.i++
	r := g.r
	p := g.prompt(int(g.zipf.Uint64()))
	model := pickW(r, appModels[p.app])
	b := chooseBehaviour(r, p, model)
	rec := record.Record{
		ID:        fmt.Sprintf("req-%06d", i+1),
		Timestamp: g.opts.Start.Add(time.Duration(i) * g.opts.Interval),
		Model:     model,
		App:       p.app,
		Prompt:    p.prompt,
		Messages:  p.messages,
		Response:  respond(r, p, b),
		Reference: p.reference,
	}
	if r.Float64() < 0.05 {
		rec.App = "" // older clients don't send it
	}
	if r.Float64() < 0.03 {
		rec.Candidates = g.candidates(r, p, model)
	}
	return g.finish(rec, p, b)
}

// finish adds metadata and a trace id to rec and renders it, corrupted if line i is to be
// invalid.
func (g *generator) finish(rec record.Record, p *promptSpec, b behaviour) []byte {
	i, r := g.i-1, g.r
	if r.Float64() < 0.9 {
		rec.Metadata = map[string]string{
			"region":          pickW(r, regions),
			"user_tier":       pickW(r, userTiers),
			"prompt_template": p.template,
		}
		if p.locale != "" {
			rec.Metadata["locale"] = p.locale
		}
		if p.app == "ide-plugin" {
			rec.Metadata["client"] = pick(r, clients)
		}
	}
	if r.Float64() < 0.7 {
		rec.TraceID = fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
	}
	g.last = lineInfo{prompt: p, behaviour: b, response: rec.Response}
	if g.invalid[i] {
		k := invalidKind(r.IntN(int(numInvalidKinds)))
		g.last.invalid, g.last.kind = true, k
		g.invalidKinds[k]++
		return corrupt(r, rec, k)
	}
	g.behaviours[b]++
	return encode(rec)
}

// candidates returns an alternative answer from another model of the same app.
func (g *generator) candidates(r *rand.Rand, p *promptSpec, model string) []record.Candidate {
	var others []string
	for _, m := range appModels[p.app] {
		if m.v != model {
			others = append(others, m.v)
		}
	}
	resp := p.variant(r)
	if r.IntN(4) == 0 {
		resp = respond(r, p, chooseBehaviour(r, p, canaryModel))
	}
	return []record.Candidate{{Model: pick(r, others), Response: resp}}
}

// encode renders v as one line of JSON, without HTML escaping and without the newline.
func encode(v any) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		panic(err) // records hold only strings and a timestamp Validate keeps in range
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// latin1 are byte sequences that are not UTF-8, as producers emit them when text in another
// encoding slips through.
var latin1 = []string{"caf\xe9", "Gr\xfc\xdfe", "na\xefve", "\xff\xfe", "\xc3\x28", "\xed\xa0\x80", "\x80\x81"}

const badUTF8Marker = "\x01BAD-UTF8\x01"

// corrupt renders rec as an invalid line of kind k.
func corrupt(r *rand.Rand, rec record.Record, k invalidKind) []byte {
	switch k {
	case invMissingModel, invMissingResponse:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(encode(rec), &m); err != nil {
			panic(err)
		}
		if k == invMissingModel {
			delete(m, "model")
		} else {
			delete(m, "response")
		}
		return encode(m)
	case invBadUTF8:
		bad := pick(r, latin1)
		if rec.Prompt != "" && r.IntN(2) == 0 {
			rec.Prompt = insertAtSpace(r, rec.Prompt, badUTF8Marker)
		} else {
			rec.Response = insertAtSpace(r, rec.Response, badUTF8Marker)
		}
		// encoding/json would replace invalid bytes by U+FFFD, so splice them in afterwards;
		// the marker's control characters are escaped as \u0001.
		return bytes.Replace(encode(rec), []byte(`\u0001BAD-UTF8\u0001`), []byte(bad), 1)
	default:
		line := encode(rec)
		switch r.IntN(4) {
		case 0: // a producer that died mid-write
			return []byte(text.Clip(string(line), len(line)*(20+r.IntN(70))/100))
		case 1:
			return fmt.Appendf(nil, "%s WARN gateway: upstream timeout after 30000ms model=%s app=%s request_id=%s",
				rec.Timestamp.Format(time.RFC3339), rec.Model, rec.App, rec.ID)
		case 2:
			return []byte("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>")
		default: // a Python dict printed instead of serialised
			clean := strings.NewReplacer("'", "", "\n", " ", "\r", " ")
			snippet := func(s string) string { return clean.Replace(text.Clip(s, min(len(s), 60))) }
			return fmt.Appendf(nil, "{'id': '%s', 'model': '%s', 'prompt': '%s', 'response': '%s', 'metadata': None}",
				rec.ID, rec.Model, snippet(rec.PromptText()), snippet(rec.Response))
		}
	}
}

// insertAtSpace inserts ins into s at a random word boundary (or at the end).
func insertAtSpace(r *rand.Rand, s, ins string) string {
	var spaces []int
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			spaces = append(spaces, i+1)
		}
	}
	if len(spaces) == 0 {
		return s + ins
	}
	at := pick(r, spaces)
	return s[:at] + ins + s[at:]
}
