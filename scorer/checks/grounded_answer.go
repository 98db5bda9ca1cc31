package checks

import (
	"fmt"
	"strings"
	"unicode"
)

// NameGroundedAnswer is the check of scope trace that measures how much of an agent
// run's final answer is grounded in its tool results.
const NameGroundedAnswer = "grounded_answer"

// Thresholds of the grounded_answer check.
const (
	// groundedPass is the share of the answer's content words and numbers that must
	// appear in a tool result (or the user's messages) for the answer to pass.
	groundedPass = 0.5
	// groundedMinTokens: an answer with fewer content tokens is too short to measure.
	groundedMinTokens = 3
	// groundedMinLetters: shorter words are not content words.
	groundedMinLetters = 4
)

// groundedStopwords are common words of at least groundedMinLetters letters that carry
// no claim.
func groundedStopwords() []string {
	return []string{"about", "above", "after", "again", "also", "been", "before", "being", "below", "between",
		"both", "came", "come", "could", "does", "doing", "done", "down", "during", "each", "else", "even",
		"ever", "from", "further", "have", "having", "here", "hope", "however", "into", "just", "know", "like",
		"make", "many", "more", "most", "much", "must", "need", "only", "other", "over", "please", "same",
		"should", "some", "such", "sure", "than", "thank", "thanks", "that", "their", "them", "then", "there",
		"these", "they", "this", "those", "through", "under", "until", "very", "want", "well", "were", "what",
		"when", "where", "which", "while", "will", "with", "would", "your", "yours", "help", "happy",
		"based", "found", "following", "information", "currently", "according"}
}

// groundedTokens returns the content tokens of s: numbers (any token with a digit; "1,234"
// and "1234" are the same number) and words of at least groundedMinLetters letters that
// are not stopwords, lowercase.
func groundedTokens(s string, stop map[string]bool) (contentWords, numbers []string) {
	for _, f := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '.' && r != ','
	}) {
		f = strings.Trim(f, ".,")
		if f == "" {
			continue
		}
		if strings.ContainsFunc(f, unicode.IsDigit) {
			numbers = append(numbers, strings.ReplaceAll(f, ",", ""))
			continue
		}
		for _, w := range strings.FieldsFunc(f, func(r rune) bool { return r == '.' || r == ',' }) {
			if len([]rune(w)) >= groundedMinLetters && !stop[w] {
				contentWords = append(contentWords, w)
			}
		}
	}
	return contentWords, numbers
}

// checkGroundedAnswer measures how much of the final answer (the response) is grounded
// in the run's tool results: the share of the answer's content tokens (numbers, and
// words of at least groundedMinLetters letters that are not stopwords) that appear in
// some tool result or in a user message (restating the question is not a claim). A
// number in the answer that appears in no tool result and no user message is a strong
// negative signal: it fails the answer whatever the share.
//
// The answer passes (label "grounded") when the share is at least groundedPass (0.5)
// and every number is grounded; otherwise it fails (label "ungrounded"). The value is
// the share, halved for each ungrounded number. A run without tool results passes with
// label "no_tool_results" and confidence 0 (nothing to ground in); an empty answer
// fails (label "empty_answer"); an answer with fewer than groundedMinTokens content
// tokens passes with label "too_short" and confidence 0.2. The explanation gives counts,
// never the answer's words.
func checkGroundedAnswer(answer string, turns []Turn) Result {
	stop := make(map[string]bool)
	for _, w := range groundedStopwords() {
		stop[w] = true
	}
	source := make(map[string]bool)
	results := 0
	addSource := func(s string) {
		ws, ns := groundedTokens(s, stop)
		for _, t := range append(ws, ns...) {
			source[t] = true
		}
	}
	for _, t := range turns {
		for _, c := range t.ToolCalls {
			if strings.TrimSpace(c.Result) != "" {
				results++
				addSource(c.Result)
			}
		}
	}
	if results == 0 {
		return Result{Value: 1, Label: "no_tool_results", Confidence: 0, Explanation: "The agent run has no tool results to ground the answer in."}
	}
	if strings.TrimSpace(answer) == "" {
		return Result{Value: 0, Label: "empty_answer", Confidence: 0.9, Explanation: "The agent run ends without an answer."}
	}
	for _, t := range turns {
		addSource(t.User)
	}
	ws, ns := groundedTokens(answer, stop)
	total := len(ws) + len(ns)
	if total < groundedMinTokens {
		return Result{Value: 1, Label: "too_short", Confidence: 0.2,
			Explanation: fmt.Sprintf("The answer has %d content words and numbers, too few to measure grounding.", total)}
	}
	grounded, badNumbers := 0, 0
	for _, w := range ws {
		if source[w] {
			grounded++
		}
	}
	for _, n := range ns {
		if source[n] {
			grounded++
		} else {
			badNumbers++
		}
	}
	share := float64(grounded) / float64(total)
	value := share
	for range min(badNumbers, 10) {
		value /= 2
	}
	expl := fmt.Sprintf("%.0f%% of the answer's %d content words and numbers appear in the %d tool results or the user's messages (pass: %.0f%%)",
		100*share, total, results, 100*groundedPass)
	if badNumbers > 0 {
		expl += fmt.Sprintf("; %d of its %d numbers appear in no tool result or user message", badNumbers, len(ns))
	}
	if share >= groundedPass && badNumbers == 0 {
		return Result{Value: value, Label: "grounded", Confidence: 0.4 + 0.4*share, Explanation: expl + "."}
	}
	conf := 0.4 + 0.4*(1-share)
	if badNumbers > 0 {
		conf = max(conf, 0.8)
	}
	return Result{Value: value, Label: "ungrounded", Confidence: conf, Explanation: expl + "."}
}
