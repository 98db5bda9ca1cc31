package main

import (
	"io"

	"raterd/internal/app"
	"raterd/internal/cli"
)

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("demo", "demo [--format raterd|otlp_proto|otlp_json|mixed] [--traffic FILE] [--clickhouse host:port] [--redis host:port] [--out FILE] [--report FILE]", stderr)
	format := fs.String("format", "raterd", "how the traffic travels on the topic: raterd (JSON records), otlp_proto or otlp_json (OTLP GenAI spans as an OpenTelemetry Collector writes them) or mixed (half each, read with format auto)")
	trafficPath := fs.String("traffic", "testdata/traffic.jsonl", "JSON-lines traffic to load; when the file is missing, the same traffic is generated in memory")
	chAddr := fs.String("clickhouse", "", "also write scores to this ClickHouse (native host:port); the schema is migrated first")
	redisAddr := fs.String("redis", "", "use this Redis as the cache instead of the in-process one")
	out := fs.String("out", "raterd-demo-scores.ndjson", "NDJSON file for the score rows")
	report := fs.String("report", "raterd-demo-report.html", `HTML quality report of the run, one self-contained file to open in a browser (built from --out; "" writes none)`)
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := cli.SignalContext(stderr)
	defer stop()
	return app.Demo(ctx, app.DemoOptions{Traffic: *trafficPath, ClickHouse: *chAddr, Redis: *redisAddr, Out: *out, Report: *report, Quiet: *quiet, Format: *format}, stdout, stderr)
}
