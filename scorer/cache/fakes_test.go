package cache

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// fakeClock is a settable clock for cooldowns and expiries.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeRemote is a recording fake of the Remote tier: it stores items in a map with their
// expiry, records every call, and runs behave (when set) at the start of each call, which
// can fail, block or wait for the context.
type fakeRemote struct {
	now func() time.Time

	mu     sync.Mutex
	items  map[string]Item
	gets   [][]string
	sets   [][]Entry
	behave func(ctx context.Context) error
}

func newFakeRemote(now func() time.Time) *fakeRemote {
	return &fakeRemote{now: now, items: make(map[string]Item)}
}

func (f *fakeRemote) put(key, value string, ttl time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items[key] = Item{Value: []byte(value), Expires: f.now().Add(ttl)}
}

func (f *fakeRemote) setBehaviour(b func(ctx context.Context) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.behave = b
}

func (f *fakeRemote) calls() (gets, sets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.gets), len(f.sets)
}

func (f *fakeRemote) lastGet() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.gets) == 0 {
		return nil
	}
	return f.gets[len(f.gets)-1]
}

func (f *fakeRemote) GetManyTTL(ctx context.Context, keys []string) ([]Item, error) {
	f.mu.Lock()
	f.gets = append(f.gets, slices.Clone(keys))
	behave := f.behave
	f.mu.Unlock()
	if behave != nil {
		if err := behave(ctx); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	out := make([]Item, len(keys))
	for i, k := range keys {
		if it, ok := f.items[k]; ok && it.Expires.After(now) {
			out[i] = it
		}
	}
	return out, nil
}

func (f *fakeRemote) SetMany(ctx context.Context, entries []Entry) error {
	f.mu.Lock()
	f.sets = append(f.sets, slices.Clone(entries))
	behave := f.behave
	f.mu.Unlock()
	if behave != nil {
		if err := behave(ctx); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range entries {
		f.items[e.Key] = Item{Value: e.Value, Expires: f.now().Add(e.TTL)}
	}
	return nil
}

// recordingHandler is a slog.Handler that keeps every record.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// count returns how many records at level have message msg.
func (h *recordingHandler) count(level slog.Level, msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.Level == level && r.Message == msg {
			n++
		}
	}
	return n
}

// attr returns the first record with message msg's attribute key.
func (h *recordingHandler) attr(msg, key string) (slog.Value, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		if r.Message != msg {
			continue
		}
		var v slog.Value
		found := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				v, found = a.Value, true
				return false
			}
			return true
		})
		return v, found
	}
	return slog.Value{}, false
}
