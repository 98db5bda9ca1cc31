package format

import (
	"bytes"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/template"

	"go.yaml.in/yaml/v3"
)

//go:embed formats/*.yaml
var formatFiles embed.FS

// builtins compiles every embedded format once; the table is never modified afterwards.
var builtins = sync.OnceValues(func() (map[string]*Format, error) {
	out := make(map[string]*Format)
	for _, name := range formatNames() {
		data, err := formatFiles.ReadFile("formats/" + name + ".yaml")
		if err != nil {
			return nil, err
		}
		f, err := compile(name, data)
		if err != nil {
			return nil, err
		}
		out[name] = f
	}
	return out, nil
})

// formatNames lists the embedded format files without their extension.
func formatNames() []string {
	files, _ := fs.Glob(formatFiles, "formats/*.yaml") // the pattern is valid
	names := make([]string, 0, len(files))
	for _, p := range files {
		names = append(names, strings.TrimSuffix(path.Base(p), ".yaml"))
	}
	slices.Sort(names)
	return names
}

// fileData is the schema of a format file.
type fileData struct {
	// System says how the system message meets the judge model's chat template by
	// default: native (a system turn) or fold (ahead of the user message; for model
	// families whose templates refuse a system turn). Default native.
	System string `yaml:"system"`
	// Escape lists [old, new] pairs replaced in the judged text, the criteria and the
	// level descriptions, so that none can write a structural token of the format.
	Escape [][]string `yaml:"escape"`
	// Common holds {{define}} blocks shared by every task's templates.
	Common string `yaml:"common"`
	// Tasks maps a task type to its templates and grammar.
	Tasks map[string]taskData `yaml:"tasks"`
	// Compat, when set, names an earlier version of the file that renders every prompt
	// reading none of the fields in Without exactly as this one does (same escape pairs,
	// templates' output and grammar for those inputs). Such prompts keep the earlier
	// fingerprint, so adding a field to a format leaves the rubric versions (and cached
	// verdicts) of evaluators that do not read it as they were. TestCompatFingerprints
	// checks the claim against the earlier file kept in testdata/compat.
	Compat *compatData `yaml:"compat"`
	// Guides maps a task type to its output grammar for constrained decoding (see
	// guideData). The last key of the file: the fingerprint ends where it begins.
	Guides map[string]guideData `yaml:"guides"`
}

// compatData is the compat section of a format file.
type compatData struct {
	// Fingerprint is the earlier file's fingerprint (16 hex digits of its SHA-256).
	Fingerprint string `yaml:"fingerprint"`
	// Without lists the input fields the earlier file did not know.
	Without []string `yaml:"without"`
}

// taskData is one task type of a format file. The template fields are text/template
// sources; each becomes a named template that the others may call.
type taskData struct {
	Task     string `yaml:"task"`     // optional helper, e.g. the task definition
	System   string `yaml:"system"`   // the system message; empty: none
	User     string `yaml:"user"`     // the user message
	Output   string `yaml:"output"`   // the exact output format the judge must follow
	Result   string `yaml:"result"`   // the result line of the output format, quoted in errors
	Reminder string `yaml:"reminder"` // the follow-up message after an unparseable answer
	// Answer is the output grammar: an anchored regexp (\A … \z) with the named groups
	// explanation and result.
	Answer string `yaml:"answer"`
	// Marker matches the result marker; an answer must hold it exactly once.
	Marker string `yaml:"marker"`
}

// task is a compiled taskData.
type task struct {
	tmpl      *template.Template
	hasSystem bool
	answer    *regexp.Regexp
	marker    *regexp.Regexp
	result    int        // index of the result group in answer
	expl      int        // index of the explanation group in answer
	guide     *guideData // nil: the task has no guide
}

var knownTasks = []string{TaskPointwise, TaskClassification, TaskPairwise}

// compile parses and checks one format file.
func compile(name string, data []byte) (*Format, error) {
	var fd fileData
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key is an error, not a silently empty template
	if err := dec.Decode(&fd); err != nil {
		return nil, fmt.Errorf("format %s: %w", name, err)
	}
	promptPart, guidesPart, err := splitGuides(data)
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", name, err)
	}
	sum := promptFingerprint(promptPart)
	f := &Format{name: name, fingerprint: hex.EncodeToString(sum[:])[:16], tasks: make(map[string]*task), system: SystemNative,
		guideFingerprint: guideFingerprintOf(guidesPart)}
	switch fd.System {
	case "", SystemNative:
	case SystemFold:
		f.system = SystemFold
	default:
		return nil, fmt.Errorf("format %s: system: %q is not %s or %s", name, fd.System, SystemNative, SystemFold)
	}
	if c := fd.Compat; c != nil {
		if !isFingerprint(c.Fingerprint) || c.Fingerprint == f.fingerprint {
			return nil, fmt.Errorf("format %s: compat.fingerprint: %q is not an earlier file's fingerprint (16 lowercase hex digits)", name, c.Fingerprint)
		}
		if len(c.Without) == 0 {
			return nil, fmt.Errorf("format %s: compat.without: list the fields the earlier file did not know", name)
		}
		for i, w := range c.Without {
			if !slices.Contains(knownFields, w) {
				return nil, fmt.Errorf("format %s: compat.without[%d]: unknown field %q (one of %s)", name, i, w, strings.Join(knownFields, ", "))
			}
		}
		f.compat = *c
	}
	var pairs []string
	for i, p := range fd.Escape {
		if len(p) != 2 || p[0] == "" {
			return nil, fmt.Errorf("format %s: escape[%d]: want a pair [old, new] with old non-empty", name, i)
		}
		pairs = append(pairs, p...)
	}
	f.escape = strings.NewReplacer(append(pairs, chatTokenEscapes()...)...)
	if len(fd.Tasks) == 0 {
		return nil, fmt.Errorf("format %s: tasks: none defined", name)
	}
	for tn, td := range fd.Tasks {
		if !slices.Contains(knownTasks, tn) {
			return nil, fmt.Errorf("format %s: tasks.%s: unknown task type (one of %s)", name, tn, strings.Join(knownTasks, ", "))
		}
		t, err := compileTask(name+"/"+tn, fd.Common, td)
		if err != nil {
			return nil, fmt.Errorf("format %s: tasks.%s: %w", name, tn, err)
		}
		f.tasks[tn] = t
	}
	if extra := guideTasks(fd.Guides, f.tasks); len(extra) > 0 {
		return nil, fmt.Errorf("format %s: guides.%s: the format has no such task", name, extra[0])
	}
	for tn, gd := range fd.Guides {
		g, err := compileGuide(gd)
		if err != nil {
			return nil, fmt.Errorf("format %s: guides.%s.%w", name, tn, err)
		}
		f.tasks[tn].guide = g
	}
	return f, nil
}

func compileTask(name, common string, td taskData) (*task, error) {
	if td.User == "" || td.Output == "" || td.Result == "" || td.Reminder == "" || td.Answer == "" || td.Marker == "" {
		return nil, fmt.Errorf("user, output, result, reminder, answer and marker are required")
	}
	root := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"upper": strings.ToUpper,
		"join":  strings.Join,
	})
	if _, err := root.Parse(common); err != nil {
		return nil, fmt.Errorf("common: %w", err)
	}
	srcs := map[string]string{
		"task": td.Task, "system": td.System, "user": td.User, "output": td.Output,
		"result": td.Result, "reminder": td.Reminder,
	}
	for _, k := range slices.Sorted(maps.Keys(srcs)) {
		if _, err := root.New(k).Parse(srcs[k]); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	t := &task{tmpl: root, hasSystem: td.System != ""}
	var err error
	if !anchored(td.Answer) {
		return nil, fmt.Errorf("answer: the grammar must be anchored with \\A and \\z")
	}
	if t.answer, err = regexp.Compile(td.Answer); err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	if t.result, t.expl = t.answer.SubexpIndex("result"), t.answer.SubexpIndex("explanation"); t.result < 0 || t.expl < 0 {
		return nil, fmt.Errorf("answer: the grammar needs the named groups explanation and result")
	}
	if t.marker, err = regexp.Compile(td.Marker); err != nil {
		return nil, fmt.Errorf("marker: %w", err)
	}
	return t, nil
}

// execute runs one named template of the task.
func (t *task) execute(name string, v *view) (string, error) {
	var b strings.Builder
	if err := t.tmpl.ExecuteTemplate(&b, name, v); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return b.String(), nil
}

// isFingerprint reports whether s is 16 lowercase hex digits.
func isFingerprint(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// anchored reports whether a grammar starts with \A (after optional flags) and ends
// with \z, so that it must match the whole answer.
func anchored(re string) bool {
	if strings.HasPrefix(re, "(?") {
		_, re, _ = strings.Cut(re, ")")
	}
	return strings.HasPrefix(re, `\A`) && strings.HasSuffix(re, `\z`)
}
