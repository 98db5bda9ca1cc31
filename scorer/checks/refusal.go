package checks

import (
	"math/bits"
	"regexp"
	"slices"
	"strings"

	"raterd/internal/text"
)

// NameRefusal is the name of the check that fails a response that declines the request.
const NameRefusal = "refusal"

// refusalMatcher holds the compiled refusal rules and the patterns around them; it is
// read-only after newRefusalMatcher and so safe for concurrent use.
type refusalMatcher struct {
	// refusal matches refusal phrasings in the lower-cased opening of a response: the
	// rules of refusalPattern, each gated by its cues (see refusalMatch).
	refusal []compiledRefusal
	// refusalCues are the literals the rules' cue masks index (see refusalCues).
	refusalCues []string
	// cuesByPair[cuePair(b0, b1)] is the mask of the cues that start with the bytes b0 b1
	// (and of those whose first two bytes share that slot), so that refusalCueMask finds
	// every cue in one pass over the opening.
	cuesByPair [1 << cuePairBits]uint64
	// clarify matches a request for more information, which turns an apparent refusal
	// ("I can't answer that without more context") into an answer.
	clarify *regexp.Regexp
	// clarifyAnchored is clarify run anchored at its start words (clarifyStarts).
	clarifyAnchored *wordAnchored
}

// newRefusalMatcher compiles the refusal rules and the clarification pattern.
func newRefusalMatcher() *refusalMatcher {
	rf := &refusalMatcher{
		refusalCues:     refusalCues(),
		clarify:         regexp.MustCompile(clarifyPattern),
		clarifyAnchored: mustWordAnchored(clarifyPattern, clarifyStarts),
	}
	rf.refusal = compileRefusal(rf.refusalCues)
	for i, c := range rf.refusalCues {
		rf.cuesByPair[cuePair(c[0], c[1])] |= 1 << i // every cue has at least two bytes
	}
	return rf
}

// refusalRule is one alternative of the refusal pattern with its cues: literals of which
// every match of the alternative contains at least one, in the lower-cased,
// apostrophe-normalised opening the check reads. A rule whose cues are common words
// ("against") may also list also: a second set of literals, of which every match contains
// at least one as well, so that the rule runs only on openings that have one of each.
//
// A rule whose pattern opens with \b and a word may list starts: the words (ASCII
// letters) that every match begins with. It is then run anchored at each place where
// one of them begins a word, instead of at every byte of the opening (see
// compiledRefusal.match).
type refusalRule struct {
	pattern string
	cues    []string
	also    []string
	starts  []string
}

// refusalRules returns the alternatives of the refusal pattern, which matches a refusal in
// the lower-cased opening of a response (apostrophes normalised to '). A bare "I can't" is
// not enough: it must be followed by a verb of helping or producing ("I can't help with
// that", "I cannot provide …") or end the clause, so "I can't stress enough how…", "I
// can't help but…" and "I cannot guarantee…" stay answers. Policy phrasings need a
// first-person or "content/usage policy" owner, so that "this violates the company's
// security policy" does not count. A rule added here needs its cues (TestRefusalRuleCues
// checks them against every test sentence and generated traffic).
func refusalRules() []refusalRule {
	const base = `can't|cannot|can not|won't|will not|won't be able to|will not be able to|must not|shouldn't|should not|do not feel comfortable|don't feel comfortable|am unable to|am not able to|am not allowed to|am not permitted to|am not going to|am not comfortable|are unable to|are not able to|are not allowed to`
	const contracted = `unable to|not able to|not allowed to|not permitted to|not going to|not comfortable`
	english := []string{"can't", "cannot", "can not", "won't", "will not", "must not", "shouldn't", "should not", "comfortable", "unable", "not able", "not allowed", "not permitted", "not going"}
	return []refusalRule{
		// I can't / I'm unable to / we won't … help, assist, provide, …
		{pattern: `\b(?:i|we)(?: (?:really |simply |just |currently |personally |honestly )?(?:` + base + `)|(?:'m|'re) (?:` + contracted + `))` +
			`(?: (?:really|in good conscience|ethically|legally|safely|directly|personally|fully|actually))? ` +
			`(?:help(?: you)? (?:with|on|in|to|create|write|make|find|get|build|do|hack|break|plan)\b|help(?: you)?(?:\s*[.,!;:]|$)|assist|provide|comply|fulfil|fulfill|do (?:that|this|so|it)\b|create|generate|write|produce|share|give (?:you )?(?:that|this|those|any|advice|instructions|information|details|medical|legal|financial|personal|out)|offer|answer (?:that|this|your|such|questions|it\b)|respond to|engage|participate|support (?:that|this|your|you)|continue|complete (?:that|this|your)|process (?:that|this|your)|disclose|reveal|condone|endorse|encourage|facilitate|promote|discuss|supply|draft|translate (?:that|this)|carry out|take part|be of (?:help|assistance)|be part|be involved|make (?:that|this))`, cues: english,
			starts: []string{"i", "we"}},
		// a clause that ends right after the negation: "I'm sorry, but I can't." / "I won't."
		{pattern: `\bi(?: (?:can't|cannot|can not|won't|will not|am unable|am not able)|'m (?:unable|not able))(?: (?:to )?do (?:that|this|it|so))?\s*(?:[.!;]|$)`, cues: []string{"can't", "cannot", "can not", "won't", "will not", "unable", "not able"},
			starts: []string{"i"}},
		// "As an AI language model, I cannot / I'm not able / I don't have the ability"
		{pattern: `\bas an ai(?: language model| assistant| model| chatbot| system)?,? i(?: (?:can't|cannot|can not|won't|will not|am unable|am not able|am not allowed|am not capable|do not have the ability|don't have the ability|must decline|must refrain)|'m (?:unable|not able|not allowed|not capable))`, cues: []string{"as an ai"}},
		// explicit declining
		{pattern: `\bi(?: must| have to| need to| will have to|'ll have to|'m going to have to| am going to have to)(?: respectfully| politely)? (?:decline|refuse|refrain|pass on)`, cues: []string{"decline", "refuse", "refrain", "pass on"}},
		{pattern: `\bi(?: respectfully| politely)? (?:decline|refuse) to\b`, cues: []string{"decline", "refuse"}},
		{pattern: `\bi(?:'d| would) (?:rather|prefer) not (?:to )?(?:answer|discuss|help|share|provide|comment|engage|go into|get into|talk about|weigh in)`, cues: []string{"rather not", "prefer not"}},
		{pattern: `\b(?:that|this|it)(?:'s| is) not something (?:i|we)(?: can| will| am able to|'m able to| am allowed to|'m allowed to| are able to) (?:help|assist|do|provide|share|create|write|support|engage)`, cues: []string{"not something"}},
		// policy violations
		{pattern: `\b(?:violates?|violating|goes against|go against|against|breach(?:es)?|in violation of|not (?:allowed|permitted) (?:by|under)) (?:my|our|openai's|anthropic's|google's|meta's)(?: [a-z-]+)? (?:policy|policies|guidelines|principles|programming|rules|terms|values)`, cues: []string{"violat", "against", "breach", "not allowed", "not permitted"},
			also: []string{"polic", "guidelines", "principles", "programming", "rules", "terms", "values"}},
		{pattern: `\b(?:violates?|violating|goes against|against|breach(?:es)?|in violation of) (?:the )?(?:content|usage|safety|acceptable use|use case) (?:policy|policies|guidelines)`, cues: []string{"violat", "against", "breach"},
			also: []string{"polic", "guidelines"}},
		// Spanish, Portuguese, French, Italian, German, Russian
		{pattern: `\bno puedo (?:ayudar|proporcionar|cumplir|hacer eso|ofrecer|generar|crear|escribir|responder|asistir|participar|facilitar)`, cues: []string{"no puedo"}},
		{pattern: `\blo siento,? (?:pero )?no (?:puedo|es posible|me es posible)`, cues: []string{"lo siento"}},
		{pattern: `\bnão posso (?:ajudar|fornecer|cumprir|fazer isso|gerar|criar|escrever|responder|atender)`, cues: []string{"não posso"}},
		{pattern: `\b(?:desculpe|lamento|sinto muito),? (?:mas )?(?:eu )?não (?:posso|consigo)`, cues: []string{"não posso", "não consigo"}},
		{pattern: `\bje ne (?:peux|pourrai) pas (?:vous |t'|t’)?(?:aider|fournir|répondre|faire (?:cela|ça)|générer|créer|écrire|donner|satisfaire|accéder|participer)`, cues: []string{"je ne"}},
		{pattern: `\b(?:désolée?|je suis désolée?|navrée?),? (?:mais )?je ne (?:peux|pourrai|suis pas en mesure)`, cues: []string{"je ne"}},
		{pattern: `\bje ne suis pas en mesure de (?:vous |t')?(?:aider|fournir|répondre|faire|générer|créer|écrire|donner|satisfaire)`, cues: []string{"je ne"}},
		{pattern: `\bnon posso (?:aiutar|fornir|soddisfar|farlo|generar|crear|scriver|risponder|assister|partecipar)`, cues: []string{"non posso"}},
		{pattern: `\bmi dispiace,? ma non (?:posso|sono in grado|mi è possibile)`, cues: []string{"non posso", "non sono in grado", "non mi è possibile"}},
		{pattern: `\b(?:es tut mir leid|leider|entschuldigung|bedauerlicherweise),? (?:aber )?(?:kann|darf|werde) ich [^.!?]{0,40}?(?:nicht|keine[nr]?)(?: [a-zäöüß]+)? (?:helfen|weiterhelfen|behilflich|erfüllen|nachkommen|bereitstellen|beantworten|unterstützen|geben|liefern|erstellen|schreiben|generieren|ausführen|machen|tun)`, cues: []string{"kann ich", "darf ich", "werde ich"}},
		{pattern: `\bich kann (?:ihnen |dir |euch )?(?:dabei |damit |hierbei |hier |leider |bei dieser anfrage )*nicht (?:helfen|weiterhelfen|behilflich|erfüllen|nachkommen|bereitstellen|beantworten)`, cues: []string{"ich kann"}},
		{pattern: `(?:^|[^\p{L}])(?:извините|простите|к сожалению|мне жаль),? (?:но )?я не (?:могу|буду|в состоянии)`, cues: []string{"я не"}},
		{pattern: `(?:^|[^\p{L}])я не (?:могу|буду|в состоянии) (?:помочь|предоставить|выполнить|ответить|создать|написать|сгенерировать|помогать)`, cues: []string{"я не"}},
		// Chinese, Japanese, Korean
		{pattern: `(?:抱歉|对不起|很抱歉|對不起|不好意思)[，,。！!]?\s*(?:但是?)?\s*我(?:无法|不能|不可以|無法|没办法|沒辦法)`, cues: []string{"无法", "不能", "不可以", "無法", "没办法", "沒辦法"}},
		{pattern: `我(?:无法|不能|無法|不可以)(?:为你|为您|為你|為您)?(?:帮助|幫助|协助|協助|提供|满足|滿足|完成|回答|生成|创建|創建|编写|編寫|处理|處理|参与|參與)`, cues: []string{"无法", "不能", "無法", "不可以"}},
		{pattern: `申し訳(?:ありません|ございません|ないのですが)が?[、,].{0,60}?(?:できません|いたしかねます|致しかねます)`, cues: []string{"できません", "かねます"}},
		{pattern: `(?:お手伝い|お答え|お応え|ご提供|提供|対応|ご協力|回答)(?:すること|は)?(?:が|は)?できません`, cues: []string{"できません"}},
		{pattern: `(?:도와|도움을|제공해|답변해|도움이 되어|응답해)\s?드릴 수 없습니다`, cues: []string{"수 없습니다"}},
		{pattern: `죄송(?:하지만|합니다만|합니다)[,.]?.{0,60}?수 없습니다`, cues: []string{"수 없습니다"}},
	}
}

// refusalPattern is every refusal rule in one alternation: the regexp the check
// evaluates, one rule at a time (see refusalMatch).
func refusalPattern() string {
	rules := refusalRules()
	patterns := make([]string, len(rules))
	for i, r := range rules {
		patterns[i] = r.pattern
	}
	return `(?:` + strings.Join(patterns, `|`) + `)`
}

// refusalCues returns the cues and the also literals of every refusal rule, each once, in
// rule order: a response that contains none of them is no refusal, and most responses
// contain none.
func refusalCues() []string {
	var cues []string
	for _, r := range refusalRules() {
		for _, c := range slices.Concat(r.cues, r.also) {
			if !slices.Contains(cues, c) {
				cues = append(cues, c)
			}
		}
	}
	return cues
}

// compiledRefusal is a refusal rule ready to run: its regexp, and its cues and also
// literals as bit masks over refusalCues (at most 64 literals; TestRefusalRuleCues
// checks); also is 0 for a rule without also literals. A rule with starts has anchored
// too (see wordAnchored).
type compiledRefusal struct {
	re       *regexp.Regexp
	cues     uint64
	also     uint64
	anchored *wordAnchored
}

// compileRefusal compiles the refusal rules, their cue masks indexing cues.
func compileRefusal(cues []string) []compiledRefusal {
	rules := refusalRules()
	out := make([]compiledRefusal, len(rules))
	for i, r := range rules {
		out[i].re = regexp.MustCompile(r.pattern)
		if len(r.starts) > 0 {
			out[i].anchored = mustWordAnchored(r.pattern, r.starts)
		}
		for _, c := range r.cues {
			out[i].cues |= 1 << slices.Index(cues, c)
		}
		for _, c := range r.also {
			out[i].also |= 1 << slices.Index(cues, c)
		}
	}
	return out
}

// runs reports whether the rule can match an opening that contains the cues of present:
// one of its cues, and one of its also literals when it has them.
func (r *compiledRefusal) runs(present uint64) bool {
	return r.cues&present != 0 && (r.also == 0 || r.also&present != 0)
}

// match reports whether the rule's pattern matches lower, anchored at its start words
// when it has them.
func (r *compiledRefusal) match(lower string) bool {
	if r.anchored == nil {
		return r.re.MatchString(lower)
	}
	return r.anchored.match(lower)
}

// wordAnchored runs a pattern that opens with \b and one of a few words (its starts,
// ASCII letters) anchored where one of them begins a word, instead of trying it at every
// byte of the text. The answer is the same: a match of \bW… begins where a start word W
// follows a word boundary, the rest of the pattern sees the same text after that place,
// and the pattern matches when a match begins anywhere. It is much cheaper: Go's regexp
// has no DFA and tries a whole alternation at every byte of an unanchored search, while
// the anchored tries fail within a few bytes where the text says something else.
type wordAnchored struct {
	// re is the pattern without its opening \b, anchored at the start of the text.
	re     *regexp.Regexp
	starts []string
}

// mustWordAnchored compiles pattern to run anchored at starts. The pattern must open with
// \b; in a top-level alternation, the later alternatives keep theirs (at the anchor it
// holds, since the text there begins with a start word after a boundary).
func mustWordAnchored(pattern string, starts []string) *wordAnchored {
	rest, ok := strings.CutPrefix(pattern, `\b`)
	if !ok {
		panic("checks: a word-anchored pattern must open with \\b: " + pattern)
	}
	return &wordAnchored{re: regexp.MustCompile(`^(?:` + rest + `)`), starts: starts}
}

// match reports whether the pattern matches s.
func (a *wordAnchored) match(s string) bool {
	for _, w := range a.starts {
		for from := 0; ; {
			k := strings.Index(s[from:], w)
			if k < 0 {
				break
			}
			at := from + k
			if (at == 0 || !isWordByte(s[at-1])) && a.re.MatchString(s[at:]) {
				return true
			}
			from = at + 1
		}
	}
	return false
}

// isWordByte reports whether c is an ASCII word character, as \b in Go's regexp sees it.
func isWordByte(c byte) bool {
	return c == '_' || isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

// cuePairBits sizes the table of cues by their first two bytes: 1,024 slots (8 KiB), few
// enough to stay in the L1 cache, many enough that most byte pairs of prose find an
// empty slot.
const cuePairBits = 10

// cuePair is the slot of the byte pair b0 b1 in refusalMatcher.cuesByPair.
func cuePair(b0, b1 byte) int { return (int(b0)*61 + int(b1)) & (1<<cuePairBits - 1) }

// refusalCueMask returns the bit mask of the refusal cues lower contains. One pass over
// lower tries, at each byte, only the cues whose first two bytes hash to the slot of the
// byte and its successor and that were not found yet: an opening costs a table lookup
// per byte instead of a substring search per cue.
func (rf *refusalMatcher) refusalCueMask(lower string) uint64 {
	var m uint64
	for i := 0; i+1 < len(lower); i++ {
		cand := rf.cuesByPair[cuePair(lower[i], lower[i+1])] &^ m
		for cand != 0 {
			k := bits.TrailingZeros64(cand)
			cand &= cand - 1
			if strings.HasPrefix(lower[i:], rf.refusalCues[k]) {
				m |= 1 << k
			}
		}
	}
	return m
}

// refusalMatch reports whether lower matches refusalPattern. It runs only the rules whose
// cues (and also literals) lower contains, which gives the same answer: an alternation
// matches when one of its alternatives does, and an alternative cannot match without one
// of its cues (and one of its also literals). It is
// much cheaper: Go's regexp has no DFA, so the whole 28-way alternation costs tens of
// microseconds on a 400-byte opening, a rule about a 28th of that, and an opening that
// says "cannot" runs two rules.
func (rf *refusalMatcher) refusalMatch(lower string) bool {
	present := rf.refusalCueMask(lower)
	if present == 0 {
		return false
	}
	for _, r := range rf.refusal {
		if r.runs(present) && r.match(lower) {
			return true
		}
	}
	return false
}

// refusalHeadBytes bounds how much of a response the refusal check reads: refusals come
// first, and reading further only adds false positives from answers that mention limits
// ("I cannot guarantee this works on Windows") deep in the text.
const refusalHeadBytes = 400

// checkRefusal fails a response whose opening sentences decline the request.
func (rf *refusalMatcher) checkRefusal(s string) Result {
	head := leadingSentences(s, 2, refusalHeadBytes)
	if head == "" {
		return Result{Value: 1, Label: "answered", Confidence: 1, Explanation: "The response is empty, so it declines nothing (see the empty check)."}
	}
	lower := normalize(head)
	if !rf.refusalMatch(lower) {
		return Result{Value: 1, Label: "answered", Confidence: 1, Explanation: "The opening of the response contains no refusal."}
	}
	if rf.clarifies(lower) {
		// "I can't answer that without more context. Could you share the error?" asks
		// for input; it does not decline.
		return Result{Value: 1, Label: "answered", Confidence: 0.6, Explanation: "The response asks for more information rather than declining."}
	}
	// A long answer after the refusal is often a partial refusal ("I can't give legal
	// advice, but in general …"): still a refusal of the ask, held with less certainty.
	if words := countWords(s, 121); words > 120 {
		return Result{Value: 0, Label: "refusal", Confidence: 0.7, Explanation: "The response opens with a refusal but continues at length; it may be a partial refusal."}
	}
	return Result{Value: 0, Label: "refusal", Confidence: 1, Explanation: "The response declines the request."}
}

// clarifyPattern matches a request for more information in the lower-cased opening.
const clarifyPattern = `\b(?:without|until i (?:have|see|know)|i (?:would )?need|i'd need) (?:more|additional|further|some|a bit more|a little more|knowing more|the|your) (?:context|information|info|details|code|error|data|specifics)|\bwithout (?:seeing|knowing|access to) (?:the|your|more)`

// clarifyStarts are the words every match of clarifyPattern begins with, after a word
// boundary: it runs anchored at them (see wordAnchored).
var clarifyStarts = []string{"without", "until i ", "i ", "i'd "}

// clarifies reports whether lower matches clarifyPattern. Every match holds "without",
// "until i " or "need", and most refusals none of them, so the pattern runs only where
// one occurs, and then anchored at its start words.
func (rf *refusalMatcher) clarifies(lower string) bool {
	if !strings.Contains(lower, "without") && !strings.Contains(lower, "until i ") && !strings.Contains(lower, "need") {
		return false
	}
	return rf.clarifyAnchored.match(lower)
}

// normalize lower-cases an opening and replaces its typographic apostrophes (’ ‘ ʼ) and
// backticks with ', as the refusal rules expect: what strings.NewReplacer("’", "'", "‘",
// "'", "ʼ", "'", "`", "'") does (FuzzRefusalMatch compares them), in one byte scan,
// without the replacer's per-byte lookups, and without a copy when there is none.
func normalize(head string) string {
	lower := strings.ToLower(head)
	var b []byte
	done := 0 // lower[:done] is in b
	for i := 0; i < len(lower); {
		n := apostropheAt(lower, i)
		if n == 0 {
			i++
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(lower))
		}
		b = append(b, lower[done:i]...)
		b = append(b, '\'')
		i += n
		done = i
	}
	if b == nil {
		return lower
	}
	return string(append(b, lower[done:]...))
}

// apostropheAt returns the length of the apostrophe normalize replaces at s[i]: 1 for `,
// 3 for ’ (E2 80 99) and ‘ (E2 80 98), 2 for ʼ (CA BC), 0 for anything else.
func apostropheAt(s string, i int) int {
	switch s[i] {
	case '`':
		return 1
	case 0xE2:
		if i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0x98 || s[i+2] == 0x99) {
			return 3
		}
	case 0xCA:
		if i+1 < len(s) && s[i+1] == 0xBC {
			return 2
		}
	}
	return 0
}

// leadingSentences returns the opening of s up to its n-th sentence end (Latin or CJK
// terminal punctuation, or a blank line), at most maxBytes long. Sentence ends within the
// first 40 bytes do not count, so that a greeting ("Hi! Sorry.") does not use up the
// budget before the refusal itself.
func leadingSentences(s string, n, maxBytes int) string {
	s = strings.TrimLeft(s, " \t\r\n*_#>\"'")
	s = text.Clip(s, maxBytes)
	ends := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		end := -1
		switch {
		case c == '.' || c == '!' || c == '?':
			if i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\n' || s[i+1] == '\t' || s[i+1] == '"' || s[i+1] == '\'' || s[i+1] == ')' {
				end = i + 1
			}
		case c == '\n' && i+1 < len(s) && s[i+1] == '\n':
			end = i
		case c == 0xE3 && i+2 < len(s) && s[i+1] == 0x80 && s[i+2] == 0x82: // 。
			end = i + 3
		case c == 0xEF && i+2 < len(s) && s[i+1] == 0xBC && (s[i+2] == 0x81 || s[i+2] == 0x9F): // ！ ？
			end = i + 3
		}
		if end >= 0 && i >= 40 {
			ends++
			if ends >= n {
				return s[:end]
			}
		}
	}
	return s
}
