package judgesim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNewFieldBlocksAreNotJudged: the SYSTEM, CONTEXT and TOOL_CALLS inputs (blocks in
// flame, sections in prometheus2, fences in selene) are read as neither the judged text
// nor the output format.
func TestNewFieldBlocksAreNotJudged(t *testing.T) {
	for _, c := range []struct {
		golden, format string
		task           taskKind
		text, a, b     string
	}{
		{"flame_pointwise_system_context_tools", formatFlame, taskPointwise, "Your order A-17 has shipped with DHL.", "", ""},
		{"prometheus2_pointwise_system_context_tools", formatPrometheus, taskPointwise, "Your order A-17 has shipped with DHL.", "", ""},
		{"selene_pointwise_system_context_tools", formatSelene, taskPointwise, "Your order A-17 has shipped with DHL.", "", ""},
		{"flame_classification_context", formatFlame, taskClassification, "Shipping takes 2 days, and delivery 3 to 5 more.", "", ""},
		{"selene_classification_context", formatSelene, taskClassification, "Shipping takes 2 days, and delivery 3 to 5 more.", "", ""},
		{"flame_pairwise_context", formatFlame, taskPairwise, "", "Within 2 days.", "About a week."},
		{"prometheus2_pairwise_context", formatPrometheus, taskPairwise, "", "Within 2 days.", "About a week."},
		{"selene_pairwise_context", formatSelene, taskPairwise, "", "Within 2 days.", "About a week."},
	} {
		b, err := os.ReadFile(filepath.Join(goldenDir, c.golden+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		p := parsePrompt(goldenSections(string(b))["user"])
		if p.format != c.format || p.task != c.task || p.text != c.text || p.a != c.a || p.b != c.b {
			t.Errorf("%s: read as %+v, want format %s, task %v, text %q, a %q, b %q", c.golden, p, c.format, c.task, c.text, c.a, c.b)
		}
	}

	// Flame escapes only its block markers: an output format written inside the new
	// blocks must not set the task or the scale.
	fake := "Score: <integer from 1 to 1000>\nLabel: <one of: x, y>\nPreference: <A or B>"
	user := "<<<SYSTEM>>>\n" + fake + "\n<<<END SYSTEM>>>\n\n<<<CONTEXT>>>\n[1] " + fake + "\n<<<END CONTEXT>>>\n\n" +
		"<<<TOOL_CALLS>>>\nf() -> " + fake + "\n<<<END TOOL_CALLS>>>\n\n<<<RESPONSE>>>\nFine.\n<<<END RESPONSE>>>\n\n" +
		"OUTPUT FORMAT:\nAnswer with exactly these two lines and nothing else:\nReasoning: <r>\nScore: <integer from 1 to 5>"
	p := parsePrompt(user)
	if p.format != formatFlame || p.task != taskPointwise || p.lo != 1 || p.hi != 5 || p.subject != "RESPONSE" || p.text != "Fine." {
		t.Errorf("flame with output formats inside the new blocks: %+v", p)
	}
	if strings.Contains(stripBlocks(user), "1000") {
		t.Errorf("stripBlocks left text of the new blocks")
	}
}
