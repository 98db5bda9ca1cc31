package conversation

import (
	"container/list"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"raterd/record"
)

// Hold is an open segment's claim on one of its records' Kafka messages: the pipeline
// does not commit past the message until every hold on it is released. The assembler
// hands a closed segment's holds back with its transcript (Closed.Holds) and a dropped
// segment's holds back from Drop; it never releases one itself.
type Hold interface {
	// Release gives the claim up: the segment's rows are written.
	Release()
}

// Closed is a segment the assembler closed: its transcript record, for the evaluators of
// its scope, and the holds to release once the record's rows are written. Record is nil
// for a trace that was no agent run (no tool or agent span: see NotAgentRun): nothing is
// judged, and its holds are released at once.
type Closed struct {
	Record *record.Record
	Holds  []Hold
}

// NotAgentRun is the Stats.Closed key of traces closed without a tool or agent span:
// model calls alone, which are no agent run and are not judged as one.
const NotAgentRun = "not_agent_run"

// Stats are an assembler's running totals.
type Stats struct {
	// Open is the number of open segments now, OpenBytes the text they keep.
	Open, OpenBytes int
	// Added counts the records added to segments.
	Added int64
	// Closed counts closed segments by close reason (record.Close*).
	Closed map[string]int64
	// Split counts records whose key has an open segment on another partition: the
	// producer does not key its messages by the conversation (or trace), so one
	// conversation is judged as several.
	Split int64
	// Unkeyed counts records whose Kafka message key is not their conversation (or trace)
	// id: harmless on a one-partition topic, a split waiting to happen on others.
	Unkeyed int64
	// Clipped counts records whose text was clipped to fit MaxBytes.
	Clipped int64
	// Dropped counts open segments dropped unjudged (their partitions were revoked), to be
	// rebuilt by the partitions' next owner from the replayed records.
	Dropped int64
	// Replayed counts records read again (a partition came back after a revoke) that a
	// segment already judged here held: they are not judged twice.
	Replayed int64
}

// segKey names an open segment: a key on one partition. A conversation that arrives on
// two partitions is two segments (and counted in Stats.Split).
type segKey struct {
	key       string
	topic     string
	partition int
}

// segment is one open segment.
type segment struct {
	id        segKey
	seg       record.Segment
	holds     []Hold
	bytes     int
	opened    time.Time // wall clock
	lastSeen  time.Time // wall clock
	lastEvent time.Time // event time of the latest record
	elem      *list.Element

	// What the transcript record takes from its records.
	model, app, system, convID, traceID string
	rootAnswer                          string // the root span's answer (traces)
	agentRun                            bool   // a tool or agent span arrived (traces)
	metadata                            map[string]string
	context                             []string
}

// Assembler groups the records of one scope by key (conversation id, or trace id) per
// partition and closes segments by the rules of its Config. It is safe for concurrent
// use: the pipeline's batch loop adds and expires, a rebalance drops.
type Assembler struct {
	scope string
	cfg   Config
	now   func() time.Time

	mu     sync.Mutex
	open   map[segKey]*segment
	byLast *list.List // open segments, least recently active first
	// openPerKey counts the open segments of a key (on different partitions).
	openPerKey map[string]int
	// versions remembers the last segment judged per key (bounded: the oldest keys are
	// forgotten first), so that a late record opens the next version and a record read
	// again is not judged twice.
	versions     map[string]judged
	versionOrder *list.List
	versionElem  map[string]*list.Element
	stats        Stats
}

// maxVersionsPerOpen is how many judged keys the assembler remembers per open segment
// it may hold, for versions.
const maxVersionsPerOpen = 4

// New returns an assembler of scope (record.ScopeConversation or record.ScopeTrace) with
// a validated cfg. now defaults to time.Now.
func New(scope string, cfg Config, now func() time.Time) (*Assembler, error) {
	if err := cfg.Validate(scope, scope); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Assembler{
		scope: scope, cfg: cfg, now: now,
		open: make(map[segKey]*segment), byLast: list.New(), openPerKey: make(map[string]int),
		versions: make(map[string]judged), versionOrder: list.New(), versionElem: make(map[string]*list.Element),
		stats: Stats{Closed: make(map[string]int64)},
	}, nil
}

// Scope is the assembler's scope.
func (a *Assembler) Scope() string { return a.scope }

// Config is the assembler's validated configuration.
func (a *Assembler) Config() Config { return a.cfg }

// KeyOf is the key that groups r in this scope: its conversation id, or its trace id;
// "" when r has none (it is not assembled).
func (a *Assembler) KeyOf(r *record.Record) string {
	if a.scope == record.ScopeTrace {
		return r.TraceID
	}
	return r.ConversationID
}

// Add adds r to its open segment, or opens one, and returns the segments that closed on
// the way, and whether the segment holds hold (false: r has no key, or a segment already
// judged here holds it — it was read again — and the caller keeps its claim). Closed are: the previous segment of its key when r's event
// time lies more than Config.Gap after its last record (gap) or the segment is full (max_turns,
// max_bytes); the least recently active segment when too many are open (evicted); r's own
// segment when r ends it (end marker, trace root). msgKey is the Kafka message key, for
// the keyed-partitioning check. hold is released by the caller when the segment's rows are
// written.
func (a *Assembler) Add(r *record.Record, msgKey []byte, hold Hold) (closed []Closed, held bool) {
	key := a.KeyOf(r)
	if key == "" {
		return nil, false
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if j, ok := a.versions[key]; ok && j.topic == r.Source.Topic && j.partition == r.Source.Partition && r.Source.Offset <= j.lastOffset {
		// Read again (the partition came back after a revoke): a segment already judged
		// here holds this record.
		a.stats.Replayed++
		return nil, false
	}
	a.stats.Added++
	if string(msgKey) != key {
		a.stats.Unkeyed++
	}
	id := segKey{key: key, topic: r.Source.Topic, partition: r.Source.Partition}
	turn, size, clipped := turnOf(r, a.cfg.MaxBytes)
	if clipped {
		a.stats.Clipped++
	}
	s := a.open[id]
	// The spans of one request (an agent's model calls, its tools, the agent span itself,
	// which ends last) are one turn of a conversation: a span of the last turn's trace
	// merges into it, and grows the segment only by what the merge adds.
	merge := false
	if s != nil && a.scope == record.ScopeConversation && turn.TraceID != "" {
		if n := len(s.seg.Turns); n > 0 && s.seg.Turns[n-1].TraceID == turn.TraceID {
			merge = true
			last := s.seg.Turns[n-1]
			merged := last
			merged.ToolCalls = slices.Clone(last.ToolCalls)
			mergeTurn(&merged, turn)
			size = turnSize(merged) - turnSize(last)
		}
	}
	if s != nil && !merge {
		reason := ""
		switch {
		case !r.Timestamp.IsZero() && r.Timestamp.Unix() != 0 && !s.lastEvent.IsZero() &&
			r.Timestamp.Sub(s.lastEvent) > a.cfg.Gap:
			reason = record.CloseGap
		case len(s.seg.Turns) >= a.cfg.MaxTurns:
			reason = record.CloseMaxTurns
		case s.bytes+size > a.cfg.MaxBytes:
			reason = record.CloseMaxBytes
		}
		if reason != "" {
			closed = append(closed, a.closeLocked(s, reason))
			s = nil
		}
	}
	if s == nil {
		if len(a.open) >= a.cfg.MaxOpen {
			if front := a.byLast.Front(); front != nil {
				closed = append(closed, a.closeLocked(front.Value.(*segment), record.CloseEvicted))
			}
		}
		if a.openPerKey[key] > 0 { // open on another partition: this one has none
			a.stats.Split++
		}
		s = &segment{
			id: id, opened: now,
			seg: record.Segment{Scope: a.scope, Key: key, Version: a.versions[key].version + 1, FirstOffset: r.Source.Offset},
		}
		s.elem = a.byLast.PushBack(s)
		a.open[id] = s
		a.openPerKey[key]++
		a.stats.Open = len(a.open)
	} else {
		a.byLast.MoveToBack(s.elem)
	}
	if merge {
		mergeTurn(&s.seg.Turns[len(s.seg.Turns)-1], turn)
	} else {
		s.seg.Turns = append(s.seg.Turns, turn)
	}
	s.seg.LastOffset = max(s.seg.LastOffset, r.Source.Offset)
	s.holds = append(s.holds, hold)
	s.bytes += size
	a.stats.OpenBytes += size
	s.lastSeen = now
	if r.Timestamp.After(s.lastEvent) {
		s.lastEvent = r.Timestamp
	}
	s.take(r)
	switch {
	case a.scope == record.ScopeConversation && isTrue(r.Metadata[a.cfg.EndMarker]):
		closed = append(closed, a.closeLocked(s, record.CloseEndMarker))
	case a.scope == record.ScopeTrace && r.TraceRoot:
		closed = append(closed, a.closeLocked(s, record.CloseEndMarker))
	}
	return closed, true
}

// Expire closes the segments idle for the inactivity timeout (timeout) or open for the
// longest duration (max_duration).
func (a *Assembler) Expire() []Closed {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	var closed []Closed
	for e := a.byLast.Front(); e != nil; {
		s := e.Value.(*segment)
		e = e.Next()
		switch {
		case now.Sub(s.lastSeen) >= a.cfg.InactivityTimeout:
			closed = append(closed, a.closeLocked(s, record.CloseTimeout))
		case now.Sub(s.opened) >= a.cfg.MaxDuration:
			closed = append(closed, a.closeLocked(s, record.CloseMaxDuration))
		}
	}
	return closed
}

// Drop removes the open segments of the partitions that keep says to drop, unjudged,
// and returns their holds: the pipeline gives the partitions up and their next owner
// rebuilds the segments from the records it reads again (nothing of them was committed).
func (a *Assembler) Drop(drop func(topic string, partition int) bool) []Hold {
	a.mu.Lock()
	defer a.mu.Unlock()
	var holds []Hold
	for id, s := range a.open {
		if !drop(id.topic, id.partition) {
			continue
		}
		holds = append(holds, s.holds...)
		a.removeLocked(s)
		a.stats.Dropped++
	}
	return holds
}

// Stats returns the running totals.
func (a *Assembler) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Closed = make(map[string]int64, len(a.stats.Closed))
	for k, v := range a.stats.Closed {
		s.Closed[k] = v
	}
	return s
}

// removeLocked forgets an open segment.
func (a *Assembler) removeLocked(s *segment) {
	delete(a.open, s.id)
	a.byLast.Remove(s.elem)
	if a.openPerKey[s.id.key]--; a.openPerKey[s.id.key] <= 0 {
		delete(a.openPerKey, s.id.key)
	}
	a.stats.Open = len(a.open)
	a.stats.OpenBytes -= s.bytes
}

// closeLocked closes s for reason: it remembers the key's version and builds the
// transcript record.
func (a *Assembler) closeLocked(s *segment, reason string) Closed {
	a.removeLocked(s)
	if a.scope == record.ScopeTrace && !s.agentRun {
		// A trace of model calls alone (a chat request's spans) is no agent run: the
		// record evaluators judge its calls.
		a.stats.Closed[NotAgentRun]++
		return Closed{Holds: s.holds}
	}
	a.stats.Closed[reason]++
	a.rememberVersionLocked(s)
	s.seg.CloseReason = reason
	return Closed{Record: s.transcript(), Holds: s.holds}
}

// judged is the last segment judged of a key.
type judged struct {
	version    int
	topic      string
	partition  int
	lastOffset int64
}

// rememberVersionLocked records the last segment judged of a key, forgetting the least
// recently judged keys beyond the bound.
func (a *Assembler) rememberVersionLocked(s *segment) {
	key := s.id.key
	a.versions[key] = judged{version: s.seg.Version, topic: s.id.topic, partition: s.id.partition, lastOffset: s.seg.LastOffset}
	if e := a.versionElem[key]; e != nil {
		a.versionOrder.MoveToBack(e)
	} else {
		a.versionElem[key] = a.versionOrder.PushBack(key)
	}
	for a.versionOrder.Len() > maxVersionsPerOpen*a.cfg.MaxOpen {
		old := a.versionOrder.Remove(a.versionOrder.Front()).(string)
		delete(a.versions, old)
		delete(a.versionElem, old)
	}
}

// take keeps what the transcript record needs of r.
func (s *segment) take(r *record.Record) {
	if !r.TracePart {
		// The latest model call names the model and app judged; agent and tool spans may
		// name none.
		if r.Model != "" {
			s.model = r.Model
		}
		if r.App != "" || s.app == "" {
			s.app = r.App
		}
	} else if s.model == "" {
		s.model, s.app = r.Model, r.App
	}
	if s.system == "" {
		s.system = r.System
	}
	if s.convID == "" {
		s.convID = r.ConversationID
	}
	if s.traceID == "" {
		s.traceID = r.TraceID
	}
	if r.TraceRoot && r.Response != "" {
		s.rootAnswer = r.Response
	}
	if r.TracePart {
		s.agentRun = true
	}
	if s.metadata == nil && len(r.Metadata) > 0 {
		s.metadata = r.Metadata
	}
	for _, c := range r.Context {
		if !slices.Contains(s.context, c) {
			s.context = append(s.context, c)
		}
	}
}

// transcript builds the segment's transcript record.
func (s *segment) transcript() *record.Record {
	seg := s.seg
	if seg.Scope == record.ScopeTrace {
		// Spans are exported when they end, children before their parents: the run's
		// order is their start times.
		slices.SortStableFunc(seg.Turns, func(x, y record.Turn) int { return x.Timestamp.Compare(y.Timestamp) })
		seg.Turns = joinToolResults(seg.Turns)
	}
	r := &record.Record{
		ID:             fmt.Sprintf("%s@%s/%d/%d", seg.Key, s.id.topic, s.id.partition, seg.FirstOffset),
		Model:          s.model,
		App:            s.app,
		System:         s.system,
		Context:        s.context,
		ConversationID: s.convID,
		TraceID:        s.traceID,
		Metadata:       s.metadata,
		Source:         record.Source{Topic: s.id.topic, Partition: s.id.partition, Offset: seg.FirstOffset},
		SizeBytes:      s.bytes,
		Format:         "transcript",
		Segment:        &seg,
	}
	if len(seg.Turns) > 0 {
		// The first turn's event time: a replay of the same segment keeps its row's
		// ClickHouse sorting key.
		r.Timestamp = seg.Turns[0].Timestamp
	}
	for _, t := range seg.Turns {
		if t.User != "" {
			r.Messages = append(r.Messages, record.Message{Role: "user", Content: t.User})
		}
		if t.Assistant != "" {
			r.Messages = append(r.Messages, record.Message{Role: "assistant", Content: t.Assistant})
			r.Response = t.Assistant
		}
		r.ToolCalls = append(r.ToolCalls, t.ToolCalls...)
	}
	if s.rootAnswer != "" {
		r.Response = s.rootAnswer
	}
	return r
}

// turnOf is r as a transcript turn, its text size, and whether it was clipped to fit
// maxBytes.
func turnOf(r *record.Record, maxBytes int) (record.Turn, int, bool) {
	t := record.Turn{User: userText(r), Assistant: r.Response, RecordID: r.ID, TraceID: r.TraceID, Timestamp: r.Timestamp}
	if len(r.ToolCalls) > 0 {
		t.ToolCalls = slices.Clone(r.ToolCalls)
	}
	budget := maxBytes
	clipped := false
	clip := func(s *string) {
		if len(*s) > budget {
			*s = strings.ToValidUTF8((*s)[:max(budget, 0)], "")
			clipped = true
		}
		budget -= len(*s)
	}
	clip(&t.Assistant)
	clip(&t.User)
	for i := range t.ToolCalls {
		c := &t.ToolCalls[i]
		clip(&c.Name)
		clip(&c.Arguments)
		clip(&c.Result)
	}
	return t, maxBytes - max(budget, 0), clipped
}

// userText is what the user asked in r's turn: the prompt, or the last user message
// (a chat request repeats the conversation so far; the last user message is this turn's).
func userText(r *record.Record) string {
	if r.Prompt != "" {
		return r.Prompt
	}
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content
		}
	}
	return ""
}

// isTrue reads an end-marker value.
func isTrue(v string) bool { return v == "true" || v == "1" || strings.EqualFold(v, "true") }

// joinToolResults gives each tool call a model made the result its tool span returned
// (matched by call id, else by tool name and arguments), and drops the tool span's turn
// once its calls are matched: the transcript then shows each call once, with its result.
// A tool span no model call matches stays a turn of its own.
func joinToolResults(turns []record.Turn) []record.Turn {
	type callRef struct{ turn, call int }
	var open []callRef // model calls without a result, in order
	for i, t := range turns {
		if t.Assistant == "" && t.User == "" {
			continue // a tool span's turn
		}
		for j, c := range t.ToolCalls {
			if c.Result == "" {
				open = append(open, callRef{i, j})
			}
		}
	}
	if len(open) == 0 {
		return turns
	}
	matches := func(model, tool record.ToolCall) bool {
		if model.ID != "" && tool.ID != "" {
			return model.ID == tool.ID
		}
		return model.Name == tool.Name && (model.Arguments == "" || tool.Arguments == "" || model.Arguments == tool.Arguments)
	}
	out := turns[:0:0]
	for _, t := range turns {
		if t.Assistant != "" || t.User != "" || len(t.ToolCalls) == 0 {
			out = append(out, t)
			continue
		}
		var left []record.ToolCall
		for _, tc := range t.ToolCalls {
			k := slices.IndexFunc(open, func(r callRef) bool { return matches(turns[r.turn].ToolCalls[r.call], tc) })
			if k < 0 {
				left = append(left, tc)
				continue
			}
			ref := open[k]
			open = slices.Delete(open, k, k+1)
			mc := &turns[ref.turn].ToolCalls[ref.call]
			mc.Result = tc.Result
			if mc.ID == "" {
				mc.ID = tc.ID
			}
		}
		if len(left) > 0 {
			t.ToolCalls = left
			out = append(out, t)
		}
	}
	return out
}

// mergeTurn folds next, a later span of the same request, into turn: the question once,
// the answer of the span that ended last, every tool call once with its result.
func mergeTurn(turn *record.Turn, next record.Turn) {
	if turn.User == "" {
		turn.User = next.User
	}
	if next.Assistant != "" {
		turn.Assistant = next.Assistant
		turn.RecordID = next.RecordID
	}
	for _, c := range next.ToolCalls {
		i := slices.IndexFunc(turn.ToolCalls, func(have record.ToolCall) bool {
			if have.ID != "" && c.ID != "" {
				return have.ID == c.ID
			}
			return have.Name == c.Name && have.Arguments == c.Arguments
		})
		switch {
		case i < 0:
			turn.ToolCalls = append(turn.ToolCalls, c)
		case turn.ToolCalls[i].Result == "":
			turn.ToolCalls[i].Result = c.Result
		}
	}
}

// turnSize is the text a turn keeps.
func turnSize(t record.Turn) int {
	n := len(t.User) + len(t.Assistant)
	for _, c := range t.ToolCalls {
		n += len(c.Name) + len(c.Arguments) + len(c.Result)
	}
	return n
}
