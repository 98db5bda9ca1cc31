package secret

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const value = "hunter2-s3cr3t"

func TestSecretNeverPrints(t *testing.T) {
	s := Secret(value)
	type holder struct {
		P Secret `yaml:"p" json:"p"`
	}
	h := holder{P: s}
	var outs []string
	for _, verb := range []string{"%s", "%v", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10s", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h))
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(h))
	y, err := yaml.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(y), string(j))
	for _, o := range outs {
		if strings.Contains(o, value) || strings.Contains(o, fmt.Sprintf("%x", value)) {
			t.Errorf("secret shown: %q", o)
		}
	}
	if s.Reveal() != value {
		t.Errorf("Reveal = %q", s.Reveal())
	}
	if Secret("").String() != "" {
		t.Error("empty secret should print empty")
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	if err := os.WriteFile(f, []byte(value+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Resolve("redis.password", "", "RATERD_REDIS_PASSWORD", "redis.password_file", f)
	if err != nil || got.Reveal() != value {
		t.Fatalf("Resolve from file = %q, %v", got.Reveal(), err)
	}
	got, err = Resolve("redis.password", value, "", "redis.password_file", "")
	if err != nil || got.Reveal() != value {
		t.Fatalf("Resolve from value = %q, %v", got.Reveal(), err)
	}
	_, err = Resolve("redis.password", value, "RATERD_REDIS_PASSWORD", "redis.password_file", f)
	if err == nil || !strings.Contains(err.Error(), "redis.password_file") || !strings.Contains(err.Error(), "RATERD_REDIS_PASSWORD") || strings.Contains(err.Error(), value) {
		t.Fatalf("both set: %v", err)
	}
	_, err = Resolve("redis.password", "", "", "redis.password_file", filepath.Join(dir, "missing"))
	if err == nil || !strings.HasPrefix(err.Error(), "redis.password_file: ") {
		t.Fatalf("missing file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = Resolve("k", "", "", "k_file", empty); err == nil || !strings.Contains(err.Error(), "k_file") {
		t.Fatalf("empty file: %v", err)
	}
}
