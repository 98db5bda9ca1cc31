package htmlreport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"raterd/sinks"
)

// AddNDJSON folds every line of r, the ndjson sink's score output, into a; blank lines are
// skipped, and a line that is not a score row is an error naming its line number. Lines
// have no length limit (explanations can be long).
func AddNDJSON(r io.Reader, a *Aggregator) error {
	br := bufio.NewReaderSize(r, 256<<10)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			row, derr := sinks.DecodeNDJSONScore(line)
			if derr != nil {
				return fmt.Errorf("line %d: %w", n, derr)
			}
			a.Add(&row)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
}

// FromNDJSONFile aggregates the score rows of an NDJSON file (the ndjson sink's output,
// e.g. raterd demo's) under opts.
func FromNDJSONFile(path string, opts Options) (Data, error) {
	in, err := os.Open(path)
	if err != nil {
		return Data{}, fmt.Errorf("reading scores: %w", err)
	}
	defer in.Close()
	a := NewAggregator(opts)
	if err := AddNDJSON(in, a); err != nil {
		return Data{}, fmt.Errorf("%s: %w", path, err)
	}
	return a.Data(), nil
}

// WriteFile renders d to path through a temporary file in its directory, renamed over
// path once complete: a failed report never leaves a truncated page behind.
func WriteFile(path string, d Data) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	w := bufio.NewWriter(tmp)
	if err := Render(w, d); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}
