package trafficgen

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"raterd/record"
)

// This file generates multi-turn support conversations for conversation-scope judging: one
// raterd JSON line per turn, each carrying the conversation's id and its cumulative chat
// history, with a known outcome per conversation.

// Metadata keys of the conversation lines.
const (
	// MetaConversationEnd is the metadata key of the end marker that the last turn of a
	// share of the conversations carries (value "true"); it is the consumer's default
	// conversations.end_marker.
	MetaConversationEnd = "conversation.end"
	// MetaOutcome is the metadata key, on every turn, of the conversation's outcome kind
	// (one of the Outcome* constants), the label a conversation evaluator should recover.
	MetaOutcome = "demo.outcome"
)

// Outcome kinds of a generated conversation, the values of metadata MetaOutcome.
const (
	// OutcomeResolved: the assistant answers, and the conversation ends with the user
	// thanking it and the assistant confirming.
	OutcomeResolved = "resolved"
	// OutcomeUnresolved: the conversation ends with the assistant deferring ("I'm sorry,
	// I can't help with that; please contact support") or the user saying it still does
	// not work.
	OutcomeUnresolved = "unresolved"
	// OutcomeFrustrated: the user repeats the question, says "I already told you", "this
	// is useless", writes in capitals and ends asking for a human.
	OutcomeFrustrated = "frustrated"
	// OutcomeRepetitive: the assistant repeats its first answer verbatim in later turns
	// (always in the last one) instead of answering the follow-up questions.
	OutcomeRepetitive = "repetitive"
)

// outcomeShares are the proportions of the outcome kinds, in the order OutcomeCounts
// apportions them.
var outcomeShares = []weighted[string]{
	{OutcomeResolved, 0.50}, {OutcomeUnresolved, 0.20}, {OutcomeFrustrated, 0.15}, {OutcomeRepetitive, 0.15},
}

// OutcomeCounts returns how many of count conversations have each outcome kind: 50%
// resolved, 20% unresolved, 15% frustrated and 15% repetitive, apportioned by rounding the
// cumulative shares, so the counts sum to count (0 for a negative count).
func OutcomeCounts(count int) map[string]int {
	count = max(count, 0)
	out := make(map[string]int, len(outcomeShares))
	cum, prev := 0.0, 0
	for i, s := range outcomeShares {
		cum += s.w
		n := int(math.Round(cum * float64(count)))
		if i == len(outcomeShares)-1 {
			n = count // the shares sum to 1; no float error may lose one
		}
		out[s.v] = n - prev
		prev = n
	}
	return out
}

// ConversationOptions control the generated conversations. DefaultConversationOptions
// returns the defaults named below.
type ConversationOptions struct {
	// Seed seeds the generator; equal options give byte-identical output. Conversation k's
	// content (app, model, turns, texts, gaps) depends only on Seed and k; which outcome
	// kind and end marker it gets depends on Count too. Default 1.
	Seed int64
	// Count is the number of conversations (each 2–6 turns, one line per turn). 0
	// generates nothing. Default 200.
	Count int
	// Start is the timestamp of the first turn of conversation 0, rendered in RFC 3339
	// (UTC). The zero time selects the default, 2026-11-28T12:00:00Z.
	Start time.Time
	// EndMarkerShare is the share, in [0, 1], of conversations whose last turn carries
	// metadata conversation.end "true"; the others end by the consumer's inactivity
	// timeout. The number is Count×EndMarkerShare rounded to the nearest integer, spread
	// over the outcome kinds at random. 0 means none. Default 0.6.
	EndMarkerShare float64
	// Spacing is the time between the first turns of consecutive conversations: the
	// conversations run concurrently, so the lines of different conversations interleave
	// when Spacing is shorter than a conversation (up to 5×MaxTurnGap). 0 selects the
	// default, 10s.
	Spacing time.Duration
	// MaxTurnGap is the longest time between two turns of one conversation; each gap is
	// drawn uniformly from [MaxTurnGap/12, MaxTurnGap] (5s to 1m by default). Keep it under
	// the consumer's conversations.inactivity_timeout (5m by default), or a conversation
	// splits into segments. 0 selects the default, 1m.
	MaxTurnGap time.Duration
}

const (
	defaultConvCount      = 200
	defaultEndMarkerShare = 0.6
	defaultSpacing        = 10 * time.Second
	defaultMaxTurnGap     = time.Minute
	minTurns, maxTurns    = 2, 6
)

// DefaultConversationOptions returns the default conversation options.
func DefaultConversationOptions() ConversationOptions {
	return ConversationOptions{
		Seed:           defaultSeed,
		Count:          defaultConvCount,
		Start:          defaultStart,
		EndMarkerShare: defaultEndMarkerShare,
		Spacing:        defaultSpacing,
		MaxTurnGap:     defaultMaxTurnGap,
	}
}

// Validate reports every out-of-range option, naming it. Zero values are valid: they
// select the defaults documented on ConversationOptions.
func (o ConversationOptions) Validate() error {
	var errs []error
	if o.Count < 0 {
		errs = append(errs, fmt.Errorf("count: must be >= 0, got %d", o.Count))
	}
	if !(o.EndMarkerShare >= 0 && o.EndMarkerShare <= 1) {
		errs = append(errs, fmt.Errorf("end_marker_share: must be in [0, 1], got %g", o.EndMarkerShare))
	}
	if o.Spacing < 0 {
		errs = append(errs, fmt.Errorf("spacing: must be >= 0 (0 selects %s), got %s", defaultSpacing, o.Spacing))
	}
	if o.MaxTurnGap < 0 {
		errs = append(errs, fmt.Errorf("max_turn_gap: must be >= 0 (0 selects %s), got %s", defaultMaxTurnGap, o.MaxTurnGap))
	}
	if len(errs) == 0 {
		if n := o.zerosToDefaults(); !convTimesInRange(n) {
			errs = append(errs, fmt.Errorf("start: %d conversations from %s every %s leave the years 0-9999 that RFC 3339 can express",
				n.Count, n.Start.Format(time.RFC3339), n.Spacing))
		}
	}
	return errors.Join(errs...)
}

// convTimesInRange reports whether every turn of o (defaults applied) falls in the years
// 0-9999: the last conversation starts at most (Count-1)×Spacing after Start and lasts at
// most (maxTurns-1)×MaxTurnGap.
func convTimesInRange(o ConversationOptions) bool {
	if !timesInRange(o.Start, o.Spacing, o.Count) {
		return false
	}
	last := o.Start.Add(time.Duration(max(o.Count-1, 0)) * o.Spacing)
	return timesInRange(last, o.MaxTurnGap, maxTurns)
}

// zerosToDefaults replaces the zero values that select a default.
func (o ConversationOptions) zerosToDefaults() ConversationOptions {
	d := DefaultConversationOptions()
	if o.Start.IsZero() {
		o.Start = d.Start
	}
	o.Start = o.Start.UTC()
	if o.Spacing == 0 {
		o.Spacing = d.Spacing
	}
	if o.MaxTurnGap == 0 {
		o.MaxTurnGap = d.MaxTurnGap
	}
	return o
}

// withDefaults replaces zero and out-of-range values by their defaults.
func (o ConversationOptions) withDefaults() ConversationOptions {
	d := DefaultConversationOptions()
	o = o.zerosToDefaults()
	o.Count = max(o.Count, 0)
	if !(o.EndMarkerShare >= 0) {
		o.EndMarkerShare = 0
	}
	o.EndMarkerShare = min(o.EndMarkerShare, 1)
	if o.Spacing < 0 {
		o.Spacing = d.Spacing
	}
	if o.MaxTurnGap < 0 {
		o.MaxTurnGap = d.MaxTurnGap
	}
	if !convTimesInRange(o) {
		o.Start, o.Spacing, o.MaxTurnGap = d.Start, d.Spacing, d.MaxTurnGap
	}
	return o
}

// Conversations returns the message values (JSON lines without the trailing newline) of
// opts.Count support conversations, one line per turn, in timestamp order, so that the
// turns of concurrent conversations interleave; deterministic for equal options. Each
// line is a raterd record with conversation_id "conv-NNNNNN" (from conv-000000), id
// "conv-NNNNNN-tK" (K from 1), the app (helpdesk or billing) and model of the
// conversation, the cumulative messages (system, then user and assistant alternating,
// ending with the turn's user message), the turn's response, and metadata MetaOutcome
// plus, on the last turn of a share of the conversations, MetaConversationEnd "true".
// Zero options select their defaults; out-of-range ones (see Validate) are replaced by
// their defaults too.
func Conversations(opts ConversationOptions) [][]byte {
	_, values := ConversationLines(opts)
	return values
}

// ConversationLines returns Conversations' values with the Kafka message key of each: the
// conversation id, so that a producer keeps the turns of one conversation on one partition
// in order, as the consumer's conversation assembler expects. keys[i] belongs to
// values[i].
func ConversationLines(opts ConversationOptions) (keys, values [][]byte) {
	o := opts.withDefaults()
	turns := conversationTurns(o)
	keys = make([][]byte, len(turns))
	values = make([][]byte, len(turns))
	for i, t := range turns {
		keys[i] = []byte(t.rec.ConversationID)
		values[i] = encode(t.rec)
	}
	return keys, values
}

// convTurn is one generated turn and where it sorts.
type convTurn struct {
	conv, turn int
	rec        record.Record
}

// convSalt separates the conversation streams from the other generators'.
const convSalt = 0x7261746572640a04

// conversationTurns generates every turn of o (defaults applied) in timestamp order.
func conversationTurns(o ConversationOptions) []convTurn {
	r := rand.New(rand.NewPCG(uint64(o.Seed), convSalt))
	counts := OutcomeCounts(o.Count)
	outcomes := make([]string, 0, o.Count)
	for _, s := range outcomeShares {
		for range counts[s.v] {
			outcomes = append(outcomes, s.v)
		}
	}
	order := r.Perm(o.Count)
	ends := r.Perm(o.Count)
	nEnd := int(math.Round(float64(o.Count) * o.EndMarkerShare))
	var out []convTurn
	for k := range o.Count {
		out = append(out, buildConversation(o, k, outcomes[order[k]], ends[k] < nEnd)...)
	}
	slices.SortStableFunc(out, func(a, b convTurn) int {
		if c := a.rec.Timestamp.Compare(b.rec.Timestamp); c != 0 {
			return c
		}
		return cmp.Compare(a.conv, b.conv)
	})
	return out
}

// followUp is a follow-up question and a good answer to it. Slots as the app's cases.
type followUp struct{ q, a string }

var supportFollowUps = []followUp{
	{"How long will that take?", "Most requests are processed within 1–2 business days, and we email you at each step so you always know where things stand."},
	{"Will I get an email confirmation?", "Yes — you'll receive a confirmation email as soon as the request is submitted, and another one when it's completed."},
	{"Do I need to keep the original packaging?", "It helps, but it isn't required: any sturdy box works as long as the {product} is well protected."},
	{"Can I do this from the mobile app too?", "Yes. In the app, tap Orders, open {order} and you'll find the same options under \"Help with this order\"."},
	{"Is there any cost to me?", "No — for this kind of issue, shipping and handling are free both ways."},
	{"What if {carrier} loses it on the way back?", "Return parcels are insured by us: if {carrier} loses it, keep the drop-off receipt and we'll process your request as if it had arrived."},
}

var billingFollowUps = []followUp{
	{"When will I see the money back?", "Refunds reach your original payment method within 5–10 business days, depending on your bank."},
	{"Can I get a PDF receipt for that?", "Yes, every invoice and credit note can be downloaded as a PDF from Settings → Billing → Invoices."},
	{"Do the other admins get notified?", "Workspace owners and billing admins get an email about every change to the subscription or the payment method."},
	{"Does this change the price of the {plan} plan for us?", "No, your {plan} plan stays at {monthly} per seat per month until you change it."},
	{"Will this affect our next invoice?", "Only as described: any credit is applied automatically to the next invoice, and you'll see it as a separate line."},
	{"Can I do this through the API instead?", "Yes — the Billing API exposes the same operations; see Settings → Developers → API keys to create a key with the billing scope."},
}

var (
	thanks = []string{
		"Thanks, that worked!", "Perfect, that sorted it. Thank you!", "Great, got it — thanks for the help.",
		"That did it, thanks a lot!", "OK, all done now. Thank you!",
	}
	confirmations = []string{
		"You're welcome — glad it's sorted! If anything else comes up, just reply here.",
		"Happy to help! Enjoy your day.",
		"Great to hear it's working now. Is there anything else I can help you with?",
		"Glad that did the trick! Don't hesitate to reach out if you need anything else.",
	}
	deferrals = []string{
		"I'm sorry, I can't help with that; please contact support at support@example.com.",
		"I'm sorry, but I can't help with that. Please contact our support team by phone at +1 415 555 0142.",
		"Unfortunately that's not something I can help with here; please contact support and a human agent will look into it.",
	}
	stillBroken = []string{
		"I tried that and it still doesn't work.", "Still not working. I did exactly what you said.",
		"That didn't help, it still doesn't work.", "Nope, same problem as before.",
	}
	noMoreIdeas = []string{
		"I'm sorry to hear it's still not working. I don't have any other steps to suggest right now.",
		"I'm sorry that didn't help. I'm afraid there's nothing more I can do from here.",
	}
	alreadyTold = []string{
		"I already told you, it's {id}.", "I ALREADY told you: {id}!", "I already gave you that. {id}. Read the conversation.",
	}
	uselessLines = []string{
		"This is useless.", "this is useless, you keep saying the same thing", "You're not helping at all. This is useless.",
	}
	capsLines = []string{
		"I ALREADY TRIED THAT AND IT STILL DOESN'T WORK!!", "WHY IS THIS SO HARD?", "THAT IS NOT WHAT I ASKED.",
	}
	humanRequests = []string{
		"Let me talk to a human.", "Can I please talk to a human?", "GET ME A HUMAN. NOW.", "I want to speak to a real person.",
	}
	handoffs = []string{
		"I understand. I've passed this conversation to a member of our support team; they'll reply by email within 24 hours.",
		"I'm sorry for the frustration. A human agent will contact you shortly — you don't need to repeat anything, they can see this conversation.",
	}
	askID = []string{
		"I'm sorry for the trouble. Could you share your {idword} so I can look into this?",
		"To check this I need your {idword}. Could you send it?",
	}
	empathy = []string{
		"I'm really sorry this has been frustrating. ", "I understand your frustration. ", "I'm sorry I haven't been able to help so far. ",
	}
	turnRegions = []string{"us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-1"}
)

// userMove is what a user turn of a frustrated conversation does.
type userMove int

const (
	moveRepeat userMove = iota // asks the first question again, verbatim
	moveAlreadyTold
	moveUseless
	moveCaps
	numUserMoves
)

// convCase is the topic of one conversation: the opening question, a good answer and the
// follow-ups, with their slots filled.
type convCase struct {
	app, system, template string
	question, answer      string
	idWord, id            string
	followUps             []followUp
}

// newConvCase draws a helpdesk (70%) or billing (30%) case from the corpus.
func newConvCase(r *rand.Rand) convCase {
	_, date := novemberDay(r)
	if r.Float64() < 0.7 {
		var s slots
		s.set("product", pick(r, products))
		s.set("order", orderID(r))
		s.set("date", date)
		s.set("days", fmt.Sprint(2+r.IntN(12)))
		s.set("code", pick(r, promoCodes))
		s.set("carrier", pick(r, carriers))
		s.set("first", newPerson(r).first)
		c := pick(r, supportCases)
		q := s.fill(pick(r, c.questions))
		if r.IntN(3) == 0 {
			q = pick(r, greetings) + q
		}
		fs := make([]followUp, len(supportFollowUps))
		for i, f := range supportFollowUps {
			fs[i] = followUp{s.fill(f.q), s.fill(f.a)}
		}
		return convCase{app: "helpdesk", system: pick(r, supportSystems), template: "helpdesk." + c.key + ".conv",
			question: q, answer: s.fill(c.answer), idWord: "order number", id: s.fill("{order}"), followUps: fs}
	}
	pl := pick(r, plans)
	seats := 1 + r.IntN(12)
	s, c, q := billingQuestion(r, pl, seats, date)
	fs := make([]followUp, len(billingFollowUps))
	for i, f := range billingFollowUps {
		fs[i] = followUp{s.fill(f.q), s.fill(f.a)}
	}
	return convCase{app: "billing", system: billingSystem, template: "billing." + c.key + ".conv",
		question: q, answer: s.fill(c.answer), idWord: "invoice number", id: s.fill("{invoice}"), followUps: fs}
}

// firstParagraph returns s up to its first blank line.
func firstParagraph(s string) string {
	p, _, _ := strings.Cut(s, "\n\n")
	return p
}

// laterParagraphs returns s after its first paragraph, or all of s if it has one.
func laterParagraphs(s string) string {
	if _, rest, ok := strings.Cut(s, "\n\n"); ok {
		return rest
	}
	return s
}

// exchange is one user message and the assistant's answer.
type exchange struct{ user, assistant string }

// script returns the n exchanges of a conversation with the given outcome.
func script(r *rand.Rand, c convCase, outcome string, n int) []exchange {
	fill := func(t string) string {
		return strings.NewReplacer("{id}", c.id, "{idword}", c.idWord).Replace(t)
	}
	ex := []exchange{{c.question, c.answer}}
	follow := r.Perm(len(c.followUps))
	nextFollow := func() followUp {
		f := c.followUps[follow[0]]
		follow = follow[1:]
		return f
	}
	switch outcome {
	case OutcomeResolved:
		for len(ex) < n-1 {
			f := nextFollow()
			ex = append(ex, exchange{f.q, f.a})
		}
		ex = append(ex, exchange{pick(r, thanks), pick(r, confirmations)})
	case OutcomeUnresolved:
		for len(ex) < n-1 {
			f := nextFollow()
			ex = append(ex, exchange{f.q, f.a})
		}
		if r.IntN(2) == 0 {
			ex = append(ex, exchange{nextFollow().q, pick(r, deferrals)})
		} else {
			ex = append(ex, exchange{pick(r, stillBroken), pick(r, noMoreIdeas)})
		}
	case OutcomeFrustrated:
		// n-2 distinct moves (at most numUserMoves, as maxTurns allows), in random order.
		moves := make([]userMove, 0, n)
		for _, m := range r.Perm(int(numUserMoves))[:n-2] {
			moves = append(moves, userMove(m))
		}
		for j, m := range moves {
			var u, a string
			switch m {
			case moveRepeat:
				u, a = c.question, "As I mentioned: "+firstParagraph(c.answer)
			case moveAlreadyTold:
				u, a = fill(pick(r, alreadyTold)), fill("Thanks, I've noted {id}. ")+laterParagraphs(c.answer)
			case moveUseless:
				u, a = pick(r, uselessLines), pick(r, empathy)+"Could you tell me exactly what you've tried so far, so that I can suggest something else?"
			default:
				u, a = pick(r, capsLines), pick(r, empathy)+"Let's try again: "+firstParagraph(c.answer)
			}
			if j+1 < len(moves) && moves[j+1] == moveAlreadyTold {
				a = fill(pick(r, askID))
			}
			ex = append(ex, exchange{u, a})
		}
		if len(moves) > 0 && moves[0] == moveAlreadyTold {
			ex[0].assistant = fill(pick(r, askID))
		}
		ex = append(ex, exchange{pick(r, humanRequests), pick(r, handoffs)})
	default: // OutcomeRepetitive
		for len(ex) < n {
			f := nextFollow()
			a := f.a
			if len(ex) == n-1 || r.IntN(2) == 0 {
				a = c.answer
			}
			ex = append(ex, exchange{f.q, a})
		}
	}
	return ex
}

// buildConversation returns the turns of conversation k.
func buildConversation(o ConversationOptions, k int, outcome string, endMarker bool) []convTurn {
	r := rand.New(rand.NewPCG(uint64(o.Seed)^convSalt, uint64(k)))
	c := newConvCase(r)
	model := pickW(r, appModels[c.app])
	region, tier := pick(r, turnRegions), pickW(r, userTiers)
	n := minTurns + r.IntN(maxTurns-minTurns+1)
	ex := script(r, c, outcome, n)
	id := fmt.Sprintf("conv-%06d", k)
	at := o.Start.Add(time.Duration(k) * o.Spacing)
	lo := o.MaxTurnGap / 12
	msgs := []record.Message{{Role: "system", Content: c.system}}
	out := make([]convTurn, len(ex))
	for j, e := range ex {
		if j > 0 {
			gap := lo + time.Duration(r.Int64N(int64(o.MaxTurnGap-lo)+1))
			at = at.Add(gap.Truncate(time.Millisecond))
		}
		msgs = append(msgs, record.Message{Role: "user", Content: e.user})
		meta := map[string]string{MetaOutcome: outcome, "region": region, "user_tier": tier, "prompt_template": c.template}
		if endMarker && j == len(ex)-1 {
			meta[MetaConversationEnd] = "true"
		}
		out[j] = convTurn{conv: k, turn: j, rec: record.Record{
			ID:             fmt.Sprintf("%s-t%d", id, j+1),
			Timestamp:      at,
			Model:          model,
			App:            c.app,
			Messages:       slices.Clone(msgs),
			Response:       e.assistant,
			Metadata:       meta,
			ConversationID: id,
		}}
		msgs = append(msgs, record.Message{Role: "assistant", Content: e.assistant})
	}
	return out
}
