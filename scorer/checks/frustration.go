package checks

import (
	"fmt"
	"strings"
	"unicode"
)

// NameFrustration is the check of scope conversation that counts cues of user
// frustration across the turns.
const NameFrustration = "frustration"

// Thresholds of the frustration check.
const (
	// frustrationRepeatMinWords: shorter user messages ("yes", "ok thanks") may repeat
	// without frustration.
	frustrationRepeatMinWords = 3
	// frustrationRepeatOverlap is the Jaccard overlap of word 3-shingles at and above
	// which a user message repeats an earlier one.
	frustrationRepeatOverlap = 0.8
	// frustrationCapsMinLetters and frustrationCapsShare: a message of at least this
	// many letters, at least this share of them upper case, is shouting.
	frustrationCapsMinLetters = 12
	frustrationCapsShare      = 0.8
	// frustrationExclamations: this many '!' in one message are a cue.
	frustrationExclamations = 3
	// frustrationFailCues: this many cues score 0.
	frustrationFailCues = 3
)

// Kinds of frustration cues, as the explanation names them.
const (
	cueRepeated = "repeated message"
	cuePhrase   = "frustrated phrase"
	cueHuman    = "asks for a human"
	cueCaps     = "all caps"
	cueExclaim  = "multiple exclamation marks"
)

// frustrationPhrases are normalized phrases of an annoyed user (an apostrophe separates
// words: "you're" is "you re").
func frustrationPhrases() []string {
	return []string{
		"i already told you", "i already said", "i told you already", "i just told you", "as i said before",
		"this is useless", "you re useless", "you are useless", "this is ridiculous", "this is frustrating",
		"so frustrating", "waste of time", "wasting my time", "for the last time", "are you even listening",
		"you re not listening", "you are not listening", "you don t understand", "you do not understand",
		"that s not what i asked", "that is not what i asked", "not helpful at all", "this is not helpful",
		"stop repeating", "you keep saying", "useless bot",
	}
}

// frustrationHuman are normalized phrases of a user who asks to leave the assistant.
func frustrationHuman() []string {
	return []string{
		"talk to a human", "speak to a human", "talk to a real person", "speak to a real person",
		"talk to a person", "speak to a person", "talk to an agent", "speak to an agent",
		"talk to a representative", "speak to a representative", "human agent", "real human",
		"live agent", "customer service representative", "let me talk to someone",
	}
}

// checkFrustration counts cues of user frustration in the user messages of the
// conversation, each kind at most once per turn:
//
//   - repeated message: a user message of at least frustrationRepeatMinWords words that
//     repeats an earlier user message (equal normalized text, or word 3-shingles
//     overlapping by frustrationRepeatOverlap or more): the user had to ask again;
//   - frustrated phrase: "I already told you", "this is useless", "waste of time",
//     "you don't understand" … (frustrationPhrases);
//   - asks for a human: "talk to a human", "speak to an agent", "live agent" …
//     (frustrationHuman);
//   - all caps: at least frustrationCapsMinLetters letters, frustrationCapsShare of them
//     upper case;
//   - multiple exclamation marks: frustrationExclamations or more '!' in one message.
//
// The score is graded: 1 without cues, falling by 1/frustrationFailCues per cue to 0 at
// frustrationFailCues cues; the label is "none" (0 cues), "mild" (1) or "frustrated"
// (2 or more). The explanation names the cue kinds and turn numbers and never quotes the
// user. Only the last maxTranscriptTurns turns are read.
func checkFrustration(turns []Turn) Result {
	turns, off := lastTurns(turns)
	phrases, human := frustrationPhrases(), frustrationHuman()
	found := make(map[string][]int)
	var kinds []string // in order of first appearance
	add := func(kind string, turn int) {
		if len(found[kind]) == 0 {
			kinds = append(kinds, kind)
		}
		found[kind] = append(found[kind], turn)
	}
	type earlier struct {
		norm string
		sh   map[string]struct{}
	}
	var seen []earlier
	cues := 0
	for i, t := range turns {
		n := off + i + 1
		if strings.TrimSpace(t.User) == "" {
			continue
		}
		ws := words(t.User)
		norm := strings.Join(ws, " ")
		if len(ws) >= frustrationRepeatMinWords {
			sh := shingles(ws)
			for _, e := range seen {
				if e.norm == norm || jaccard(e.sh, sh) >= frustrationRepeatOverlap {
					add(cueRepeated, n)
					cues++
					break
				}
			}
			seen = append(seen, earlier{norm: norm, sh: sh})
		}
		if anyPhrase(norm, phrases) != "" {
			add(cuePhrase, n)
			cues++
		}
		if anyPhrase(norm, human) != "" {
			add(cueHuman, n)
			cues++
		}
		if shouting(t.User) {
			add(cueCaps, n)
			cues++
		}
		if strings.Count(t.User, "!") >= frustrationExclamations {
			add(cueExclaim, n)
			cues++
		}
	}
	value := max(0, 1-float64(cues)/frustrationFailCues)
	if cues == 0 {
		return Result{Value: 1, Label: "none", Confidence: 0.7, Explanation: "No cue of user frustration in the user messages."}
	}
	label := "frustrated"
	if cues == 1 {
		label = "mild"
	}
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s (%s)", k, turnList(found[k]))
	}
	return Result{Value: value, Label: label, Confidence: min(0.95, 0.5+0.15*float64(cues)),
		Explanation: fmt.Sprintf("%d frustration cue(s): %s.", cues, strings.Join(parts, ", "))}
}

// shouting reports whether s is mostly upper case: at least frustrationCapsMinLetters
// cased letters, frustrationCapsShare of them upper case.
func shouting(s string) bool {
	upper, letters := 0, 0
	for _, r := range s {
		switch {
		case unicode.IsUpper(r):
			upper++
			letters++
		case unicode.IsLower(r):
			letters++
		}
	}
	return letters >= frustrationCapsMinLetters && float64(upper) >= frustrationCapsShare*float64(letters)
}
