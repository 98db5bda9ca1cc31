package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"raterd/internal/cli"
	"raterd/internal/telemetry"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Telemetry holds the providers injected into every stage, and the Prometheus registry
// the admin server exposes.
type Telemetry struct {
	// Meters is the meter provider: Prometheus (Registry), plus OTLP when configured.
	Meters metric.MeterProvider
	// Tracers is the tracer provider: OTLP when configured, otherwise a no-op one.
	Tracers trace.TracerProvider
	// Registry is what the admin server exposes on /metrics.
	Registry *prometheus.Registry
	shutdown []func(context.Context) error
}

// NewLogger builds the process logger from the telemetry config.
func NewLogger(cfg TelemetryConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// NewTelemetry sets up metrics (Prometheus pull, plus OTLP push when configured) and
// traces (OTLP when configured, otherwise no-op so unexported spans cost nothing).
func NewTelemetry(ctx context.Context, cfg TelemetryConfig) (*Telemetry, error) {
	t := &Telemetry{Registry: prometheus.NewRegistry()}
	res := serviceResource(cfg)
	promExp, err := otelprom.New(otelprom.WithRegisterer(t.Registry))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp)}
	if cfg.OTLPEndpoint != "" {
		var eo []otlpmetricgrpc.Option
		eo = append(eo, otlpmetricgrpc.WithEndpoint(cfg.OTLPEndpoint))
		if cfg.OTLPInsecure {
			eo = append(eo, otlpmetricgrpc.WithInsecure())
		}
		mexp, err := otlpmetricgrpc.New(ctx, eo...)
		if err != nil {
			return nil, fmt.Errorf("otlp metric exporter: %w", err)
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(15*time.Second))))
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	t.Meters = mp
	t.shutdown = append(t.shutdown, mp.Shutdown)

	if cfg.OTLPEndpoint != "" {
		var eo []otlptracegrpc.Option
		eo = append(eo, otlptracegrpc.WithEndpoint(cfg.OTLPEndpoint))
		if cfg.OTLPInsecure {
			eo = append(eo, otlptracegrpc.WithInsecure())
		}
		texp, err := otlptracegrpc.New(ctx, eo...)
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(texp))
		t.Tracers = tp
		t.shutdown = append(t.shutdown, tp.Shutdown)
	} else {
		t.Tracers = noop.NewTracerProvider()
	}
	return t, nil
}

// serviceResource is raterd's OTel resource: service.name (telemetry.service_name) and
// service.version, on its metrics, spans and score events.
func serviceResource(cfg TelemetryConfig) *resource.Resource {
	return resource.NewSchemaless(semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(cli.Version()))
}

// Settings are the telemetry.Settings every component is built with: logger, and the
// application's meter and tracer providers. A nil t leaves the providers unset (the
// components then fall back to the OTel globals).
func (t *Telemetry) Settings(logger *slog.Logger) telemetry.Settings {
	s := telemetry.Settings{Logger: logger}
	if t != nil {
		s.MeterProvider, s.TracerProvider = t.Meters, t.Tracers
	}
	return s
}

// Shutdown flushes exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// adminServer serves /metrics, /healthz (the process is alive) and /readyz (the
// pipeline runs, and consumes or is idle for a reason that is no fault: see readiness).
type adminServer struct {
	srv *http.Server
	// ready is set once the pipeline is built and cleared when shutdown begins.
	ready atomic.Bool
	// consuming, when not nil, is asked while ready is set.
	consuming readinessCheck
	// report serves GET /report; set before serving, nil: 404 (see reportEndpoint).
	report *reportEndpoint
}

// readinessCheck says why the running pipeline is not ready, "" when it is (readiness).
type readinessCheck interface {
	notReady(ctx context.Context) string
}

// newAdminServer serves the metrics of reg as cfg says (listen address, token, TLS,
// pprof); consuming (may be nil) decides /readyz once ready is set. logger tells of
// token file changes.
func newAdminServer(cfg AdminConfig, reg *prometheus.Registry, consuming readinessCheck, logger *slog.Logger) (*adminServer, error) {
	a := &adminServer{consuming: consuming}
	auth := &adminAuth{}
	if cfg.TokenFile != "" {
		tok, err := newTokenFile(cfg.TokenFile, logger)
		if err != nil {
			return nil, err
		}
		auth.token = tok
	}
	var tlsCfg *tls.Config
	if cfg.TLS != nil {
		var err error
		if tlsCfg, err = cfg.TLS.load(cfg.AuthHealth, logger); err != nil {
			return nil, err
		}
		auth.mtls = tlsCfg.ClientCAs != nil
	}
	health := func(h http.Handler) http.Handler { return h }
	if cfg.AuthHealth {
		health = auth.wrap
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", auth.wrap(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	mux.Handle("GET /healthz", health(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})))
	mux.Handle("GET /readyz", health(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		if a.consuming != nil {
			if why := a.consuming.notReady(r.Context()); why != "" {
				http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})))
	mux.Handle("GET /report", auth.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.report.ServeHTTP(w, r)
	})))
	if cfg.PProf {
		handlePProf(mux, auth)
	}
	a.srv = &http.Server{Addr: cfg.Listen, Handler: mux, TLSConfig: tlsCfg, ReadHeaderTimeout: 5 * time.Second}
	return a, nil
}

// serve serves on ln, over TLS when admin.tls is set, until the server shuts down.
func (a *adminServer) serve(ln net.Listener) error {
	if a.srv.TLSConfig != nil {
		return a.srv.ServeTLS(ln, "", "")
	}
	return a.srv.Serve(ln)
}
