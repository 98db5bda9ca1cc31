package doccheck

// The README's walkthrough (scripts/try.sh) against the real services (skipped without
// RATERD_TEST_*, failed with RATERD_REQUIRE_SERVICES=1).

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"raterd/internal/app"
	"raterd/internal/testkit"
)

// TestWalkthrough runs scripts/try.sh, the README's "Getting started" lines, and checks
// what a new user would look at: scores in the reports, the dead letters listed, a clean
// stop that frees the ports, and the config it wrote.
func TestWalkthrough(t *testing.T) {
	testkit.RequireServices(t)
	// raterd init keeps a raterd.yaml someone edited, and the walkthrough then fails: say
	// so before spending a minute on it.
	if data, err := os.ReadFile(filepath.Join(repoRoot, "raterd.yaml")); err == nil && string(data) != app.StarterConfig() {
		t.Fatal("raterd.yaml in the repository root differs from `raterd init`'s starter; move it away to run the walkthrough test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "scripts/try.sh")
	cmd.Dir = repoRoot
	// The shared services serve the other packages' tests running now: never stop them.
	cmd.Env = append(os.Environ(), "RATERD_TRY_KEEP_SERVICES=1")
	// Its own process group: on a timeout the whole walkthrough (bash, raterd and judgesim
	// in the background, the producer) gets SIGTERM, so try.sh's trap stops what it
	// started, and SIGKILL once WaitDelay has passed; nothing is left holding the ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.CombinedOutput()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever outlived the script
	}
	t.Logf("scripts/try.sh output:\n%s", out)
	if err != nil {
		t.Fatalf("scripts/try.sh: %v", err)
	}
	text := string(out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`raterd demo summary`),
		regexp.MustCompile(`wrote raterd\.yaml|raterd\.yaml is already the starter config`),
		regexp.MustCompile(`consumer group raterd: 0 records behind`),
		// The trend report has rows for both support models with scores.
		regexp.MustCompile(`(?m)^support-llm-v7\s+[1-9][0-9]*\s+0\s+[0-9.]+`),
		regexp.MustCompile(`(?m)^support-llm-v8-canary\s+[1-9][0-9]*\s+0\s+[0-9.]+`),
		regexp.MustCompile(`difference B − A: [-+]?[0-9.]+ \(std\. error [0-9.]+, Welch df [0-9.]+, t [-+]?[0-9.]+\)`),
		regexp.MustCompile(`compare time windows of support-llm-v7`),
		// The worst-apps report lists the named apps with scores (records without an app
		// form a row of their own, "", which may sort anywhere).
		regexp.MustCompile(`(?m)^app,scored,mean_score,failed\n(?:[^\n]*\n){0,2}(helpdesk|billing),[1-9]`),
		regexp.MustCompile(`would replay\s+[1-9][0-9]*`),
		regexp.MustCompile(`msg="raterd stopped" fetched=[1-9][0-9]* done=[1-9]`),
		regexp.MustCompile(`==> done`),
	} {
		if !want.MatchString(text) {
			t.Errorf("the walkthrough's output has no match for %s", want)
		}
	}
	// raterd drained: one SIGTERM, not a second one that exits at once.
	if log, err := os.ReadFile(filepath.Join(repoRoot, "raterd.log")); err != nil || strings.Contains(string(log), "second signal") {
		t.Errorf("raterd.log (err %v) shows a second signal: the walkthrough's stop did not let raterd drain", err)
	}
	// Stopped means stopped: nothing listens on judgesim's or raterd's admin port.
	for _, port := range []string{"8000", "9464"} {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), time.Second); err == nil {
			c.Close()
			t.Errorf("127.0.0.1:%s still accepts connections after the walkthrough stopped everything", port)
		}
	}
	cfg, err := app.LoadConfig(filepath.Join(repoRoot, "raterd.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatalf("the walkthrough's raterd.yaml: %v", err)
	}
	if !strings.Contains(strings.Join(cfg.Kafka.Topics, ","), "llm-traffic") {
		t.Errorf("the starter config reads topics %v, want llm-traffic, the topic the walkthrough produces to", cfg.Kafka.Topics)
	}
}
