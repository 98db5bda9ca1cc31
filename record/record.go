// Package record holds the small types shared by every stage: the input record that the
// consumer decodes from Kafka and the score row that the scorer produces and the sinks store.
// It imports nothing from the rest of raterd, so every package can depend on it.
package record

import "time"

// Message is one turn of a chat transcript.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ToolCall is one tool (function) call the model asked for, with the tool's result when
// the input carries it.
type ToolCall struct {
	// ID is the call id that ties a tool result to its call, when the format has one.
	ID string `json:"id,omitempty"`
	// Name is the tool's name.
	Name string `json:"name"`
	// Arguments are the call's arguments as the model wrote them (usually JSON text).
	Arguments string `json:"arguments,omitempty"`
	// Result is what the tool returned, when the input carries it.
	Result string `json:"result,omitempty"`
}

// Usage is the token usage the serving side reported for one request.
type Usage struct {
	InputTokens  int64 `json:"input_tokens,omitempty"`
	OutputTokens int64 `json:"output_tokens,omitempty"`
}

// Candidate is an alternative answer to the same prompt, used by pairwise evaluators.
type Candidate struct {
	Model    string `json:"model"`
	Response string `json:"response"`
}

// Source says where a record was read from. It travels with the record so that score rows
// and dead letters can point back to the Kafka message.
type Source struct {
	Topic     string
	Partition int
	Offset    int64
}

// Record is one request/response pair of a deployed model: the canonical input contract of
// raterd (docs/architecture.md, "Input record").
type Record struct {
	ID         string            `json:"id"`
	Timestamp  time.Time         `json:"timestamp"`
	Model      string            `json:"model"`
	App        string            `json:"app,omitempty"`
	Prompt     string            `json:"prompt,omitempty"`
	Messages   []Message         `json:"messages,omitempty"`
	Response   string            `json:"response"`
	Reference  string            `json:"reference,omitempty"`
	Candidates []Candidate       `json:"candidates,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	TraceID    string            `json:"trace_id,omitempty"`

	// The fields below come from richer input formats (OTLP GenAI spans, OpenInference,
	// OpenAI and LiteLLM logs; docs/inputs.md) and may also be set in the raterd format.

	// System is the system prompt (instructions) the model was given.
	System string `json:"system,omitempty"`
	// Context holds the retrieved documents the answer should be grounded in.
	Context []string `json:"context,omitempty"`
	// ToolCalls are the tool calls the model made, with their results where known.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// Usage is the token usage reported for the request; nil when unknown.
	Usage *Usage `json:"usage,omitempty"`
	// Latency is how long the model took to answer; 0 when unknown.
	Latency time.Duration `json:"-"`
	// FinishReason is why the model stopped (stop, length, tool_calls, …).
	FinishReason string `json:"finish_reason,omitempty"`
	// ConversationID groups the turns of one conversation (session, thread).
	ConversationID string `json:"conversation_id,omitempty"`
	// SpanID is the span of the model call, as lowercase hex, when the input has one.
	SpanID string `json:"span_id,omitempty"`

	// TracePart marks a span decoded only to complete its trace's agent run (a tool
	// execution, an agent invocation): record-scope evaluators never judge it; trace
	// evaluators read it in the transcript.
	TracePart bool `json:"-"`
	// TraceRoot marks a trace's root span (one without a parent): spans end before their
	// parent, so its arrival means the agent run is complete.
	TraceRoot bool `json:"-"`

	// Segment is set on a transcript record: the turns of one conversation (or the spans
	// of one agent run) that the consumer assembled and closed, judged as a whole by the
	// evaluators of its scope. Nil on an ordinary record (scope "record").
	Segment *Segment `json:"-"`

	// Format is the input format the record was decoded from (raterd, otlp_proto, …);
	// filled by the consumer.
	Format string `json:"-"`
	// Source is filled by the consumer, not read from the message value.
	Source Source `json:"-"`
	// SizeBytes is the size of the encoded message value (for a message that yields several
	// records, this record's share of it).
	SizeBytes int `json:"-"`
}

// Scopes: what one score row judges. An ordinary record is scope "record"; the consumer
// assembles the records of one conversation (or one trace) into a transcript record of
// scope "conversation" (or "trace"), which only evaluators of that scope judge.
const (
	ScopeRecord       = "record"
	ScopeConversation = "conversation"
	ScopeTrace        = "trace"
)

// Close reasons of a segment: why the consumer stopped waiting for more turns.
const (
	// CloseTimeout: no turn arrived for the inactivity timeout.
	CloseTimeout = "timeout"
	// CloseEndMarker: a turn carried the end marker.
	CloseEndMarker = "end_marker"
	// CloseGap: a turn's event time lay more than the inactivity timeout after the last
	// turn's, so it opened the next segment (a backlog replays to the same segments).
	CloseGap = "gap"
	// CloseMaxTurns and CloseMaxBytes: the segment reached its bound and was judged early.
	CloseMaxTurns = "max_turns"
	CloseMaxBytes = "max_bytes"
	// CloseMaxDuration: the segment had been open for the longest time allowed.
	CloseMaxDuration = "max_duration"
	// CloseEvicted: too many segments were open; the least recently active was judged.
	CloseEvicted = "evicted"
)

// Turn is one request/response pair of a conversation, or one model call of an agent run,
// as a transcript holds it.
type Turn struct {
	// User is what the model was asked in this turn: the prompt, or the last user message
	// of the chat (earlier messages repeat earlier turns).
	User string `json:"user,omitempty"`
	// Assistant is the model's answer.
	Assistant string `json:"assistant"`
	// ToolCalls are the tool calls of this turn, with their results where known.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// RecordID is the id of the record the turn came from.
	RecordID string `json:"record_id,omitempty"`
	// TraceID is the trace of the turn's request, when the input has one: an agent's
	// model and tool calls within one turn share it.
	TraceID string `json:"trace_id,omitempty"`
	// Timestamp is the turn's event time.
	Timestamp time.Time `json:"timestamp"`
}

// Segment describes a transcript record: which records it assembles and why it closed.
type Segment struct {
	// Scope is ScopeConversation or ScopeTrace.
	Scope string
	// Key is the conversation id or the trace id.
	Key string
	// Version counts the segments of one key judged by this consumer, from 1: a turn that
	// arrives after its conversation was judged opens version 2, and so on.
	Version int
	// FirstOffset and LastOffset are the Kafka offsets (on Record.Source's partition) of
	// the first and last record in the segment.
	FirstOffset, LastOffset int64
	// Turns are the segment's turns: in arrival order for a conversation, in start order
	// for a trace.
	Turns []Turn
	// CloseReason is why the segment closed (CloseTimeout, CloseEndMarker, …).
	CloseReason string
}

// PromptText returns the prompt as one string: Prompt when set, else the chat messages
// rendered one per line as "role: content".
func (r *Record) PromptText() string {
	if r.Prompt != "" || len(r.Messages) == 0 {
		return r.Prompt
	}
	n := 0
	for _, m := range r.Messages {
		n += len(m.Role) + len(m.Content) + 3
	}
	b := make([]byte, 0, n)
	for i, m := range r.Messages {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, m.Role...)
		b = append(b, ": "...)
		b = append(b, m.Content...)
	}
	return string(b)
}

// Status values of a score row.
const (
	// StatusOK marks a score the judge produced and the parser accepted.
	StatusOK = "ok"
	// StatusParseFailure marks a judge answer that did not follow the output grammar; the
	// row carries no made-up score.
	StatusParseFailure = "parse_failure"
	// StatusJudgeError marks a judgement that failed permanently after bounded retries.
	StatusJudgeError = "judge_error"
)

// Score is one row of raterd.scores: one record judged by one evaluator at one rubric
// version by one judge (docs/architecture.md, "Score row").
type Score struct {
	EventTime time.Time
	ScoredAt  time.Time
	RecordID  string
	TraceID   string
	// SpanID and ConversationID join a score back to the judged span and conversation.
	SpanID         string
	ConversationID string
	Source         Source
	Model          string
	App            string
	Labels         map[string]string
	Evaluator      string
	RubricVersion  string
	Judge          string
	TaskType       string
	Value          float64 // numeric score on the rubric scale
	Label          string
	Confidence     float64
	Explanation    string
	Status         string
	Cached         bool
	JudgeLatency   time.Duration
	Attempts       int
	// Scope is what the row judges: ScopeRecord, ScopeConversation or ScopeTrace. Empty
	// means ScopeRecord.
	Scope string
	// Version, LastOffset, Turns and CloseReason describe a transcript row's segment
	// (Source.Offset is its first offset); zero on a record row.
	Version     int
	LastOffset  int64
	Turns       int
	CloseReason string
}

// DeadLetter is a Kafka message raterd could not process and will not retry: bad input,
// or a permanent failure. It keeps the original bytes so that it can be replayed after a fix.
type DeadLetter struct {
	Source Source
	Key    []byte
	Value  []byte
	// OriginalSize is the size of the original value when Value holds only a prefix of it
	// (messages over the size cap); 0 when Value is complete.
	OriginalSize int
	Headers      []Header // the original message's headers, in order, repeats kept
	Reason       string   // stable error class, e.g. "invalid_json"
	Error        string   // human-readable detail
	FirstSeen    time.Time
	Attempts     int
}

// Header is one Kafka message header.
type Header struct {
	Key   string
	Value []byte
}
