package judgesim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Prompt formats the simulator recognises.
const (
	formatFlame      = "flame"       // raterd's unified format
	formatPrometheus = "prometheus2" // Prometheus 2
	formatSelene     = "selene"      // Atla Selene Mini
	formatLynx       = "lynx"        // Patronus AI's Lynx
)

type taskKind int

const (
	taskPointwise taskKind = iota
	taskClassification
	taskPairwise
)

func (k taskKind) String() string {
	return [...]string{"pointwise", "classification", "pairwise"}[k]
}

// prompt is what the simulator reads from a judge prompt.
type prompt struct {
	format  string
	task    taskKind
	lo, hi  int      // pointwise scale
	labels  []string // classification labels
	subject string   // what the judged text is, for the reasoning
	text    string   // judged text (pointwise, classification)
	a, b    string   // judged responses (pairwise)
}

// answer is a judge answer and where its result is written.
type answer struct {
	text     string
	resStart int      // byte offset of the result in text; -1: none (malformed)
	resEnd   int      // end of the result
	choices  []string // every valid result
	chosen   int      // index of the result in choices
}

// Defaults and bounds of a read scale.
const (
	defaultLo, defaultHi = 1, 5
	maxScaleSpan         = 1000
)

var (
	// flame: the judged text is in <<<NAME>>>\n…\n<<<END NAME>>> blocks; the output
	// format's last line says the task.
	flameOpen        = regexp.MustCompile(`<<<([A-Z][^<>\n]{0,80})>>>\n`)
	flamePointwise   = regexp.MustCompile(`(?m)^Score: <integer from (-?\d{1,7}) to (-?\d{1,7})>`)
	flameClassify    = regexp.MustCompile(`(?m)^Label: <one of: ([^>\n]+)>`)
	flamePairwise    = regexp.MustCompile(`(?m)^Preference: <A or B>`)
	prometheusScale  = regexp.MustCompile(`(?i)an integer (?:number )?between (-?\d{1,7}) and (-?\d{1,7})`)
	prometheusResult = regexp.MustCompile(`\[RESULT\]\s*\(?([^)\n"]*)\)?`)
	seleneResult     = regexp.MustCompile(`\*\*Result:\*\*[ \t]*<([^>\n]*)>`)
	integerBetween   = regexp.MustCompile(`(?i)integer[^\n<>]*?between (-?\d{1,7}) and (-?\d{1,7})`)
	oneOf            = regexp.MustCompile(`(?i)one of:?\s*(.+)`)
	aOrB             = regexp.MustCompile(`(?i)^\W*(?:response\s+)?a\W*\s+or\s+(?:response\s+)?b\W*$`)
	xOrY             = regexp.MustCompile(`(?i)^\s*"?([^"]+?)"?\s+or\s+"?([^"]+?)"?\s*$`)
	// lynx: the verdict sentence names the two labels; the output format asks for
	// Lynx's JSON object.
	lynxVerdict = regexp.MustCompile(`"([^"\n]{1,64})" if the answer is faithful to the DOCUMENT and "([^"\n]{1,64})" if`)
	lynxOutput  = `"SCORE": <your final score>}`
)

// pickUser chooses the user message that carries the judge prompt: the last one with
// judged text in a recognised layout (a format reminder after a bad answer carries
// none), else the last one.
func pickUser(users []string) string {
	for i := len(users) - 1; i >= 0; i-- {
		u := users[i]
		if firstBlockAt(u) >= 0 || strings.Contains(u, "\n###Response") || strings.Contains(u, "\n--\nANSWER:\n") || strings.Contains(u, "\n###The instruction to evaluate:") ||
			strings.Contains(u, "\n###Conversation transcript:") ||
			hasFence(u, "Response") || hasFence(u, "Response A") || hasFence(u, "Instruction") || hasFence(u, "Conversation transcript") {
			return u
		}
	}
	if len(users) == 0 {
		return ""
	}
	return users[len(users)-1]
}

// parsePrompt detects the format and task of a judge prompt and finds the judged text.
// The formats (scorer/format/formats/*.yaml) escape their markers in judged text, so
// detection goes by where the markers sit: a Prometheus prompt ends with "###Feedback:";
// a Selene prompt states "**Result:** <…>" before its data; a flame prompt puts the
// judged text in <<<NAME>>> blocks, its output format ahead of them. A prompt in none of them
// is read as flame, pointwise 1–5 over the whole message.
func parsePrompt(user string) prompt {
	if strings.HasSuffix(strings.TrimSpace(user), lynxOutput) {
		return parseLynx(user)
	}
	if strings.HasSuffix(strings.TrimSpace(user), "###Feedback:") {
		return parsePrometheus(user)
	}
	iBlock := firstBlockAt(user)
	if iSel := strings.Index(user, "**Result:**"); iSel >= 0 && (iBlock < 0 || iSel < iBlock) {
		return parseSelene(user)
	}
	if iBlock < 0 && strings.Contains(user, "###Feedback:") {
		return parsePrometheus(user)
	}
	return parseFlame(user)
}

func parseFlame(user string) prompt {
	p := prompt{format: formatFlame, task: taskPointwise, lo: defaultLo, hi: defaultHi}
	skel := stripBlocks(user)
	best := -1
	if m := lastMatch(flamePointwise, skel); m != nil {
		best = m[0]
		p.lo, p.hi = readScale(skel[m[2]:m[3]], skel[m[4]:m[5]])
	}
	if m := lastMatch(flameClassify, skel); m != nil && m[0] > best {
		if labels := splitLabels(skel[m[2]:m[3]]); len(labels) > 0 {
			best, p.task, p.labels = m[0], taskClassification, labels
		}
	}
	if m := lastMatch(flamePairwise, skel); m != nil && m[0] > best {
		p.task = taskPairwise
	}
	if p.task == taskPairwise {
		p.a, _ = block(user, "RESPONSE A")
		p.b, _ = block(user, "RESPONSE B")
		return p
	}
	for _, name := range []string{"RESPONSE", "PROMPT", "MESSAGES", "TRANSCRIPT"} {
		if text, ok := block(user, name); ok {
			p.subject, p.text = name, text
			return p
		}
	}
	p.subject, p.text = "message", user
	return p
}

func parsePrometheus(user string) prompt {
	p := prompt{format: formatPrometheus, task: taskPointwise, lo: defaultLo, hi: defaultHi}
	// The task description, with the output format, comes before the judged text.
	head, ok := section(user, "###Task Description:")
	if !ok {
		head = user
		if i := strings.Index(user, "\n###"); i >= 0 {
			head = user[:i]
		}
	}
	a, okA := section(user, "###Response A:")
	b, okB := section(user, "###Response B:")
	spec := ""
	if m := prometheusResult.FindStringSubmatch(head); m != nil {
		spec = strings.TrimSpace(m[1])
	}
	switch {
	case (okA && okB) || aOrB.MatchString(spec):
		p.task, p.a, p.b = taskPairwise, a, b
		return p
	case prometheusScale.MatchString(head):
		m := prometheusScale.FindStringSubmatch(head)
		p.lo, p.hi = readScale(m[1], m[2])
	default:
		if labels := labelsOf(spec); len(labels) > 0 {
			p.task, p.labels = taskClassification, labels
		}
	}
	for _, s := range []struct{ header, subject string }{
		{"###Response to evaluate:", "response"},
		{"###The instruction to evaluate:", "instruction"},
		{"###Conversation transcript:", "conversation"},
	} {
		if text, ok := section(user, s.header); ok {
			p.subject, p.text = s.subject, text
			return p
		}
	}
	p.subject, p.text = "message", user
	return p
}

// parseLynx reads a Lynx prompt: classification into the two labels of its verdict
// sentence (PASS, FAIL), over the text of its ANSWER section.
func parseLynx(user string) prompt {
	p := prompt{format: formatLynx, task: taskClassification, labels: []string{"PASS", "FAIL"}, subject: "answer"}
	if m := lynxVerdict.FindStringSubmatch(user); m != nil && m[1] != m[2] {
		p.labels = []string{m[1], m[2]}
	}
	p.text = user
	if i := strings.LastIndex(user, "\n--\nANSWER:\n"); i >= 0 {
		rest := user[i+len("\n--\nANSWER:\n"):]
		if j := strings.Index(rest, "\n\n--\n"); j >= 0 {
			rest = rest[:j]
		}
		p.text = rest
	}
	return p
}

func parseSelene(user string) prompt {
	p := prompt{format: formatSelene, task: taskPointwise, lo: defaultLo, hi: defaultHi}
	spec := ""
	if m := seleneResult.FindStringSubmatch(user); m != nil {
		spec = strings.TrimSpace(m[1])
	}
	a, okA := seleneFence(user, "Response A")
	b, okB := seleneFence(user, "Response B")
	switch {
	case aOrB.MatchString(spec) || (spec == "" && okA && okB):
		p.task, p.a, p.b = taskPairwise, a, b
		return p
	case integerBetween.MatchString(spec):
		m := integerBetween.FindStringSubmatch(spec)
		p.lo, p.hi = readScale(m[1], m[2])
	default:
		if labels := labelsOf(spec); len(labels) > 0 {
			p.task, p.labels = taskClassification, labels
		}
	}
	for _, label := range []string{"Response", "Instruction", "Conversation transcript"} {
		if text, ok := seleneFence(user, label); ok {
			p.subject, p.text = strings.ToLower(label), text
			return p
		}
	}
	p.subject, p.text = "message", user
	return p
}

// labelsOf reads labels from "one of: L1, L2" or "L1 or L2"; none for a scale or A/B.
func labelsOf(spec string) []string {
	if spec == "" || strings.Contains(strings.ToLower(spec), "integer") || aOrB.MatchString(spec) {
		return nil
	}
	if m := oneOf.FindStringSubmatch(spec); m != nil {
		return splitLabels(m[1])
	}
	if m := xOrY.FindStringSubmatch(spec); m != nil {
		return splitLabels(m[1] + "," + m[2])
	}
	return nil
}

// splitLabels splits "a, b, c" (or "a, b or c"), trimming and dropping empty and repeated
// labels.
func splitLabels(s string) []string {
	var out []string
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		for _, l := range strings.Split(part, " or ") {
			l = strings.Trim(strings.TrimSpace(l), `"'`)
			if l != "" && !seen[l] && !strings.ContainsAny(l, "\r\n") {
				seen[l] = true
				out = append(out, l)
			}
		}
	}
	return out
}

func readScale(a, b string) (int, int) {
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || hi <= lo || hi-lo > maxScaleSpan {
		return defaultLo, defaultHi
	}
	return lo, hi
}

func lastMatch(re *regexp.Regexp, s string) []int {
	all := re.FindAllStringSubmatchIndex(s, -1)
	if len(all) == 0 {
		return nil
	}
	return all[len(all)-1]
}

// block returns the text of the first <<<NAME>>> block.
func block(user, name string) (string, bool) {
	open, end := "<<<"+name+">>>\n", "\n<<<END "+name+">>>"
	i := strings.Index(user, open)
	if i < 0 {
		return "", false
	}
	rest := user[i+len(open):]
	j := strings.Index(rest, end)
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

// firstBlockAt returns the offset of the first complete <<<NAME>>> block, or -1.
func firstBlockAt(user string) int {
	for _, m := range flameOpen.FindAllStringSubmatchIndex(user, 8) {
		name := user[m[2]:m[3]]
		if !strings.HasPrefix(name, "END ") && strings.Contains(user[m[1]:], "\n<<<END "+name+">>>") {
			return m[0]
		}
	}
	return -1
}

// maxBlocks bounds the blocks stripBlocks looks at (a prompt has a handful), which
// keeps adversarial prompts linear.
const maxBlocks = 64

// stripBlocks removes the text inside <<<NAME>>> blocks, so judged text cannot pose as
// the output format.
func stripBlocks(user string) string {
	var b strings.Builder
	rest := user
	for range maxBlocks {
		m := flameOpen.FindStringSubmatchIndex(rest)
		if m == nil {
			break
		}
		name := rest[m[2]:m[3]]
		end := "\n<<<END " + name + ">>>"
		j := strings.Index(rest[m[1]:], end)
		if j < 0 || strings.HasPrefix(name, "END ") {
			b.WriteString(rest[:m[1]])
			rest = rest[m[1]:]
			continue
		}
		b.WriteString(rest[:m[1]])
		rest = rest[m[1]+j:]
	}
	b.WriteString(rest)
	return b.String()
}

// section returns the text after a Prometheus "###Header:" up to the next "\n###".
func section(user, header string) (string, bool) {
	i := strings.Index(user, header)
	if i < 0 {
		return "", false
	}
	rest := strings.TrimPrefix(user[i+len(header):], " ")
	rest = strings.TrimPrefix(rest, "\n")
	if j := strings.Index(rest, "\n###"); j >= 0 {
		rest = rest[:j]
	}
	return strings.TrimRight(rest, "\n"), true
}

// seleneFence returns the text of the ``` fence that follows a line "<label>:".
func seleneFence(user, label string) (string, bool) {
	key := label + ":"
	for off := 0; off < len(user); {
		i := strings.Index(user[off:], key)
		if i < 0 {
			return "", false
		}
		i += off
		off = i + len(key)
		if (i > 0 && user[i-1] != '\n') || !lineEndsAt(user, off) {
			continue
		}
		rest := strings.TrimLeft(user[off:], " \t\r\n")
		if !strings.HasPrefix(rest, "```") {
			continue
		}
		n := 0
		for n < len(rest) && rest[n] == '`' {
			n++
		}
		fence := rest[:n]
		nl := strings.IndexByte(rest, '\n')
		if nl < 0 {
			return "", false
		}
		body := rest[nl+1:]
		if strings.HasPrefix(body, fence) && lineEndsAt(body, len(fence)) {
			return "", true // an empty fence
		}
		j := strings.Index(body, "\n"+fence)
		if j < 0 {
			return body, true
		}
		return body[:j], true
	}
	return "", false
}

func hasFence(user, label string) bool {
	_, ok := seleneFence(user, label)
	return ok
}

func lineEndsAt(s string, i int) bool {
	rest := strings.TrimLeft(s[i:], " \t\r")
	return rest == "" || rest[0] == '\n'
}

// reasoningPrefix marks every simulated explanation.
const reasoningPrefix = "Simulated judgement by judgesim (a GPU scoring-pool simulator, no model): "

// judge writes the deterministic answer to a prompt.
func (s *Simulator) judge(p prompt, content [32]byte, bias float64) answer {
	return s.judgeLen(p, content, bias, 0)
}

// judgeLen writes the deterministic answer to a prompt, its explanation padded so that
// the answer has at least size bytes (0: no padding). The result stays last.
func (s *Simulator) judgeLen(p prompt, content [32]byte, bias float64, size int) answer {
	var reasoning string
	var ans answer
	switch p.task {
	case taskPairwise:
		qa, notesA := quality(p.a)
		qb, notesB := quality(p.b)
		pick := 0
		switch {
		case qb > qa+1e-9:
			pick = 1
		case math.Abs(qa-qb) <= 1e-9:
			pick = int(content[20] & 1)
		}
		why := fmt.Sprintf("%s reads better", []string{"A", "B"}[pick])
		if bias > 0 && unit(content[24:32]) < bias {
			pick, why = 0, "A is preferred"
		}
		reasoning = fmt.Sprintf("%sresponse A %s; response B %s; %s.", reasoningPrefix,
			strings.Join(notesA, ", "), strings.Join(notesB, ", "), why)
		ans.choices, ans.chosen = []string{"A", "B"}, pick
	case taskClassification:
		q, notes := quality(p.text)
		n := len(p.labels)
		ans.choices, ans.chosen = p.labels, min(n-1, int((1-q)*float64(n)))
		reasoning = fmt.Sprintf("%sthe %s %s.", reasoningPrefix, p.subject, strings.Join(notes, "; "))
	default:
		q, notes := quality(p.text)
		span := float64(p.hi - p.lo)
		score := p.lo
		if q > 0 {
			// Spread: a stable offset of up to ±half a step (±5% of wide scales).
			jitter := (unit(content[8:16]) - 0.5) * max(1, span/10)
			score = int(math.Round(float64(p.lo) + q*span + jitter))
			score = min(max(score, p.lo), p.hi)
		}
		ans.choices = make([]string, 0, p.hi-p.lo+1)
		for v := p.lo; v <= p.hi; v++ {
			ans.choices = append(ans.choices, strconv.Itoa(v))
		}
		ans.chosen = score - p.lo
		reasoning = fmt.Sprintf("%sthe %s %s.", reasoningPrefix, p.subject, strings.Join(notes, "; "))
	}
	a := compose(p, ans, reasoning)
	if size > len(a.text) {
		a = compose(p, ans, padReasoning(reasoning, size-len(a.text)))
	}
	return a
}

// compose lays out the reasoning and the chosen result in p's output format.
func compose(p prompt, ans answer, reasoning string) answer {
	result := ans.choices[ans.chosen]
	var head, tail string
	switch p.format {
	case formatLynx:
		// One reasoning bullet, a JSON string: no quote or backslash in it.
		bullet := strings.NewReplacer(`"`, "'", `\`, "/", "\n", " ").Replace(reasoning)
		head, tail = `{"REASONING": ["`+bullet+`"], "SCORE": "`, `"}`
	case formatPrometheus:
		head = reasoning + " [RESULT] "
	case formatSelene:
		head = "**Reasoning:** " + reasoning + "\n\n**Result:** "
	default:
		head = "Reasoning: " + reasoning + "\n" + [...]string{"Score: ", "Label: ", "Preference: "}[p.task]
	}
	ans.text = head + result + tail
	ans.resStart, ans.resEnd = len(head), len(head)+len(result)
	return ans
}

// padFiller is the text that lengthens an explanation: plain words, none of them an
// output-grammar marker, no quote or backslash (Lynx puts it in a JSON string).
const padFiller = " weighing clarity, accuracy, completeness, relevance and tone of each part of the text;"

// padReasoning lengthens reasoning (which ends with a full stop) by n bytes, before its
// full stop.
func padReasoning(reasoning string, n int) string {
	if n <= 0 {
		return reasoning
	}
	body, stop := reasoning, ""
	if strings.HasSuffix(body, ".") {
		body, stop = body[:len(body)-1], "."
	}
	var b strings.Builder
	b.Grow(len(reasoning) + n)
	b.WriteString(body)
	for left := n; left > 0; left -= len(padFiller) {
		b.WriteString(padFiller[:min(left, len(padFiller))])
	}
	b.WriteString(stop)
	return b.String()
}

// answerTokens draws a chat answer's length in tokens from the configured log-normal
// distribution, deterministically from the prompt hash: median × e^(sigma × z),
// clipped to [AnswerMinTokens, AnswerMaxTokens] and to limit (max_tokens; 0: none).
// It returns 0 when answer lengths are off.
func (s *Simulator) answerTokens(content [32]byte, limit int) int {
	return answerTokens(s.cfg, subHash(content, "answer-length", 0), limit)
}

func answerTokens(c Config, h [32]byte, limit int) int {
	if c.AnswerMedianTokens <= 0 {
		return 0
	}
	// Box-Muller from two uniforms of the hash.
	u1 := max(unit(h[0:8]), 1e-12)
	u2 := unit(h[8:16])
	z := math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
	n := int(math.Round(float64(c.AnswerMedianTokens) * math.Exp(c.AnswerSigma*z)))
	n = max(n, c.AnswerMinTokens, 1)
	if c.AnswerMaxTokens > 0 {
		n = min(n, c.AnswerMaxTokens)
	}
	if limit > 0 {
		n = min(n, limit)
	}
	return n
}

// malformed turns an answer into one outside the output grammar: the reasoning without
// the result, or a result that is no valid value.
func malformed(p prompt, a answer, content [32]byte) answer {
	head := a.text[:a.resStart]
	if content[3]&1 == 0 {
		// Cut before the result marker.
		for _, marker := range []string{"\nScore: ", "\nLabel: ", "\nPreference: ", " [RESULT] ", "\n\n**Result:** ", `, "SCORE": "`} {
			if i := strings.LastIndex(head, marker); i >= 0 {
				head = head[:i]
				break
			}
		}
		return answer{text: head, resStart: -1}
	}
	bad := "N/A"
	if p.task == taskPairwise {
		bad = "both"
	}
	for _, c := range a.choices {
		if c == bad {
			bad = "(none)"
		}
	}
	return answer{text: head + bad, resStart: -1}
}

var refusalPhrases = []string{
	"i can't help", "i cannot help", "i can't assist", "i cannot assist", "i can't provide",
	"i cannot provide", "i'm sorry, but", "i am sorry, but", "i'm unable to", "i am unable to",
	"i'm not able to", "i am not able to", "as an ai language model", "i won't be able to",
	"i can’t help", "i can’t assist", "i’m sorry, but", "i’m unable to",
}

// quality maps text to [0,1] with cheap signals that correlate with real judge scores,
// and says why.
func quality(text string) (float64, []string) {
	t := strings.TrimSpace(text)
	if t == "" {
		return 0, []string{"is empty"}
	}
	words := strings.Fields(t)
	n := len(words)
	sample := words[:min(n, 300)]
	uniq := make(map[string]struct{}, len(sample))
	for _, w := range sample {
		uniq[strings.ToLower(strings.TrimFunc(w, unicode.IsPunct))] = struct{}{}
	}
	diversity := float64(len(uniq)) / float64(len(sample))
	length := min(1, math.Log1p(float64(n))/math.Log1p(120))
	ending := 0.5
	if last, _ := utf8.DecodeLastRuneInString(t); strings.ContainsRune(".!?)`\"'*]}", last) || unicode.IsDigit(last) {
		ending = 1
	}
	q := length*(0.6+0.3*diversity) + 0.1*ending // diversity counts for as much text as there is
	notes := []string{fmt.Sprintf("has %d words with lexical diversity %.2f", n, diversity)}
	if n < 5 {
		q = min(q, 0.2)
		notes = append(notes, "is very short")
	}
	if diversity < 0.3 && n >= 20 {
		q *= 0.5
		notes = append(notes, "repeats itself")
	}
	if ending < 1 {
		notes = append(notes, "looks cut off")
	}
	lower := strings.ToLower(t)
	for _, p := range refusalPhrases {
		if strings.Contains(lower, p) {
			q *= 0.25
			notes = append(notes, "reads as a refusal")
			break
		}
	}
	return min(max(q, 0.01), 1), notes
}

// unit maps 8 hash bytes to [0,1).
func unit(b []byte) float64 {
	return float64(binary.BigEndian.Uint64(b)>>11) / (1 << 53)
}

// tokens estimates tokens as bytes/4, rounded up.
func tokens(bytes int) int { return (bytes + 3) / 4 }

// subHash derives a hash for one use of a content hash.
func subHash(content [32]byte, what string, i int) [32]byte {
	h := sha256.New()
	h.Write(content[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(i))
	h.Write(n[:])
	h.Write([]byte(what))
	var out [32]byte
	h.Sum(out[:0])
	return out
}
