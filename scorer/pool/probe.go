package pool

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxProbeBody bounds what is read of a health answer (to reuse the connection).
const maxProbeBody = 64 << 10

// startProbeLocked starts ep's prober if its breaker is probed by health checks and none
// runs. p.mu is held.
func (p *Pool) startProbeLocked(ep *endpoint) {
	if ep.healthURL == "" || ep.probing || ep.removed || p.closed {
		return
	}
	ep.probing = true
	p.bg.Add(1)
	go p.probeLoop(ep)
}

// probeLoop waits out ep's cooldown, probes its health, and closes the breaker or opens
// it again for a doubled cooldown, until the breaker closes, the endpoint is removed or
// the pool closes.
func (p *Pool) probeLoop(ep *endpoint) {
	defer p.bg.Done()
	stop := func() bool { // p.mu is held
		if p.closed || ep.removed || ep.br.state == stateClosed {
			ep.probing = false
			return true
		}
		return false
	}
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		p.mu.Lock()
		if stop() {
			p.mu.Unlock()
			return
		}
		wait := time.Until(ep.br.readyAt())
		p.mu.Unlock()
		t.Reset(max(wait, 0))
		select {
		case <-t.C:
		case <-ep.ctx.Done():
			p.mu.Lock()
			ep.probing = false
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		if stop() {
			p.mu.Unlock()
			return
		}
		ep.br.probing()
		n := p.stateNote(ep, "probing "+ep.healthURL)
		p.mu.Unlock()
		p.emit([]note{n})

		err := p.probe(ep)

		p.mu.Lock()
		if stop() {
			p.mu.Unlock()
			return
		}
		ep.br.probed(err == nil, time.Now())
		why := "health probe succeeded"
		if err != nil {
			why = "health probe failed: " + err.Error()
		} else {
			ep.lim.reset(ep.initial)
			ep.probing = false
			p.signalLocked()
		}
		n = p.stateNote(ep, why)
		p.mu.Unlock()
		p.emit([]note{n})
		if err == nil {
			return
		}
	}
}

// probe asks ep's health URL; nil means healthy (2xx within the timeout).
func (p *Pool) probe(ep *endpoint) error {
	ctx, cancel := context.WithTimeout(ep.ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.healthURL, nil)
	if err != nil {
		return err
	}
	for k, vs := range p.opts.ProbeHeader {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("User-Agent", "raterd")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}
