package fidelity

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Published is what a judge model's authors or a benchmark's maintainers published about
// it: figures on public benchmarks, each with its source.
type Published struct {
	// Name is the judge as its source names it, e.g. "FLAMe-RM-24B".
	Name string `yaml:"name"`
	// Match are case-insensitive substrings of a served model name that mean this judge
	// (the served name is often the Hugging Face repository, e.g.
	// "prometheus-eval/prometheus-7b-v2.0").
	Match []string `yaml:"match"`
	// Figures are the published figures.
	Figures []PublishedFigure `yaml:"figures"`
}

// PublishedFigure is one published figure, as its source states it.
type PublishedFigure struct {
	Benchmark string `yaml:"benchmark"`
	Metric    string `yaml:"metric"`
	// Value is text, as published: a percentage, a range, a rank.
	Value  string `yaml:"value"`
	Source string `yaml:"source"`
}

//go:embed published.yaml
var builtinPublished []byte

// BuiltinPublished returns the published figures raterd ships (published.yaml).
func BuiltinPublished() ([]Published, error) {
	p, err := ReadPublished(bytes.NewReader(builtinPublished), "published.yaml")
	if err != nil {
		return nil, fmt.Errorf("built-in figures: %w", err)
	}
	return p, nil
}

// ReadPublished reads a published-figures file: {judges: [{name, match, figures:
// [{benchmark, metric, value, source}]}]}. Unknown keys and entries without a name, a
// match, a value or a source are errors naming the file and the entry.
func ReadPublished(r io.Reader, name string) ([]Published, error) {
	var doc struct {
		Judges []Published `yaml:"judges"`
	}
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for i, j := range doc.Judges {
		key := fmt.Sprintf("%s: judges[%d]", name, i)
		switch {
		case strings.TrimSpace(j.Name) == "":
			return nil, fmt.Errorf("%s.name: missing", key)
		case len(j.Match) == 0:
			return nil, fmt.Errorf("%s (%s).match: at least one model-name substring is required", key, j.Name)
		case len(j.Figures) == 0:
			return nil, fmt.Errorf("%s (%s).figures: at least one figure is required", key, j.Name)
		}
		for k, m := range j.Match {
			if strings.TrimSpace(m) == "" {
				return nil, fmt.Errorf("%s (%s).match[%d]: empty", key, j.Name, k)
			}
		}
		for k, f := range j.Figures {
			if strings.TrimSpace(f.Value) == "" || strings.TrimSpace(f.Source) == "" || strings.TrimSpace(f.Benchmark) == "" {
				return nil, fmt.Errorf("%s (%s).figures[%d]: benchmark, value and source are required", key, j.Name, k)
			}
		}
	}
	return doc.Judges, nil
}

// Lookup returns the entries whose match names a substring of model (case-insensitive).
func Lookup(all []Published, model string) []Published {
	model = strings.ToLower(model)
	var out []Published
	for _, p := range all {
		for _, m := range p.Match {
			if strings.Contains(model, strings.ToLower(strings.TrimSpace(m))) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}
