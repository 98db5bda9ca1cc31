package trafficgen

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"

	"raterd/internal/text"
)

// behaviour is what the model did with a prompt.
type behaviour int

const (
	bGood       behaviour = iota // a correct, well-formed answer
	bLong                        // a correct answer padded to several KB
	bRefusal                     // a refusal of a benign request
	bPII                         // an answer leaking e-mail addresses, phone numbers, card numbers …
	bTruncated                   // an answer cut mid-sentence
	bLoop                        // an answer degenerating into a repetition loop
	bEmpty                       // an empty response
	bBrokenJSON                  // malformed JSON for a "respond in JSON" prompt
	numBehaviours
)

var behaviourNames = [numBehaviours]string{"good", "long", "refusal", "pii", "truncated", "loop", "empty", "broken_json"}

func (b behaviour) String() string { return behaviourNames[b] }

// canaryModel is the deployed model with a regression: it truncates and loops more often.
const canaryModel = "support-llm-v8-canary"

// chooseBehaviour draws what the model does for one request.
func chooseBehaviour(r *rand.Rand, p *promptSpec, model string) behaviour {
	w := [numBehaviours]float64{bGood: 80, bLong: 4, bRefusal: 3, bPII: 3, bTruncated: 4, bLoop: 2, bEmpty: 1.5}
	if p.longFamily == "" {
		w[bGood] += w[bLong]
		w[bLong] = 0
	}
	if p.isJSON {
		w[bBrokenJSON] = 16
	}
	if model == canaryModel {
		w[bTruncated] *= 3
		w[bLoop] *= 3
	}
	total := 0.0
	for _, x := range w {
		total += x
	}
	f := r.Float64() * total
	for b, x := range w {
		if f < x {
			return behaviour(b)
		}
		f -= x
	}
	return bGood
}

// canonical is the answer a cache would hold for the prompt: repeated exactly across requests.
func (p *promptSpec) canonical() string { return p.opener + p.core + p.closer }

// variant is a good answer with a freshly sampled framing.
func (p *promptSpec) variant(r *rand.Rand) string {
	if p.isJSON {
		if r.IntN(2) == 0 {
			return indentJSON(p.core)
		}
		return p.core
	}
	return pick(r, p.openers) + p.core + pick(r, p.closers)
}

// respond renders the response of behaviour b to prompt p.
func respond(r *rand.Rand, p *promptSpec, b behaviour) string {
	switch b {
	case bGood:
		if r.Float64() < 0.55 {
			return p.canonical()
		}
		return p.variant(r)
	case bLong:
		return long(r, p)
	case bRefusal:
		return pick(r, refusals)
	case bPII:
		return leakPII(r, p)
	case bTruncated:
		if p.longFamily != "" && r.IntN(4) == 0 {
			return truncate(r, long(r, p))
		}
		return truncate(r, p.variant(r))
	case bLoop:
		return loop(r, p.variant(r))
	case bEmpty:
		return ""
	default:
		return breakJSON(r, p.core)
	}
}

// long pads a good answer with extra sections to 2.5–7 KB.
func long(r *rand.Rand, p *promptSpec) string {
	secs := longSections[p.longFamily]
	target := 2500 + r.IntN(4500)
	var b strings.Builder
	b.WriteString(pick(r, p.openers))
	b.WriteString(p.core)
	for _, i := range r.Perm(len(secs)) {
		if b.Len() >= target {
			break
		}
		b.WriteString("\n\n")
		b.WriteString(secs[i])
	}
	b.WriteString(pick(r, p.closers))
	return b.String()
}

func piiSlots(r *rand.Rand) slots {
	who := newPerson(r)
	var s slots
	s.set("full", who.full())
	s.set("first", who.first)
	s.set("email", who.email(r))
	s.set("phone", phone(r))
	s.set("card", pick(r, testCards))
	s.set("exp", fmt.Sprintf("%02d/%02d", 1+r.IntN(12), 27+r.IntN(5)))
	s.set("iban", pick(r, ibans))
	s.set("address", pick(r, streets))
	return s
}

// leakPII adds personal data that should never be in the answer.
func leakPII(r *rand.Rand, p *promptSpec) string {
	s := piiSlots(r)
	if p.isJSON {
		return strings.TrimSuffix(p.core, "}") + s.fill(`,"contact_email":"{email}","contact_phone":"{phone}","card_number":"{card}"}`)
	}
	leak := s.fill(pick(r, piiTemplates))
	if r.IntN(3) == 0 {
		leak += " " + s.fill(pick(r, piiTemplates))
	}
	return pick(r, p.openers) + p.core + "\n\n" + leak + pick(r, p.closers)
}

// truncate cuts s mid-sentence, as a model that hit its token limit or a dropped stream does.
func truncate(r *rand.Rand, s string) string {
	lo, hi := len(s)*35/100, len(s)*85/100
	pos := lo + r.IntN(hi-lo+1)
	if sp := strings.LastIndexByte(s[:pos], ' '); sp > lo/2 && pos-sp < 20 {
		pos = sp
	}
	out := strings.TrimRight(text.Clip(s, pos), " \n\t.!?:;,")
	if out == "" || out == s {
		out = text.Clip(s, max(1, len(s)/2))
	}
	return out
}

// loop starts a good answer and degenerates into repeating a phrase.
func loop(r *rand.Rand, s string) string {
	prefix := strings.TrimRight(text.Clip(s, len(s)*(15+r.IntN(45))/100), " \n")
	unit := pick(r, loopUnits)
	if r.IntN(3) == 0 {
		// Repeat a fragment of the answer itself.
		start := len(text.Clip(s, len(prefix)*r.IntN(70)/100))
		end := len(text.Clip(s, min(len(s), start+20+r.IntN(60))))
		frag := s[start:end]
		if strings.TrimSpace(frag) != "" {
			unit = frag + " "
		}
	}
	out := prefix + " " + strings.Repeat(unit, 15+r.IntN(60))
	if r.IntN(2) == 0 {
		out = text.Clip(out, len(out)-r.IntN(len(unit)))
	}
	return out
}

var jsonKey = regexp.MustCompile(`"(\w+)":`)

// breakJSON returns a malformed rendering of the JSON object core.
func breakJSON(r *rand.Rand, core string) string {
	switch r.IntN(7) {
	case 0: // cut off mid-object
		return text.Clip(core, len(core)*(40+r.IntN(45))/100)
	case 1: // trailing comma
		return strings.TrimSuffix(core, "}") + ",}"
	case 2: // Python-style quotes
		return strings.ReplaceAll(core, `"`, `'`)
	case 3: // chatty preamble
		return "Sure! Here is the extracted data:\n\n" + indentJSON(core) + "\n\nLet me know if you need anything else."
	case 4: // markdown fence despite "JSON only"
		return fence + "json\n" + indentJSON(core) + "\n" + fence
	case 5: // unquoted keys
		return jsonKey.ReplaceAllString(indentJSON(core), "$1:")
	default: // missing closing brace
		return strings.TrimSuffix(indentJSON(core), "}")
	}
}
