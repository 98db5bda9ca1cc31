package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
)

// verdictEntries returns n entries shaped like the scorer's: a 64-hex-character key (a
// SHA-256, as scorer.CacheKey makes) and a JSON verdict of about 200–600 bytes, marshalled
// as encodeVerdict does (so the value's capacity is what json.Marshal allocates).
func verdictEntries(n int, seed uint64) []Entry {
	rng := rand.New(rand.NewPCG(seed, 1))
	words := strings.Fields("the response addresses the request accurately but omits a step the user asked for and repeats the question")
	out := make([]Entry, n)
	for i := range out {
		sum := sha256.Sum256(fmt.Appendf(nil, "%d/%d", seed, i))
		var expl strings.Builder
		for want := 120 + rng.IntN(400); expl.Len() < want; {
			expl.WriteString(words[rng.IntN(len(words))])
			expl.WriteByte(' ')
		}
		v, err := json.Marshal(struct {
			Value       float64 `json:"value"`
			Label       string  `json:"label,omitempty"`
			Confidence  float64 `json:"confidence,omitempty"`
			Explanation string  `json:"explanation,omitempty"`
			Judge       string  `json:"judge"`
		}{float64(1 + rng.IntN(5)), "helpful", rng.Float64(), expl.String(), "judge-pool/prometheus-eval/prometheus-7b-v2.0"})
		if err != nil {
			panic(err)
		}
		out[i] = Entry{Key: hex.EncodeToString(sum[:]), Value: v, TTL: time.Hour}
	}
	return out
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// fillVerdicts stores realistic verdict entries in m, in batches of 256 (a batch's
// worth), until it has evicted for a while: overfill times the entries its bound holds.
// The batches are dropped as they are stored, so what stays live is what m keeps. With
// backfill the values are stored as Tiered's backfill stores them: the payload of an
// envelope read from Redis, which go-redis allocates with two bytes more (the CRLF) and
// whose capacity, so charged, leaves out the 8-byte expiry in front.
func fillVerdicts(m *Memory, overfill float64, backfill bool) {
	ctx := context.Background()
	perEntry := 64 + 400 + entryOverhead // a guess of the charge, to size the fill
	total := int(overfill * float64(m.maxBytes) / float64(perEntry))
	for i := 0; i < total; i += 256 {
		batch := verdictEntries(min(256, total-i), uint64(i))
		if !backfill {
			_ = m.SetMany(ctx, batch)
			continue
		}
		keys := make([]string, len(batch))
		items := make([]Item, len(batch))
		exp := time.Now().Add(time.Hour)
		for j, e := range batch {
			raw := make([]byte, envelopeHeader+len(e.Value)+2)[:envelopeHeader+len(e.Value)]
			copy(raw[envelopeHeader:], e.Value)
			raw = raw[:len(raw):len(raw)] // go-redis's StringCmd.Bytes: capacity = length
			keys[j], items[j] = e.Key, Item{Value: raw[envelopeHeader:], Expires: exp}
		}
		m.setUntil(keys, items)
	}
}

// BenchmarkMemoryHeapPerEntry fills the in-process tier to its bound with verdict-shaped
// entries (64-hex-character keys, JSON verdicts of about 200–600 bytes) and reports the
// live heap it really holds against what it charges itself: heap/bound (the live heap
// it added, over its local_bytes bound), heap/charged (over its own byte count, Bytes),
// and both per entry. A ratio is a measurement, not a pass or fail. Run with
//
//	go test ./scorer/cache/ -run '^$' -bench BenchmarkMemoryHeapPerEntry -benchtime 3x
func BenchmarkMemoryHeapPerEntry(b *testing.B) {
	for _, bound := range []int{4 << 20, DefaultLocalBytes} {
		for _, backfill := range []bool{false, true} {
			source := "set"
			if backfill {
				source = "backfill"
			}
			b.Run(fmt.Sprintf("bound=%dMiB/%s", bound>>20, source), func(b *testing.B) {
				var heap, charged, entries float64
				for b.Loop() {
					before := liveHeap()
					m := NewMemory(bound)
					fillVerdicts(m, 1.5, backfill)
					after := liveHeap()
					heap += float64(after) - float64(before)
					charged += float64(m.Bytes())
					entries += float64(m.Len())
					runtime.KeepAlive(m)
				}
				n := float64(b.N)
				b.ReportMetric(heap/n/float64(bound), "heap/bound")
				b.ReportMetric(heap/charged, "heap/charged")
				b.ReportMetric(heap/entries, "heap-B/entry")
				b.ReportMetric(charged/entries, "charged-B/entry")
				b.ReportMetric(entries/n, "entries")
			})
		}
	}
}

// TestMemoryChargeStaysWithinBound checks the tier's accounting as verdicts stream
// through it, by set and by backfill, with overwrites and expiries: its byte count is
// never over its bound and is always the sum of its entries' charges (key, value
// capacity and entryOverhead).
func TestMemoryChargeStaysWithinBound(t *testing.T) {
	const bound = 256 << 10
	m := NewMemory(bound)
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	check := func(step string) {
		t.Helper()
		m.mu.Lock()
		defer m.mu.Unlock()
		sum := 0
		for el := m.order.Front(); el != nil; el = el.Next() {
			e := el.Value.(*memoryEntry)
			sum += entrySize(e.key, e.value)
			if m.entries[e.key] != el {
				t.Fatalf("%s: entry %s is in the list but not the map", step, e.key)
			}
		}
		if m.bytes > bound || m.bytes != sum || m.order.Len() != len(m.entries) {
			t.Fatalf("%s: bytes %d (bound %d, sum of charges %d), list %d, map %d", step, m.bytes, bound, sum, m.order.Len(), len(m.entries))
		}
	}
	for round := range 40 {
		batch := verdictEntries(64, uint64(round%10)) // rounds 10.. overwrite earlier keys
		if round%3 == 0 {
			keys := make([]string, len(batch))
			items := make([]Item, len(batch))
			for i, e := range batch {
				keys[i], items[i] = e.Key, Item{Value: e.Value, Expires: now.Add(time.Duration(i) * time.Second)}
			}
			m.setUntil(keys, items)
		} else {
			_ = m.SetMany(ctx, batch)
		}
		check(fmt.Sprintf("round %d fill", round))
		now = now.Add(30 * time.Second) // some backfilled entries expire
		keys := make([]string, len(batch))
		for i, e := range batch {
			keys[i] = e.Key
		}
		_, _ = m.GetMany(ctx, keys)
		check(fmt.Sprintf("round %d lookup", round))
	}
	if m.Len() == 0 {
		t.Fatal("nothing stored")
	}
}
