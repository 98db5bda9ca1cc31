package doccheck

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository root, relative to this package's directory (where go test
// runs its tests).
const repoRoot = "../.."

// codeBlock is one fenced code block of a Markdown file.
type codeBlock struct {
	file  string   // relative to the repository root
	line  int      // of the opening fence
	info  []string // the info string's words: the language first
	lines []string // the content
}

// illustration reports whether the block is marked as shown, not run: ```sh illustration.
func (b codeBlock) illustration() bool { return len(b.info) > 1 && b.info[1] == "illustration" }

// shell reports whether the block holds shell commands.
func (b codeBlock) shell() bool {
	return len(b.info) > 0 && (b.info[0] == "sh" || b.info[0] == "bash" || b.info[0] == "console" || b.info[0] == "shell")
}

func (b codeBlock) String() string {
	return fmt.Sprintf("%s:%d (```%s)", b.file, b.line, strings.Join(b.info, " "))
}

// docFiles are the Markdown files a user reads: README.md and docs/*.md.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join(repoRoot, "README.md")}, files...)
	if len(files) < 2 {
		t.Fatalf("found no docs under %s/docs", repoRoot)
	}
	return files
}

// readBlocks returns the fenced code blocks of a Markdown file (fences of three or more
// backticks at the start of a line; an unclosed fence is an error).
func readBlocks(t *testing.T, path string) []codeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rel, _ := filepath.Rel(repoRoot, path)
	var (
		blocks []codeBlock
		cur    *codeBlock
		fence  string
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			fence = line[:len(line)-len(strings.TrimLeft(line, "`"))]
			cur = &codeBlock{file: rel, line: n, info: strings.Fields(strings.TrimPrefix(line, fence))}
		case cur != nil && strings.TrimSpace(line) == fence:
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: code block never closed", rel, cur.line)
	}
	return blocks
}

// inlineGoTest matches inline code spans that are go test commands: `go test …`.
var inlineGoTest = regexp.MustCompile("`(go test [^`]+)`")

// command is one shell command of a block or script: continuation lines joined, the
// comment stripped, blanks collapsed.
type command struct {
	text string
	line int
}

// commands splits shell text into commands: one per line, a trailing backslash joining
// the next line, comments removed, empty lines skipped.
func commands(lines []string, firstLine int) []command {
	var (
		out     []command
		pending string
		start   int
	)
	for i, l := range lines {
		if pending == "" {
			start = firstLine + i
		}
		if strings.HasSuffix(l, "\\") {
			pending += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		text := normalize(stripComment(pending + l))
		pending = ""
		if text != "" {
			out = append(out, command{text: text, line: start})
		}
	}
	return out
}

// stripComment drops a shell comment: a # that starts a word outside quotes.
func stripComment(s string) string {
	var quote rune
	prev := ' '
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			return s[:i]
		}
		prev = r
	}
	return s
}

// normalize collapses runs of blanks, so that alignment in the docs does not matter.
func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

// splitAnd splits a command at && outside quotes: "a && b" is two commands run in turn.
func splitAnd(s string) []string {
	var (
		parts []string
		quote rune
		last  int
	)
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '&' && strings.HasPrefix(s[i:], "&&"):
			parts = append(parts, strings.TrimSpace(s[last:i]))
			last = i + 2
		}
	}
	return append(parts, strings.TrimSpace(s[last:]))
}

// shellWords splits a command into words as the shell would for the simple commands the
// docs show: single and double quotes group and are removed, a backslash escapes the next
// character outside single quotes.
func shellWords(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		quote   rune
		escaped bool
	)
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed %c quote in %q", quote, s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// envAssignment matches a leading VAR=value of a command.
var envAssignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// dropEnv removes leading environment assignments: RATERD_X=1 go test … runs go test.
func dropEnv(words []string) []string {
	for len(words) > 0 && envAssignment.MatchString(words[0]) {
		words = words[1:]
	}
	return words
}

func TestMarkdownHelpers(t *testing.T) {
	cmds := commands([]string{
		"# a comment line",
		"go test -run='^$' -bench=X ./a/   # trailing comment",
		"",
		"/tmp/raterd bench --records 2 \\",
		"    --soak 10m   # joined",
		`echo "a # not a comment"`,
	}, 10)
	want := []command{
		{"go test -run='^$' -bench=X ./a/", 11},
		{"/tmp/raterd bench --records 2 --soak 10m", 13},
		{`echo "a # not a comment"`, 15},
	}
	if fmt.Sprint(cmds) != fmt.Sprint(want) {
		t.Errorf("commands = %v, want %v", cmds, want)
	}
	if got := splitAnd(`a up && eval "$(x && y)" && b`); fmt.Sprint(got) != fmt.Sprint([]string{"a up", `eval "$(x && y)"`, "b"}) {
		t.Errorf("splitAnd = %q", got)
	}
	words, err := shellWords(`go test -run '^$' -fuzz="^F$" a\ b`)
	if err != nil || fmt.Sprint(words) != fmt.Sprint([]string{"go", "test", "-run", "^$", "-fuzz=^F$", "a b"}) {
		t.Errorf("shellWords = %q, %v", words, err)
	}
	if _, err := shellWords(`echo 'open`); err == nil {
		t.Error("shellWords accepted an unclosed quote")
	}
	if got := dropEnv([]string{"A=1", "B_2=x", "go", "C=3"}); fmt.Sprint(got) != "[go C=3]" {
		t.Errorf("dropEnv = %q", got)
	}
}
