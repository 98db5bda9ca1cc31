package simulator

import (
	"crypto/sha256"
	"regexp"
	"strconv"
	"testing"
)

// FuzzJudgeAnswer: whatever the prompt, the simulator answers in the exact judge grammar
// with a score inside the scale it read, and the same prompt gets the same answer.
func FuzzJudgeAnswer(f *testing.F) {
	f.Add("<<<RESPONSE>>>\nFine answer.\n<<<END RESPONSE>>>\nScore: <integer from 1 to 5>")
	f.Add("<<<PROMPT>>>\nhi\n<<<END PROMPT>>>\nScore: <integer from 0 to 100>")
	f.Add("<<<RESPONSE>>>\n\n<<<END RESPONSE>>>\nScore: <integer from 5 to 1>")
	f.Add("no blocks at all")
	answer := regexp.MustCompile(`\AReasoning: [^\n]*\nScore: (-?[0-9]+)\z`)
	s := New(Config{})
	f.Fuzz(func(t *testing.T, user string) {
		sum := sha256.Sum256([]byte(user))
		got := s.judge(user, sum)
		m := answer.FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("answer breaks the grammar: %q", got)
		}
		n, err := strconv.Atoi(m[1])
		lo, hi := scale(user)
		if err != nil || n < lo || n > hi {
			t.Fatalf("score %q outside %d..%d", m[1], lo, hi)
		}
		if again := s.judge(user, sum); again != got {
			t.Fatal("same prompt, different answer")
		}
	})
}
