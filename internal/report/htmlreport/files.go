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

// MaxNDJSONLine bounds one line of an NDJSON score file (64 MiB): far above any score row
// (an explanation is a judge's answer), low enough that a file without newlines cannot
// take all memory.
const MaxNDJSONLine = 64 << 20

// ErrLineTooLong is returned (wrapped, with the line number) for a line over
// MaxNDJSONLine.
var ErrLineTooLong = errors.New("line too long")

// AddNDJSON folds every line of r, the ndjson sink's score output, into a; blank lines are
// skipped, and a line that is not a score row, or is longer than MaxNDJSONLine bytes, is an
// error naming its line number.
func AddNDJSON(r io.Reader, a *Aggregator) error {
	return addNDJSON(r, a, MaxNDJSONLine)
}

// addNDJSON is AddNDJSON with a line limit of maxLine bytes (its newline not counted).
func addNDJSON(r io.Reader, a *Aggregator, maxLine int) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var buf []byte
	for n := 1; ; n++ {
		buf = buf[:0]
		var err error
		for {
			var frag []byte
			frag, err = br.ReadSlice('\n')
			body := len(buf) + len(frag)
			if len(frag) > 0 && frag[len(frag)-1] == '\n' {
				body--
			}
			if body > maxLine {
				return fmt.Errorf("line %d: %w (over %d bytes)", n, ErrLineTooLong, maxLine)
			}
			buf = append(buf, frag...)
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		line := buf
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
