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
//
// -profile vllm-h100-8b switches on the vLLM engine model (KV-cache blocks with
// preemption, chunked prefill, prefix caching), calibrated against a published vLLM
// figure; -endpoints N serves N simulators on N ports, -speeds gives their speeds, and
// a JSON ready line on stdout lists their URLs (docs/judgesim.md):
//
//	judgesim -profile vllm-h100-8b -endpoints 3 -listen 127.0.0.1:0 -speeds 1,0.8,0.6
//
// The command itself is judgesim.Command, which `raterd judgesim` runs too.
package main

import (
	"context"
	"io"
	"os"

	"raterd/internal/judgesim"
)

func main() {
	os.Exit(judgesim.Command(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run runs judgesim with the command-line arguments args, writing usage, flag errors and
// logs to stderr (and the ready line and -version to stdout).
func run(args []string, stderr io.Writer) error {
	return judgesim.Run(context.Background(), args, os.Stdout, stderr)
}
