package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"raterd/internal/cli"
)

// Run serves until ctx ends, then drains and returns.
func Run(ctx context.Context, cfg *Config) error {
	logger := NewLogger(cfg.Telemetry)
	tel, err := NewTelemetry(ctx, cfg.Telemetry)
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

	a, err := New(ctx, cfg, Options{Logger: logger, Telemetry: tel})
	if err != nil {
		return err
	}
	defer a.Close()
	st, p := a.Stack, a.Pipeline
	logger.Info("raterd running", "version", cli.Version(), "topics", cfg.Kafka.Topics, "group", cfg.Kafka.GroupID,
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
