package doccheck

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"raterd/bench"
)

// ciScripts are the scripts CI runs: a documented command found in one of them is run by
// CI as written. scripts/try.sh is run by TestWalkthrough.
var ciScripts = []string{"scripts/try.sh", ".ci/run"}

// scriptCommands returns every command of the CI scripts, split at &&.
func scriptCommands(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, name := range ciScripts {
		data, err := os.ReadFile(filepath.Join(repoRoot, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range commands(strings.Split(string(data), "\n"), 1) {
			for _, part := range splitAnd(c.text) {
				out[part] = true
			}
		}
	}
	return out
}

// testLister lists, once per package, the tests, benchmarks and fuzz targets `go test
// -list` finds.
type testLister struct {
	t     *testing.T
	names map[string][]string
}

func (l *testLister) list(pkg string) []string {
	if names, ok := l.names[pkg]; ok {
		return names
	}
	cmd := exec.Command("go", "test", "-list", ".", pkg)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("go test -list . %s: %v\n%s", pkg, err, out)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Test") || strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "Fuzz") || strings.HasPrefix(line, "Example") {
			names = append(names, strings.TrimSpace(line))
		}
	}
	l.names[pkg] = names
	return names
}

// goTestFlags are the go test flags that take no value.
var goTestFlags = map[string]bool{"-v": true, "-race": true, "-short": true, "-json": true, "-benchmem": true, "-failfast": true, "-cover": true}

// checkGoTest verifies a documented `go test` command with -fuzz or -bench against the
// targets that exist; it reports whether the command was one of those.
func checkGoTest(l *testLister, words []string) (bool, error) {
	flags := map[string]string{}
	var pkgs []string
	for i := 2; i < len(words); i++ {
		w := words[i]
		switch {
		case strings.HasPrefix(w, "-"):
			name, value, hasValue := strings.Cut(w, "=")
			name = "-" + strings.TrimLeft(name, "-")
			if !hasValue && !goTestFlags[name] && i+1 < len(words) {
				i++
				value = words[i]
			}
			flags[name] = value
		default:
			pkgs = append(pkgs, w)
		}
	}
	fuzz, isFuzz := flags["-fuzz"]
	benchPattern, isBench := flags["-bench"]
	if !isFuzz && !isBench {
		return false, nil
	}
	if len(pkgs) != 1 {
		return true, fmt.Errorf("names %d packages, want exactly one", len(pkgs))
	}
	names := l.list(pkgs[0])
	if isFuzz {
		re, err := regexp.Compile(fuzz)
		if err != nil {
			return true, fmt.Errorf("-fuzz %q: %w", fuzz, err)
		}
		var matched []string
		for _, n := range names {
			if strings.HasPrefix(n, "Fuzz") && re.MatchString(n) {
				matched = append(matched, n)
			}
		}
		if len(matched) != 1 {
			return true, fmt.Errorf("-fuzz %q matches %d fuzz targets in %s (%v); go test fuzzes exactly one", fuzz, len(matched), pkgs[0], matched)
		}
	}
	if isBench {
		if run, ok := flags["-run"]; !ok || run != "^$" {
			return true, fmt.Errorf("-bench without -run '^$' also runs the package's tests")
		}
		top, _, _ := strings.Cut(benchPattern, "/")
		re, err := regexp.Compile(top)
		if err != nil {
			return true, fmt.Errorf("-bench %q: %w", benchPattern, err)
		}
		if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "Benchmark") && re.MatchString(n) }) {
			return true, fmt.Errorf("-bench %q matches no benchmark in %s", benchPattern, pkgs[0])
		}
	}
	return true, nil
}

// verify says how a documented command is checked, or why it cannot be.
func verify(l *testLister, scripts map[string]bool, text string) error {
	for _, part := range splitAnd(text) {
		if scripts[part] {
			continue
		}
		words, err := shellWords(part)
		if err != nil {
			return err
		}
		words = dropEnv(words)
		switch {
		case len(words) >= 2 && words[0] == "go" && words[1] == "test":
			checked, err := checkGoTest(l, words)
			if err != nil {
				return fmt.Errorf("%q: %w", part, err)
			}
			if !checked {
				return fmt.Errorf("%q: a go test command that is neither -fuzz nor -bench, and no CI script runs it", part)
			}
		case len(words) >= 2 && strings.HasPrefix(path.Base(words[0]), "raterd") && words[1] == "bench":
			if err := bench.CheckArgs(words[2:]); err != nil {
				return fmt.Errorf("%q: %w", part, err)
			}
		case len(words) >= 4 && words[0] == "go" && words[1] == "run" && words[2] == "./cmd/raterd" && words[3] == "bench":
			if err := bench.CheckArgs(words[4:]); err != nil {
				return fmt.Errorf("%q: %w", part, err)
			}
		case len(words) >= 2 && words[0] == "go" && words[1] == "build":
			var pkgs []string
			for _, w := range words[2:] {
				if strings.HasPrefix(w, "./") {
					pkgs = append(pkgs, w)
				}
			}
			cmd := exec.Command("go", append([]string{"list"}, pkgs...)...)
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); len(pkgs) == 0 || err != nil {
				return fmt.Errorf("%q: go list %v: %v\n%s", part, pkgs, err, out)
			}
		default:
			return fmt.Errorf("%q is run by no test: add it to %s, or mark its block ```sh illustration", part, strings.Join(ciScripts, " or "))
		}
	}
	return nil
}

// TestDocCommandsRunAsWritten: every shell block of README.md and docs/ is an illustration
// or made of commands that are verified (see the package doc), and every inline
// `go test -fuzz/-bench` command names targets that exist.
func TestDocCommandsRunAsWritten(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed to list test targets: %v", err)
	}
	l := &testLister{t: t, names: map[string][]string{}}
	scripts := scriptCommands(t)
	checked, illustrations, fuzzBench := 0, 0, 0
	for _, file := range docFiles(t) {
		for _, b := range readBlocks(t, file) {
			if !b.shell() {
				continue
			}
			if b.illustration() {
				illustrations++
				continue
			}
			for _, c := range commands(b.lines, b.line+1) {
				checked++
				if err := verify(l, scripts, c.text); err != nil {
					t.Errorf("%s:%d: %v", b.file, c.line, err)
				}
			}
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, file)
		for _, m := range inlineGoTest.FindAllStringSubmatch(string(data), -1) {
			words, err := shellWords(m[1])
			if err != nil {
				t.Errorf("%s: `%s`: %v", rel, m[1], err)
				continue
			}
			ok, err := checkGoTest(l, dropEnv(words))
			if err != nil {
				t.Errorf("%s: `%s`: %v", rel, m[1], err)
			}
			if ok {
				fuzzBench++
			}
		}
	}
	t.Logf("%d documented commands verified, %d illustration blocks, %d inline fuzz/bench commands", checked, illustrations, fuzzBench)
	if checked == 0 {
		t.Fatal("found no documented commands: is the fence parser broken?")
	}
}

// TestVerifyRefusesWhatNoTestRuns is the negative control: commands that would not run
// as written are reported.
func TestVerifyRefusesWhatNoTestRuns(t *testing.T) {
	l := &testLister{t: t, names: map[string][]string{}}
	scripts := map[string]bool{"scripts/services.sh up": true}
	for _, c := range []struct{ cmd, want string }{
		{"raterd run --config elsewhere.yaml", "run by no test"},
		{"go test ./internal/doccheck -fuzz FuzzNothingHere", "matches 0 fuzz targets"},
		{"go test -run '^$' -bench NoSuchBenchmark ./internal/doccheck", "matches no benchmark"},
		{"go test -bench . ./internal/doccheck", "without -run '^$'"},
		{"raterd bench --records 0", "--records 0"},
		{"raterd bench --no-such-flag", "no-such-flag"},
		{"scripts/services.sh up && scripts/services.sh frobnicate", "frobnicate"},
		{"go build -o bin/ ./cmd/nothing", "go list"},
	} {
		if err := verify(l, scripts, c.cmd); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("verify(%q) = %v, want an error saying %q", c.cmd, err, c.want)
		}
	}
	// And a command a CI script runs passes.
	if err := verify(l, scripts, "scripts/services.sh up"); err != nil {
		t.Errorf("a CI script's command: %v", err)
	}
}

// BenchmarkDocNothing exists so that the negative control's -bench pattern has a package
// with a benchmark that does not match it; it measures nothing.
func BenchmarkDocNothing(b *testing.B) {
	for b.Loop() {
	}
}

// sqlRunBy names, for each file whose SQL blocks a test runs against ClickHouse, that
// test; the SQL blocks of every other file must be fenced ```sql illustration.
var sqlRunBy = map[string]string{
	"README.md":   "TestIntegrationEndToEnd (internal/app: readmeQueries runs each statement of the block)",
	"docs/sql.md": "TestCookbookDoc (sinks/clickhouse: the generated section is the cookbook the integration tests run)",
}

// TestDocSQLBlocksRunOrMarked: a SQL block outside the files whose blocks a test runs is an
// illustration, marked as such.
func TestDocSQLBlocksRunOrMarked(t *testing.T) {
	run := 0
	for _, file := range docFiles(t) {
		for _, b := range readBlocks(t, file) {
			if len(b.info) == 0 || b.info[0] != "sql" || b.illustration() {
				continue
			}
			if _, ok := sqlRunBy[filepath.ToSlash(b.file)]; !ok {
				t.Errorf("%s: a SQL block no test runs: fence it ```sql illustration, or run it in a test and list the file in sqlRunBy", b)
				continue
			}
			run++
		}
	}
	if run == 0 {
		t.Fatal("found no SQL block run by a test: is the fence parser broken?")
	}
}
