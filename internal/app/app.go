// Package app is raterd the application: its configuration file (each section owned by
// the package it configures), the wiring of consumer, scorer and sinks into one pipeline,
// telemetry and the admin server, and Run. It is the only package that knows every other
// one; cmd/raterd parses flags and prints, and calls it.
package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"raterd/consumer"
	"raterd/sinks"
)

// Options are the optional collaborators of New.
type Options struct {
	// Logger defaults to NewLogger(cfg.Telemetry).
	Logger *slog.Logger
	// Telemetry defaults to NewTelemetry(cfg.Telemetry), shut down by Close; one given
	// here belongs to the caller.
	Telemetry *Telemetry
	// AlsoScores, when set, receives every score row after the configured sinks have
	// written it (the demo's summary).
	AlsoScores consumer.ScoreSink
}

// App is raterd built from one Config: telemetry, the stack (judges, cache, sinks) and
// the consumer pipeline on a consumer-group member. run, demo, bench and the integration
// tests all build through New.
type App struct {
	// Config is what the app was built from.
	Config *Config
	// Telemetry holds the providers every stage got.
	Telemetry *Telemetry
	// Stack is the judges, cache and sinks.
	Stack *Stack
	// Pipeline is the consumer; Run it until its context ends.
	Pipeline *consumer.Pipeline

	reader       io.Closer // the consumer-group member
	ownTelemetry bool      // New made Telemetry, so Close shuts it down
	closeOnce    sync.Once
	closeErr     error
}

// New builds the app for cfg (which must have passed Validate). A ClickHouse schema that
// is behind the migrations this build needs is an error naming the missing migration.
func New(ctx context.Context, cfg *Config, o Options) (*App, error) {
	logger := o.Logger
	if logger == nil {
		logger = NewLogger(cfg.Telemetry)
	}
	a := &App{Config: cfg, Telemetry: o.Telemetry}
	if a.Telemetry == nil {
		tel, err := NewTelemetry(ctx, cfg.Telemetry)
		if err != nil {
			return nil, err
		}
		a.Telemetry, a.ownTelemetry = tel, true
	}
	st, err := Build(ctx, cfg, a.Telemetry, logger, nil)
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	a.Stack = st
	if o.AlsoScores != nil {
		st.Scores = sinks.MultiScoreSink{st.Scores, o.AlsoScores}
	}
	p, reader, err := NewPipeline(cfg, st, a.Telemetry, logger)
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	a.Pipeline, a.reader = p, reader
	return a, nil
}

// Close leaves the consumer group, then closes the stack (Stack.Close: judges, alerting,
// sinks, cache, in the order written there), then flushes and stops the telemetry New
// made, so the last metrics and spans of the steps before are exported. Safe to call
// twice, and on an App that New left half-built.
func (a *App) Close() error {
	a.closeOnce.Do(func() {
		var errs []error
		if a.reader != nil {
			errs = append(errs, a.reader.Close())
		}
		if a.Stack != nil {
			errs = append(errs, a.Stack.Close())
		}
		if a.ownTelemetry {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, a.Telemetry.Shutdown(ctx))
			cancel()
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

var _ io.Closer = (*App)(nil)
