package checks

import (
	"encoding/json"
	"errors"
	"fmt"
	"raterd/internal/text"
	"regexp"
	"strings"
	"unicode/utf8"
)

// NameJSON is the name of the check that validates JSON a prompt asked for.
const NameJSON = "json"

// jsonDetector recognises a request for JSON output in a prompt. It is read-only after
// newJSONDetector and so safe for concurrent use.
type jsonDetector struct {
	// jsonAsk match a request for JSON output in a lower-cased window of the prompt;
	// a match whose first submatch (a disqualifying context word) is non-empty does not
	// count, which stands in for look-behind RE2 lacks.
	jsonAsk []*regexp.Regexp
	// jsonAskGates[i] are literals of which every match of jsonAsk[i] contains one (see
	// jsonAskGateLiterals); nil for a pattern that runs on every window.
	jsonAskGates [][]string
	// jsonNeg matches an explicit request not to answer in JSON.
	jsonNeg *regexp.Regexp
	// jsonNegGates are literals of which every match of jsonNeg contains one (see
	// jsonNegGateLiterals); nil runs jsonNeg on every window.
	jsonNegGates []string
}

// newJSONDetector compiles the JSON-request patterns.
func newJSONDetector() *jsonDetector {
	d := &jsonDetector{
		jsonNeg:      regexp.MustCompile(jsonNegPattern),
		jsonNegGates: jsonNegGateLiterals(),
		jsonAskGates: jsonAskGateLiterals(),
	}
	for _, p := range jsonAskPatterns() {
		d.jsonAsk = append(d.jsonAsk, regexp.MustCompile(p))
	}
	return d
}

// checkJSON runs the json check: when the caller may read the prompt, a response is held
// to JSON only if the prompt asks for it; otherwise JSON is always expected.
func (d *jsonDetector) checkJSON(in Input) Result {
	asked, why := true, "evaluator does not read the prompt, so JSON is always expected"
	if in.HasPrompt {
		asked, why = d.jsonRequested(in.Prompt), "prompt asks for JSON"
	}
	if !asked {
		return Result{Value: 1, Label: "not_requested", Confidence: 1, Explanation: "The prompt does not ask for JSON."}
	}
	return checkJSONResponse(in.Response, why)
}

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

// jsonAskGateLiterals returns, for each of jsonAskPatterns, literals of which every match
// of the pattern contains one in the lower-cased window, or nil where the pattern's
// literals are too common to be worth a scan ("in", "as", the verbs of the first). A
// window that contains none of a pattern's literals cannot match it, so the pattern is
// not run there: a regexp pass over a window costs microseconds, a substring scan tens
// of nanoseconds. TestJSONGates checks them against every match on a corpus.
func jsonAskGateLiterals() [][]string {
	return [][]string{
		nil,
		nil,
		{" be "}, // must / should / … be (in) json
		{"json format", "json-format", "json only", "json-only", "json mode", "json-mode"},
		{":", "="}, // format: json
		{"convert", "transform", "turn", "translate", "reformat", "rewrite"},
	}
}

// jsonNegGateLiterals returns literals of which every match of jsonNegPattern contains
// one: the negations that open its first alternative, and the phrases of the others. A
// window that contains none cannot match (TestJSONGates checks them against every match
// on a corpus); a bare "not", as in "notes", no longer runs the pattern.
func jsonNegGateLiterals() []string {
	return []string{
		"do not", "don't", "dont", "never", "no need to", "avoid",
		"not in ", "not as ", "not using ",
		"instead of json", "rather than json", "without json", "no json",
		", not json",
	}
}

// jsonNegPattern matches an explicit request not to use JSON, which overrides a request.
const jsonNegPattern = `(?:do not|don't|dont|never|please don't|no need to|avoid) (?:respond|reply|answer|return|output|use|format|write|give|provide|send|produce)\w* (?:\w+ ){0,2}?(?:in |as |with |using )?(?:a |an )?json\b` +
	`|\bnot (?:in|as|using) (?:a )?json\b|\b(?:instead of|rather than|without|no) json\b|, not json\b`

// jsonRequested reports whether the prompt asks for JSON output. Only windows around the
// word "json" are examined, so a 100 KB chat transcript costs a byte scan, not a regexp
// pass, and at most 32 mentions are looked at.
func (d *jsonDetector) jsonRequested(prompt string) bool {
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
		if (d.jsonNegGates == nil || containsAny(w, d.jsonNegGates)) && d.jsonNeg.MatchString(w) {
			return false
		}
		if !asked {
			asked = d.jsonAskIn(w)
		}
	}
	return asked
}

// containsAny reports whether s contains one of lits.
func containsAny(s string, lits []string) bool {
	for _, l := range lits {
		if strings.Contains(s, l) {
			return true
		}
	}
	return false
}

// jsonAskIn reports whether some request pattern matches w without a disqualifying
// context word. A pattern runs only on a window that holds one of its gate literals.
func (d *jsonDetector) jsonAskIn(w string) bool {
	for i, re := range d.jsonAsk {
		if g := d.jsonAskGates[i]; g != nil && !containsAny(w, g) {
			continue
		}
		// The first match alone first: it is the first of all the matches, and in most
		// windows that ask for JSON it counts, which saves searching the rest.
		first := re.FindAllStringSubmatchIndex(w, 1)
		if len(first) == 0 {
			continue
		}
		if askCounts(first[0]) {
			return true
		}
		for _, m := range re.FindAllStringSubmatchIndex(w, -1)[1:] {
			if askCounts(m) {
				return true
			}
		}
	}
	return false
}

// askCounts reports whether a match of a JSON-request pattern (its submatch indices)
// counts: neither its context word (the first submatch) nor its tail word (the last)
// is set.
func askCounts(m []int) bool {
	ctxWord := m[2] >= 0 && m[3] > m[2]
	last := len(m) - 2
	tailWord := m[last] >= 0 && m[last+1] > m[last]
	return !ctxWord && !tailWord
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
func checkJSONResponse(s, why string) Result {
	whole := strings.TrimSpace(strings.TrimPrefix(s, "\uFEFF"))
	wholeErr := jsonError(whole)
	if wholeErr == "" {
		return Result{Value: 1, Label: "valid_json", Confidence: 1, Explanation: "The " + why + "; the response is valid JSON."}
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
		return Result{Value: 1, Label: "valid_json", Confidence: 1, Explanation: expl + "."}
	case ok:
		return Result{Value: 0, Label: "invalid_json", Confidence: 1, Explanation: "The " + why + "; the fenced JSON block is invalid: " + bodyErr + "."}
	case blocks > 1:
		return Result{Value: 0, Label: "invalid_json", Confidence: 1, Explanation: fmt.Sprintf("The %s; the response is not JSON and has %d candidate code blocks instead of one.", why, blocks)}
	default:
		return Result{Value: 0, Label: "invalid_json", Confidence: 1, Explanation: "The " + why + "; the response is not valid JSON: " + wholeErr + "."}
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
	return text.Clip(msg, 160) // the error quotes the input: never cut a rune in two
}
