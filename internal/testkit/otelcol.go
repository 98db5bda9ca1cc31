package testkit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// CollectorExport decodes every line of the dev stack's OpenTelemetry Collector export
// file (RATERD_TEST_OTELCOL_FILE: one OTLP/JSON export request per line) that contains
// one of mentions (a service name) into a T and hands it to each; other lines are skipped
// unparsed. It fails the test when the file cannot be read or a line
// is not JSON.
func CollectorExport[T any](t testing.TB, path string, mentions []string, each func(line *T)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the collector's export file: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		found := false
		for _, m := range mentions {
			found = found || bytes.Contains(sc.Bytes(), []byte(m))
		}
		if !found {
			continue
		}
		var line T
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("a line of the collector's export file is not OTLP/JSON: %v", err)
		}
		each(&line)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("the collector's export file: %v", err)
	}
}
