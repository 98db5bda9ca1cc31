package trafficgen

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"raterd/consumer"
	"raterd/record"
)

// Sizes of exact-repeat traffic: prompts as Record.PromptText renders them and answers
// (responses and candidates) have at least the minimum in characters and at most the maximum
// in bytes.
const (
	minPromptLen, maxPromptLen = 200, 4000
	minAnswerLen, maxAnswerLen = 200, 2000
)

const (
	// repeatPromptSalt and repeatAnswerSalt separate the per-prompt and per-answer streams
	// of exact-repeat traffic from each other and from the mixed traffic's.
	repeatPromptSalt = 0x7261746572640a02
	repeatAnswerSalt = 0x7261746572640a03
	// maxDuplicateDraws is how many draws of a prompt may repeat a lower rank's prompt before
	// the prompt gets a reference number that makes it unique; only very large
	// DistinctPrompts exhaust the builders' variety.
	maxDuplicateDraws = 64
	// maxAnswerDraws bounds the draws of an answer that is out of bounds or repeats an
	// earlier variant of the same prompt; after them the canonical answer is used. Each
	// behaviour drawn gets renderDraws renderings before the next behaviour is drawn, so that
	// the behaviour mix stays close to the mixed traffic's.
	maxAnswerDraws = 64
	renderDraws    = 4
	// candidateShare is the share of prompt+response pairs that carry a pairwise candidate.
	candidateShare = 0.03
)

// repeatAnswer is one of the fixed answers of a prompt in exact-repeat traffic.
type repeatAnswer struct {
	text      string
	b         behaviour
	candidate string // the response of the pairwise candidate; "" for none
}

// repeater holds the prompts and answers of exact-repeat traffic. Prompts are built in rank
// order, so that each is a pure function of the seed and its rank: rank k draws from its own
// stream until it finds a prompt of the right size that no lower rank has.
type repeater struct {
	seed    uint64
	prompts *rand.Zipf
	answers *rand.Zipf // nil with one answer per prompt

	specs     []*promptSpec          // by rank, ranks 0..len-1 built
	taken     map[uint64]bool        // FNV-64a hashes of the prompt texts in specs
	answersOf map[int][]repeatAnswer // by rank, variants 0..len-1 built
}

func newRepeater(o Options, r *rand.Rand) *repeater {
	q := &repeater{
		seed:      uint64(o.Seed),
		prompts:   rand.NewZipf(r, o.ZipfS, 1, uint64(o.DistinctPrompts-1)),
		taken:     make(map[uint64]bool),
		answersOf: make(map[int][]repeatAnswer),
	}
	if o.AnswerVariants > 1 {
		q.answers = rand.NewZipf(r, o.ZipfS, 1, uint64(o.AnswerVariants-1))
	}
	return q
}

// nextRepeat returns the next line of exact-repeat traffic.
func (g *generator) nextRepeat() []byte {
	i := g.i
	g.i++
	r, q := g.r, g.rep
	k, v := int(q.prompts.Uint64()), 0
	if q.answers != nil {
		v = int(q.answers.Uint64())
	}
	p := q.prompt(k)
	a := q.answer(k, v)
	model := pickW(r, appModels[p.app])
	rec := record.Record{
		ID:        fmt.Sprintf("req-%06d", i+1),
		Timestamp: g.opts.Start.Add(time.Duration(i) * g.opts.Interval),
		Model:     model,
		App:       p.app,
		Prompt:    p.prompt,
		Messages:  p.messages,
		Response:  a.text,
		Reference: p.reference,
	}
	if r.Float64() < 0.05 {
		rec.App = "" // older clients don't send it
	}
	if a.candidate != "" {
		var others []string
		for _, m := range appModels[p.app] {
			if m.v != model {
				others = append(others, m.v)
			}
		}
		rec.Candidates = []record.Candidate{{Model: pick(r, others), Response: a.candidate}}
	}
	return g.finish(rec, p, a.b)
}

// prompt returns the prompt of rank k, building the ranks up to k on first use.
func (q *repeater) prompt(k int) *promptSpec {
	for len(q.specs) <= k {
		p := buildRepeatPrompt(q.seed, len(q.specs), func(text string) bool { return q.taken[hashText(text)] })
		q.taken[hashText(p.text())] = true
		q.specs = append(q.specs, p)
	}
	return q.specs[k]
}

// answer returns answer v of the prompt of rank k, building the variants up to v on first use.
func (q *repeater) answer(k, v int) repeatAnswer {
	p := q.prompt(k)
	as := q.answersOf[k]
	for len(as) <= v {
		as = append(as, buildRepeatAnswer(q.seed, k, len(as), p, as))
	}
	q.answersOf[k] = as
	return as[v]
}

func hashText(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// within reports whether s has at least lo characters and at most hi bytes.
func within(s string, lo, hi int) bool {
	return len(s) <= hi && utf8.RuneCountInString(s) >= lo
}

// buildRepeatPrompt builds the prompt of rank k: the first long-tail prompt from k's own
// stream that fits the size bounds, whose canonical answer does too, and that taken does not
// report as a lower rank's. Short plain prompts become chats with their app's system message,
// as an app's templated call sends them.
func buildRepeatPrompt(seed uint64, k int, taken func(string) bool) *promptSpec {
	r := rand.New(rand.NewPCG(seed^repeatPromptSalt, uint64(k)))
	for dups := 0; ; {
		p := buildTail(r)
		if len(p.messages) == 0 && utf8.RuneCountInString(p.prompt) < minPromptLen {
			p.chat(r, systemPrompt(r, p))
		}
		if !within(p.text(), minPromptLen, maxPromptLen) || !within(p.canonical(), minAnswerLen, maxAnswerLen) {
			continue
		}
		if !taken(p.text()) {
			return p
		}
		if dups++; dups < maxDuplicateDraws {
			continue
		}
		p.appendToPrompt(fmt.Sprintf("\n\nReference: REQ-%07d", k))
		if within(p.text(), minPromptLen, maxPromptLen) && !taken(p.text()) {
			return p
		}
	}
}

// appendToPrompt appends s to the user's prompt: the last chat message or the plain prompt.
func (p *promptSpec) appendToPrompt(s string) {
	if n := len(p.messages); n > 0 {
		p.messages[n-1].Content += s
		return
	}
	p.prompt += s
}

// systemPrompt returns the system message p's app sends with it.
func systemPrompt(r *rand.Rand, p *promptSpec) string {
	switch p.kind {
	case kindSupport:
		return pick(r, supportSystems)
	case kindBilling:
		return billingSystem
	case kindCode:
		return codeSystem
	case kindSQL:
		return sqlSystem
	case kindSummarize:
		return summarizeSystem
	case kindExtract:
		return extractSystem
	case kindEmail:
		return emailSystem
	default:
		return docsSystem
	}
}

// buildRepeatAnswer builds answer v of prompt p of rank k from its own stream: a response
// drawn with the mixed traffic's behaviour mix (empty answers and answers out of the size
// bounds redrawn) that differs from the earlier variants, and, for candidateShare of the
// answers, a pairwise candidate. It depends on the earlier variants, which are pure
// functions of the seed and k themselves.
func buildRepeatAnswer(seed uint64, k, v int, p *promptSpec, earlier []repeatAnswer) repeatAnswer {
	r := rand.New(rand.NewPCG(seed^repeatAnswerSalt^(uint64(v)*0x9e3779b97f4a7c15), uint64(k)))
	a := repeatAnswer{text: p.canonical(), b: bGood}
draws:
	for draw := 0; draw < maxAnswerDraws; {
		b := chooseBehaviour(r, p, "")
		for range renderDraws {
			draw++
			text := respondWithin(r, p, b)
			if within(text, minAnswerLen, maxAnswerLen) && !slices.ContainsFunc(earlier, func(e repeatAnswer) bool { return e.text == text }) {
				a = repeatAnswer{text: text, b: b}
				break draws
			}
		}
	}
	if r.Float64() < candidateShare {
		a.candidate = p.variant(r)
		if !within(a.candidate, minAnswerLen, maxAnswerLen) {
			a.candidate = p.canonical()
		}
	}
	return a
}

// refusalFollowUps extend refusals to the size of an answer, as deployed assistants do.
var refusalFollowUps = []string{
	"For questions about orders, payments or your account, please sign in to the help centre and open a ticket, so that a member of our team can verify your identity and look into it for you.",
	"If you believe this is a mistake, you can rephrase your request without personal or account details, or ask for a human agent through the help centre, who can review it for you.",
	"My guidelines don't allow me to handle requests like this one automatically. A member of the team can review it within one business day if you open a ticket from your account page.",
}

// respondWithin is respond for exact-repeat traffic: refusals come with a follow-up sentence
// and long answers are 1.2–2 KB rather than several.
func respondWithin(r *rand.Rand, p *promptSpec, b behaviour) string {
	switch b {
	case bRefusal:
		return pick(r, refusals) + " " + pick(r, refusalFollowUps)
	case bLong:
		secs := longSections[p.longFamily]
		target := 1200 + r.IntN(600)
		closer := pick(r, p.closers)
		var sb strings.Builder
		sb.WriteString(pick(r, p.openers))
		sb.WriteString(p.core)
		for _, i := range r.Perm(len(secs)) {
			if sb.Len() >= target {
				break
			}
			if sb.Len()+2+len(secs[i])+len(closer) > maxAnswerLen {
				continue
			}
			sb.WriteString("\n\n")
			sb.WriteString(secs[i])
		}
		sb.WriteString(closer)
		return sb.String()
	default:
		return respond(r, p, b)
	}
}

// DistinctKeys counts the distinct prompts and the distinct prompt+response pairs among the
// lines raterd accepts as records (consumer.Decode: valid UTF-8 JSON objects with a
// non-empty "model", a "response" and, if any, an RFC 3339 "timestamp"); the others are
// dead-lettered and never judged. Prompts are compared as
// evaluators read them (Record.PromptText: the prompt, or the chat messages rendered one per
// line). So prompts is the number of judge calls that an evaluator reading only the prompt
// makes over the lines, if it applies to every record and its cache never evicts or expires,
// and pairs the number for one that reads the prompt and the response. In exact-repeat traffic
// (Options.ExactRepeats) pairs also holds for evaluators that read the reference or a
// candidate, as those repeat with the pair; not for ones that read metadata.
func DistinctKeys(lines [][]byte) (prompts, pairs int) {
	type pair struct{ prompt, response string }
	ps := make(map[string]struct{})
	prs := make(map[pair]struct{})
	for _, line := range lines {
		rec, ok := decodeAccepted(line)
		if !ok {
			continue
		}
		text := rec.PromptText()
		ps[text] = struct{}{}
		prs[pair{text, rec.Response}] = struct{}{}
	}
	return len(ps), len(prs)
}

// decodeAccepted decodes line with the consumer's decoder, reporting false for a line it
// dead-letters (without a size cap: that is raterd's config, not the line's).
func decodeAccepted(line []byte) (record.Record, bool) {
	rec, err := consumer.Decode(line, record.Source{}, time.Unix(1, 0), 0)
	if err != nil {
		return record.Record{}, false
	}
	return *rec, true
}
