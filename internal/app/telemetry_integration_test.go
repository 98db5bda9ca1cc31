package app

// raterd's OTLP export against the real OpenTelemetry Collector of the dev stack
// (scripts/services.sh; skipped without RATERD_TEST_OTELCOL, failed with
// RATERD_REQUIRE_SERVICES=1).

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"raterd/internal/testkit"
)

// otlpFileLine is the part of one line of the collector's file exporter (OTLP/JSON, one
// export request per line) this test reads.
type otlpFileLine struct {
	ResourceSpans []struct {
		Resource   otlpResource `json:"resource"`
		ScopeSpans []struct {
			Spans []struct {
				Name    string `json:"name"`
				TraceID string `json:"traceId"`
			} `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
	ResourceMetrics []struct {
		Resource     otlpResource `json:"resource"`
		ScopeMetrics []struct {
			Metrics []struct {
				Name string `json:"name"`
			} `json:"metrics"`
		} `json:"scopeMetrics"`
	} `json:"resourceMetrics"`
}

type otlpResource struct {
	Attributes []struct {
		Key   string `json:"key"`
		Value struct {
			StringValue string `json:"stringValue"`
		} `json:"value"`
	} `json:"attributes"`
}

func (r otlpResource) serviceName() string {
	for _, a := range r.Attributes {
		if a.Key == "service.name" {
			return a.Value.StringValue
		}
	}
	return ""
}

// collectorReceived reads the collector's export file and returns the span names and
// metric names it got from service.
func collectorReceived(t *testing.T, path, service string) (spans, metrics []string) {
	t.Helper()
	testkit.CollectorExport(t, path, []string{service}, func(line *otlpFileLine) {
		for _, rs := range line.ResourceSpans {
			if rs.Resource.serviceName() != service {
				continue
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans = append(spans, s.Name)
				}
			}
		}
		for _, rm := range line.ResourceMetrics {
			if rm.Resource.serviceName() != service {
				continue
			}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					metrics = append(metrics, m.Name)
				}
			}
		}
	})
	return spans, metrics
}

// TestIntegrationOTLPExportReachesACollector: `raterd run` with telemetry.otlp_endpoint set
// scores a topic, and its spans (batch, scorer, sink) and metrics arrive at a real
// OpenTelemetry Collector over OTLP/gRPC.
func TestIntegrationOTLPExportReachesACollector(t *testing.T) {
	s := testkit.RequireServices(t)
	collector := testkit.Service(t, "RATERD_TEST_OTELCOL", "OpenTelemetry Collector")
	exportFile := testkit.Service(t, "RATERD_TEST_OTELCOL_FILE", "the OpenTelemetry Collector's export file")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "it-otlp-" + suffix
	testkit.CreateTopic(t, s.Kafka, topic, 2)
	t.Cleanup(func() { testkit.DeleteTopics(s.Kafka, topic, topic+".dlq") })

	cfg := readyzRunConfig(t, s.Kafka, topic, "it-otlp-"+suffix)
	service := "raterd-otlp-" + suffix // this run's resource, among whatever else the collector got
	cfg.Telemetry.OTLPEndpoint, cfg.Telemetry.OTLPInsecure, cfg.Telemetry.ServiceName = collector, true, service
	values, _, _ := integrationTraffic(30)
	if err := Produce(context.Background(), []string{s.Kafka}, topic, values); err != nil {
		t.Fatal(err)
	}
	stop := startRun(t, cfg, &logBuffer{})
	waitScores(t, cfg.ScoresFile, 1, 60*time.Second)
	stop() // shuts telemetry down: the exporters flush

	want := []string{"consumer.batch", "scorer.Score", "sink.write_scores"}
	var spans, metrics []string
	deadline := time.Now().Add(30 * time.Second) // the collector writes its file asynchronously
	for {
		spans, metrics = collectorReceived(t, exportFile, service)
		if !slices.ContainsFunc(want, func(n string) bool { return !slices.Contains(spans, n) }) && slices.Contains(metrics, "raterd.consumer.records") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the collector has spans %v and metrics %v from %s; want spans %v and metric raterd.consumer.records", spans, metrics, service, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the collector got %d spans and %d metric data sets from %s", len(spans), len(metrics), service)
}
