package app

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzUnknownKeys: the unknown-key walker never panics; it never reports a valid key
// (whenever it reports one, the strict decode and validation it stands in front of
// refuse the config too); and it misses none the strict decode finds, so that a user
// never sees a Go type name ("field x not found in type consumer.Config") for a typo.
// Every report has a line.
func FuzzUnknownKeys(f *testing.F) {
	for _, file := range []string{"starter.yaml", "../../testdata/evaluators.yaml"} {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(validConfig + alertingSection))
	f.Add([]byte(typoConfig))
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return
		}
		found := unknownKeys(&doc, reflect.TypeFor[Config]())
		for _, uk := range found {
			if uk.Line < 1 || !strings.Contains(uk.Error(), "unknown key") {
				t.Fatalf("bad report %+v", uk)
			}
		}
		err := checkKeys(data)
		if (err != nil) != (len(found) > 0) {
			t.Fatalf("checkKeys = %v, unknownKeys found %d", err, len(found))
		}
		var uk *UnknownKeyError
		if err != nil && !errors.As(err, &uk) {
			t.Fatalf("checkKeys error %v is not an UnknownKeyError", err)
		}
		_, strictErr := parseConfigStrict(data, func(string) string { return "" })
		switch {
		case len(found) > 0 && strictErr == nil:
			t.Fatalf("reported %v, but the strict decode accepts the config", found[0])
		case len(found) == 0 && strictErr != nil && strings.Contains(strictErr.Error(), "not found in type"):
			t.Fatalf("no unknown key reported, but the strict decode finds one: %v", strictErr)
		}
	})
}
