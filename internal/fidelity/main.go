package fidelity

// raterd fidelity: flags, judge construction and printing.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"raterd/internal/app"
	"raterd/internal/cli"
	"raterd/internal/telemetry"
	"raterd/scorer"
	"raterd/scorer/pool"
)

const synopsis = `fidelity [flags]

Send a labelled set through raterd's judge path (prompt format, chat-template handling,
guided decoding, parsing, logprob arithmetic) to an OpenAI-compatible endpoint, and print
agreement with the labels, position consistency and parse failures beside the figures
published for the judge model.

  raterd fidelity --endpoint http://gpu-0:8000/v1 --model prometheus-eval/prometheus-7b-v2.0 --format prometheus2
  raterd fidelity --config raterd.yaml --judge prometheus --set rewardbench.jsonl

The judge comes from --config and --judge (every judges.<name> key applies: TLS, API key,
guided_decoding, logprobs) or from --endpoint and --model. Sets are JSONL: RewardBench's
{"prompt","chosen","rejected"} lines for pairwise items, {"prompt","response","score"}
(score 1-5) for pointwise ones. Without --set, the 40-item set raterd ships.`

// cmd is one invocation; its fields are the process's surroundings.
type cmd struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// Main runs `raterd fidelity` with its arguments (after "fidelity").
func Main(args []string, stdout, stderr io.Writer) error {
	ctx, stop := cli.SignalContext(stderr)
	defer stop()
	return cmd{stdout: stdout, stderr: stderr, getenv: os.Getenv}.run(ctx, args)
}

// flags are the command line.
type flags struct {
	config, judge                  string
	endpoint, model, apiKeyFile    string
	guidedDecoding                 string
	logprobs, noGuided, jsonOut    bool
	maxTokens, limit, chunk        int
	timeout                        time.Duration
	format, system, set, published string
}

func (c cmd) run(ctx context.Context, args []string) error {
	var f flags
	fs := cli.NewFlagSet("fidelity", synopsis, c.stderr)
	fs.StringVar(&f.config, "config", "", "raterd config file whose judge to use (with --judge)")
	fs.StringVar(&f.judge, "judge", "", "judges.<name> of --config to use; default: its only openai judge")
	fs.StringVar(&f.endpoint, "endpoint", "", "OpenAI-compatible base URL, e.g. http://gpu-0:8000/v1 (instead of --config)")
	fs.StringVar(&f.model, "model", "", "model name sent with --endpoint; also picks the published figures")
	fs.StringVar(&f.apiKeyFile, "api-key-file", "", "file holding the endpoint's API key (with --endpoint)")
	fs.StringVar(&f.guidedDecoding, "guided-decoding", "", "the server's guided-decoding dialect with --endpoint: vllm, vllm-legacy, sglang or llama.cpp (default none)")
	fs.BoolVar(&f.logprobs, "logprobs", false, "ask for logprobs (probability-weighted scores) with --endpoint")
	fs.IntVar(&f.maxTokens, "max-tokens", 0, "max_tokens of each request with --endpoint (default 512)")
	fs.DurationVar(&f.timeout, "timeout", 0, "timeout of one request with --endpoint (default 60s)")
	fs.BoolVar(&f.noGuided, "no-guided", false, "judge without the judge's guided decoding (to measure parse failures without it)")
	fs.StringVar(&f.format, "format", "", "prompt format: flame (default), prometheus2 or selene")
	fs.StringVar(&f.system, "system", "", "system message: native or fold (default: the format's)")
	fs.StringVar(&f.set, "set", "", "labelled set, a JSONL file (default: the built-in raterd-mini set)")
	fs.IntVar(&f.limit, "limit", 0, "judge only the first N items (default all)")
	fs.IntVar(&f.chunk, "chunk", 16, "items per judge call; progress is printed after each")
	fs.StringVar(&f.published, "published", "", "published-figures YAML to use instead of the built-in one")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		fmt.Fprintf(c.stderr, "raterd fidelity: %v\nRun 'raterd fidelity --help' for the flags.\n", err)
		return err
	}
	set, err := c.loadSet(f)
	if err != nil {
		return err
	}
	published, err := c.loadPublished(f.published)
	if err != nil {
		return err
	}
	name, jc, err := c.judgeConfig(f)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	judges, err := scorer.NewJudges(map[string]*scorer.JudgeConfig{name: jc},
		scorer.JudgeSettings{Key: "judges", Telemetry: telemetry.Settings{Logger: logger}})
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		scorer.CloseJudges(closeCtx, judges)
	}()
	opt := Options{Format: f.format, System: f.system, Chunk: f.chunk, Progress: c.stderr}
	if f.noGuided {
		opt.Guided = new(bool)
	}
	pw, pt := set.Counts()
	fmt.Fprintf(c.stderr, "raterd fidelity: %d items (%d pairwise, each in both orders; %d pointwise) to %s\n", pw+pt, pw, pt, judges[name].Identity())
	rep, err := Run(ctx, judges[name], jc, set, opt)
	if rep == nil {
		return err
	}
	matched := Lookup(published, jc.Model)
	if f.jsonOut {
		if jerr := writeJSON(c.stdout, rep, set, matched); jerr != nil {
			return errors.Join(err, jerr)
		}
	} else {
		writeText(c.stdout, rep, set, matched, jc.Model)
	}
	return err
}

// check rejects conflicting and bad flags, naming them.
func (f flags) check() error {
	switch {
	case f.config != "" && f.endpoint != "":
		return cli.FlagErrorf("--config and --endpoint: give one (the judge comes from the config file or from the flags)")
	case f.config == "" && f.endpoint == "":
		return cli.FlagErrorf("--endpoint (with --model) or --config is required")
	case f.endpoint != "" && f.model == "":
		return cli.FlagErrorf("--model is required with --endpoint")
	case f.config == "" && f.judge != "":
		return cli.FlagErrorf("--judge names a judge of --config; give --config too")
	case f.config != "" && (f.model != "" || f.apiKeyFile != "" || f.guidedDecoding != "" || f.logprobs || f.maxTokens != 0 || f.timeout != 0):
		return cli.FlagErrorf("--model, --api-key-file, --guided-decoding, --logprobs, --max-tokens and --timeout go with --endpoint; with --config the judge's keys apply")
	case f.limit < 0:
		return cli.FlagErrorf("--limit %d: must be 0 (all) or more", f.limit)
	case f.chunk < 1:
		return cli.FlagErrorf("--chunk %d: must be at least 1", f.chunk)
	case f.maxTokens < 0:
		return cli.FlagErrorf("--max-tokens %d: must be positive", f.maxTokens)
	case f.timeout < 0:
		return cli.FlagErrorf("--timeout %s: must be positive", f.timeout)
	}
	return nil
}

// loadSet reads --set (or the built-in set) and applies --limit.
func (c cmd) loadSet(f flags) (*Set, error) {
	var set *Set
	var err error
	if f.set == "" {
		set, err = Builtin()
	} else {
		var file *os.File
		if file, err = os.Open(f.set); err != nil {
			return nil, fmt.Errorf("--set: %w", err)
		}
		defer file.Close()
		set, err = ReadSet(file, f.set)
	}
	if err != nil {
		return nil, fmt.Errorf("--set: %w", err)
	}
	if f.limit > 0 && f.limit < len(set.Items) {
		set.Items = set.Items[:f.limit]
	}
	return set, nil
}

// loadPublished reads --published or the built-in figures.
func (c cmd) loadPublished(path string) ([]Published, error) {
	if path == "" {
		return BuiltinPublished()
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--published: %w", err)
	}
	defer file.Close()
	p, err := ReadPublished(file, path)
	if err != nil {
		return nil, fmt.Errorf("--published: %w", err)
	}
	return p, nil
}

// judgeConfig returns the judge to measure, validated: judges.<name> of --config, or one
// made from the --endpoint flags (validated as judges.fidelity, whose keys the flags set).
func (c cmd) judgeConfig(f flags) (string, *scorer.JudgeConfig, error) {
	if f.config != "" {
		cfg, err := app.LoadConfig(f.config, c.getenv)
		if err != nil {
			return "", nil, err
		}
		name := f.judge
		if name == "" {
			var openai []string
			for _, n := range slices.Sorted(maps.Keys(cfg.Judges)) {
				if cfg.Judges[n].Type == scorer.JudgeOpenAI {
					openai = append(openai, n)
				}
			}
			if len(openai) != 1 {
				return "", nil, cli.FlagErrorf("--judge: %s has %d openai judges (%s); name one", f.config, len(openai), strings.Join(openai, ", "))
			}
			name = openai[0]
		}
		jc, ok := cfg.Judges[name]
		switch {
		case !ok:
			return "", nil, cli.FlagErrorf("--judge %q: %s has no judges.%s (judges: %s)", name, f.config, name, strings.Join(slices.Sorted(maps.Keys(cfg.Judges)), ", "))
		case jc.Type != scorer.JudgeOpenAI:
			return "", nil, cli.FlagErrorf("--judge %q: a %s judge; fidelity measures openai judges (judge models behind chat completions)", name, jc.Type)
		}
		return name, jc, nil
	}
	jc := &scorer.JudgeConfig{Type: scorer.JudgeOpenAI}
	jc.Model, jc.APIKeyFile, jc.GuidedDecoding, jc.Logprobs, jc.MaxTokens = f.model, f.apiKeyFile, f.guidedDecoding, f.logprobs, f.maxTokens
	jc.Endpoints = []pool.Endpoint{{URL: f.endpoint}}
	jc.Timeout = f.timeout
	if err := scorer.ValidateJudges("judges", map[string]*scorer.JudgeConfig{JudgeName: jc}); err != nil {
		return "", nil, fmt.Errorf("the judge made from the flags (--endpoint, --model, …): %w", err)
	}
	return JudgeName, jc, nil
}

// writeJSON prints the report, the set's description and the matched figures as one JSON
// object.
func writeJSON(w io.Writer, rep *Report, set *Set, published []Published) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*Report
		SetAbout  string      `json:"set_about,omitempty"`
		Published []Published `json:"published"`
	}{rep, set.About, published})
}

// writeText prints the report for a reader.
func writeText(w io.Writer, rep *Report, set *Set, published []Published, model string) {
	guided := "off"
	if rep.Guided {
		guided = "on"
	}
	fmt.Fprintf(w, "set      %s", rep.Set)
	if set.About != "" {
		fmt.Fprintf(w, " (%s)", set.About)
	}
	fmt.Fprintf(w, "\njudge    %s, format %s, system %s, guided decoding %s, %s\n\n", rep.Judge, rep.Format, rep.System, guided, rep.Elapsed.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if p := rep.Pairwise; p != nil {
		fmt.Fprintf(tw, "pairwise: %d items, each judged in both orders\t\t\n", p.Items)
		fmt.Fprintf(tw, "  agreement with the labels\t%s\t(%d scored; the mean preference over both orders; a tie counts half)\n", p.Agreement, p.Scored)
		fmt.Fprintf(tw, "  position consistency\t%s\t(both orders prefer the same response)\n", p.Consistency)
		fmt.Fprintf(tw, "  consistent and right\t%s\t(both orders prefer the chosen response)\n", p.ConsistentCorrect)
		fmt.Fprintf(tw, "  parse failures\t%d\t\n", p.ParseFailures)
		fmt.Fprintf(tw, "  judge errors\t%d\t\n", p.JudgeErrors)
		for _, s := range rep.Subsets {
			fmt.Fprintf(tw, "  agreement, %s\t%s\t(%d scored)\n", s.Subset, s.Agreement, s.Scored)
		}
	}
	if p := rep.Pointwise; p != nil {
		fmt.Fprintf(tw, "pointwise: %d items, scale %d-%d\t\t\n", p.Items, ScaleMin, ScaleMax)
		fmt.Fprintf(tw, "  exact agreement\t%s\t(%d scored; scores rounded)\n", p.Exact, p.Scored)
		fmt.Fprintf(tw, "  within one point\t%s\t\n", p.Within1)
		fmt.Fprintf(tw, "  mean absolute error\t%s\t\n", p.MeanAbsError)
		fmt.Fprintf(tw, "  Pearson r\t%s\t\n", p.Pearson)
		fmt.Fprintf(tw, "  parse failures\t%d\t\n", p.ParseFailures)
		fmt.Fprintf(tw, "  judge errors\t%d\t\n", p.JudgeErrors)
	}
	_ = tw.Flush()
	if rep.FirstFailure != "" {
		fmt.Fprintf(w, "first failure: %s\n", rep.FirstFailure)
	}
	fmt.Fprintln(w)
	if len(published) == 0 {
		fmt.Fprintf(w, "published figures: none on record for model %q (add yours with --published FILE)\n", model)
		return
	}
	for _, p := range published {
		fmt.Fprintf(w, "published figures for %s:\n", p.Name)
		for _, f := range p.Figures {
			fmt.Fprintf(w, "  %s, %s: %s\n    source: %s\n", f.Benchmark, f.Metric, f.Value, f.Source)
		}
	}
	fmt.Fprintln(w, "Published figures come from other sets, prompts and serving stacks: read them as the level to expect, not a target to match digit for digit.")
}
