// Package fidelity is `raterd fidelity`: it sends a labelled set (pairwise preferences and
// pointwise ratings) through raterd's own judge path — the evaluator's prompt format, chat
// template handling, guided decoding, parsing and logprob arithmetic — to any
// OpenAI-compatible endpoint, and reports how often the judge agrees with the labels, how
// often it prefers the same answer in both orders, and how often its answers fail to
// parse, beside the figures published for the judge model. It answers "is this judge
// deployment working as its paper says?" on the day a GPU and weights meet.
package fidelity

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"raterd/internal/text"
)

// Item is one labelled example: a pairwise preference (Chosen over Rejected) or a
// pointwise rating (Response rated Score on the 1–5 scale).
type Item struct {
	// ID names the item in errors and per-item output; default "line-<n>".
	ID string `json:"id"`
	// Subset groups items in the report (RewardBench's chat, chat-hard, safety,
	// reasoning); default "all".
	Subset string `json:"subset"`
	// Prompt is what the judged model was asked.
	Prompt string `json:"prompt"`
	// Chosen and Rejected are a pairwise item's preferred and dispreferred responses.
	Chosen   string `json:"chosen"`
	Rejected string `json:"rejected"`
	// Response and Score are a pointwise item's response and its label, in [1,5].
	Response string  `json:"response"`
	Score    float64 `json:"score"`
}

// Pairwise reports whether the item is a preference (else a rating).
func (it Item) Pairwise() bool { return it.Chosen != "" || it.Rejected != "" }

// Set is a labelled set: its items, in file order, and where it comes from.
type Set struct {
	// Name is the set's name in the report: "raterd-mini" or the file's path.
	Name string
	// About is its provenance and licence, one line; empty for a user's file.
	About string
	// Items are the examples.
	Items []Item
}

// Counts returns the number of pairwise and pointwise items.
func (s *Set) Counts() (pairwise, pointwise int) {
	for _, it := range s.Items {
		if it.Pairwise() {
			pairwise++
		} else {
			pointwise++
		}
	}
	return pairwise, pointwise
}

// Scale is the pointwise scale of every set: the 1–5 of Prometheus 2's Feedback
// Collection, Selene's and FLAMe's rating tasks.
const (
	ScaleMin = 1
	ScaleMax = 5
)

// Limits of a set file.
const (
	// MaxLineBytes bounds one JSONL line (one item).
	MaxLineBytes = 1 << 20
	// MaxItems bounds a set, so that a wrong file cannot fill memory.
	MaxItems = 100_000
)

//go:embed sets/raterd-mini.jsonl
var builtinSet []byte

// BuiltinName is the name of the set raterd ships.
const BuiltinName = "raterd-mini"

// Builtin returns the set raterd ships (sets/README.md holds its provenance).
func Builtin() (*Set, error) {
	s, err := ReadSet(bytes.NewReader(builtinSet), BuiltinName)
	if err != nil {
		return nil, fmt.Errorf("built-in set: %w", err)
	}
	s.About = "40 items written for raterd by its maintainers, CC0 1.0 (internal/fidelity/sets/README.md)"
	return s, nil
}

// ReadSet reads a JSONL set: one JSON object per line, either RewardBench's pairwise
// shape ({"prompt", "chosen", "rejected"}, with optional "id" and "subset") or a pointwise
// rating ({"prompt", "response", "score"}, score in [1,5]). Other fields are ignored
// (RewardBench's chosen_model, rejected_model). Blank lines are skipped. An error names
// the line and the field.
func ReadSet(r io.Reader, name string) (*Set, error) {
	s := &Set{Name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	line := 0
	ids := map[string]int{}
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		if len(s.Items) == MaxItems {
			return nil, fmt.Errorf("%s:%d: more than %d items", name, line, MaxItems)
		}
		it, err := decodeItem(text, line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if prev, dup := ids[it.ID]; dup {
			return nil, fmt.Errorf("%s:%d: id %q: already used on line %d", name, line, it.ID, prev)
		}
		ids[it.ID] = line
		s.Items = append(s.Items, it)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, line+1, MaxLineBytes)
		}
		return nil, fmt.Errorf("%s: read: %w", name, err)
	}
	if len(s.Items) == 0 {
		return nil, fmt.Errorf("%s: no items", name)
	}
	return s, nil
}

// rawItem tells a field that is absent from one that is empty.
type rawItem struct {
	ID       *json.RawMessage `json:"id"`
	Subset   *string          `json:"subset"`
	Prompt   *string          `json:"prompt"`
	Chosen   *string          `json:"chosen"`
	Rejected *string          `json:"rejected"`
	Response *string          `json:"response"`
	Score    *float64         `json:"score"`
}

// decodeItem decodes and checks one line.
func decodeItem(text []byte, line int) (Item, error) {
	if !utf8.Valid(text) {
		return Item{}, errors.New("not valid UTF-8")
	}
	var raw rawItem
	if err := json.Unmarshal(text, &raw); err != nil {
		return Item{}, fmt.Errorf("not a JSON object: %w", err)
	}
	it := Item{ID: fmt.Sprintf("line-%d", line), Subset: "all"}
	if raw.ID != nil {
		id, err := idString(*raw.ID)
		if err != nil {
			return Item{}, err
		}
		it.ID = id
	}
	if raw.Subset != nil && strings.TrimSpace(*raw.Subset) != "" {
		it.Subset = strings.TrimSpace(*raw.Subset)
	}
	if raw.Prompt == nil || strings.TrimSpace(*raw.Prompt) == "" {
		return Item{}, errors.New(`field "prompt": missing or empty`)
	}
	it.Prompt = *raw.Prompt
	pairwise := raw.Chosen != nil || raw.Rejected != nil
	pointwise := raw.Response != nil || raw.Score != nil
	switch {
	case pairwise && pointwise:
		return Item{}, errors.New(`both pairwise fields ("chosen", "rejected") and pointwise fields ("response", "score"): an item is one or the other`)
	case pairwise:
		for _, f := range []struct {
			name string
			v    *string
			dst  *string
		}{{"chosen", raw.Chosen, &it.Chosen}, {"rejected", raw.Rejected, &it.Rejected}} {
			if f.v == nil || strings.TrimSpace(*f.v) == "" {
				return Item{}, fmt.Errorf("field %q: missing or empty (a pairwise item has both chosen and rejected)", f.name)
			}
			*f.dst = *f.v
		}
	case pointwise:
		if raw.Response == nil {
			return Item{}, errors.New(`field "response": missing (a pointwise item has response and score)`)
		}
		if raw.Score == nil {
			return Item{}, errors.New(`field "score": missing (a pointwise item has response and score)`)
		}
		if math.IsNaN(*raw.Score) || *raw.Score < ScaleMin || *raw.Score > ScaleMax {
			return Item{}, fmt.Errorf("field \"score\": %v is not on the %d–%d scale", *raw.Score, ScaleMin, ScaleMax)
		}
		it.Response, it.Score = *raw.Response, *raw.Score
	default:
		return Item{}, errors.New(`neither "chosen"/"rejected" (pairwise) nor "response"/"score" (pointwise)`)
	}
	return it, nil
}

// idString accepts a string or a number as an id (RewardBench's ids are numbers).
func idString(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if strings.TrimSpace(s) == "" {
			return "", errors.New(`field "id": empty`)
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf(`field "id": %s is neither a string nor a number`, text.ClipMarked(string(raw), 40, text.Ellipsis))
}
