// Command judgesim runs a GPU scoring-pool SIMULATOR: a server that answers like vLLM
// (chat completions with logprobs, /pooling, /classify) or TEI (/predict) serving a judge
// or reward model, with a batched step-time latency model, deterministic answers in the
// flame, prometheus2 and selene formats, and fault injection — and no model at all. Use
// it for tests, demos and benchmarks wherever no GPU is present; see package
// raterd/internal/judgesim for the latency model and how answers are made.
//
//	judgesim -listen :8000 -max-seqs 32 -step-base 8ms -step-per-seq 250us -prefill-per-token 20us
//
// and point an openai judge at http://HOST:8000/v1, a reward judge at http://HOST:8000.
//
// Every fault flag (-error-rate, -slow-rate, -slow-factor, -hang-rate, -malformed-rate,
// -hang, -position-bias) can be switched at run time: GET /admin/faults answers the
// faults in effect as a JSON object, and POST /admin/faults takes a JSON object with any
// of the fields error_rate, slow_rate, slow_factor, hang_rate, malformed_rate (numbers),
// hang (a boolean) and position_bias (a number) and changes only the fields given:
//
//	curl -X POST http://HOST:8000/admin/faults -d '{"error_rate":0.1,"position_bias":0.3}'
//
// `judgesim -h` prints the ranges; package raterd/internal/judgesim documents the rest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"raterd/internal/judgesim"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "judgesim:", err)
		os.Exit(1)
	}
}

// run runs judgesim with the command-line arguments args, writing usage, flag errors and
// logs to stderr.
func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("judgesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `judgesim is a GPU scoring-pool SIMULATOR for raterd. It runs no model: it stands in
for vLLM (or TEI) serving a judge or reward model, with deterministic answers.

Endpoints:
  POST /v1/chat/completions   judge answers in the format the prompt asks for (flame,
                              prometheus2, selene; pointwise, classification, pairwise),
                              logprobs and top_logprobs (0..20), max_tokens
  POST /pooling, /classify    vLLM reward / classifier models: one result per input
  POST /predict               TEI: [{label, score}] per input (string, pair or batch)
  GET  /v1/models /health /healthz /stats;  GET, POST /admin/faults (JSON, run time)

Latency model: at most -max-seqs sequences run (a chat request is one, a reward request
one per input); -queue-limit more wait, the rest get 429. Each decode step takes
-step-base + -step-per-seq x running + -prefill-per-token x prompt tokens joining; each
sequence emits one token per step (tokens = bytes/4; a reward item needs one step):
  service(p, c, n) = p x prefill-per-token + c x (step-base + step-per-seq x n)
  capacity(p, c)   = max-seqs / (max-seqs x p x prefill-per-token + c x (step-base + step-per-seq x max-seqs))  req/s
Answers carry X-Judgesim-Queue-Time and X-Judgesim-Service-Time headers.

Faults pick requests deterministically from their content and repeat count. Every
fault flag can be switched at run time through /admin/faults, as a JSON object whose
field names are the flag names with _ for - :
  error_rate, slow_rate, hang_rate,     number in [0,1]
  malformed_rate, position_bias
  slow_factor                           number in [1,1000000]; 0: the default 10
  hang                                  true or false
GET /admin/faults answers all the fields in effect, e.g.
  {"error_rate":0,"slow_rate":0,"slow_factor":10,"hang_rate":0,"malformed_rate":0,"hang":false,"position_bias":0}
POST /admin/faults takes any of the fields and changes only those given; it answers the
faults now in effect, or 400 and changes nothing for an unknown field, a wrong type or a
value out of range:
  curl -X POST http://localhost:8000/admin/faults -d '{"error_rate":0.1,"position_bias":0.3}'

Usage: judgesim [flags]

`)
		fs.PrintDefaults()
	}
	d := judgesim.Config{}.WithDefaults()
	var (
		listen         = fs.String("listen", ":8000", "address to listen on")
		maxSeqs        = fs.Int("max-seqs", d.MaxSeqs, "sequences running at once (vLLM's max_num_seqs); at least 1")
		stepBase       = fs.Duration("step-base", d.StepBase, "fixed time of a decode step; negative: none")
		stepPerSeq     = fs.Duration("step-per-seq", d.StepPerSeq, "time a decode step adds per running sequence; negative: none")
		prefill        = fs.Duration("prefill-per-token", d.PrefillPerToken, "time a step adds per prompt token of the sequences joining it (tokens = bytes/4); negative: none")
		queueLimit     = fs.Int("queue-limit", d.QueueLimit, "sequences that may wait beyond max-seqs; requests overflowing it get 429; negative: no queue")
		errorRate      = fs.Float64("error-rate", 0, "share of requests answered 500, in [0,1]")
		slowRate       = fs.Float64("slow-rate", 0, "share of requests whose decode steps are multiplied by -slow-factor, in [0,1]")
		slowFactor     = fs.Float64("slow-factor", d.SlowFactor, "how many times more steps a slow request takes; at least 1")
		hangRate       = fs.Float64("hang-rate", 0, "share of requests never answered until the client leaves, in [0,1]")
		malformedRate  = fs.Float64("malformed-rate", 0, "share of requests answered 200 outside the output grammar, in [0,1]")
		hang           = fs.Bool("hang", false, "hang every request, health checks included, until the client leaves (switch off with POST /admin/faults {\"hang\":false})")
		positionBias   = fs.Float64("position-bias", 0, "probability, in [0,1], that a pairwise answer is A whatever the responses")
		classifyLabels = fs.String("classify-labels", strings.Join(d.ClassifyLabels, ","), "comma-separated classes of /classify and /predict, worst first (at least 2)")
		seed           = fs.Uint64("seed", 0, "salt of the content hashes (score spread and which requests get faults)")
		model          = fs.String("model", d.Model, "model name reported by the simulator")
		showVersion    = fs.Bool("version", false, "print the version and exit")
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
	if *maxSeqs < 1 {
		return fmt.Errorf("max-seqs: %d, must be at least 1", *maxSeqs)
	}
	if *slowFactor < 1 {
		return fmt.Errorf("slow-factor: %g, must be at least 1", *slowFactor)
	}
	var labels []string
	for l := range strings.SplitSeq(*classifyLabels, ",") {
		labels = append(labels, strings.TrimSpace(l))
	}
	cfg := judgesim.Config{
		MaxSeqs:         *maxSeqs,
		StepBase:        *stepBase,
		StepPerSeq:      *stepPerSeq,
		PrefillPerToken: *prefill,
		QueueLimit:      *queueLimit,
		ErrorRate:       *errorRate,
		SlowRate:        *slowRate,
		SlowFactor:      *slowFactor,
		HangRate:        *hangRate,
		MalformedRate:   *malformedRate,
		Hang:            *hang,
		PositionBias:    *positionBias,
		ClassifyLabels:  labels,
		Model:           *model,
		Seed:            *seed,
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	sim := judgesim.New(cfg)
	defer sim.Close()
	cfg = sim.Config()
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	const exP, exC = 500, 40
	logger.Info("judgesim: GPU scoring-pool simulator listening (no model runs here)",
		"addr", ln.Addr().String(), "version", version, "model", cfg.Model,
		"max_seqs", cfg.MaxSeqs, "step_base", cfg.StepBase, "step_per_seq", cfg.StepPerSeq,
		"prefill_per_token", cfg.PrefillPerToken, "queue_limit", cfg.QueueLimit,
		"error_rate", cfg.ErrorRate, "slow_rate", cfg.SlowRate, "slow_factor", cfg.SlowFactor,
		"hang_rate", cfg.HangRate, "malformed_rate", cfg.MalformedRate, "hang", cfg.Hang,
		"position_bias", cfg.PositionBias, "classify_labels", strings.Join(cfg.ClassifyLabels, ","), "seed", cfg.Seed,
		"service_500_40_alone", cfg.ServiceTime(exP, exC, 1),
		"capacity_500_40_rps", fmt.Sprintf("%.1f", cfg.Capacity(exP, exC)))

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
	logger.Info("judgesim: simulator shutting down, draining requests in flight (hung ones get 503)")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Shutdown(sctx) }()
	err = srv.Shutdown(sctx)
	if simErr := <-simDone; err == nil {
		err = simErr
	}
	if err != nil {
		_ = srv.Close()
	}
	st := sim.Stats()
	logger.Info("judgesim: simulator stopped", "requests", st.Requests, "completed", st.Completed,
		"rejected", st.Rejected, "failed", st.Failed, "canceled", st.Canceled, "bad_requests", st.BadRequests,
		"hung", st.Hung, "slowed", st.Slowed, "malformed", st.Malformed, "steps", st.Steps,
		"max_running", st.MaxRunning, "max_queued", st.MaxQueued, "busy", st.BusyTime, "busy_seq", st.BusySeqTime)
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
