package app

import (
	"strings"
	"testing"
)

// TestMemoryLimitConfig: memory_limit takes bytes (a YAML integer, as the other size keys
// are written), a size with a unit as GOMEMLIMIT writes it, or off; anything else is
// rejected naming the key.
func TestMemoryLimitConfig(t *testing.T) {
	for _, v := range []string{"", "536870912", "512MiB", `"512MiB"`, "1.5GiB", "off", "64 MiB"} {
		data := validConfig
		if v != "" {
			data += "memory_limit: " + v + "\n"
		}
		cfg, err := ParseConfig([]byte(data), func(string) string { return "" })
		if err != nil {
			t.Errorf("memory_limit: %s: %v", v, err)
			continue
		}
		if want := strings.Trim(v, `"`); cfg.MemoryLimit != want {
			t.Errorf("memory_limit: %s reads as %q", v, cfg.MemoryLimit)
		}
	}
	for _, v := range []string{"-1", `"-512MiB"`, "0", "lots", "512Mi", "512MB", "on"} {
		_, err := ParseConfig([]byte(validConfig+"memory_limit: "+v+"\n"), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), "memory_limit") {
			t.Errorf("memory_limit: %s: err = %v, want one naming memory_limit", v, err)
		}
	}
}
