package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// echoServer is the target: it echoes what it reads, and records everything it received.
type echoServer struct {
	ln   net.Listener
	mu   sync.Mutex
	got  bytes.Buffer
	done sync.WaitGroup
}

func newEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.done.Add(1)
			go func() {
				defer e.done.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						e.mu.Lock()
						e.got.Write(buf[:n])
						e.mu.Unlock()
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return e
}

func (e *echoServer) received() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return bytes.Clone(e.got.Bytes())
}

func newProxy(t *testing.T) (*Proxy, *echoServer) {
	t.Helper()
	e := newEcho(t)
	p, err := New(e.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, e
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads its echo, within deadline.
func roundTrip(c net.Conn, msg []byte, deadline time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(deadline)); err != nil {
		return err
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs")
	}
	return nil
}

func TestForwardsAndCounts(t *testing.T) {
	p, _ := newProxy(t)
	c := dial(t, p)
	if err := roundTrip(c, []byte("hello"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Accepted != 1 || s.Open != 1 || s.Up != 5 || s.Down != 5 || s.Resets != 0 {
		t.Errorf("stats = %+v", s)
	}
}

// TestLatency: each chunk is delayed at least the latency, each way (a lower bound only;
// this machine may be slower, never faster).
func TestLatency(t *testing.T) {
	p, _ := newProxy(t)
	c := dial(t, p)
	p.SetLatency(100 * time.Millisecond)
	start := time.Now()
	if err := roundTrip(c, []byte("x"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("round trip took %s, want at least 200ms (100ms each way)", took)
	}
}

func TestBandwidth(t *testing.T) {
	p, _ := newProxy(t)
	c := dial(t, p)
	p.SetBandwidth(64 << 10) // 64 KiB/s each way
	start := time.Now()
	if err := roundTrip(c, bytes.Repeat([]byte("b"), 32<<10), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// The echo pipelines the two directions, so the floor is one direction's 0.5s.
	if took := time.Since(start); took < 490*time.Millisecond {
		t.Errorf("32 KiB each way at 64 KiB/s took %s, want at least 0.5s", took)
	}
}

// TestHold: while held, nothing flows and nothing is closed; released, the held bytes
// arrive.
func TestHold(t *testing.T) {
	p, e := newProxy(t)
	c := dial(t, p)
	if err := roundTrip(c, []byte("before"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Hold(true)
	err := roundTrip(c, []byte("during"), 300*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("round trip while held: %v, want a timeout (no data, no reset)", err)
	}
	if got := string(e.received()); got != "before" {
		t.Errorf("the target received %q while held, want only %q", got, "before")
	}
	p.Hold(false)
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("during"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "during" {
		t.Fatalf("after release read %q, %v; want the held bytes", got, err)
	}
}

func TestResetAll(t *testing.T) {
	p, _ := newProxy(t)
	c := dial(t, p)
	if err := roundTrip(c, []byte("x"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.ResetAll()
	err := roundTrip(c, []byte("y"), 5*time.Second)
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("after reset: %v, want a connection reset", err)
	}
	if s := p.Stats(); s.Resets != 1 {
		t.Errorf("resets = %d, want 1", s.Resets)
	}
}

// TestResetAfter: the connection is reset in the middle of a request: the target got the
// bytes before the reset point only.
func TestResetAfter(t *testing.T) {
	p, e := newProxy(t)
	c := dial(t, p)
	p.ResetAfter(10)
	err := roundTrip(c, bytes.Repeat([]byte("z"), 100), 5*time.Second)
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("round trip across the reset point: %v, want the connection reset", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.received()) < 9 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := len(e.received()); got != 9 {
		t.Errorf("the target received %d bytes, want the 9 before the reset point", got)
	}
	// Once only: a new connection goes through.
	if err := roundTrip(dial(t, p), []byte("again"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestCloseEndsConnections(t *testing.T) {
	p, _ := newProxy(t)
	c := dial(t, p)
	p.Hold(true)
	_, _ = c.Write([]byte("held"))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Close succeeded")
	}
}
