package pool

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// dnsLookupTimeout bounds one lookup.
const dnsLookupTimeout = 10 * time.Second

// dnsLoop resolves the DNS name now and every Refresh until the pool closes. A failed
// lookup keeps the current endpoints and is retried sooner: after 1s, doubling up to
// Refresh.
func (p *Pool) dnsLoop() {
	defer p.bg.Done()
	d := p.cfg.DNS
	retry := time.Second
	t := time.NewTimer(0)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-t.C:
		case <-p.closing.Done():
			return
		}
		err := p.resolve()
		next := d.Refresh
		switch {
		case p.closing.Err() != nil:
			return
		case err != nil:
			p.log.Warn("judge pool: DNS lookup failed; keeping the current endpoints", "name", d.Name, "endpoints", len(p.Stats()), "retry_in", min(retry, d.Refresh), "err", err)
			next, retry, failing = min(retry, d.Refresh), min(2*retry, d.Refresh), true
		case failing:
			p.log.Info("judge pool: DNS lookup works again", "name", d.Name)
			retry, failing = time.Second, false
		}
		t.Reset(next)
	}
}

// resolve looks the name up once and updates the endpoints.
func (p *Pool) resolve() error {
	d := p.cfg.DNS
	ctx, cancel := context.WithTimeout(p.closing, min(dnsLookupTimeout, max(d.Refresh, time.Second)))
	defer cancel()
	addrs, err := p.opts.Resolver.LookupHost(ctx, d.Name)
	if err != nil {
		return err
	}
	urls := make([]string, 0, len(addrs))
	for _, a := range addrs {
		u, err := endpointURL(d, a)
		if err != nil {
			return err
		}
		urls = append(urls, u)
	}
	slices.Sort(urls)
	urls = slices.Compact(urls)
	p.setEndpoints(urls, d.MaxInFlight)
	return nil
}

// endpointURL is the base URL for one resolved address: scheme://addr:port/path, with
// an IPv6 address in brackets and its zone escaped ("%25", RFC 6874). A zone must be
// non-empty, on an IPv6 address, and of URL-unreserved characters (as interface names
// and indexes are); other addresses are refused, as no URL reaches them.
func endpointURL(d *DNS, addr string) (string, error) {
	ipText, zone, hasZone := strings.Cut(addr, "%")
	if ip := net.ParseIP(ipText); ip == nil {
		return "", fmt.Errorf("resolver answered %q, not an IP address", addr)
	}
	host := ipText
	if hasZone {
		if !strings.Contains(ipText, ":") || !urlZone(zone) {
			return "", fmt.Errorf("resolver answered %q: a zone must be non-empty, on an IPv6 address, of letters, digits and -._~", addr)
		}
		host += "%25" + zone
	}
	return d.Scheme + "://" + net.JoinHostPort(host, strconv.Itoa(d.Port)) + d.Path, nil
}

// urlZone reports whether an IPv6 zone can be written in a URL as it is: non-empty and
// of unreserved characters (RFC 3986 unreserved, as RFC 6874 allows unescaped).
func urlZone(z string) bool {
	if z == "" {
		return false
	}
	for i := 0; i < len(z); i++ {
		c := z[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			return false
		}
	}
	return true
}

// setEndpoints makes urls the pool's endpoints: new ones are added, missing ones
// removed (their running attempts finish; their prober stops).
func (p *Pool) setEndpoints(urls []string, maxInFlight int) {
	var added, removed []string
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	keep := p.eps[:0]
	for _, e := range p.eps {
		if _, ok := slices.BinarySearch(urls, e.url); ok {
			keep = append(keep, e)
			continue
		}
		e.removed = true
		e.cancel()
		removed = append(removed, e.url)
	}
	clear(p.eps[len(keep):])
	p.eps = keep
	for _, u := range urls {
		if !slices.ContainsFunc(p.eps, func(e *endpoint) bool { return e.url == u }) {
			p.addLocked(u, maxInFlight)
			added = append(added, u)
		}
	}
	if len(p.eps) > 0 {
		p.next %= len(p.eps)
	} else {
		p.next = 0
	}
	if len(added) > 0 {
		p.signalLocked()
	}
	n := len(p.eps)
	p.mu.Unlock()
	for _, u := range added {
		p.log.Info("judge pool: endpoint added", "endpoint", u, "name", p.cfg.DNS.Name, "endpoints", n)
	}
	for _, u := range removed {
		p.log.Info("judge pool: endpoint removed", "endpoint", u, "name", p.cfg.DNS.Name, "endpoints", n)
	}
}
