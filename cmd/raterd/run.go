package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "run --config raterd.yaml [--from TIME]", stderr)
	configPath := fs.String("config", "raterd.yaml", "path of the YAML config file")
	fromFlag := fs.String("from", "", fromFlagUsage)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Given means given: an empty --from (say, from an unset variable) is an error, not a
	// run that quietly skips the rewind.
	rewind := flagGiven(fs, "from")
	var from time.Time
	if rewind {
		var err error
		if from, err = parseFromFlag(*fromFlag, time.Now()); err != nil {
			return err
		}
	}
	cfg, err := LoadConfig(*configPath, os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(stderr)
	defer stop()
	if rewind {
		if _, err := rewindGroup(ctx, cfg, from, newLogger(cfg.Telemetry)); err != nil {
			return err
		}
	}
	return run(ctx, cfg)
}

// run serves until ctx ends, then drains and returns.
func run(ctx context.Context, cfg *Config) error {
	logger := newLogger(cfg.Telemetry)
	tel, err := newTelemetry(ctx, cfg.Telemetry)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	if cfg.ClickHouse == nil && cfg.ScoresFile == "" {
		return errors.New("config: clickhouse.addrs (or RATERD_CLICKHOUSE_ADDR) is required for run")
	}

	var admin *adminServer
	if cfg.Admin.Listen != "off" {
		admin = newAdminServer(cfg.Admin.Listen, tel.Registry)
		ln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin.listen: %w", err)
		}
		go func() {
			if err := admin.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("admin server stopped", "err", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = admin.srv.Shutdown(sctx)
		}()
	}

	st, err := buildStack(ctx, cfg, tel, logger, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	p, reader, err := newPipeline(cfg, st, tel, logger)
	if err != nil {
		return err
	}
	defer reader.Close()
	logger.Info("raterd running", "version", version(), "topics", cfg.Kafka.Topics, "group", cfg.Kafka.GroupID,
		"evaluators", len(cfg.Evaluators), "cache", st.CacheDesc, "admin", cfg.Admin.Listen)
	if admin != nil {
		admin.ready.Store(true)
		// Not ready while draining: load balancers and rollouts see the shutdown at once.
		stop := context.AfterFunc(ctx, func() { admin.ready.Store(false) })
		defer stop()
	}
	err = p.Run(ctx)
	s := p.Stats()
	logger.Info("raterd stopped", "fetched", s.Fetched, "done", s.Done, "scores", s.Scores, "dead_letters", s.DeadLetters, "commits", s.Commits)
	return err
}
