package judgesim

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Command runs judgesim as a command: args are its command-line flags (without the
// program name), the ready line goes to stdout, usage, flag errors and logs to stderr.
// It serves until ctx ends or the process gets SIGINT or SIGTERM, then drains, and
// returns the exit status: 0 (also for -h), 1 for an error. cmd/judgesim and
// `raterd judgesim` call it.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := Run(ctx, args, stdout, stderr)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "judgesim:", err)
	return 1
}

// Ready is the line Run prints to stdout, as JSON, once every endpoint listens.
type Ready struct {
	// Endpoints are the base URLs, one per simulator, in -speeds order.
	Endpoints []string `json:"endpoints"`
}

// Run is Command returning the error: flag.ErrHelp for -h.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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

vLLM engine model (all off by default; on in -profile vllm-h100-8b): -kv-cache-tokens
(16-token blocks, preemption of the newest sequence when a decode finds none free),
-max-batched-tokens (chunked prefill: decodes first, then prefill chunks),
-prefix-caching (64-byte prompt blocks by hash chain, LRU-evicted), -answer-median-tokens
with -answer-sigma, -answer-min-tokens, -answer-max-tokens (log-normal answer lengths,
the explanation padded to length). A step then takes (step-base + step-per-seq x
emitting sequences + prefill-per-token x prefill tokens computed) / speed.
Explicit flags override the profile's values. Profiles: %s.

Several endpoints: -endpoints N serves N independent simulators, each on its own port
(-listen HOST:0: ephemeral ports; HOST:P: ports P, P+1, ...), with -speeds S1,S2,...
cycled over them. When all listen, one line goes to stdout:
  {"endpoints":["http://127.0.0.1:PORT",...]}
The stats of each are at GET /stats (judgesim.Stats as JSON).

Usage: judgesim [flags]

`, strings.Join(ProfileNames(), ", "))
		fs.PrintDefaults()
	}
	d := Config{}.WithDefaults()
	var (
		listen         = fs.String("listen", ":8000", "address to listen on (with -endpoints N, the first of N ports; port 0: ephemeral ports)")
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

		profile     = fs.String("profile", "", "start from a named configuration: "+strings.Join(ProfileNames(), ", ")+"; explicit flags override it")
		kvTokens    = fs.Int("kv-cache-tokens", 0, "KV-cache budget in tokens (16-token blocks); a decode that finds no free block preempts the newest sequence; 0: unlimited")
		batched     = fs.Int("max-batched-tokens", 0, "tokens one step computes at most (vLLM's max_num_batched_tokens), with chunked prefill; 0: unlimited")
		prefixCache = fs.Bool("prefix-caching", false, "reuse cached 16-token prompt blocks by hash chain (needs -kv-cache-tokens)")
		ansMedian   = fs.Int("answer-median-tokens", 0, "median of log-normal chat answer lengths in tokens (the explanation is padded); 0: answers as long as their text")
		ansSigma    = fs.Float64("answer-sigma", 0, "log-normal sigma of answer lengths (0: 0.5 when -answer-median-tokens is set)")
		ansMin      = fs.Int("answer-min-tokens", 0, "shortest drawn answer in tokens")
		ansMax      = fs.Int("answer-max-tokens", 0, "longest drawn answer in tokens (0: no bound; max_tokens always caps)")
		endpoints   = fs.Int("endpoints", 1, "independent simulators to serve, each on its own port")
		speedsFlag  = fs.String("speeds", "1", "comma-separated step-time speed factors, cycled over the endpoints (0.5: steps take twice as long)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *showVersion {
		fmt.Fprintln(stdout, "judgesim (GPU scoring-pool simulator)", buildVersion())
		return nil
	}
	if *maxSeqs < 1 {
		return fmt.Errorf("max-seqs: %d, must be at least 1", *maxSeqs)
	}
	if *slowFactor < 1 {
		return fmt.Errorf("slow-factor: %g, must be at least 1", *slowFactor)
	}
	if *endpoints < 1 || *endpoints > 1024 {
		return fmt.Errorf("endpoints: %d is not in 1..1024", *endpoints)
	}
	speeds, err := ParseSpeeds(*speedsFlag)
	if err != nil {
		return fmt.Errorf("speeds: %w", err)
	}
	var labels []string
	for l := range strings.SplitSeq(*classifyLabels, ",") {
		labels = append(labels, strings.TrimSpace(l))
	}
	var cfg Config
	if *profile != "" {
		if cfg, err = ProfileConfig(*profile); err != nil {
			return err
		}
	} else {
		cfg = d
	}
	set := map[string]func(){
		"max-seqs":             func() { cfg.MaxSeqs = *maxSeqs },
		"step-base":            func() { cfg.StepBase = *stepBase },
		"step-per-seq":         func() { cfg.StepPerSeq = *stepPerSeq },
		"prefill-per-token":    func() { cfg.PrefillPerToken = *prefill },
		"queue-limit":          func() { cfg.QueueLimit = *queueLimit },
		"kv-cache-tokens":      func() { cfg.KVCacheTokens = *kvTokens },
		"max-batched-tokens":   func() { cfg.MaxBatchedTokens = *batched },
		"prefix-caching":       func() { cfg.PrefixCaching = *prefixCache },
		"answer-median-tokens": func() { cfg.AnswerMedianTokens = *ansMedian },
		"answer-sigma":         func() { cfg.AnswerSigma = *ansSigma },
		"answer-min-tokens":    func() { cfg.AnswerMinTokens = *ansMin },
		"answer-max-tokens":    func() { cfg.AnswerMaxTokens = *ansMax },
		"model":                func() { cfg.Model = *model },
	}
	fs.Visit(func(f *flag.Flag) {
		if apply, ok := set[f.Name]; ok {
			apply()
		}
	})
	cfg.ErrorRate, cfg.SlowRate, cfg.SlowFactor = *errorRate, *slowRate, *slowFactor
	cfg.HangRate, cfg.MalformedRate, cfg.Hang = *hangRate, *malformedRate, *hang
	cfg.PositionBias, cfg.ClassifyLabels, cfg.Seed = *positionBias, labels, *seed
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	lns, err := listenAll(*listen, *endpoints)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	type endpoint struct {
		sim *Simulator
		srv *http.Server
		ln  net.Listener
	}
	eps := make([]endpoint, len(lns))
	served := make(chan error, len(lns))
	var ready Ready
	for i, ln := range lns {
		c := cfg
		c.Speed = speeds[i%len(speeds)]
		sim := New(c)
		defer sim.Close()
		c = sim.Config()
		srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
		eps[i] = endpoint{sim, srv, ln}
		const exP, exC = 500, 40
		logger.Info("judgesim: GPU scoring-pool simulator listening (no model runs here)",
			"addr", ln.Addr().String(), "version", buildVersion(), "profile", *profile, "model", c.Model,
			"max_seqs", c.MaxSeqs, "step_base", c.StepBase, "step_per_seq", c.StepPerSeq,
			"prefill_per_token", c.PrefillPerToken, "queue_limit", c.QueueLimit,
			"kv_cache_tokens", c.KVCacheTokens, "max_batched_tokens", c.MaxBatchedTokens,
			"prefix_caching", c.PrefixCaching, "speed", c.Speed, "answer_median_tokens", c.AnswerMedianTokens,
			"error_rate", c.ErrorRate, "slow_rate", c.SlowRate, "slow_factor", c.SlowFactor,
			"hang_rate", c.HangRate, "malformed_rate", c.MalformedRate, "hang", c.Hang,
			"position_bias", c.PositionBias, "classify_labels", strings.Join(c.ClassifyLabels, ","), "seed", c.Seed,
			"service_500_40_alone", c.ServiceTime(exP, exC, 1),
			"capacity_500_40_rps", fmt.Sprintf("%.1f", c.Capacity(exP, exC)))
		ready.Endpoints = append(ready.Endpoints, baseURL(ln.Addr()))
		go func() { served <- srv.Serve(ln) }()
	}
	line, err := json.Marshal(ready)
	if err != nil {
		return fmt.Errorf("ready line: %w", err)
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return fmt.Errorf("ready line: %w", err)
	}

	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
	}
	stop() // a second signal kills at once
	logger.Info("judgesim: simulator shutting down, draining requests in flight (hung ones get 503)")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var errs []error
	if serveErr != nil {
		errs = append(errs, fmt.Errorf("serve: %w", serveErr))
	}
	for _, ep := range eps {
		simDone := make(chan error, 1)
		go func() { simDone <- ep.sim.Shutdown(sctx) }()
		err := ep.srv.Shutdown(sctx)
		if simErr := <-simDone; err == nil {
			err = simErr
		}
		if err != nil {
			_ = ep.srv.Close()
			errs = append(errs, fmt.Errorf("shutdown %s: %w", ep.ln.Addr(), err))
		}
		st := ep.sim.Stats()
		logger.Info("judgesim: simulator stopped", "addr", ep.ln.Addr().String(), "requests", st.Requests, "completed", st.Completed,
			"rejected", st.Rejected, "failed", st.Failed, "canceled", st.Canceled, "bad_requests", st.BadRequests,
			"hung", st.Hung, "slowed", st.Slowed, "malformed", st.Malformed, "steps", st.Steps,
			"max_running", st.MaxRunning, "max_queued", st.MaxQueued, "busy", st.BusyTime, "busy_seq", st.BusySeqTime,
			"prefill_tokens", st.PrefillTokens, "prefill_saved_tokens", st.PrefillSavedTokens,
			"decode_tokens", st.DecodeTokens, "preemptions", st.Preemptions, "peak_kv_blocks_used", st.PeakKVBlocksUsed)
	}
	return errors.Join(errs...)
}

// listenAll listens on n ports: addr's, and with n > 1 the n-1 following ones (or n
// ephemeral ones when addr's port is 0).
func listenAll(addr string, n int) ([]net.Listener, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil && portStr != "" {
		return nil, fmt.Errorf("listen: port %q: %w", portStr, err)
	}
	var lns []net.Listener
	for i := range n {
		p := port
		if p != 0 {
			p += i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("listen: %w", err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// baseURL is the http URL of a listener; an unspecified host (":8000") is reached on
// the loopback address.
func baseURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		return fmt.Sprintf("http://127.0.0.1:%d", tcp.Port)
	}
	return "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}

// ParseSpeeds parses -speeds: comma-separated speed factors, each a number in
// (0,1000000]; spaces around them are allowed.
func ParseSpeeds(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number: %w", f, err)
		}
		if !(v > 0 && v <= 1e6) {
			return nil, fmt.Errorf("%g is not in (0,1000000]", v)
		}
		out = append(out, v)
	}
	return out, nil
}

// buildVersion is the module version of this build, or "dev".
func buildVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// FetchStats gets the Stats of the simulator at baseURL (such as
// "http://127.0.0.1:8000", a line of the ready line's endpoints) from its GET /stats.
func FetchStats(ctx context.Context, baseURL string) (Stats, error) {
	var st Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(baseURL, "/")+"/stats", nil)
	if err != nil {
		return st, fmt.Errorf("judgesim stats: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("judgesim stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return st, fmt.Errorf("judgesim stats: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("judgesim stats: decode: %w", err)
	}
	return st, nil
}
