// Command raterd scores live LLM traffic: it reads what deployed models were asked and
// answered from Kafka, judges it with autorater models or built-in checks, caches repeated
// judgements in Redis and writes quality scores to ClickHouse.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `raterd scores live LLM traffic with autorater (judge) models.

Usage:
  raterd <command> [flags]

Commands:
  run       consume Kafka traffic, score it, write scores (raterd run --config raterd.yaml)
  demo      run the whole pipeline on embedded defaults, no services needed
  migrate   create or upgrade the ClickHouse schema (raterd migrate --config raterd.yaml)
  report    score trends, model comparisons and SQL cookbook queries (raterd report --help)
  dlq       replay dead letters into their source topics after a fix (raterd dlq replay --help)
  bench     end-to-end benchmark on the local services, with baselines (raterd bench --help)
  version   print the version

Flags:
  -h, --help      show help (also: raterd <command> --help)
  -v, --version   print the version

Documentation: README.md; configuration reference: docs/configuration.md.
`

// version is the module version of this build, or "dev".
func version() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks a command-line mistake: exit code 2 after the usage text.
var errUsage = errors.New("usage")

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
		fmt.Fprintf(stdout, "raterd %s\n", version())
		return 0
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(args[1:], stdout, stderr)
	case "migrate":
		err = cmdMigrate(args[1:], stdout, stderr)
	case "report":
		err = cmdReport(args[1:], stdout, stderr)
	case "dlq":
		err = cmdDLQ(args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "raterd: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "raterd %s: %v\n", args[0], err)
		return 1
	}
}

// newFlagSet returns a flag set that prints its usage to stderr and reports mistakes as
// errUsage.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: raterd %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// signalContext is cancelled on the first SIGINT or SIGTERM, which starts a graceful
// drain; a second signal exits at once.
func signalContext(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
		fmt.Fprintln(stderr, "raterd: shutting down (draining in-flight batches; signal again to exit now)")
		cancel()
		if _, ok := <-ch; ok {
			fmt.Fprintln(stderr, "raterd: second signal; exiting without draining (uncommitted records will replay)")
			os.Exit(130)
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
