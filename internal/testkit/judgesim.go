package testkit

import (
	"net"
	"net/http"
	"testing"
	"time"

	"raterd/internal/judgesim"
)

// FastJudgesim is a small, fast scoring pool for tests: 32 sequences at once, steps of
// 200µs plus 5µs per running sequence, 1µs of prefill per prompt token.
var FastJudgesim = judgesim.Config{MaxSeqs: 32, StepBase: 200 * time.Microsecond, StepPerSeq: 5 * time.Microsecond, PrefillPerToken: time.Microsecond}

// StartJudgesim serves a judgesim simulator with cfg on a loopback port until the test
// ends, and returns its OpenAI-compatible base URL (".../v1") and the simulator.
func StartJudgesim(t testing.TB, cfg judgesim.Config) (string, *judgesim.Simulator) {
	t.Helper()
	sim := judgesim.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); sim.Close() })
	return "http://" + ln.Addr().String() + "/v1", sim
}
