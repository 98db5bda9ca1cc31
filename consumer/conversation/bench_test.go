package conversation

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"raterd/record"
)

// benchTurns is a support conversation's turns at realistic sizes: a chat request that
// repeats the history, a paragraph of answer.
func benchTurn(conv string, k int, off int64) *record.Record {
	partition := 0
	for _, c := range conv {
		partition = (partition*31 + int(c)) % 12 // a keyed producer: one partition per conversation
	}
	return &record.Record{
		ID: fmt.Sprintf("%s-t%d", conv, k), ConversationID: conv, Model: "support-llm-v7", App: "helpdesk",
		Messages: []record.Message{
			{Role: "user", Content: "My order BW-1234567 has not arrived yet, can you check where it is?"},
			{Role: "assistant", Content: strings.Repeat("Your order left the warehouse on Monday and is with the carrier. ", 4)},
			{Role: "user", Content: fmt.Sprintf("Question %d: can you send it to my office address instead?", k)},
		},
		Response:  strings.Repeat("I have updated the delivery address; the carrier confirms the change. ", 5),
		Timestamp: t0.Add(time.Duration(k) * 20 * time.Second),
		Source:    record.Source{Topic: "traffic", Partition: partition, Offset: off},
	}
}

type nopHold struct{}

func (nopHold) Release() {}

// BenchmarkAssembler adds 4-turn conversations, 256 open at a time, closing each by its
// end marker: the assembler's cost per record and conversations closed per second.
func BenchmarkAssembler(b *testing.B) {
	a, err := New(record.ScopeConversation, Config{MaxOpen: 100000}, nil)
	if err != nil {
		b.Fatal(err)
	}
	const open, turns = 256, 4
	recs := make([]*record.Record, 0, open*turns)
	for c := range open {
		for k := range turns {
			r := benchTurn(fmt.Sprintf("c%d", c), k, int64(c*turns+k))
			if k == turns-1 {
				r.Metadata = map[string]string{DefaultEndMarker: "true"}
			}
			recs = append(recs, r)
		}
	}
	closed := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// Round-robin over the open conversations: turn k of each before turn k+1. Each
		// round has offsets of its own: a record read again is not added (Replayed).
		j := i % len(recs)
		r := *recs[(j%open)*turns+j/open]
		r.Source.Offset = int64(i)
		c, _ := a.Add(&r, nil, nopHold{})
		closed += len(c)
	}
	if s := a.Stats(); s.Replayed > 0 || closed < b.N/len(recs)*open {
		b.Fatalf("closed %d conversations in %d records (stats %+v)", closed, b.N, s)
	}
	b.ReportMetric(float64(closed)/b.Elapsed().Seconds(), "conversations/s")
}

// BenchmarkOpenConversationMemory opens conversations of 4 turns and reports the heap
// each keeps while open (the turns' text, the segment, the holds), with the text alone
// for comparison. Each record is built afresh and dropped after Add, as the pipeline
// drops a record once its batch is written.
func BenchmarkOpenConversationMemory(b *testing.B) {
	const n, turns = 10000, 4
	text := 0
	for range turns {
		_, size, _ := turnOf(benchTurn("c", 0, 0), 1<<20)
		text += size
	}
	for range b.N {
		a, err := New(record.ScopeConversation, Config{MaxOpen: n}, nil)
		if err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for c := range n {
			for k := range turns {
				a.Add(freshCopy(benchTurn(fmt.Sprintf("c%05d", c), k, int64(c*turns+k))), nil, nopHold{})
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if s := a.Stats(); s.Open != n || len(s.Closed) > 0 {
			b.Fatalf("open = %d, closed %v; want %d open", s.Open, s.Closed, n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/open-conversation")
		b.ReportMetric(float64(text), "text-B/conversation")
		runtime.KeepAlive(a)
	}
}

// freshCopy gives r strings of their own, as a decoder does for every message.
func freshCopy(r *record.Record) *record.Record {
	c := *r
	c.ID, c.ConversationID, c.Model, c.App, c.Response = strings.Clone(r.ID), strings.Clone(r.ConversationID), strings.Clone(r.Model), strings.Clone(r.App), strings.Clone(r.Response)
	c.Messages = make([]record.Message, len(r.Messages))
	for i, m := range r.Messages {
		c.Messages[i] = record.Message{Role: strings.Clone(m.Role), Content: strings.Clone(m.Content)}
	}
	return &c
}
