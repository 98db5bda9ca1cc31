package main

import (
	"io"
	"os"
	"raterd/internal/app"
	"raterd/internal/cli"
	"time"
)

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("run", "run --config raterd.yaml [--from TIME]", stderr)
	configPath := fs.String("config", "raterd.yaml", "path of the YAML config file")
	fromFlag := fs.String("from", "", fromFlagUsage)
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	// Given means given: an empty --from (say, from an unset variable) is an error, not a
	// run that quietly skips the rewind.
	rewind := cli.FlagGiven(fs, "from")
	var from time.Time
	if rewind {
		var err error
		if from, err = parseFromFlag(*fromFlag, time.Now()); err != nil {
			return err
		}
	}
	cfg, err := app.LoadConfig(*configPath, os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := cli.SignalContext(stderr)
	defer stop()
	if rewind {
		if _, err := app.RewindGroup(ctx, cfg, from, app.NewLogger(cfg.Telemetry)); err != nil {
			return err
		}
	}
	return app.Run(ctx, cfg)
}
