package app

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"raterd/internal/testkit"
	"raterd/internal/testkit/chtest"
)

// cuttableProxy forwards TCP connections to a real server and can cut them all and refuse
// new ones, as a ClickHouse outage looks from raterd, then serve again on the same port.
type cuttableProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startCuttableProxy(t *testing.T, target string) *cuttableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{t: t, target: target, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

func (p *cuttableProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // cut while dialling: this connection must not live on
				p.mu.Unlock()
				c.Close()
				up.Close()
				continue
			}
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			p.wg.Go(func() { pipe(up, c) })
			p.wg.Go(func() { pipe(c, up) })
		}
	})
}

// cut closes the listener and every connection: the server is gone.
func (p *cuttableProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore serves again on the same address.
func (p *cuttableProxy) restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger a moment after close
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("re-listen on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// TestIntegrationClickHouseOutagePausesAndLosesNothing cuts raterd off ClickHouse in the
// middle of a drain: scoring stops at the in-flight bound instead of fetching on (memory
// stays bounded), no offset of an unwritten row is committed, and once ClickHouse is back
// every row lands exactly once.
func TestIntegrationClickHouseOutagePausesAndLosesNothing(t *testing.T) {
	s := testkit.RequireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db, group := "it-choutage-"+suffix, "raterd_itchoutage_"+suffix, "it-choutage-"+suffix
	testkit.CreateTopic(t, s.Kafka, topic, 2)
	values, invalid, _ := integrationTraffic(3000)
	if err := Produce(context.Background(), []string{s.Kafka}, topic, values); err != nil {
		t.Fatal(err)
	}
	conn := chtest.Migrated(t, s.ClickHouse, db)
	simURL, _ := startSimulator(t)
	proxy := startCuttableProxy(t, s.ClickHouse)
	viaProxy := s
	viaProxy.ClickHouse = proxy.addr
	cfg := integrationConfig(t, viaProxy, topic, group, db, simURL)
	cfg.Kafka.Batch.MaxRecords = 50
	cfg.Kafka.MaxInFlightRecords = 400
	cfg.Kafka.RetryBackoffMax = 200 * time.Millisecond
	cfg.ClickHouse.InsertInterval = 100 * time.Millisecond
	cfg.ClickHouse.WriteTimeout = 2 * time.Second

	p, _, _ := startPipeline(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for p.Stats().Done < 500 {
		select {
		case err := <-errc:
			t.Fatalf("pipeline stopped early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages done after 2 minutes", p.Stats().Done)
		}
		time.Sleep(5 * time.Millisecond)
	}

	proxy.cut()
	// Let in-flight writes fail and the pipeline settle: nothing more is done while
	// ClickHouse is away, and fetching stops at the in-flight bound.
	time.Sleep(1500 * time.Millisecond)
	during := p.Stats()
	time.Sleep(1500 * time.Millisecond)
	later := p.Stats()
	if later.Done != during.Done {
		t.Errorf("%d more messages done while ClickHouse was unreachable", later.Done-during.Done)
	}
	if inFlight := later.Fetched - later.Stale - later.Done; inFlight > int64(cfg.Kafka.MaxInFlightRecords) {
		t.Errorf("%d messages in flight during the outage, over the bound of %d", inFlight, cfg.Kafka.MaxInFlightRecords)
	}
	if later.Fetched >= int64(len(values)) {
		t.Errorf("fetched all %d messages during the outage; want fetching paused", later.Fetched)
	}
	if later.Retries == 0 {
		t.Error("no batch retries during the outage")
	}
	t.Logf("outage: %d done, %d fetched, %d retries", later.Done, later.Fetched, later.Retries)

	proxy.restore()
	waitCommittedToEnd(t, s.Kafka, topic, group, 2, 2*time.Minute)
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	var rows uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".scores FINAL").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := uint64((len(values) - invalid) * len(cfg.Evaluators)); rows != want {
		t.Fatalf("scores FINAL = %d after the outage, want %d (no loss, no duplicates)", rows, want)
	}
}

// TestIntegrationDeadLettersOnceThroughClickHouseOutage: issue 17 counted 1,107 DLQ
// messages for 515 bad records in a ClickHouse outage. A batch's dead letters go to the
// DLQ topic and to raterd.dead_letters; the topic took them, the table did not, and every
// retry of the batch sent them to the topic again. Now the retry resumes at the sink that
// failed: with ClickHouse away through many retries, the topic still holds exactly one
// letter per bad offset, and the table gets them once ClickHouse is back.
func TestIntegrationDeadLettersOnceThroughClickHouseOutage(t *testing.T) {
	s := testkit.RequireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db, group := "it-dlqoutage-"+suffix, "raterd_itdlqoutage_"+suffix, "it-dlqoutage-"+suffix
	testkit.CreateTopic(t, s.Kafka, topic, 2)
	conn := chtest.Migrated(t, s.ClickHouse, db)
	simURL, _ := startSimulator(t)
	proxy := startCuttableProxy(t, s.ClickHouse)
	viaProxy := s
	viaProxy.ClickHouse = proxy.addr
	cfg := integrationConfig(t, viaProxy, topic, group, db, simURL)
	cfg.Kafka.RetryBackoffMax = 50 * time.Millisecond
	cfg.ClickHouse.WriteTimeout = 2 * time.Second
	cfg.ClickHouse.InsertAttempts = 1

	p, _, _ := startPipeline(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()

	// Only invalid messages: their batches have no score rows, so the dead-letter writes
	// are what fails while ClickHouse is away.
	proxy.cut()
	const bad = 20
	values := make([][]byte, bad)
	for i := range values {
		values[i] = []byte(`{"model":"m", "response": "unterminated ` + strconv.Itoa(i))
	}
	if err := Produce(context.Background(), []string{s.Kafka}, topic, values); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for p.Stats().Retries < 10 { // every batch of them retried several times
		select {
		case err := <-errc:
			t.Fatalf("pipeline stopped early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d retries after 2 minutes with ClickHouse away", p.Stats().Retries)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if done := p.Stats().Done; done != 0 {
		t.Fatalf("%d messages done while the dead_letters table was unreachable", done)
	}
	proxy.restore()
	waitCommittedToEnd(t, s.Kafka, topic, group, 2, 2*time.Minute)
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	t.Logf("%d retries", p.Stats().Retries)
	checkDLQ(t, s.Kafka, topic, bad, nil)
	var distinct uint64
	if err := conn.QueryRow(context.Background(), "SELECT uniqExact(partition, offset) FROM "+db+".dead_letters").Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if distinct != bad {
		t.Fatalf("dead_letters holds %d distinct offsets, want %d", distinct, bad)
	}
}
