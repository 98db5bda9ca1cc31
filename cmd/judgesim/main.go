// Command judgesim runs a GPU scoring-pool SIMULATOR: an OpenAI-compatible
// chat-completions server that answers like a judge model served by vLLM, SGLang or TGI,
// with a simple latency model and deterministic scores, and no model at all. Use it for
// tests, demos and benchmarks wherever no GPU is present; see package
// raterd/cmd/judgesim/simulator for the latency model and how answers are made.
//
//	judgesim -listen :8000 -max-seqs 32 -fixed-cost 20ms -per-token-cost 20us
//
// and point an openai judge at http://HOST:8000/v1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"raterd/cmd/judgesim/simulator"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "judgesim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("judgesim", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `judgesim is a GPU scoring-pool SIMULATOR for raterd: an OpenAI-compatible
chat-completions server (POST /v1/chat/completions, GET /v1/models, /healthz, /stats)
that stands in for a judge model on vLLM/SGLang/TGI. It runs no model: scores are
deterministic functions of the content. Latency model: at most -max-seqs requests run at
once, each for -fixed-cost + tokens × -per-token-cost (tokens ≈ bytes/4), up to
-queue-limit wait, the rest get 429; throughput ≈ max-seqs / (fixed-cost + tokens×per-token-cost).

Usage: judgesim [flags]

`)
		fs.PrintDefaults()
	}
	d := simulator.Config{}.WithDefaults()
	var (
		listen      = fs.String("listen", ":8000", "address to listen on")
		maxSeqs     = fs.Int("max-seqs", d.MaxSeqs, "sequences processed at once (like vLLM's max_num_seqs)")
		fixedCost   = fs.Duration("fixed-cost", d.FixedCost, "simulated service time per request (prefill overhead); negative: none")
		perToken    = fs.Duration("per-token-cost", d.PerTokenCost, "simulated service time per prompt+answer token (tokens ≈ bytes/4); negative: none")
		queueLimit  = fs.Int("queue-limit", d.QueueLimit, "requests that may wait beyond max-seqs; more are answered 429; negative: no queue")
		errorRate   = fs.Float64("error-rate", 0, "share of requests answered 500, chosen deterministically from the content, in [0,1]")
		seed        = fs.Uint64("seed", 0, "salt of the content hashes (score spread and which requests fail)")
		model       = fs.String("model", d.Model, "model name reported by the simulator")
		showVersion = fs.Bool("version", false, "print the version and exit")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *showVersion {
		fmt.Println("judgesim (GPU scoring-pool simulator)", version)
		return nil
	}
	cfg := simulator.Config{
		MaxSeqs:      *maxSeqs,
		FixedCost:    *fixedCost,
		PerTokenCost: *perToken,
		QueueLimit:   *queueLimit,
		ErrorRate:    *errorRate,
		Model:        *model,
		Seed:         *seed,
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if *maxSeqs == 0 {
		return errors.New("max-seqs: must be at least 1")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sim := simulator.New(cfg)
	cfg = sim.Config()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("judgesim: GPU scoring-pool simulator listening (no model runs here)",
		"addr", ln.Addr().String(), "version", version, "model", cfg.Model,
		"max_seqs", cfg.MaxSeqs, "fixed_cost", cfg.FixedCost, "per_token_cost", cfg.PerTokenCost,
		"queue_limit", cfg.QueueLimit, "error_rate", cfg.ErrorRate, "seed", cfg.Seed,
		"throughput_at_1000_tokens_rps", fmt.Sprintf("%.0f", cfg.Throughput(1000)))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills at once
	logger.Info("judgesim: simulator shutting down, draining requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	st := sim.Stats()
	logger.Info("judgesim: simulator stopped", "requests", st.Requests, "completed", st.Completed,
		"rejected", st.Rejected, "failed", st.Failed, "canceled", st.Canceled, "bad_requests", st.BadRequests,
		"max_running", st.MaxRunning, "max_queued", st.MaxQueued, "busy", st.BusyTime)
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
