package conversation

import (
	"strings"
	"testing"
	"time"

	"raterd/record"
)

// fakeClock is a settable clock for the assembler's wall-clock rules.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// countingHold is a Hold that counts its releases (the assembler must never release).
type countingHold struct{ released int }

func (h *countingHold) Release() { h.released++ }

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func newTestAssembler(t *testing.T, scope string, cfg Config) (*Assembler, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: t0}
	a, err := New(scope, cfg, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	return a, clock
}

// turn is a record of conversation conv at partition 0, offset off, event time t0+at.
func turn(conv string, off int64, at time.Duration, user, answer string) *record.Record {
	return &record.Record{
		ID: conv + "-" + string(rune('a'+off)), ConversationID: conv, Model: "m", App: "helpdesk",
		Messages:  []record.Message{{Role: "user", Content: "earlier"}, {Role: "assistant", Content: "earlier answer"}, {Role: "user", Content: user}},
		Response:  answer,
		Timestamp: t0.Add(at),
		Source:    record.Source{Topic: "traffic", Partition: 0, Offset: off},
	}
}

func TestInterleavedConversationsCloseOnTimeoutWithTheirOwnTurns(t *testing.T) {
	a, clock := newTestAssembler(t, record.ScopeConversation, Config{InactivityTimeout: time.Minute})
	var holds []*countingHold
	add := func(r *record.Record) []Closed {
		h := &countingHold{}
		holds = append(holds, h)
		c, _ := a.Add(r, []byte(r.ConversationID), h)
		return c
	}
	for i, r := range []*record.Record{
		turn("c1", 10, 0, "hi", "hello"),
		turn("c2", 11, time.Second, "order?", "shipped"),
		turn("c1", 12, 2*time.Second, "refund?", "done"),
	} {
		if c := add(r); len(c) != 0 {
			t.Fatalf("record %d closed %d segments early", i, len(c))
		}
	}
	if got := a.Stats().Open; got != 2 {
		t.Fatalf("open = %d, want 2", got)
	}
	clock.t = clock.t.Add(59 * time.Second)
	if c := a.Expire(); len(c) != 0 {
		t.Fatalf("closed before the timeout: %d", len(c))
	}
	clock.t = clock.t.Add(time.Second)
	closed := a.Expire()
	if len(closed) != 2 {
		t.Fatalf("closed %d segments at the timeout, want 2", len(closed))
	}
	byKey := map[string]Closed{}
	for _, c := range closed {
		byKey[c.Record.Segment.Key] = c
	}
	c1 := byKey["c1"].Record
	if c1.Segment.FirstOffset != 10 || c1.Segment.LastOffset != 12 || len(c1.Segment.Turns) != 2 || c1.Segment.Version != 1 ||
		c1.Segment.CloseReason != record.CloseTimeout {
		t.Fatalf("c1 segment = %+v", c1.Segment)
	}
	if c1.ID != "c1@traffic/0/10" || c1.Source.Offset != 10 || !c1.Timestamp.Equal(t0) {
		t.Fatalf("c1 transcript id %q source %+v time %v", c1.ID, c1.Source, c1.Timestamp)
	}
	// The turn is the last user message (the request repeats earlier ones) and the answer.
	want := []record.Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "hello"}, {Role: "user", Content: "refund?"}, {Role: "assistant", Content: "done"}}
	if len(c1.Messages) != len(want) {
		t.Fatalf("messages = %+v", c1.Messages)
	}
	for i := range want {
		if c1.Messages[i] != want[i] {
			t.Fatalf("message %d = %+v, want %+v", i, c1.Messages[i], want[i])
		}
	}
	if c1.Response != "done" || len(byKey["c1"].Holds) != 2 || len(byKey["c2"].Holds) != 1 {
		t.Fatalf("response %q, holds %d/%d", c1.Response, len(byKey["c1"].Holds), len(byKey["c2"].Holds))
	}
	for _, h := range holds {
		if h.released != 0 {
			t.Fatal("the assembler released a hold; only the pipeline may")
		}
	}
	if s := a.Stats(); s.Open != 0 || s.OpenBytes != 0 || s.Closed[record.CloseTimeout] != 2 || s.Unkeyed != 0 {
		t.Fatalf("stats after close = %+v", s)
	}
}

func TestLateTurnOpensTheNextVersion(t *testing.T) {
	a, clock := newTestAssembler(t, record.ScopeConversation, Config{InactivityTimeout: time.Minute})
	a.Add(turn("c1", 1, 0, "q", "a"), nil, &countingHold{})
	clock.t = clock.t.Add(time.Minute)
	first := a.Expire()
	a.Add(turn("c1", 7, 30*time.Second, "and?", "more"), nil, &countingHold{})
	clock.t = clock.t.Add(time.Minute)
	second := a.Expire()
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("closed %d then %d", len(first), len(second))
	}
	if v := second[0].Record.Segment.Version; v != 2 {
		t.Fatalf("late segment version = %d, want 2", v)
	}
	if second[0].Record.ID == first[0].Record.ID {
		t.Fatal("two versions share a record id: their rows would collapse into one")
	}
	if a.Stats().Unkeyed != 2 {
		t.Fatalf("unkeyed = %d: nil message keys are not the conversation id", a.Stats().Unkeyed)
	}
}

func TestCloseRules(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		second *record.Record
		reason string
		closes int // segments closed by the second record
	}{
		{"end marker closes its own segment", Config{}, func() *record.Record {
			r := turn("c1", 2, time.Second, "bye", "bye")
			r.Metadata = map[string]string{DefaultEndMarker: "true"}
			return r
		}(), record.CloseEndMarker, 1},
		{"event-time gap starts the next segment", Config{InactivityTimeout: time.Minute}, turn("c1", 2, 2*time.Minute, "back", "hi"), record.CloseGap, 1},
		{"max turns", Config{MaxTurns: 1}, turn("c1", 2, time.Second, "q2", "a2"), record.CloseMaxTurns, 1},
		{"max bytes", Config{MaxBytes: 1024}, turn("c1", 2, time.Second, strings.Repeat("x", 1030), "a2"), record.CloseMaxBytes, 1},
		{"max open evicts the least recently active", Config{MaxOpen: 1}, turn("c2", 2, time.Second, "q", "a"), record.CloseEvicted, 1},
		{"an ordinary turn closes nothing", Config{}, turn("c1", 2, time.Second, "q2", "a2"), "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := newTestAssembler(t, record.ScopeConversation, tc.cfg)
			a.Add(turn("c1", 1, 0, "q", "a"), nil, &countingHold{})
			closed, _ := a.Add(tc.second, nil, &countingHold{})
			if len(closed) != tc.closes {
				t.Fatalf("closed %d segments, want %d", len(closed), tc.closes)
			}
			if tc.closes > 0 && closed[0].Record.Segment.CloseReason != tc.reason {
				t.Fatalf("close reason %q, want %q", closed[0].Record.Segment.CloseReason, tc.reason)
			}
		})
	}
}

func TestMaxDurationClosesAnActiveConversation(t *testing.T) {
	a, clock := newTestAssembler(t, record.ScopeConversation, Config{InactivityTimeout: time.Minute, MaxDuration: 3 * time.Minute})
	for i := range 4 {
		a.Add(turn("c1", int64(i), time.Duration(i)*50*time.Second, "q", "a"), nil, &countingHold{})
		if c := a.Expire(); len(c) != 0 {
			t.Fatalf("closed at turn %d", i)
		}
		clock.t = clock.t.Add(50 * time.Second)
	}
	closed := a.Expire() // 200s open, last turn 50s ago
	if len(closed) != 1 || closed[0].Record.Segment.CloseReason != record.CloseMaxDuration || len(closed[0].Record.Segment.Turns) != 4 {
		t.Fatalf("closed = %+v", closed)
	}
}

func TestSplitAcrossPartitionsIsCounted(t *testing.T) {
	a, _ := newTestAssembler(t, record.ScopeConversation, Config{})
	a.Add(turn("c1", 1, 0, "q", "a"), []byte("c1"), &countingHold{})
	other := turn("c1", 1, time.Second, "q2", "a2")
	other.Source.Partition = 3
	a.Add(other, []byte("c1"), &countingHold{})
	s := a.Stats()
	if s.Split != 1 || s.Open != 2 || s.Unkeyed != 0 {
		t.Fatalf("stats = %+v, want one split and two open segments", s)
	}
}

func TestDropReturnsTheHoldsOfRevokedPartitionsOnly(t *testing.T) {
	a, _ := newTestAssembler(t, record.ScopeConversation, Config{})
	h0, h1 := &countingHold{}, &countingHold{}
	a.Add(turn("c1", 1, 0, "q", "a"), nil, h0)
	r := turn("c2", 1, 0, "q", "a")
	r.Source.Partition = 1
	a.Add(r, nil, h1)
	holds := a.Drop(func(_ string, p int) bool { return p == 0 })
	if len(holds) != 1 || holds[0] != Hold(h0) {
		t.Fatalf("dropped holds = %v", holds)
	}
	if s := a.Stats(); s.Open != 1 || s.Dropped != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestTraceOrdersSpansByStartAndEndsAtTheRoot(t *testing.T) {
	a, _ := newTestAssembler(t, record.ScopeTrace, Config{})
	span := func(off int64, at time.Duration, r *record.Record) *record.Record {
		r.TraceID, r.Timestamp = "trace-1", t0.Add(at)
		r.Source = record.Source{Topic: "spans", Offset: off}
		return r
	}
	// Exported in end order: the tool, the chats, then the agent (root) span.
	tool := span(1, 2*time.Second, &record.Record{TracePart: true, ToolCalls: []record.ToolCall{{Name: "weather", Arguments: `{"city":"Paris"}`, Result: "18C"}}})
	chat1 := span(2, time.Second, &record.Record{Model: "m", Prompt: "weather in Paris?", ToolCalls: []record.ToolCall{{Name: "weather", Arguments: `{"city":"Paris"}`}}})
	chat2 := span(3, 3*time.Second, &record.Record{Model: "m", Prompt: "weather in Paris?", Response: "It is 18C in Paris."})
	root := span(4, 0, &record.Record{TracePart: true, TraceRoot: true, Response: "It is 18C in Paris."})
	for _, r := range []*record.Record{tool, chat1, chat2} {
		if c, _ := a.Add(r, nil, &countingHold{}); len(c) != 0 {
			t.Fatal("closed before the root span")
		}
	}
	closed, _ := a.Add(root, nil, &countingHold{})
	if len(closed) != 1 {
		t.Fatalf("the root span closed %d traces", len(closed))
	}
	tr := closed[0].Record
	if tr.Segment.Scope != record.ScopeTrace || tr.Segment.CloseReason != record.CloseEndMarker || tr.TraceID != "trace-1" || tr.Model != "m" {
		t.Fatalf("trace transcript = %+v", tr)
	}
	var order []int64
	for _, turn := range tr.Segment.Turns {
		order = append(order, turn.Timestamp.Sub(t0).Milliseconds()/1000)
	}
	// The tool span's result joins the model's call; its own turn goes.
	if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 3 {
		t.Fatalf("turn order by start time = %v, want the root, the two chats", order)
	}
	if tr.Response != "It is 18C in Paris." || len(tr.ToolCalls) != 1 || tr.ToolCalls[0].Result != "18C" {
		t.Fatalf("response %q, tool calls %+v", tr.Response, tr.ToolCalls)
	}
}

func TestATraceOfModelCallsAloneIsNoAgentRun(t *testing.T) {
	a, _ := newTestAssembler(t, record.ScopeTrace, Config{})
	h := &countingHold{}
	closed, _ := a.Add(&record.Record{TraceID: "t1", TraceRoot: true, Model: "m", Prompt: "q", Response: "a"}, nil, h)
	if len(closed) != 1 || closed[0].Record != nil || len(closed[0].Holds) != 1 {
		t.Fatalf("closed = %+v, want no transcript and the hold back", closed)
	}
	if s := a.Stats(); s.Closed[NotAgentRun] != 1 || s.Closed[record.CloseEndMarker] != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestTheSpansOfOneRequestAreOneConversationTurn(t *testing.T) {
	a, clock := newTestAssembler(t, record.ScopeConversation, Config{})
	span := func(trace string, at time.Duration, r *record.Record) *record.Record {
		r.ConversationID, r.TraceID, r.Timestamp = "c1", trace, t0.Add(at)
		return r
	}
	// Exported as they end: the model's tool request, the tool, the answer, the agent span.
	for _, r := range []*record.Record{
		span("tr1", 0, &record.Record{Prompt: "weather in Paris?", ToolCalls: []record.ToolCall{{ID: "call-1", Name: "weather"}}}),
		span("tr1", time.Second, &record.Record{TracePart: true, ToolCalls: []record.ToolCall{{ID: "call-1", Name: "weather", Result: "18C"}}}),
		span("tr1", 2*time.Second, &record.Record{Prompt: "weather in Paris?", Response: "It is 18C."}),
		span("tr1", 0, &record.Record{TracePart: true, TraceRoot: true, Prompt: "weather in Paris?", Response: "It is 18C."}),
		span("tr2", time.Minute, &record.Record{Prompt: "and tomorrow?", Response: "20C"}),
	} {
		a.Add(r, nil, &countingHold{})
	}
	clock.t = clock.t.Add(time.Hour)
	closed := a.Expire()
	if len(closed) != 1 {
		t.Fatalf("closed %d", len(closed))
	}
	turns := closed[0].Record.Segment.Turns
	if len(turns) != 2 || turns[0].User != "weather in Paris?" || turns[0].Assistant != "It is 18C." ||
		len(turns[0].ToolCalls) != 1 || turns[0].ToolCalls[0].Result != "18C" || turns[1].User != "and tomorrow?" {
		t.Fatalf("turns = %+v, want one turn per request", turns)
	}
	if len(closed[0].Holds) != 5 {
		t.Fatalf("holds = %d, want one per record", len(closed[0].Holds))
	}
}

func TestARecordReadAgainIsNotJudgedTwice(t *testing.T) {
	a, _ := newTestAssembler(t, record.ScopeConversation, Config{})
	a.Add(turn("c1", 1, 0, "q", "a"), nil, &countingHold{})
	end := turn("c1", 2, time.Second, "bye", "bye")
	end.Metadata = map[string]string{DefaultEndMarker: "true"}
	if closed, _ := a.Add(end, nil, &countingHold{}); len(closed) != 1 {
		t.Fatal("the end marker closed nothing")
	}
	// The partition comes back after a revoke and offset 2 is read again.
	closed, held := a.Add(turn("c1", 2, time.Second, "bye", "bye"), nil, &countingHold{})
	if held || len(closed) != 0 || a.Stats().Open != 0 || a.Stats().Replayed != 1 {
		t.Fatalf("a record of a judged segment read again: held %v, closed %d, stats %+v", held, len(closed), a.Stats())
	}
	// A later record of the conversation is a late turn: version 2.
	if _, held := a.Add(turn("c1", 5, 2*time.Second, "more", "ok"), nil, &countingHold{}); !held {
		t.Fatal("a late turn was not added")
	}
}

func TestSpansOfOneRequestNeverSplitAtMaxTurns(t *testing.T) {
	a, _ := newTestAssembler(t, record.ScopeConversation, Config{MaxTurns: 2})
	add := func(trace string, off int64, resp string) []Closed {
		c, _ := a.Add(&record.Record{ConversationID: "c1", TraceID: trace, Prompt: "q " + trace, Response: resp, Timestamp: t0.Add(time.Duration(off) * time.Second),
			Source: record.Source{Topic: "t", Offset: off}}, nil, &countingHold{})
		return c
	}
	add("t1", 1, "a1")
	add("t2", 2, "")
	if c := add("t2", 3, "a2"); len(c) != 0 {
		t.Fatalf("the second span of request t2 closed the segment at max_turns: %+v", c[0].Record.Segment)
	}
	if c := add("t3", 4, "a3"); len(c) != 1 || len(c[0].Record.Segment.Turns) != 2 || c[0].Record.Segment.CloseReason != record.CloseMaxTurns {
		t.Fatalf("the third request should close the full segment, got %d closed", len(c))
	}
	if got := a.Stats().OpenBytes; got != len("q t3")+len("a3") {
		t.Fatalf("open bytes = %d after the close", got)
	}
}

func TestUnmatchedToolSpansStayTurnsOfTheirOwn(t *testing.T) {
	turns := []record.Turn{
		{User: "q", ToolCalls: []record.ToolCall{{ID: "call-1", Name: "a"}}},
		{ToolCalls: []record.ToolCall{{ID: "call-1", Name: "a", Result: "ra"}, {ID: "call-9", Name: "b", Result: "rb"}}},
		{ToolCalls: []record.ToolCall{{Name: "c", Result: "rc"}}},
	}
	got := joinToolResults(turns)
	if len(got) != 3 || got[0].ToolCalls[0].Result != "ra" || len(got[1].ToolCalls) != 1 || got[1].ToolCalls[0].ID != "call-9" || got[2].ToolCalls[0].Name != "c" {
		t.Fatalf("joined turns = %+v", got)
	}
}

func TestClipKeepsATurnWithinMaxBytes(t *testing.T) {
	a, _ := newTestAssembler(t, record.ScopeConversation, Config{MaxBytes: 1024})
	a.Add(turn("c1", 1, 0, "q", strings.Repeat("é", 2000)), nil, &countingHold{})
	s := a.Stats()
	if s.Clipped != 1 || s.OpenBytes > 1024 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{MaxOpen: -1}, "conversations.max_open"},
		{Config{InactivityTimeout: -time.Second}, "conversations.inactivity_timeout"},
		{Config{InactivityTimeout: time.Hour, MaxDuration: time.Minute}, "conversations.max_duration"},
		{Config{MaxBytes: 10}, "conversations.max_bytes"},
	}
	for _, tc := range cases {
		err := tc.cfg.Validate("conversations", record.ScopeConversation)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	var c Config
	if err := c.Validate("traces", record.ScopeTrace); err != nil || c.InactivityTimeout != 30*time.Second || c.MaxTurns != 200 {
		t.Fatalf("trace defaults: %+v, %v", c, err)
	}
}
