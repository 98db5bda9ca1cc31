package cache

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Memory is a bounded in-process cache: least recently used entries are evicted once the
// stored keys and values exceed MaxBytes. Safe for concurrent use.
type Memory struct {
	mu       sync.Mutex
	maxBytes int
	bytes    int
	order    *list.List // front = most recently used; values are *memoryEntry
	entries  map[string]*list.Element
	now      func() time.Time
}

type memoryEntry struct {
	key     string
	value   []byte
	expires time.Time
}

// NewMemory returns an in-process cache bounded to maxBytes of keys and values.
func NewMemory(maxBytes int) *Memory {
	return &Memory{maxBytes: maxBytes, order: list.New(), entries: make(map[string]*list.Element), now: time.Now}
}

// GetMany implements Cache.
func (m *Memory) GetMany(_ context.Context, keys []string) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		el, ok := m.entries[k]
		if !ok {
			continue
		}
		e := el.Value.(*memoryEntry)
		if now.After(e.expires) {
			m.remove(el)
			continue
		}
		m.order.MoveToFront(el)
		out[i] = e.value
	}
	return out, nil
}

// SetMany implements Cache.
func (m *Memory) SetMany(_ context.Context, entries []Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for _, in := range entries {
		size := len(in.Key) + len(in.Value)
		if size > m.maxBytes {
			continue // would evict everything and still not fit
		}
		if el, ok := m.entries[in.Key]; ok {
			m.remove(el)
		}
		e := &memoryEntry{key: in.Key, value: in.Value, expires: now.Add(in.TTL)}
		m.entries[in.Key] = m.order.PushFront(e)
		m.bytes += size
		for m.bytes > m.maxBytes {
			m.remove(m.order.Back())
		}
	}
	return nil
}

// Len is the number of stored entries, expired ones included until touched.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

func (m *Memory) remove(el *list.Element) {
	e := m.order.Remove(el).(*memoryEntry)
	delete(m.entries, e.key)
	m.bytes -= len(e.key) + len(e.value)
}
