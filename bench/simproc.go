package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"raterd/internal/judgesim"
)

// simSource is where a benchmark reads the judge pool's simulator counters and model.
type simSource interface {
	Stats() judgesim.Stats
	Config() judgesim.Config
}

// simProcess is judgesim running as a process of its own (`raterd judgesim`, the
// benchmark's own binary re-executed), serving one or more endpoints: the simulated GPUs
// then do not share raterd's process, its scheduler or its garbage collector, as real
// servers would not. Stats sums the endpoints' GET /stats.
type simProcess struct {
	cfg    judgesim.Config
	urls   []string // base URLs, without /v1
	cmd    *exec.Cmd
	client *http.Client
	stderr *tailBuffer
	exited chan struct{}
	err    error // Wait's result, set before exited closes
}

// startSimProcess starts `exe judgesim args…` listening on ephemeral loopback ports and
// waits for its ready line. exe is the raterd binary (--judgesim-bin).
func startSimProcess(ctx context.Context, exe string, cfg judgesim.Config, args ...string) (*simProcess, error) {
	full := append([]string{"judgesim", "-listen", "127.0.0.1:0"}, args...)
	cmd := exec.Command(exe, full...)
	dieWithParent(cmd)
	ready := make(chan judgesim.Ready, 1)
	p := &simProcess{cfg: cfg, cmd: cmd, stderr: &tailBuffer{max: 4 << 10}, exited: make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second}}
	cmd.Stdout = &readyWriter{ready: ready}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w (--judgesim-bin)", exe, strings.Join(full, " "), err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	select {
	case r := <-ready:
		p.urls = r.Endpoints
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("%s %s exited before it listened: %v: %s", exe, strings.Join(full, " "), p.err, p.stderr.String())
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s %s printed no ready line in 30s: %s", exe, strings.Join(full, " "), p.stderr.String())
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// URLs returns the endpoints' base URLs with /v1, as a judge config names them.
func (p *simProcess) URLs() []string {
	out := make([]string, len(p.urls))
	for i, u := range p.urls {
		out[i] = u + "/v1"
	}
	return out
}

// Config returns the simulator model the process was started with.
func (p *simProcess) Config() judgesim.Config { return p.cfg }

// Stats sums the endpoints' counters; an endpoint that does not answer counts as zero
// (EndpointStats returns the error).
func (p *simProcess) Stats() judgesim.Stats {
	all, _ := p.EndpointStats(context.Background())
	return sumStats(all)
}

// EndpointStats returns each endpoint's counters.
func (p *simProcess) EndpointStats(ctx context.Context) ([]judgesim.Stats, error) {
	out := make([]judgesim.Stats, len(p.urls))
	errs := make([]error, len(p.urls))
	var wg sync.WaitGroup
	for i, u := range p.urls {
		wg.Go(func() { out[i], errs[i] = judgesim.FetchStats(ctx, u) })
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// sumStats adds the endpoints' counters; MaxSeqs becomes the pool's slots.
func sumStats(all []judgesim.Stats) judgesim.Stats {
	var s judgesim.Stats
	for _, e := range all {
		s.MaxSeqs += e.MaxSeqs
		s.Requests += e.Requests
		s.Completed += e.Completed
		s.Rejected += e.Rejected
		s.Failed += e.Failed
		s.Canceled += e.Canceled
		s.Sequences += e.Sequences
		s.Steps += e.Steps
		s.BusyTime += e.BusyTime
		s.BusySeqTime += e.BusySeqTime
		s.PromptTokens += e.PromptTokens
		s.CompletionTokens += e.CompletionTokens
		s.SaturatedTime += e.SaturatedTime
		s.PrefillTokens += e.PrefillTokens
		s.PrefillSavedTokens += e.PrefillSavedTokens
		s.DecodeTokens += e.DecodeTokens
		s.Preemptions += e.Preemptions
		s.Finished += e.Finished
	}
	return s
}

// stop ends the process: SIGTERM, then SIGKILL after 5s.
func (p *simProcess) stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// simArgs are the judgesim flags of cfg's latency model.
func simArgs(cfg judgesim.Config) []string {
	return []string{
		"-max-seqs", strconv.Itoa(cfg.MaxSeqs),
		"-step-base", cfg.StepBase.String(),
		"-step-per-seq", cfg.StepPerSeq.String(),
		"-prefill-per-token", cfg.PrefillPerToken.String(),
	}
}

// readyWriter is the child's stdout: it hands the first ready line (judgesim.Ready) to
// ready and discards the rest. exec copies the pipe into it, and Wait waits for the copy.
type readyWriter struct {
	ready chan<- judgesim.Ready
	line  []byte
	sent  bool
}

func (w *readyWriter) Write(b []byte) (int, error) {
	if w.sent {
		return len(b), nil
	}
	w.line = append(w.line, b...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			if len(w.line) > 64<<10 {
				w.line = w.line[:0] // not a ready line; keep memory bounded
			}
			return len(b), nil
		}
		var r judgesim.Ready
		if json.Unmarshal(w.line[:i], &r) == nil && len(r.Endpoints) > 0 {
			w.ready <- r
			w.sent, w.line = true, nil
			return len(b), nil
		}
		w.line = w.line[i+1:]
	}
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// defaultSimBinary is the binary that serves `judgesim` for the benchmark: this process's
// own executable when it is raterd.
func defaultSimBinary() string {
	exe, err := os.Executable()
	if err != nil {
		return "raterd"
	}
	return exe
}
