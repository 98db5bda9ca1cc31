// Package faultproxy is a TCP proxy that breaks the network on demand, for the fault
// suite: raterd reaches ClickHouse, Redis or the judge pool through it, and a test adds
// latency, limits bandwidth, holds connections half-open (packets dropped, no reset) or
// resets them mid-stream, while traffic flows. It stands in for `ip netns` and `tc`, which
// need root and a kernel that allows them; what it cannot model is loss below TCP (the
// kernel's retransmissions): a half-open connection here is one whose bytes stop flowing
// both ways while the socket stays open, which is what the application sees of a dead
// path.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards every connection accepted on its loopback listener to the target. Its
// faults can be changed at any time and apply to connections open and new.
type Proxy struct {
	target string
	ln     net.Listener

	latency   atomic.Int64 // nanoseconds added before each chunk is forwarded
	bandwidth atomic.Int64 // bytes per second per direction and connection; 0 unlimited
	held      atomic.Bool  // half-open: nothing is forwarded, nothing is closed
	resetIn   atomic.Int64 // reset the next connection that forwards this many more upstream bytes; 0 off

	mu      sync.Mutex
	conns   map[*link]struct{}
	release chan struct{} // closed when held turns off

	accepted, resets, upBytes, downBytes atomic.Int64
	wg                                   sync.WaitGroup
	closed                               chan struct{}
}

// Stats are counters since the proxy started: they prove a fault met traffic.
type Stats struct {
	// Accepted counts connections accepted; Open those still open.
	Accepted, Open int64
	// Resets counts connections the proxy reset (ResetAll, ResetAfter).
	Resets int64
	// Up and Down count bytes forwarded to and from the target.
	Up, Down int64
}

// link is one proxied connection: the client's side and the target's.
type link struct {
	client, server net.Conn
}

// New listens on a free loopback port and forwards to target (host:port).
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[*link]struct{}{}, release: make(chan struct{}), closed: make(chan struct{})}
	close(p.release) // not held
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLatency delays every chunk forwarded, each way, by d (0: none).
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// SetBandwidth limits each direction of each connection to bytesPerSecond (0: no limit).
func (p *Proxy) SetBandwidth(bytesPerSecond int64) { p.bandwidth.Store(max(bytesPerSecond, 0)) }

// Hold makes every connection half-open while on: new connections are accepted (and
// connected to the target) but no byte is forwarded either way and nothing is closed or
// reset, as on a path whose packets are dropped. Off: forwarding resumes.
func (p *Proxy) Hold(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.held.Load() {
		return
	}
	p.held.Store(on)
	if on {
		p.release = make(chan struct{})
	} else {
		close(p.release)
	}
}

// ResetAll resets every open connection (an RST to the client, the target's side
// closed): a connection reset in the middle of whatever it was doing.
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	links := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		p.reset(l)
	}
}

// ResetAfter resets the connection that forwards the n-th upstream byte from now (n > 0),
// once: a reset in the middle of a request, such as an insert's body. 0 cancels.
func (p *Proxy) ResetAfter(n int64) { p.resetIn.Store(max(n, 0)) }

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := int64(len(p.conns))
	p.mu.Unlock()
	return Stats{Accepted: p.accepted.Load(), Open: open, Resets: p.resets.Load(), Up: p.upBytes.Load(), Down: p.downBytes.Load()}
}

// Close stops accepting, closes every connection and waits for the forwarding to stop.
func (p *Proxy) Close() error {
	select {
	case <-p.closed:
		return nil
	default:
	}
	close(p.closed)
	err := p.ln.Close()
	p.Hold(false)
	p.mu.Lock()
	for l := range p.conns {
		l.client.Close()
		l.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve connects one client to the target and forwards both ways until either side ends.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	server, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		client.Close()
		return
	}
	l := &link{client: client, server: server}
	p.mu.Lock()
	select {
	case <-p.closed:
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	default:
	}
	p.conns[l] = struct{}{}
	p.mu.Unlock()
	var both sync.WaitGroup
	both.Add(2)
	go func() { defer both.Done(); p.pipe(l, server, client, true) }()
	go func() { defer both.Done(); p.pipe(l, client, server, false) }()
	both.Wait()
	p.mu.Lock()
	delete(p.conns, l)
	p.mu.Unlock()
}

// pipe copies src to dst in chunks, applying the faults, until either end fails; then it
// closes both, so the other direction ends too.
func (p *Proxy) pipe(l *link, dst, src net.Conn, up bool) {
	defer func() {
		dst.Close()
		src.Close()
	}()
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.forward(l, dst, buf[:n], up) {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// Half-close the other way, as a plain proxy would.
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
			}
			return
		}
	}
}

// forward writes chunk to dst once the faults allow: after a hold ends, the latency and
// the bandwidth's pace; it resets the connection instead when ResetAfter's count runs out
// within the chunk. It reports whether the connection goes on.
func (p *Proxy) forward(l *link, dst net.Conn, chunk []byte, up bool) bool {
	p.mu.Lock()
	release := p.release
	p.mu.Unlock()
	select {
	case <-release:
	case <-p.closed:
		return false
	}
	if up {
		if left := p.resetIn.Load(); left > 0 {
			if int64(len(chunk)) >= left && p.resetIn.CompareAndSwap(left, 0) {
				// Forward the part before the reset point: the target sees a request cut short.
				_, _ = dst.Write(chunk[:left-1])
				p.reset(l)
				return false
			}
			p.resetIn.CompareAndSwap(left, left-int64(len(chunk)))
		}
	}
	if d := time.Duration(p.latency.Load()); d > 0 {
		if !p.sleep(d) {
			return false
		}
	}
	if bw := p.bandwidth.Load(); bw > 0 {
		if !p.sleep(time.Duration(float64(len(chunk)) / float64(bw) * float64(time.Second))) {
			return false
		}
	}
	// Counted before the write, so that a reply the peer sends once it has the bytes
	// never shows in the counters ahead of them; a short write takes back what was not
	// sent.
	counter := &p.downBytes
	if up {
		counter = &p.upBytes
	}
	counter.Add(int64(len(chunk)))
	n, err := dst.Write(chunk)
	if n < len(chunk) {
		counter.Add(int64(n - len(chunk)))
	}
	return err == nil
}

// sleep waits d unless the proxy closes first.
func (p *Proxy) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.closed:
		return false
	}
}

// reset sends the client an RST (linger 0) and closes the target's side.
func (p *Proxy) reset(l *link) {
	if tc, ok := l.client.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	l.client.Close()
	l.server.Close()
	p.resets.Add(1)
}
