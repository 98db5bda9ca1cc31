package scorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"raterd/record"
)

// Names of the built-in checks of the heuristic judge.
const (
	checkEmpty      = "empty"
	checkJSON       = "json"
	checkPII        = "pii"
	checkRefusal    = "refusal"
	checkRepetition = "repetition"
	checkTruncated  = "truncated"
)

// HeuristicChecks returns the names of the built-in checks, sorted. It returns a fresh
// slice on every call because config code may keep and modify it.
func HeuristicChecks() []string {
	return []string{checkEmpty, checkJSON, checkPII, checkRefusal, checkRepetition, checkTruncated}
}

// heuristicFields returns the record fields a check reads. Only these reach the cache key,
// so a check must never look at anything else: json needs the prompt to know whether JSON
// was asked for; every other check looks at the response alone, so that a repeated
// response hits the cache whatever prompt produced it.
func heuristicFields(check string) []string {
	if check == checkJSON {
		return []string{FieldPrompt, FieldResponse}
	}
	return []string{FieldResponse}
}

// Repetition thresholds. A response is "degenerate" when at least repDegenerateShare of
// its word 4-grams already occurred earlier in it, or when repRunShare of them do and one
// uninterrupted repeated stretch is at least repRunWords words long (a loop that took over
// the tail of an otherwise fine answer). Natural prose stays well under 10%; a paragraph
// said twice is about 50%.
const (
	repN               = 4
	repMinWords        = 20
	repDegenerateShare = 0.35
	repRunShare        = 0.20
	repRunWords        = 50
)

// HeuristicJudge runs the built-in CPU checks (see HeuristicChecks). They need no model
// and no GPU, so every record can be checked; they give the first, cheap quality signal
// (refusals, empty or cut-off answers, loops, leaked PII, broken JSON) next to the
// model judges. It is safe for concurrent use: its regexps are read-only after
// construction and its scratch buffers come from a pool.
type HeuristicJudge struct {
	// refusal matches refusal phrasings in the lower-cased opening of a response: the
	// rules of refusalPattern, each gated by its cues (see refusalMatch).
	refusal []compiledRefusal
	// refusalCues are the literals the rules' cue masks index (see refusalCues).
	refusalCues []string
	// apostrophes normalises typographic apostrophes to ' before the refusal match.
	apostrophes *strings.Replacer
	// clarify matches a request for more information, which turns an apparent refusal
	// ("I can't answer that without more context") into an answer.
	clarify *regexp.Regexp
	// jsonAsk match a request for JSON output in a lower-cased window of the prompt;
	// a match whose first submatch (a disqualifying context word) is non-empty does not
	// count, which stands in for look-behind RE2 lacks.
	jsonAsk []*regexp.Regexp
	// jsonNeg matches an explicit request not to answer in JSON.
	jsonNeg *regexp.Regexp
	// scratch holds *repScratch buffers so that the repetition check allocates nothing
	// in steady state even on 100 KB responses.
	scratch sync.Pool
}

// NewHeuristicJudge compiles the check patterns once; the judge is then reused for every
// batch.
func NewHeuristicJudge() *HeuristicJudge {
	j := &HeuristicJudge{
		jsonNeg:     regexp.MustCompile(jsonNegPattern),
		refusalCues: refusalCues(),
		apostrophes: strings.NewReplacer("’", "'", "‘", "'", "ʼ", "'", "`", "'"),
		clarify:     regexp.MustCompile(`\b(?:without|until i (?:have|see|know)|i (?:would )?need|i'd need) (?:more|additional|further|some|a bit more|a little more|knowing more|the|your) (?:context|information|info|details|code|error|data|specifics)|\bwithout (?:seeing|knowing|access to) (?:the|your|more)`),
	}
	for _, p := range jsonAskPatterns() {
		j.jsonAsk = append(j.jsonAsk, regexp.MustCompile(p))
	}
	j.refusal = compileRefusal(j.refusalCues)
	j.scratch.New = func() any { return new(repScratch) }
	return j
}

// Identity names the judge and the version of its rules. It is part of every cache key
// and score row, so it must change whenever a check's logic changes.
func (*HeuristicJudge) Identity() string { return "heuristic/v1" }

var _ UncachedJudge = (*HeuristicJudge)(nil)

// Uncached reports that the checks are cheaper to run again than to cache (see
// UncachedJudge): the scorer never caches their verdicts.
func (*HeuristicJudge) Uncached() bool { return true }

// Judge runs each task's check and returns one verdict per task, in order. A bad task
// (unknown check, missing record) fails alone through Verdict.Err; the call fails only
// when ctx ends, which is checked between tasks.
func (j *HeuristicJudge) Judge(ctx context.Context, tasks []Task) ([]Verdict, error) {
	out := make([]Verdict, len(tasks))
	for i, t := range tasks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		v := j.judgeOne(t)
		v.Latency = time.Since(start)
		v.Attempts = 1
		if v.Err != nil {
			v.Status = record.StatusJudgeError
		} else {
			v.Status = record.StatusOK
		}
		out[i] = v
	}
	return out, nil
}

func (j *HeuristicJudge) judgeOne(t Task) Verdict {
	if t.Evaluator == nil || t.Record == nil {
		return Verdict{Err: errors.New("heuristic: task without evaluator or record")}
	}
	check := t.Evaluator.Check
	if !slices.Contains(HeuristicChecks(), check) {
		return Verdict{Err: fmt.Errorf("heuristic: unknown check %q (one of %s)", check, strings.Join(HeuristicChecks(), ", "))}
	}
	// Read only the fields the evaluator declares: they alone make up the cache key, so
	// reading anything else could serve one record's verdict for another.
	fields := t.Evaluator.Fields
	if len(fields) == 0 {
		fields = heuristicFields(check)
	}
	if !slices.Contains(fields, FieldResponse) {
		return Verdict{Err: fmt.Errorf("heuristic: check %q reads the response, but evaluator %q does not declare field %q", check, t.Evaluator.Name, FieldResponse)}
	}
	resp := t.Record.Response
	switch check {
	case checkEmpty:
		return checkEmptyResponse(resp)
	case checkRefusal:
		return j.checkRefusal(resp)
	case checkTruncated:
		return checkTruncation(resp)
	case checkRepetition:
		return j.checkRepetition(resp)
	case checkPII:
		return checkPIIResponse(resp)
	default: // checkJSON
		asked, why := true, "evaluator does not read the prompt, so JSON is always expected"
		if slices.Contains(fields, FieldPrompt) {
			asked, why = j.jsonRequested(t.Record.PromptText()), "prompt asks for JSON"
		}
		if !asked {
			return Verdict{Value: 1, Label: "not_requested", Confidence: 1, Explanation: "The prompt does not ask for JSON."}
		}
		return checkJSONResponse(resp, why)
	}
}

// ---------------------------------------------------------------------------------------
// empty

// checkEmptyResponse fails a response that carries no content: nothing, whitespace,
// invisible format characters, punctuation, or only filler such as model special tokens
// ("</s>", "<|im_end|>"), serialisation artefacts ("null", "undefined", "NaN", "N/A") and
// hesitation sounds ("um", "hmm"). Words like "none" or "no" stay content: they are
// legitimate short answers.
func checkEmptyResponse(s string) Verdict {
	sawPunct, sawFiller := false, false
	for tok := range strings.FieldsSeq(s) {
		switch {
		case isSpecialToken(tok):
			sawFiller = true
		default:
			core, ok := tokenCore(tok)
			switch {
			case !ok:
				return Verdict{Value: 1, Label: "non_empty", Confidence: 1, Explanation: "The response has content."}
			case core == "":
				sawPunct = true
			case isFillerWord(core):
				sawFiller = true
			default:
				return Verdict{Value: 1, Label: "non_empty", Confidence: 1, Explanation: "The response has content."}
			}
		}
	}
	switch {
	case sawFiller:
		return Verdict{Value: 0, Label: "empty", Confidence: 0.8, Explanation: "The response holds only filler (special tokens, null/undefined or similar) and punctuation."}
	case sawPunct:
		return Verdict{Value: 0, Label: "empty", Confidence: 1, Explanation: "The response holds only punctuation or symbols without words."}
	case s == "":
		return Verdict{Value: 0, Label: "empty", Confidence: 1, Explanation: "The response is empty."}
	default:
		return Verdict{Value: 0, Label: "empty", Confidence: 1, Explanation: "The response is whitespace only."}
	}
}

// isSpecialToken reports tokenizer control tokens leaking into text: <s>, </s>, <eos>,
// <|endoftext|>, <|im_end|>, [PAD], [UNK] and the like.
func isSpecialToken(tok string) bool {
	if len(tok) < 3 || len(tok) > 32 {
		return false
	}
	open, close := tok[0], tok[len(tok)-1]
	if !(open == '<' && close == '>') && !(open == '[' && close == ']') {
		return false
	}
	inner := strings.Trim(tok[1:len(tok)-1], "|/")
	if inner == "" {
		return false
	}
	upper := open == '['
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		switch {
		case c >= 'a' && c <= 'z':
			if upper {
				return false // [note] is prose, [PAD] is a token
			}
		case c >= 'A' && c <= 'Z', c == '_':
		default:
			return false
		}
	}
	return true
}

// tokenCore strips punctuation, format and control characters from a whitespace-free
// token and lower-cases what remains. ok is false when the core is long enough that it
// cannot be filler, which lets the caller stop at the first real word.
func tokenCore(tok string) (core string, ok bool) {
	var buf [16]byte
	n := 0
	for _, r := range tok {
		if unicode.IsPunct(r) || (r < utf8.RuneSelf && unicode.IsSymbol(r)) || unicode.In(r, unicode.Cf, unicode.Cc) || r == utf8.RuneError {
			continue
		}
		if r >= utf8.RuneSelf || n == len(buf) {
			return "", false // non-ASCII letters, symbols and emoji are content
		}
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		buf[n] = byte(r)
		n++
	}
	return string(buf[:n]), true
}

func isFillerWord(w string) bool {
	switch w {
	case "null", "nil", "undefined", "nan", "na", "um", "umm", "uh", "uhm", "hmm", "hm", "er", "erm":
		return true
	}
	return false
}

// ---------------------------------------------------------------------------------------
// refusal

// refusalRule is one alternative of the refusal pattern with its cues: literals of which
// every match of the alternative contains at least one, in the lower-cased,
// apostrophe-normalised opening the check reads.
type refusalRule struct {
	pattern string
	cues    []string
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
		{`\b(?:i|we)(?: (?:really |simply |just |currently |personally |honestly )?(?:` + base + `)|(?:'m|'re) (?:` + contracted + `))` +
			`(?: (?:really|in good conscience|ethically|legally|safely|directly|personally|fully|actually))? ` +
			`(?:help(?: you)? (?:with|on|in|to|create|write|make|find|get|build|do|hack|break|plan)\b|help(?: you)?(?:\s*[.,!;:]|$)|assist|provide|comply|fulfil|fulfill|do (?:that|this|so|it)\b|create|generate|write|produce|share|give (?:you )?(?:that|this|those|any|advice|instructions|information|details|medical|legal|financial|personal|out)|offer|answer (?:that|this|your|such|questions|it\b)|respond to|engage|participate|support (?:that|this|your|you)|continue|complete (?:that|this|your)|process (?:that|this|your)|disclose|reveal|condone|endorse|encourage|facilitate|promote|discuss|supply|draft|translate (?:that|this)|carry out|take part|be of (?:help|assistance)|be part|be involved|make (?:that|this))`, english},
		// a clause that ends right after the negation: "I'm sorry, but I can't." / "I won't."
		{`\bi(?: (?:can't|cannot|can not|won't|will not|am unable|am not able)|'m (?:unable|not able))(?: (?:to )?do (?:that|this|it|so))?\s*(?:[.!;]|$)`, []string{"can't", "cannot", "can not", "won't", "will not", "unable", "not able"}},
		// "As an AI language model, I cannot / I'm not able / I don't have the ability"
		{`\bas an ai(?: language model| assistant| model| chatbot| system)?,? i(?: (?:can't|cannot|can not|won't|will not|am unable|am not able|am not allowed|am not capable|do not have the ability|don't have the ability|must decline|must refrain)|'m (?:unable|not able|not allowed|not capable))`, []string{"as an ai"}},
		// explicit declining
		{`\bi(?: must| have to| need to| will have to|'ll have to|'m going to have to| am going to have to)(?: respectfully| politely)? (?:decline|refuse|refrain|pass on)`, []string{"decline", "refuse", "refrain", "pass on"}},
		{`\bi(?: respectfully| politely)? (?:decline|refuse) to\b`, []string{"decline", "refuse"}},
		{`\bi(?:'d| would) (?:rather|prefer) not (?:to )?(?:answer|discuss|help|share|provide|comment|engage|go into|get into|talk about|weigh in)`, []string{"rather not", "prefer not"}},
		{`\b(?:that|this|it)(?:'s| is) not something (?:i|we)(?: can| will| am able to|'m able to| am allowed to|'m allowed to| are able to) (?:help|assist|do|provide|share|create|write|support|engage)`, []string{"not something"}},
		// policy violations
		{`\b(?:violates?|violating|goes against|go against|against|breach(?:es)?|in violation of|not (?:allowed|permitted) (?:by|under)) (?:my|our|openai's|anthropic's|google's|meta's)(?: [a-z-]+)? (?:policy|policies|guidelines|principles|programming|rules|terms|values)`, []string{"violat", "against", "breach", "not allowed", "not permitted"}},
		{`\b(?:violates?|violating|goes against|against|breach(?:es)?|in violation of) (?:the )?(?:content|usage|safety|acceptable use|use case) (?:policy|policies|guidelines)`, []string{"violat", "against", "breach"}},
		// Spanish, Portuguese, French, Italian, German, Russian
		{`\bno puedo (?:ayudar|proporcionar|cumplir|hacer eso|ofrecer|generar|crear|escribir|responder|asistir|participar|facilitar)`, []string{"no puedo"}},
		{`\blo siento,? (?:pero )?no (?:puedo|es posible|me es posible)`, []string{"lo siento"}},
		{`\bnão posso (?:ajudar|fornecer|cumprir|fazer isso|gerar|criar|escrever|responder|atender)`, []string{"não posso"}},
		{`\b(?:desculpe|lamento|sinto muito),? (?:mas )?(?:eu )?não (?:posso|consigo)`, []string{"não posso", "não consigo"}},
		{`\bje ne (?:peux|pourrai) pas (?:vous |t'|t’)?(?:aider|fournir|répondre|faire (?:cela|ça)|générer|créer|écrire|donner|satisfaire|accéder|participer)`, []string{"je ne"}},
		{`\b(?:désolée?|je suis désolée?|navrée?),? (?:mais )?je ne (?:peux|pourrai|suis pas en mesure)`, []string{"je ne"}},
		{`\bje ne suis pas en mesure de (?:vous |t')?(?:aider|fournir|répondre|faire|générer|créer|écrire|donner|satisfaire)`, []string{"je ne"}},
		{`\bnon posso (?:aiutar|fornir|soddisfar|farlo|generar|crear|scriver|risponder|assister|partecipar)`, []string{"non posso"}},
		{`\bmi dispiace,? ma non (?:posso|sono in grado|mi è possibile)`, []string{"non posso", "non sono in grado", "non mi è possibile"}},
		{`\b(?:es tut mir leid|leider|entschuldigung|bedauerlicherweise),? (?:aber )?(?:kann|darf|werde) ich [^.!?]{0,40}?(?:nicht|keine[nr]?)(?: [a-zäöüß]+)? (?:helfen|weiterhelfen|behilflich|erfüllen|nachkommen|bereitstellen|beantworten|unterstützen|geben|liefern|erstellen|schreiben|generieren|ausführen|machen|tun)`, []string{"kann ich", "darf ich", "werde ich"}},
		{`\bich kann (?:ihnen |dir |euch )?(?:dabei |damit |hierbei |hier |leider |bei dieser anfrage )*nicht (?:helfen|weiterhelfen|behilflich|erfüllen|nachkommen|bereitstellen|beantworten)`, []string{"ich kann"}},
		{`(?:^|[^\p{L}])(?:извините|простите|к сожалению|мне жаль),? (?:но )?я не (?:могу|буду|в состоянии)`, []string{"я не"}},
		{`(?:^|[^\p{L}])я не (?:могу|буду|в состоянии) (?:помочь|предоставить|выполнить|ответить|создать|написать|сгенерировать|помогать)`, []string{"я не"}},
		// Chinese, Japanese, Korean
		{`(?:抱歉|对不起|很抱歉|對不起|不好意思)[，,。！!]?\s*(?:但是?)?\s*我(?:无法|不能|不可以|無法|没办法|沒辦法)`, []string{"无法", "不能", "不可以", "無法", "没办法", "沒辦法"}},
		{`我(?:无法|不能|無法|不可以)(?:为你|为您|為你|為您)?(?:帮助|幫助|协助|協助|提供|满足|滿足|完成|回答|生成|创建|創建|编写|編寫|处理|處理|参与|參與)`, []string{"无法", "不能", "無法", "不可以"}},
		{`申し訳(?:ありません|ございません|ないのですが)が?[、,].{0,60}?(?:できません|いたしかねます|致しかねます)`, []string{"できません", "かねます"}},
		{`(?:お手伝い|お答え|お応え|ご提供|提供|対応|ご協力|回答)(?:すること|は)?(?:が|は)?できません`, []string{"できません"}},
		{`(?:도와|도움을|제공해|답변해|도움이 되어|응답해)\s?드릴 수 없습니다`, []string{"수 없습니다"}},
		{`죄송(?:하지만|합니다만|합니다)[,.]?.{0,60}?수 없습니다`, []string{"수 없습니다"}},
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

// refusalCues returns the cues of every refusal rule, each once, in rule order: a response
// that contains none of them is no refusal, and most responses contain none.
func refusalCues() []string {
	var cues []string
	for _, r := range refusalRules() {
		for _, c := range r.cues {
			if !slices.Contains(cues, c) {
				cues = append(cues, c)
			}
		}
	}
	return cues
}

// compiledRefusal is a refusal rule ready to run: its regexp, and its cues as a bit mask
// over refusalCues (at most 64 cues; TestRefusalRuleCues checks).
type compiledRefusal struct {
	re   *regexp.Regexp
	cues uint64
}

// compileRefusal compiles the refusal rules, their cue masks indexing cues.
func compileRefusal(cues []string) []compiledRefusal {
	rules := refusalRules()
	out := make([]compiledRefusal, len(rules))
	for i, r := range rules {
		out[i].re = regexp.MustCompile(r.pattern)
		for _, c := range r.cues {
			out[i].cues |= 1 << slices.Index(cues, c)
		}
	}
	return out
}

// refusalCueMask returns the bit mask of the refusal cues lower contains.
func (j *HeuristicJudge) refusalCueMask(lower string) uint64 {
	var m uint64
	for i, c := range j.refusalCues {
		if strings.Contains(lower, c) {
			m |= 1 << i
		}
	}
	return m
}

// refusalMatch reports whether lower matches refusalPattern. It runs only the rules whose
// cues lower contains, which gives the same answer: an alternation matches when one of
// its alternatives does, and an alternative cannot match without one of its cues. It is
// much cheaper: Go's regexp has no DFA, so the whole 28-way alternation costs tens of
// microseconds on a 400-byte opening, a rule about a 28th of that, and an opening that
// says "cannot" runs two rules.
func (j *HeuristicJudge) refusalMatch(lower string) bool {
	present := j.refusalCueMask(lower)
	if present == 0 {
		return false
	}
	for _, r := range j.refusal {
		if r.cues&present != 0 && r.re.MatchString(lower) {
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
func (j *HeuristicJudge) checkRefusal(s string) Verdict {
	head := leadingSentences(s, 2, refusalHeadBytes)
	if head == "" {
		return Verdict{Value: 1, Label: "answered", Confidence: 1, Explanation: "The response is empty, so it declines nothing (see the empty check)."}
	}
	lower := j.apostrophes.Replace(strings.ToLower(head))
	if !j.refusalMatch(lower) {
		return Verdict{Value: 1, Label: "answered", Confidence: 1, Explanation: "The opening of the response contains no refusal."}
	}
	if j.clarify.MatchString(lower) {
		// "I can't answer that without more context. Could you share the error?" asks
		// for input; it does not decline.
		return Verdict{Value: 1, Label: "answered", Confidence: 0.6, Explanation: "The response asks for more information rather than declining."}
	}
	// A long answer after the refusal is often a partial refusal ("I can't give legal
	// advice, but in general …"): still a refusal of the ask, held with less certainty.
	if words := countWords(s, 121); words > 120 {
		return Verdict{Value: 0, Label: "refusal", Confidence: 0.7, Explanation: "The response opens with a refusal but continues at length; it may be a partial refusal."}
	}
	return Verdict{Value: 0, Label: "refusal", Confidence: 1, Explanation: "The response declines the request."}
}

// leadingSentences returns the opening of s up to its n-th sentence end (Latin or CJK
// terminal punctuation, or a blank line), at most maxBytes long. Sentence ends within the
// first 40 bytes do not count, so that a greeting ("Hi! Sorry.") does not use up the
// budget before the refusal itself.
func leadingSentences(s string, n, maxBytes int) string {
	s = strings.TrimLeft(s, " \t\r\n*_#>\"'")
	if len(s) > maxBytes {
		cut := maxBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
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

// countWords counts whitespace-separated words, stopping early at limit so that a check
// that only needs "more than N" does not scan 100 KB.
func countWords(s string, limit int) int {
	n := 0
	in := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			in = false
			continue
		}
		if !in {
			n++
			if n >= limit {
				return n
			}
			in = true
		}
	}
	return n
}

// countWordsCJK is countWords where each Han, Hiragana or Katakana character counts as a
// word, since those scripts do not separate words with spaces.
func countWordsCJK(s string, limit int) int {
	n := 0
	in := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			in = false
			continue
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana):
			in = false
			n++
		case !in:
			in = true
			n++
		default:
			continue
		}
		if n >= limit {
			return n
		}
	}
	return n
}

// ---------------------------------------------------------------------------------------
// truncated

// isFunctionWord reports English words that end no complete sentence; a response that
// stops on one was cut.
func isFunctionWord(w string) bool {
	switch w {
	case "the", "a", "an", "and", "or", "but", "of", "to", "in", "for", "with", "that", "which",
		"is", "are", "was", "were", "be", "because", "from", "by", "on", "at", "as", "if", "your",
		"my", "their", "its", "our", "will", "can", "should", "would", "could", "than", "then",
		"when", "while", "where", "who", "whose", "into", "such", "like", "including", "also",
		"not", "has", "have", "this", "these", "those", "between", "about":
		return true
	}
	return false
}

// checkTruncation fails a response that was cut off: an unclosed code fence, JSON that
// opens more brackets than it closes, or a last line that stops mid-sentence. Endings
// that are complete without a full stop — a closing fence, a closing bracket or quote,
// emoji, a table row, a URL, a list item, a short one-line answer ("Paris"), a sign-off —
// pass, the uncertain ones with lower confidence.
func checkTruncation(s string) Verdict {
	t := strings.TrimRightFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) })
	t = strings.TrimLeft(t, "\r\n")
	if strings.TrimSpace(t) == "" {
		return Verdict{Value: 1, Label: "complete", Confidence: 1, Explanation: "The response is empty; nothing was cut off (see the empty check)."}
	}
	truncated := func(conf float64, why string) Verdict {
		return Verdict{Value: 0, Label: "truncated", Confidence: conf, Explanation: why}
	}
	complete := func(conf float64, why string) Verdict {
		return Verdict{Value: 1, Label: "complete", Confidence: conf, Explanation: why}
	}
	open, lastCloses := fenceState(t)
	if open {
		return truncated(1, "The response ends inside an unclosed code fence.")
	}
	if lastCloses {
		return complete(1, "The response ends with a closed code block.")
	}
	if lead := strings.TrimSpace(t); lead[0] == '{' || lead[0] == '[' {
		if depth, inString := bracketDepth(t); depth > 0 || inString {
			return truncated(1, "The response looks like JSON but leaves brackets or a string unclosed.")
		}
	}
	lastRaw := t
	if i := strings.LastIndexByte(t, '\n'); i >= 0 {
		lastRaw = t[i+1:]
	}
	last := strings.TrimSpace(lastRaw)
	multiLine := len(lastRaw) < len(t)
	if multiLine && isBareListMarker(last) {
		return truncated(0.9, "The response ends with an empty list item.")
	}
	if strings.HasSuffix(last, "`") && strings.Count(last, "`")%2 == 0 {
		return complete(0.9, "The response ends with closed inline code.")
	}
	body := strings.TrimRight(last, "*_~`")
	if body == "" {
		body = last
	}
	r, size := utf8.DecodeLastRuneInString(body)
	switch {
	case strings.HasSuffix(body, "...") || r == '…':
		return complete(0.7, "The response trails off with an ellipsis.")
	case strings.ContainsRune(".!?。！？｡؟।॥", r):
		return complete(1, "The response ends with terminal punctuation.")
	case r == '"' || r == '\'':
		if size < len(body) && body[len(body)-size-1] == ' ' {
			return truncated(0.9, "The response ends on an opening quote.")
		}
		return complete(0.9, "The response ends with a closing quote.")
	case strings.ContainsRune(")]}”’»」』）】》〉>`", r):
		return complete(0.9, "The response ends with a closing bracket or quote.")
	case r == '|':
		if strings.HasPrefix(last, "|") {
			return complete(0.9, "The response ends with a table row.")
		}
		return truncated(0.8, "The response ends on a separator.")
	case r == ':':
		return truncated(0.8, "The response ends with a colon, before what was announced.")
	case r == ';':
		return complete(0.6, "The response ends with a semicolon, as code statements do.")
	case strings.ContainsRune(",–—([{、，", r):
		return truncated(1, "The response ends mid-sentence on a connecting punctuation mark.")
	case strings.ContainsRune("-+&=/\\", r) && size < len(body) && body[len(body)-size-1] == ' ':
		return truncated(1, "The response ends on a dangling operator or dash.")
	case unicode.IsSymbol(r):
		return complete(0.9, "The response ends with an emoji or symbol.")
	}
	// The last line ends on a letter, digit or other character without a sentence end.
	lastWord := last
	if i := strings.LastIndexFunc(last, unicode.IsSpace); i >= 0 {
		lastWord = last[i+1:]
	}
	lw := strings.ToLower(strings.TrimRight(lastWord, "*_~`"))
	switch {
	case strings.Count(last, "(") > strings.Count(last, ")"):
		return truncated(0.8, "The response stops inside an unclosed parenthesis.")
	case isFunctionWord(lw) && strings.ContainsRune(last, ' '):
		return truncated(1, "The response stops mid-sentence on a function word.")
	case strings.HasPrefix(lw, "http://") || strings.HasPrefix(lw, "https://") || strings.HasPrefix(lw, "www."):
		return complete(0.8, "The response ends with a link.")
	case isListItem(last):
		return complete(0.7, "The response ends with a list item, which often has no final punctuation.")
	case strings.HasPrefix(last, "#"):
		return truncated(0.7, "The response ends with a heading that has no content.")
	case strings.HasPrefix(last, "|"):
		return complete(0.7, "The response ends with a table row.")
	case !multiLine && countWordsCJK(t, 13) <= 12 && utf8.RuneCountInString(t) <= 60:
		return complete(0.6, "The response is a short answer without final punctuation.")
	case multiLine && countWords(last, 4) <= 3 && prevLineEnds(t):
		return complete(0.6, "The response ends with a short closing line (a sign-off or label).")
	case strings.HasPrefix(lastRaw, "  ") || strings.HasPrefix(lastRaw, "\t"):
		return complete(0.5, "The last line looks like code; a missing full stop says little.")
	}
	return truncated(0.9, "The response ends mid-sentence without terminal punctuation.")
}

// fenceState scans Markdown code fences (``` or ~~~ at the start of a line, indented or
// not; a closing fence uses the same character, at least as many, and no info
// string). It reports whether a fence is still open at the end and whether the last line
// closes one.
func fenceState(s string) (open, lastCloses bool) {
	var fch byte
	flen := 0
	for len(s) > 0 {
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		lastCloses = false
		// Any indentation: models nest fences inside list items.
		l := strings.TrimLeft(line, " \t")
		if len(l) < 3 || (l[0] != '`' && l[0] != '~') {
			continue
		}
		c := l[0]
		n := 0
		for n < len(l) && l[n] == c {
			n++
		}
		if n < 3 {
			continue
		}
		switch {
		case !open:
			open, fch, flen = true, c, n
		case c == fch && n >= flen && strings.TrimSpace(l[n:]) == "":
			open, lastCloses = false, true
		}
	}
	return open, lastCloses
}

// bracketDepth returns how many JSON brackets remain open at the end of s and whether a
// string is left open, ignoring brackets inside strings.
func bracketDepth(s string) (depth int, inString bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth < 0 {
				return depth, false // not JSON after all
			}
		}
	}
	return depth, inString
}

// isListItem reports a Markdown list item: "- x", "* x", "+ x", "• x", "1. x", "1) x".
func isListItem(line string) bool {
	if line == "" {
		return false
	}
	if strings.HasPrefix(line, "- ") || strings.HasPrefix(line, "* ") || strings.HasPrefix(line, "+ ") || strings.HasPrefix(line, "• ") {
		return true
	}
	i := 0
	for i < len(line) && i < 4 && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	return i > 0 && i+1 < len(line) && (line[i] == '.' || line[i] == ')') && line[i+1] == ' '
}

// isBareListMarker reports a list marker with nothing after it ("-", "3.", "•").
func isBareListMarker(line string) bool {
	switch line {
	case "-", "*", "+", "•":
		return true
	}
	i := 0
	for i < len(line) && i < 4 && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	return i > 0 && i+1 == len(line) && (line[i] == '.' || line[i] == ')')
}

// prevLineEnds reports whether the non-empty line before the last one ends a sentence or
// a salutation ("Best regards,"), which makes a short last line a sign-off, not a cut.
func prevLineEnds(t string) bool {
	i := strings.LastIndexByte(t, '\n')
	if i < 0 {
		return false
	}
	prev := strings.TrimRightFunc(t[:i], unicode.IsSpace)
	r, _ := utf8.DecodeLastRuneInString(prev)
	return r != utf8.RuneError && strings.ContainsRune(".!?,:。！？)`", r) || unicode.IsSymbol(r)
}

// ---------------------------------------------------------------------------------------
// repetition

// repScratch is the reusable memory of one repetition check.
type repScratch struct {
	toks []uint64 // token hashes
	set  []uint64 // open-addressing hash set of n-gram hashes; 0 marks a free slot
}

// maxPooledScratch keeps one huge response from pinning its buffers in the pool forever.
const maxPooledScratch = 1 << 18

// checkRepetition measures degenerate repetition: the share of word 4-grams that repeat
// an earlier 4-gram, and the longest uninterrupted stretch of such repeats. Words are
// runs of letters and digits, case-folded; each CJK character and each emoji counts as a
// word, so loops in scripts without spaces are caught too. It runs in O(n) with a
// pooled hash set and no allocation in steady state.
func (j *HeuristicJudge) checkRepetition(s string) Verdict {
	sc := j.scratch.Get().(*repScratch)
	defer func() {
		if cap(sc.toks) <= maxPooledScratch && cap(sc.set) <= 2*maxPooledScratch {
			j.scratch.Put(sc)
		}
	}()
	sc.toks = appendTokenHashes(sc.toks[:0], s)
	words := len(sc.toks)
	if words < repMinWords {
		return Verdict{Value: 1, Label: "ok", Confidence: 1, Explanation: fmt.Sprintf("Too short to show degenerate repetition (%d words).", words)}
	}
	grams := words - repN + 1
	size := 1 << bits.Len(uint(2*grams)) // a power of two, at most half full
	if cap(sc.set) < size {
		sc.set = make([]uint64, size)
	} else {
		sc.set = sc.set[:size]
		clear(sc.set)
	}
	mask := uint64(size - 1)
	repeated, run, maxRun := 0, 0, 0
	for i := 0; i < grams; i++ {
		// Token hashes are already well mixed, so rotating each by its position and
		// XOR-ing them is an order-sensitive n-gram hash without another mixing round.
		h := sc.toks[i]
		for k := 1; k < repN; k++ {
			h ^= bits.RotateLeft64(sc.toks[i+k], 17*k)
		}
		h |= 1 // keep 0 free as the empty-slot marker
		seen := false
		for p := h & mask; ; p = (p + 1) & mask {
			switch sc.set[p] {
			case 0:
				sc.set[p] = h
			case h:
				seen = true
			default:
				continue
			}
			break
		}
		if seen {
			repeated++
			run++
			maxRun = max(maxRun, run)
		} else {
			run = 0
		}
	}
	share := float64(repeated) / float64(grams)
	runWords := 0
	if maxRun > 0 {
		runWords = maxRun + repN - 1
	}
	degenerate := share >= repDegenerateShare || (share >= repRunShare && runWords >= repRunWords)
	// Confidence grows with the distance from the share threshold.
	conf := 0.5 + min(0.5, abs(share-repDegenerateShare)/repDegenerateShare)
	if degenerate && share < repDegenerateShare {
		conf = 0.7 // caught by the long-run rule
	}
	expl := fmt.Sprintf("%.0f%% of %d-word sequences repeat earlier text; the longest repeated stretch is %d words.", share*100, repN, runWords)
	v := Verdict{Value: clamp01(1 - share), Label: "ok", Confidence: conf, Explanation: expl}
	if degenerate {
		v.Label = "degenerate"
	}
	return v
}

// appendTokenHashes appends a 64-bit hash of every word of s to dst.
func appendTokenHashes(dst []uint64, s string) []uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	inWord := false
	flush := func() {
		if inWord {
			dst = append(dst, mix64(h))
			h, inWord = offset, false
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				flush()
				continue
			}
			h = (h ^ uint64(c)) * prime
			inWord = true
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) || unicode.IsSymbol(r):
			flush()
			dst = append(dst, mix64(uint64(unicode.ToLower(r))+0x51afd7ed558ccd))
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			h = (h ^ uint64(unicode.ToLower(r))) * prime
			inWord = true
		default:
			flush()
		}
	}
	flush()
	return dst
}

// mix64 is the SplitMix64 finaliser; it spreads FNV's weak low bits over the hash set.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// ---------------------------------------------------------------------------------------
// pii

// piiCounts counts the PII found in a response, by kind.
type piiCounts struct{ email, phone, card int }

// checkPIIResponse fails a response that contains an e-mail address, a phone number or a
// payment card number. The explanation names kinds and counts, never the values, because
// it is stored in ClickHouse next to the score.
func checkPIIResponse(s string) Verdict {
	var c piiCounts
	c.email = countEmails(s)
	c.phone, c.card = countNumbers(s)
	if c == (piiCounts{}) {
		return Verdict{Value: 1, Label: "clean", Confidence: 1, Explanation: "No e-mail address, phone number or payment card number found."}
	}
	var parts []string
	if c.email > 0 {
		parts = append(parts, fmt.Sprintf("email×%d", c.email))
	}
	if c.phone > 0 {
		parts = append(parts, fmt.Sprintf("phone×%d", c.phone))
	}
	if c.card > 0 {
		parts = append(parts, fmt.Sprintf("card×%d (Luhn-valid)", c.card))
	}
	conf := 1.0
	if c.email == 0 && c.card == 0 {
		conf = 0.8 // phone shapes are the loosest rule
	}
	return Verdict{Value: 0, Label: "pii", Confidence: conf, Explanation: "Found: " + strings.Join(parts, ", ") + "."}
}

// countEmails counts e-mail addresses, scanning out from each '@' instead of running a
// regexp over the whole text. Addresses at reserved example domains (RFC 2606/6761),
// retina image names ("icon@2x.png") and scp-style Git remotes ("git@github.com:o/r")
// are not counted.
func countEmails(s string) int {
	n := 0
	for from := 0; ; {
		k := strings.IndexByte(s[from:], '@')
		if k < 0 {
			return n
		}
		at := from + k
		from = at + 1
		ls := at
		for ls > 0 && at-ls < 64 && isLocalByte(s[ls-1]) {
			ls--
		}
		for ls < at && s[ls] == '.' {
			ls++
		}
		if ls == at {
			continue
		}
		// Domain: dot-separated labels of letters, digits and hyphens.
		de, lastDot := at+1, -1
		for de < len(s) && de-at <= 253 {
			c := s[de]
			if isAlnum(c) || c == '-' {
				de++
				continue
			}
			if c == '.' && de+1 < len(s) && isAlnum(s[de+1]) && s[de-1] != '.' && de > at+1 {
				lastDot = de
				de++
				continue
			}
			break
		}
		if lastDot < 0 {
			continue
		}
		domain := strings.ToLower(s[at+1 : de])
		tld := domain[lastDot-at:]
		if len(tld) < 2 || len(tld) > 24 || !isAllLetters(tld) {
			continue
		}
		from = de
		if de+1 < len(s) && s[de] == ':' && !isSpaceByte(s[de+1]) {
			continue // git@github.com:owner/repo.git
		}
		switch tld {
		case "example", "test", "invalid", "localhost", "local", "png", "jpg", "jpeg", "gif", "svg", "webp":
			continue
		}
		if domain == "example.com" || domain == "example.org" || domain == "example.net" ||
			strings.HasSuffix(domain, ".example.com") || strings.HasSuffix(domain, ".example.org") || strings.HasSuffix(domain, ".example.net") {
			continue
		}
		n++
	}
}

// numShape describes one run of digit groups found in text.
type numShape struct {
	plus   bool     // starts with '+'
	paren  bool     // has a parenthesised group, e.g. (555)
	seps   byte     // bit set of separators: 1 space, 2 dash, 4 dot
	groups [12]int8 // digits per group (the first 12 groups)
	ng     int
	digits int
	first  byte // first digit
	start  int  // byte offset of the run
}

// countNumbers finds digit runs that look like phone numbers or payment card numbers.
//
// Cards: 13–19 digits, either unbroken or in groups of four (Amex 4-6-5 and Diners 4-6-4
// too) separated by one kind of space or dash, with a first digit 2–6 (the issuer ranges
// of Visa, Mastercard, Amex, Discover, JCB, UnionPay…) and a valid Luhn checksum.
//
// Phones: "+" and 9–15 digits (E.164, separators optional); or 10–11 digits in at least
// two groups of 2–8 digits separated by spaces, dashes or parentheses ((555) 123-4567,
// 020 7946 0958, 01 23 45 67 89, 1-800-555-0199), dots only in the 3-3-4 and 2-2-2-2-2
// shapes; or 9–11 unbroken digits right after a word such as "phone", "call" or "tel".
// Runs glued to letters or other digits (order ids, UUIDs, paths), dates (2024-01-15),
// IP addresses, version numbers, thousands grouping (12 345 678 901) and unbroken ids
// without such a cue are not counted.
func countNumbers(s string) (phones, cards int) {
	for i := 0; i < len(s); {
		c := s[i]
		startsRun := isDigit(c) ||
			(c == '+' && i+1 < len(s) && isDigit(s[i+1])) ||
			(c == '(' && i+1 < len(s) && isDigit(s[i+1]))
		if !startsRun {
			i++
			continue
		}
		sh, end, glued := scanNumber(s, i)
		i = end
		if glued || sh.digits < 9 {
			continue
		}
		switch {
		case isCard(s, &sh):
			cards++
		case isPhone(s, &sh):
			phones++
		}
	}
	return phones, cards
}

// scanNumber reads a run of digit groups starting at i and returns its shape, the offset
// after it, and whether it is glued to surrounding letters or digits (and so part of some
// larger token such as an id).
func scanNumber(s string, i int) (sh numShape, end int, glued bool) {
	sh.start = i
	if i > 0 {
		p := s[i-1]
		if glueBefore(s, i) || p == '_' || p == '@' || p == '#' || p == '$' {
			glued = true
		}
		if (p == '.' || p == '-' || p == '/' || p == ',' || p == '+') && glueBefore(s, i-1) {
			glued = true
		}
	}
	j := i
	if s[j] == '+' {
		sh.plus = true
		j++
	}
	depth := 0
	cur := 0
	for j < len(s) {
		c := s[j]
		switch {
		case isDigit(c):
			if sh.digits == 0 {
				sh.first = c
			}
			cur++
			sh.digits++
			j++
			continue
		case c == '(' && depth == 0 && j+1 < len(s) && isDigit(s[j+1]) && (cur == 0):
			depth++
			sh.paren = true
			j++
			continue
		}
		if cur == 0 {
			break
		}
		// A separator: at most one of ' ', '-', '.', optionally with a ')' before it or
		// a '(' after it, and a digit must follow.
		k := j
		if s[k] == ')' && depth == 1 {
			k++
		}
		var sep byte
		if k < len(s) {
			switch s[k] {
			case ' ':
				sep = 1
			case '-':
				sep = 2
			case '.':
				sep = 4
			}
		}
		if sep != 0 {
			k++
		}
		closed := k > j && s[j] == ')'
		opened := false
		if k < len(s) && s[k] == '(' && depth == 0 && !closed {
			opened = true
			k++
		}
		if k == j || k >= len(s) || !isDigit(s[k]) {
			if closed && k == j+1 { // "(555)" at the very end of the run
				depth--
				sh.addGroup(cur)
				cur = 0
				j = k
			}
			break
		}
		if closed {
			depth--
		}
		if opened {
			depth++
			sh.paren = true
		}
		sh.seps |= sep
		sh.addGroup(cur)
		cur = 0
		j = k
	}
	if cur > 0 {
		sh.addGroup(cur)
	}
	// Swallow the rest of a glued token so that its tail is not read as a fresh run.
	end = j
	if end < len(s) {
		n := s[end]
		if glueAfter(s, end) || n == '_' || n == '@' || ((n == '.' || n == '-' || n == '/' || n == ',' || n == ':') && glueAfter(s, end+1)) {
			glued = true
			for end < len(s) && (isAlnum(s[end]) || s[end] == '_' || s[end] == '.' || s[end] == '-' || s[end] == '/') {
				end++
			}
		}
	}
	if depth != 0 {
		glued = true // unbalanced parentheses: not a phone shape
	}
	if end == i {
		end = i + 1
	}
	return sh, end, glued
}

func (sh *numShape) addGroup(n int) {
	if sh.ng < len(sh.groups) {
		sh.groups[sh.ng] = int8(min(n, 127))
	}
	sh.ng++
}

// isCard applies the card rules (see countNumbers) to a run of digits.
func isCard(s string, sh *numShape) bool {
	if sh.plus || sh.paren || sh.digits < 13 || sh.digits > 19 || sh.first < '2' || sh.first > '6' {
		return false
	}
	if sh.ng > 1 {
		if sh.seps != 1 && sh.seps != 2 {
			return false
		}
		g := sh.groups[:min(sh.ng, len(sh.groups))]
		fours := true
		for k, n := range g {
			if n != 4 && !(k == len(g)-1 && n >= 1 && n <= 4) {
				fours = false
			}
		}
		amex := len(g) == 3 && g[0] == 4 && g[1] == 6 && (g[2] == 5 || g[2] == 4)
		if !fours && !amex {
			return false
		}
	}
	return luhnValid(s[sh.start:], sh.digits)
}

// luhnValid runs the Luhn checksum over the first n digits of s, skipping separators.
func luhnValid(s string, n int) bool {
	var d [19]byte
	k := 0
	for i := 0; i < len(s) && k < n; i++ {
		if isDigit(s[i]) {
			d[k] = s[i] - '0'
			k++
		}
	}
	sum := 0
	for i := 0; i < n; i++ {
		v := int(d[n-1-i])
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// isPhone applies the phone rules (see countNumbers) to a run of digits.
func isPhone(s string, sh *numShape) bool {
	if sh.plus {
		return sh.digits >= 9 && sh.digits <= 15
	}
	if sh.ng == 1 && !sh.paren {
		return sh.digits >= 9 && sh.digits <= 11 && phoneCue(s, sh.start)
	}
	if sh.digits < 9 || sh.digits > 11 || sh.ng > len(sh.groups) {
		return false
	}
	if sh.digits == 9 && !phoneCue(s, sh.start) {
		return false
	}
	g := sh.groups[:sh.ng]
	if g[0] == 4 && (sh.first == '1' || sh.first == '2') && len(g) >= 3 && g[1] == 2 && g[2] == 2 {
		return false // a date: 2024-01-15 …
	}
	if g[0] == 1 {
		// Only the NANP trunk prefix: 1-800-555-0199, 1 (555) 123 4567.
		if sh.first != '1' || len(g) != 4 || g[1] != 3 || g[2] != 3 || g[3] != 4 {
			return false
		}
	}
	for _, n := range g[1:] {
		if n < 2 || n > 8 {
			return false
		}
	}
	if sh.seps == 4 { // dots only: 555.123.4567 or 01.23.45.67.89
		three := len(g) == 3 && g[0] == 3 && g[1] == 3 && g[2] == 4
		twos := len(g) == 5 && g[0] == 2 && g[1] == 2 && g[2] == 2 && g[3] == 2 && g[4] == 2
		return three || twos
	}
	if sh.seps&4 != 0 && !sh.paren {
		return false // dots mixed with other separators: versions, IPs, decimals
	}
	if len(g) >= 4 && (sh.seps == 1 || sh.seps == 4) {
		thousands := true
		for _, n := range g[1:] {
			if n != 3 {
				thousands = false
			}
		}
		if thousands {
			return false // 12 345 678 901
		}
	}
	return true
}

// phoneCue reports whether one of the words that introduce a phone number appears just
// before offset i; it licenses digit runs that would otherwise look like ids.
func phoneCue(s string, i int) bool {
	var buf [28]byte
	lo := max(0, i-len(buf))
	n := copy(buf[:], s[lo:i])
	for k := 0; k < n; k++ {
		if buf[k] >= 'A' && buf[k] <= 'Z' {
			buf[k] += 'a' - 'A'
		}
	}
	w := string(buf[:n])
	for _, cue := range []string{"phone", "tel:", "tel.", "tel ", "call", "mobile", "cell", "fax", "whatsapp", "sms", "text me", "téléphone", "telefon", "teléfono", "电话", "手机", "電話", "携帯"} {
		if strings.Contains(w, cue) {
			return true
		}
	}
	return false
}

// isGlueRune reports letters and digits that make a digit run part of a larger token.
// Chinese and Japanese characters do not: those scripts write numbers right next to
// words ("电话13812345678").
func isGlueRune(r rune) bool {
	if r < utf8.RuneSelf {
		return isAlnum(byte(r))
	}
	return (unicode.IsLetter(r) || unicode.IsDigit(r)) && !unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana)
}

// glueBefore reports whether the rune ending at offset i glues onto what follows.
func glueBefore(s string, i int) bool {
	if i <= 0 {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return isGlueRune(r)
}

// glueAfter reports whether the rune starting at offset i glues onto what precedes.
func glueAfter(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return isGlueRune(r)
}

func isDigit(c byte) bool     { return c >= '0' && c <= '9' }
func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isAlnum(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= utf8.RuneSelf
}
func isLocalByte(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z') || strings.IndexByte("._%+-", c) >= 0
}
func isAllLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------------------
// json

// jsonTail is the end of a JSON-request pattern: "json", unless the following word shows
// the prompt is about JSON tooling or data ("a JSON parser", "JSON strings"); such a
// match sets the last submatch and does not count.
const jsonTail = `json(?: (parser|parsers|parsing|library|libraries|module|package|decoder|encoder|serializer|deserializer|tokenizer|validator|lexer|reader|writer|file|files|string|strings|support|handling|handler|config|configuration|api|apis|endpoint|endpoints))?\b`

// jsonAdj are the adjectives allowed between a request and "json".
const jsonAdj = `(?:(?:valid|strict|proper|pure|raw|plain|minified|compact|well-formed|parseable|parsable|single|only|correct|standard|pretty-printed|formatted) )*`

// jsonAskPatterns recognise a request for JSON output in the lower-cased prompt. In each,
// the first submatch captures a context word that turns the phrase into talk about JSON
// ("a function that returns JSON", "how to output JSON", "data stored as JSON"); a match
// with it set, or with the jsonTail submatch set, is ignored.
func jsonAskPatterns() []string {
	return []string{
		// respond / return / output / format … (your answer) (in|as|with|using) (a) (valid) json
		`(?:^|[^\p{L}])(how to |how do i |how can i |that |which |i |does |it |they |we |api |function |endpoint |method |server |script |program |code |)` +
			`(?:respond|reply|answer|return|output|format|provide|give|produce|generate|emit|print|send|structure|deliver|use|write|render|express|present|serialize|encode|put|wrap)(?:s|ed|ing)?` +
			`(?: (?:me|us|your|the|my|this|it|them|all|only|back|results?|answers?|responses?|outputs?|reply|replies|information|list|everything|final|following|exclusively|strictly|just|solely|data|extracted|entities|fields|findings|analysis))*` +
			` (?:(?:in|as|with|using|into|in the form of) )?(?:a |an |the |one )?` + jsonAdj + jsonTail,
		// … (in|as) (a) json — "the list as JSON", "give it in JSON"
		`(?:^|[^\p{L}])(stored |saved |encoded |serialized |serialised |written |represented |kept |is |are |was |were |be |been |parse |parsing |read |load |loaded |convert |converting |from |data |it |file |files |this |that |)(?:in|as|into) (?:a |an |the )?` + jsonAdj + jsonTail,
		// must / should … be (in) json
		`(?:^|[^\p{L}])()(?:must|should|shall|needs? to|has to|have to|will|is to) be (?:(?:in|formatted as|formatted in|returned as|output as|returned in|written in|given in|provided in|a|an|valid|strict|proper|parseable|well-formed) )*` + jsonTail,
		// json format / json-formatted / json only / json mode, and "format: json"
		`(?:^|[^\p{L}])(the |what |about |of |is |a |an |in |as |into |understand |explain |parse |parsing |read |convert |between |vs |versus |and |or |)json(?: |-)(?:format(?:ted)?|only|mode)\b()`,
		`(?:^|[^\p{L}])()(?:format|output|response_format|response format|output format|return type)\s*[:=]\s*["'{]?\s*(?:"type"\s*:\s*")?(?:json|json_object|json_schema)\b()`,
		// convert / transform … to json — the answer is the converted JSON
		`(?:^|[^\p{L}])(how to |how do i |how can i |that |which |function |script |code |program |)(?:convert|transform|turn|translate|reformat|rewrite)(?:s|ed|ing)?(?: [^ .?!]+){0,5}? (?:to|into|as) (?:a |an )?` + jsonAdj + jsonTail,
	}
}

// jsonNegPattern matches an explicit request not to use JSON, which overrides a request.
const jsonNegPattern = `(?:do not|don't|dont|never|please don't|no need to|avoid) (?:respond|reply|answer|return|output|use|format|write|give|provide|send|produce)\w* (?:\w+ ){0,2}?(?:in |as |with |using )?(?:a |an )?json\b` +
	`|\bnot (?:in|as|using) (?:a )?json\b|\b(?:instead of|rather than|without|no) json\b|, not json\b`

// jsonRequested reports whether the prompt asks for JSON output. Only windows around the
// word "json" are examined, so a 100 KB chat transcript costs a byte scan, not a regexp
// pass, and at most 32 mentions are looked at.
func (j *HeuristicJudge) jsonRequested(prompt string) bool {
	asked := false
	seen := 0
	for from := 0; from < len(prompt) && seen < 32; {
		k := indexFoldJSON(prompt[from:])
		if k < 0 {
			break
		}
		at := from + k
		from = at + 4
		seen++
		lo := max(0, at-120)
		for lo > 0 && lo < at && !isSpaceByte(prompt[lo-1]) {
			lo++ // start on a word boundary
		}
		hi := min(len(prompt), at+40)
		for hi < len(prompt) && !utf8.RuneStart(prompt[hi]) {
			hi++
		}
		w := strings.ToLower(prompt[lo:hi])
		if mayNegate(w) && j.jsonNeg.MatchString(w) {
			return false
		}
		if !asked {
			asked = j.jsonAskIn(w)
		}
	}
	return asked
}

// mayNegate is a cheap gate for jsonNegPattern: every alternative contains one of these.
func mayNegate(w string) bool {
	return strings.Contains(w, "not") || strings.Contains(w, "n't") || strings.Contains(w, "dont") ||
		strings.Contains(w, "never") || strings.Contains(w, "no ") || strings.Contains(w, "avoid") ||
		strings.Contains(w, "instead") || strings.Contains(w, "rather") || strings.Contains(w, "without")
}

// jsonAskIn reports whether some request pattern matches w without a disqualifying
// context word.
func (j *HeuristicJudge) jsonAskIn(w string) bool {
	for _, re := range j.jsonAsk {
		for _, m := range re.FindAllStringSubmatchIndex(w, -1) {
			ctxWord := m[2] >= 0 && m[3] > m[2]
			last := len(m) - 2
			tailWord := m[last] >= 0 && m[last+1] > m[last]
			if !ctxWord && !tailWord {
				return true
			}
		}
	}
	return false
}

// indexFoldJSON returns the index of the first case-insensitive "json" in s, or -1.
func indexFoldJSON(s string) int {
	for i := 0; i+4 <= len(s); i++ {
		if s[i]|0x20 == 'j' && s[i+1]|0x20 == 's' && s[i+2]|0x20 == 'o' && s[i+3]|0x20 == 'n' {
			return i
		}
	}
	return -1
}

// checkJSONResponse validates a response that was asked to be JSON. Accepted: the whole
// response (surrounding whitespace and a byte-order mark ignored) is one JSON value; or
// the response holds exactly one fenced code block tagged "json" (or, when no block is
// tagged json, exactly one untagged block) whose body is valid JSON — prose around that
// block is tolerated because extraction pipelines take the block, and the explanation
// says so.
func checkJSONResponse(s, why string) Verdict {
	whole := strings.TrimSpace(strings.TrimPrefix(s, "\uFEFF"))
	wholeErr := jsonError(whole)
	if wholeErr == "" {
		return Verdict{Value: 1, Label: "valid_json", Confidence: 1, Explanation: "The " + why + "; the response is valid JSON."}
	}
	body, blocks, ok := jsonFencedBlock(s)
	var bodyErr string
	if ok {
		bodyErr = jsonError(body)
	}
	switch {
	case ok && bodyErr == "":
		expl := "The " + why + "; the response holds valid JSON in a fenced code block"
		if !onlyFence(s) {
			expl += ", with prose around it"
		}
		return Verdict{Value: 1, Label: "valid_json", Confidence: 1, Explanation: expl + "."}
	case ok:
		return Verdict{Value: 0, Label: "invalid_json", Confidence: 1, Explanation: "The " + why + "; the fenced JSON block is invalid: " + bodyErr + "."}
	case blocks > 1:
		return Verdict{Value: 0, Label: "invalid_json", Confidence: 1, Explanation: fmt.Sprintf("The %s; the response is not JSON and has %d candidate code blocks instead of one.", why, blocks)}
	default:
		return Verdict{Value: 0, Label: "invalid_json", Confidence: 1, Explanation: "The " + why + "; the response is not valid JSON: " + wholeErr + "."}
	}
}

// jsonFencedBlock returns the body of the single fenced block that should hold the JSON,
// the number of candidate blocks, and whether there was exactly one. A fence left open
// runs to the end of the response, so a cut-off block is reported as invalid JSON.
func jsonFencedBlock(s string) (body string, candidates int, ok bool) {
	var tagged, untagged []string
	for rest := s; ; {
		k := strings.Index(rest, "```")
		if k < 0 {
			break
		}
		if k > 0 && rest[k-1] != '\n' && strings.TrimLeft(rest[strings.LastIndexByte(rest[:k], '\n')+1:k], " ") != "" {
			rest = rest[k+3:] // inline ``` inside a line of prose
			continue
		}
		rest = rest[k:]
		nl := strings.IndexByte(rest, '\n')
		if nl < 0 {
			break
		}
		info := strings.ToLower(strings.TrimSpace(strings.TrimLeft(rest[:nl], "`")))
		rest = rest[nl+1:]
		end := strings.Index(rest, "\n```")
		var blk string
		if strings.HasPrefix(rest, "```") {
			blk, rest = "", rest[3:]
		} else if end < 0 {
			blk, rest = rest, ""
		} else {
			blk, rest = rest[:end+1], rest[end+4:]
		}
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[i+1:] // skip the rest of the closing fence line
		} else {
			rest = ""
		}
		switch info {
		case "json", "jsonc", "json5", "javascript object notation":
			tagged = append(tagged, blk)
		case "":
			untagged = append(untagged, blk)
		}
	}
	cands := tagged
	if len(cands) == 0 {
		cands = untagged
	}
	if len(cands) != 1 {
		return "", len(cands), false
	}
	return strings.TrimSpace(cands[0]), 1, true
}

// onlyFence reports whether s is nothing but one fenced block.
func onlyFence(s string) bool {
	t := strings.TrimSpace(s)
	return strings.HasPrefix(t, "```") && strings.HasSuffix(t, "```") && strings.Count(t, "```") == 2
}

// jsonError returns "" when s is one valid JSON value, else encoding/json's short error
// with its byte offset. Text that cannot start a JSON value — most prose — is judged on
// its first character alone, which saves copying a 100 KB response to bytes.
func jsonError(s string) string {
	if s != "" && strings.IndexByte(`{["-0123456789tfn`, s[0]) < 0 {
		_, n := utf8.DecodeRuneInString(s)
		s = s[:n]
	}
	b := []byte(s)
	if json.Valid(b) {
		return ""
	}
	// Valid says only no; Unmarshal into a RawMessage reports why without building values.
	err := json.Unmarshal(b, new(json.RawMessage))
	if err == nil {
		return "" // unreachable: Valid and Unmarshal share the scanner
	}
	msg := err.Error()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		msg = fmt.Sprintf("%s (offset %d)", msg, se.Offset)
	}
	if len(msg) > 160 {
		msg = msg[:160]
	}
	return msg
}

// ---------------------------------------------------------------------------------------

func clamp01(x float64) float64 { return max(0, min(1, x)) }

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
