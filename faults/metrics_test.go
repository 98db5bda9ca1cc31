package faults

// Each raterd the suite starts serves its metrics on an admin port of its own; the suite
// scrapes them while the scenario runs, so that it can tell whether the fault was really
// met (Redis errors counted during a Redis outage, failed inserts during a ClickHouse
// outage, …) and not just survived by a process that never touched the faulted service.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// metricsSample is one scrape of a process's /metrics: the value of every series,
// keyed by its name and labels as the exposition prints them (name{a="x",b="y"}).
type metricsSample map[string]float64

// scrapeMetrics reads addr's /metrics in the Prometheus text format.
func scrapeMetrics(ctx context.Context, addr string) (metricsSample, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("scrape %s: %s", addr, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics parses the Prometheus text format (no timestamps: client_golang writes
// none).
func parseMetrics(r io.Reader) (metricsSample, error) {
	s := metricsSample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		s[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return s, nil
}

// sum adds the series of metric name whose labels include every one of labels (each
// written as in the exposition: `reason="error"`).
func (s metricsSample) sum(name string, labels ...string) float64 {
	var total float64
	for series, v := range s {
		base, rest, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
				break
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

// counters is what the suite reads from every raterd's metrics: the sum, over the
// processes of a scenario, of each one's last scrape.
type counters struct {
	fetched          float64 // raterd_consumer_records_total: messages fetched
	judgeCalls       float64 // raterd_scorer_judge_calls_total{judge="sim"}: calls to the model judge
	redisRoundTrips  float64 // raterd_cache_round_trips_total: calls that reached Redis
	redisErrors      float64 // raterd_cache_bypass_total, reason error or timeout
	insertErrors     float64 // raterd_clickhouse_insert_errors_total: failed insert attempts
	commitErrors     float64 // raterd_consumer_commits_total{result="error"}
	judgeRetryable   float64 // raterd_pool_attempts_total{outcome="retryable"}
	judgeCanceled    float64 // … {outcome="canceled"}: hung calls cut off
	scrapesSucceeded int
}

func countersOf(s metricsSample) counters {
	return counters{
		fetched:         s.sum("raterd_consumer_records_total"),
		judgeCalls:      s.sum("raterd_scorer_judge_calls_total", `judge="sim"`),
		redisRoundTrips: s.sum("raterd_cache_round_trips_total"),
		redisErrors:     s.sum("raterd_cache_bypass_total", `reason="error"`) + s.sum("raterd_cache_bypass_total", `reason="timeout"`),
		insertErrors:    s.sum("raterd_clickhouse_insert_errors_total"),
		commitErrors:    s.sum("raterd_consumer_commits_total", `result="error"`),
		judgeRetryable:  s.sum("raterd_pool_attempts_total", `outcome="retryable"`),
		judgeCanceled:   s.sum("raterd_pool_attempts_total", `outcome="canceled"`),
	}
}

func (c counters) add(o counters) counters {
	return counters{
		fetched: c.fetched + o.fetched, judgeCalls: c.judgeCalls + o.judgeCalls,
		redisRoundTrips: c.redisRoundTrips + o.redisRoundTrips, redisErrors: c.redisErrors + o.redisErrors,
		insertErrors: c.insertErrors + o.insertErrors, commitErrors: c.commitErrors + o.commitErrors,
		judgeRetryable: c.judgeRetryable + o.judgeRetryable, judgeCanceled: c.judgeCanceled + o.judgeCanceled,
		scrapesSucceeded: c.scrapesSucceeded + o.scrapesSucceeded,
	}
}

func (c counters) minus(o counters) counters {
	return counters{
		fetched: c.fetched - o.fetched, judgeCalls: c.judgeCalls - o.judgeCalls,
		redisRoundTrips: c.redisRoundTrips - o.redisRoundTrips, redisErrors: c.redisErrors - o.redisErrors,
		insertErrors: c.insertErrors - o.insertErrors, commitErrors: c.commitErrors - o.commitErrors,
		judgeRetryable: c.judgeRetryable - o.judgeRetryable, judgeCanceled: c.judgeCanceled - o.judgeCanceled,
	}
}

// logSince returns what a process's log gained after offset (its size when the fault
// began), and the log's size now.
func logSince(path string, offset int64) (string, int64) {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return "", int64(len(b))
	}
	return string(b[offset:]), int64(len(b))
}

// kafkaClientWarnings counts the lines of a raterd log in which its Kafka client
// reported an error (kafka-go's error logger, through consumer.BrokerText, and failed
// commits).
func kafkaClientWarnings(log string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) &&
			(strings.Contains(line, `msg="kafka`) || strings.Contains(line, "commit")) {
			n++
		}
	}
	return n
}
