// Package cli holds what raterd's commands share on the command line: the usage error
// that maps to exit code 2, flag sets that report mistakes as that error, and the signal
// context that starts a graceful drain. cmd/raterd and the command packages it calls
// (report, bench) use it, so that every command parses and fails the same way.
package cli

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

// ErrUsage marks a command-line mistake: exit code 2 after the usage text.
var ErrUsage = errors.New("usage")

// FlagError is a command-line mistake whose message has not been printed yet; it
// matches ErrUsage.
type FlagError struct{ Msg string }

// Error implements error.
func (e *FlagError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrUsage) true.
func (e *FlagError) Is(target error) bool { return target == ErrUsage }

// FlagErrorf returns a FlagError with a formatted message.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{Msg: fmt.Sprintf(format, args...)}
}

// NewFlagSet returns a flag set that prints its usage to stderr and reports mistakes as
// ErrUsage.
func NewFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: raterd %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// ParseFlags parses args, wrapping mistakes in ErrUsage and refusing positional
// arguments.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	return nil
}

// FlagGiven reports whether the flag was given on the command line.
func FlagGiven(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// SignalContext is cancelled on the first SIGINT or SIGTERM, which starts a graceful
// drain; a second signal exits at once.
func SignalContext(stderr io.Writer) (context.Context, func()) {
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

// Version is the module version of this build, or "dev".
func Version() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// Exit maps a command's error to the process exit status, printing what the user has not
// seen yet: 0 for success or --help, 2 for a command-line mistake (its usage text is
// already printed), 1 otherwise, with "raterd <command>: <error>" on stderr.
func Exit(command string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "raterd %s: %v\n", command, err)
		return 1
	}
}
