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

	// Format is the input format the record was decoded from (raterd, otlp_proto, …);
	// filled by the consumer.
	Format string `json:"-"`
	// Source is filled by the consumer, not read from the message value.
	Source Source `json:"-"`
	// SizeBytes is the size of the encoded message value (for a message that yields several
	// records, this record's share of it).
	SizeBytes int `json:"-"`
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
