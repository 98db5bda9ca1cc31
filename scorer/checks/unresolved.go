package checks

import "fmt"

// NameUnresolved is the check of scope conversation that detects a conversation that
// ends without resolving the user's request.
const NameUnresolved = "unresolved"

// unresolvedDeferralMaxWords: a last answer longer than this is taken to attempt a
// resolution even when it also says "contact support" (a closing courtesy).
const unresolvedDeferralMaxWords = 40

// Cues of the unresolved check, as normalized phrases (lowercase words; an apostrophe
// separates words, so "can't" is "can t"). Functions, not variables: no package state.

// unresolvedDeferrals are the phrases of an assistant that gives up or sends the user
// elsewhere.
func unresolvedDeferrals() []string {
	return []string{
		"i can t help", "i cannot help", "i am unable to help", "i m unable to help", "i m not able to help",
		"i can t assist", "i cannot assist", "i am unable to assist", "i m unable to assist",
		"contact support", "contact customer support", "contact our support", "contact the support",
		"contact customer service", "reach out to support", "reach out to customer support",
		"i don t know", "i do not know", "i m not sure how to", "i am not sure how to",
		"beyond my capabilities", "outside my capabilities", "i don t have access to", "i do not have access to",
	}
}

// unresolvedNotSolved are the phrases of a user who says the problem remains.
func unresolvedNotSolved() []string {
	return []string{
		"still not working", "still doesn t work", "still does not work", "still isn t working", "still is not working",
		"it didn t work", "it did not work", "that didn t work", "that did not work", "didn t help", "did not help",
		"doesn t help", "does not help", "not solved", "not resolved", "still broken", "still have the problem",
		"still have the same problem", "still have the issue", "still the same", "that s not what i asked",
		"that is not what i asked", "not what i asked",
	}
}

// checkUnresolved detects a conversation that ends unresolved, from three cues of its
// last turn, in this order:
//
//   - unanswered: the last turn has a user message and no assistant answer (a question or
//     complaint nobody answered); confidence 0.9.
//   - deferral: the last assistant answer is short (at most unresolvedDeferralMaxWords
//     words) and gives up or defers: "I can't help", "contact support", "I'm sorry, I
//     don't know", "beyond my capabilities" (unresolvedDeferrals); confidence 0.8. A
//     longer answer that ends with "contact support if this persists" is not a deferral.
//   - not_solved: the last user message says the problem remains ("still not working",
//     "that didn't work", "not what I asked": unresolvedNotSolved), so the conversation
//     closed on an answer the user never confirmed; confidence 0.6.
//
// Any cue fails (value 0, label "unresolved", the explanation names the cue and turn);
// otherwise the conversation passes (label "resolved", confidence 0.6: no cue is not
// proof). The check is conservative: it never reads the earlier turns, so a problem the
// user raised and dropped does not count. An empty transcript passes with confidence 0.
func checkUnresolved(turns []Turn) Result {
	if len(turns) == 0 {
		return Result{Value: 1, Label: "resolved", Confidence: 0, Explanation: "The transcript has no turns."}
	}
	n := len(turns)
	last := turns[n-1]
	user, answer := normalized(last.User), normalized(last.Assistant)
	fail := func(conf float64, format string, a ...any) Result {
		return Result{Value: 0, Label: "unresolved", Confidence: conf, Explanation: fmt.Sprintf(format, a...)}
	}
	if answer == "" && user != "" {
		return fail(0.9, "The conversation ends with a user message that was not answered (turn %d).", n)
	}
	if answer != "" && countWords(answer, unresolvedDeferralMaxWords+1) <= unresolvedDeferralMaxWords {
		if anyPhrase(answer, unresolvedDeferrals()) != "" {
			return fail(0.8, "The last answer defers or gives up without a resolution (turn %d).", n)
		}
	}
	if user != "" && anyPhrase(user, unresolvedNotSolved()) != "" {
		return fail(0.6, "The user's last message says the problem is not solved (turn %d), and the conversation ends after the reply to it.", n)
	}
	return Result{Value: 1, Label: "resolved", Confidence: 0.6,
		Explanation: fmt.Sprintf("The conversation's last turn (turn %d) shows no cue of an unresolved ending.", n)}
}
