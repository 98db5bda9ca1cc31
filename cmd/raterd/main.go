// Command raterd scores live LLM traffic: it reads what deployed models were asked and
// answered from Kafka, judges it with autorater models or built-in checks, caches repeated
// judgements in Redis and writes quality scores to ClickHouse.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"raterd/bench"
	"raterd/internal/cli"
	"raterd/internal/fidelity"
	"raterd/internal/judgesim"
	"raterd/internal/report"
)

const usage = `raterd scores live LLM traffic with autorater (judge) models.

Usage:
  raterd <command> [flags]

Commands:
  run       consume Kafka traffic, score it, write scores (raterd run --config raterd.yaml)
  demo      run the whole pipeline on embedded defaults, no services needed
  migrate   create or upgrade the ClickHouse schema (raterd migrate --config raterd.yaml)
  report    score trends, model comparisons, conversation reports, an HTML page, SQL cookbook queries (raterd report --help)
  lag       how many records the consumer group has not finished (raterd lag --wait 2m)
  init      write a commented starter raterd.yaml for the local dev stack
  dlq       replay dead letters into their source topics after a fix (raterd dlq replay --help)
  bench     end-to-end benchmark on the local services, with baselines (raterd bench --help)
  fidelity  a labelled set through a judge endpoint: agreement, position consistency, parse failures
  judgesim  the GPU judge-server simulator, N endpoints (raterd judgesim -profile vllm-h100-8b -endpoints 3 -listen 127.0.0.1:0)
  version   print the version

Flags:
  -h, --help      show help (also: raterd <command> --help)
  -v, --version   print the version

Documentation: README.md; configuration reference: docs/configuration.md.
`

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "-v", "--version", "version":
		fmt.Fprintf(stdout, "raterd %s\n", cli.Version())
		return 0
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(args[1:], stdout, stderr)
	case "migrate":
		err = cmdMigrate(args[1:], stdout, stderr)
	case "report":
		err = report.Main(args[1:], stdout, stderr)
	case "lag":
		err = cmdLag(args[1:], stdout, stderr)
	case "init":
		err = cmdInit(args[1:], stdout, stderr)
	case "dlq":
		err = cmdDLQ(args[1:], stdout, stderr)
	case "bench":
		err = bench.Main(args[1:], stdout, stderr)
	case "fidelity":
		err = fidelity.Main(args[1:], stdout, stderr)
	case "judgesim":
		// judgesim's own exit status: 0 (or -h), 1 for an error it printed.
		return judgesim.Command(context.Background(), args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "raterd: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	return cli.Exit(args[0], err, stderr)
}
