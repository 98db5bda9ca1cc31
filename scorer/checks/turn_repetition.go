package checks

import "fmt"

// NameTurnRepetition is the check of scope conversation that detects an assistant
// repeating one of its earlier answers of the same conversation.
const NameTurnRepetition = "turn_repetition"

// Thresholds of the turn_repetition check.
const (
	// turnRepeatMinWords: answers shorter than this many words ("Yes.", "You're
	// welcome!") may repeat without the conversation looping.
	turnRepeatMinWords = 6
	// turnRepeatOverlap is the Jaccard overlap of two answers' word 3-shingles at and
	// above which the later answer is a near-verbatim repeat of the earlier one.
	turnRepeatOverlap = 0.7
)

// checkTurnRepetition detects an assistant that repeats an earlier answer of the same
// conversation (near-)verbatim: two assistant answers of at least turnRepeatMinWords
// words whose normalized text (lowercase words, punctuation and spacing ignored) is
// equal, or whose word 3-shingles overlap by turnRepeatOverlap (Jaccard) or more. A
// repeat fails (value 0, label "repeated_answer") and the explanation names the turns
// and the overlap; otherwise the conversation passes (label "no_repetition"). Only the
// last maxTranscriptTurns turns are compared.
func checkTurnRepetition(turns []Turn) Result {
	turns, off := lastTurns(turns)
	type answer struct {
		turn int
		norm string
		sh   map[string]struct{}
	}
	var answers []answer
	for i, t := range turns {
		ws := words(t.Assistant)
		if len(ws) < turnRepeatMinWords {
			continue
		}
		answers = append(answers, answer{turn: off + i + 1, norm: normalized(t.Assistant), sh: shingles(ws)})
	}
	var pairs []string
	best := 0.0
	for j := range answers {
		for i := range j {
			a, b := answers[i], answers[j]
			o := 1.0
			if a.norm != b.norm {
				o = jaccard(a.sh, b.sh)
			}
			if o >= turnRepeatOverlap {
				best = max(best, o)
				pairs = append(pairs, fmt.Sprintf("turn %d repeats turn %d (%.0f%% overlap)", b.turn, a.turn, 100*o))
				break // one earlier answer is enough for this turn
			}
		}
	}
	if len(pairs) == 0 {
		return Result{Value: 1, Label: "no_repetition", Confidence: 0.8,
			Explanation: fmt.Sprintf("No assistant answer of the %d turns repeats an earlier one.", len(turns))}
	}
	expl := "The assistant repeats an earlier answer: "
	for i, p := range pairs {
		if i == 3 {
			expl += fmt.Sprintf("; and %d more", len(pairs)-3)
			break
		}
		if i > 0 {
			expl += "; "
		}
		expl += p
	}
	return Result{Value: 0, Label: "repeated_answer", Confidence: 0.6 + 0.4*best, Explanation: expl + "."}
}
