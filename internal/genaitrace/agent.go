package genaitrace

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// This file builds agent runs: one trace per run, shaped as the GenAI semantic conventions
// describe an agent that calls one tool (invoke_agent, chat, execute_tool, chat).

// Kinds of a sampled agent run (AgentRun.Kind).
const (
	// AgentGrounded: the tool succeeds and the answer states the facts and numbers of its
	// result.
	AgentGrounded = "grounded"
	// AgentUngrounded: the tool succeeds but the answer states a number (an amount, a
	// date, a count) that is not in its result.
	AgentUngrounded = "ungrounded"
	// AgentToolError: the tool fails (its result starts with "error: ") and the answer
	// ignores the failure, confidently stating facts it never received.
	AgentToolError = "tool_error"
	// AgentBadArguments: the model's tool call arguments are not valid JSON; the tool
	// rejects them and the answer says the lookup failed.
	AgentBadArguments = "bad_arguments"
)

// AgentRun is one run of an agent that answers a question with one tool call: the model is
// asked, requests the tool, the tool runs, and the model answers from its result.
type AgentRun struct {
	// Agent is gen_ai.agent.name (e.g. support-agent).
	Agent string
	// Model is the model of both chat spans (gen_ai.request.model and
	// gen_ai.response.model).
	Model string
	// Provider is gen_ai.provider.name; empty: openai.
	Provider string
	// Question is the user's message.
	Question string
	// ToolName is the function the model calls (gen_ai.tool.name).
	ToolName string
	// ToolArgs are the call's arguments as the model wrote them, normally a JSON object
	// (gen_ai.tool.call.arguments); text that is not JSON is recorded as it is.
	ToolArgs string
	// ToolCallID is gen_ai.tool.call.id; empty: call_ and 16 hex digits derived from the
	// seed and the run's index.
	ToolCallID string
	// ToolResult is what the tool returned (gen_ai.tool.call.result).
	ToolResult string
	// ToolError marks a failed tool execution: the execute_tool span gets status Error
	// (the result as its message) and error.type tool_error.
	ToolError bool
	// Answer is the agent's final answer: the output of the last chat span and of the
	// invoke_agent span.
	Answer string
	// ConversationID is gen_ai.conversation.id on every GenAI span; empty: none.
	ConversationID string
	// Kind says what SampleAgentRuns made the run (AgentGrounded, …); AgentRuns ignores it.
	Kind string
}

// agentSeedSalt separates the ids of agent runs from those of Traces' chats built with
// the same seed.
const agentSeedSalt = 0x6167656e74727573

// Span roles within an agent run's trace.
const (
	spanAgent       = iota // invoke_agent, the root
	spanAgentCall          // the first chat: asks for the tool
	spanAgentTool          // execute_tool
	spanAgentAnswer        // the last chat: answers from the tool result
	numAgentSpans
)

// AgentSpans is the number of spans of one agent run's trace.
const AgentSpans = numAgentSpans

// AgentIDs returns the trace id of agent run i and the span id of its root (the
// invoke_agent span). They differ from IDs(seed, i)'s.
func AgentIDs(seed uint64, i int) (pcommon.TraceID, pcommon.SpanID) {
	return traceID(seed^agentSeedSalt, i), spanID(seed^agentSeedSalt, i, spanAgent)
}

// toolCallID returns run i's default tool call id.
func toolCallID(seed uint64, i int) string {
	return fmt.Sprintf("call_%016x", splitmix64(seed^agentSeedSalt^splitmix64(uint64(i)+0xca11)))
}

// AgentRuns builds one trace per run, all under one resource (service.name o.Service) and
// scope, run k being run o.First+k to AgentIDs and starting o.Start + (o.First+k) seconds
// (zero Start: 2026-01-01T00:00:00Z). Each trace has AgentSpans spans, in the order an
// exporter sees them end (children before their parents):
//
//   - chat {model} (client): input the question; output an assistant message whose part
//     is {"type":"tool_call","id","name","arguments"}, finish_reason tool_call;
//   - execute_tool {tool} (internal): gen_ai.tool.name, gen_ai.tool.call.id,
//     gen_ai.tool.type function, gen_ai.tool.call.arguments and gen_ai.tool.call.result;
//     status Error and error.type tool_error when the run's ToolError is set;
//   - chat {model} (client): input the question, the tool call and a tool message with
//     the part {"type":"tool_call_response","id","response"}; output the answer;
//   - invoke_agent {agent} (internal), the root and parent of the three: gen_ai.agent.name,
//     the question in gen_ai.input.messages and the answer in gen_ai.output.messages.
//
// Each model call lasts o.Latency (0: 800 ms) and the tool 150 ms; children start after
// and end before their parent. o.NonGenAI is not used; o.Structured records the messages
// as structured values.
func AgentRuns(o Options, runs []AgentRun) ptrace.Traces {
	td, spans, start, latency := newExport(o)
	const gap, toolTime = 5 * time.Millisecond, 150 * time.Millisecond
	seed := o.Seed ^ agentSeedSalt
	for k, run := range runs {
		i := o.First + k
		tid := traceID(seed, i)
		root := spanID(seed, i, spanAgent)
		callID := run.ToolCallID
		if callID == "" {
			callID = toolCallID(o.Seed, i)
		}
		t0 := start.Add(time.Duration(i) * time.Second)
		callStart := t0.Add(gap)
		toolStart := callStart.Add(latency + gap)
		answerStart := toolStart.Add(toolTime + gap)
		end := answerStart.Add(latency + gap)

		user := map[string]any{"role": "user", "parts": []any{textPart(run.Question)}}
		callPart := map[string]any{"type": "tool_call", "id": callID, "name": run.ToolName, "arguments": toolArguments(run.ToolArgs)}
		call := map[string]any{"role": "assistant", "parts": []any{callPart}}
		callOut := map[string]any{"role": "assistant", "parts": []any{callPart}, "finish_reason": "tool_call"}
		answer := map[string]any{"role": "assistant", "parts": []any{textPart(run.Answer)}, "finish_reason": "stop"}

		s := spans.AppendEmpty()
		setSpan(s, tid, spanID(seed, i, spanAgentCall), root, "chat "+run.Model, ptrace.SpanKindClient, callStart, callStart.Add(latency))
		agentChatAttributes(s.Attributes(), run, fmt.Sprintf("chatcmpl-%d-1", i), "tool_call")
		putAny(s.Attributes(), "gen_ai.input.messages", []map[string]any{user}, o.Structured)
		putAny(s.Attributes(), "gen_ai.output.messages", []map[string]any{callOut}, o.Structured)

		s = spans.AppendEmpty()
		setSpan(s, tid, spanID(seed, i, spanAgentTool), root, "execute_tool "+run.ToolName, ptrace.SpanKindInternal, toolStart, toolStart.Add(toolTime))
		a := s.Attributes()
		a.PutStr("gen_ai.operation.name", "execute_tool")
		a.PutStr("gen_ai.tool.name", run.ToolName)
		a.PutStr("gen_ai.tool.call.id", callID)
		a.PutStr("gen_ai.tool.type", "function")
		a.PutStr("gen_ai.tool.call.arguments", run.ToolArgs)
		a.PutStr("gen_ai.tool.call.result", run.ToolResult)
		if run.ConversationID != "" {
			a.PutStr("gen_ai.conversation.id", run.ConversationID)
		}
		if run.ToolError {
			a.PutStr("error.type", "tool_error")
			s.Status().SetCode(ptrace.StatusCodeError)
			s.Status().SetMessage(run.ToolResult)
		}

		s = spans.AppendEmpty()
		setSpan(s, tid, spanID(seed, i, spanAgentAnswer), root, "chat "+run.Model, ptrace.SpanKindClient, answerStart, answerStart.Add(latency))
		agentChatAttributes(s.Attributes(), run, fmt.Sprintf("chatcmpl-%d-2", i), "stop")
		toolMsg := map[string]any{"role": "tool", "parts": []any{map[string]any{
			"type": "tool_call_response", "id": callID, "response": run.ToolResult,
		}}}
		putAny(s.Attributes(), "gen_ai.input.messages", []map[string]any{user, call, toolMsg}, o.Structured)
		putAny(s.Attributes(), "gen_ai.output.messages", []map[string]any{answer}, o.Structured)

		s = spans.AppendEmpty()
		setSpan(s, tid, root, pcommon.SpanID{}, "invoke_agent "+run.Agent, ptrace.SpanKindInternal, t0, end)
		a = s.Attributes()
		a.PutStr("gen_ai.operation.name", "invoke_agent")
		a.PutStr("gen_ai.provider.name", provider(run))
		a.PutStr("gen_ai.agent.name", run.Agent)
		a.PutStr("gen_ai.request.model", run.Model)
		if run.ConversationID != "" {
			a.PutStr("gen_ai.conversation.id", run.ConversationID)
		}
		putAny(a, "gen_ai.input.messages", []map[string]any{user}, o.Structured)
		putAny(a, "gen_ai.output.messages", []map[string]any{answer}, o.Structured)
	}
	return td
}

func textPart(s string) map[string]any { return map[string]any{"type": "text", "content": s} }

// toolArguments returns the arguments as a tool_call part records them: the decoded JSON
// value, or the text itself when it is not JSON.
func toolArguments(args string) any {
	var v any
	if json.Unmarshal([]byte(args), &v) != nil {
		return args
	}
	return v
}

func provider(run AgentRun) string {
	if run.Provider == "" {
		return "openai"
	}
	return run.Provider
}

// agentChatAttributes writes the attributes of an agent run's chat span besides its
// messages.
func agentChatAttributes(a pcommon.Map, run AgentRun, respID, finish string) {
	a.PutStr("gen_ai.operation.name", "chat")
	a.PutStr("gen_ai.provider.name", provider(run))
	a.PutStr("gen_ai.request.model", run.Model)
	a.PutStr("gen_ai.response.model", run.Model)
	a.PutStr("gen_ai.response.id", respID)
	if run.ConversationID != "" {
		a.PutStr("gen_ai.conversation.id", run.ConversationID)
	}
	a.PutEmptySlice("gen_ai.response.finish_reasons").AppendEmpty().SetStr(finish)
}

// agentKindShares are the proportions of SampleAgentRuns' kinds, in the order they are
// apportioned.
var agentKindShares = []struct {
	kind  string
	share float64
}{{AgentGrounded, 0.5}, {AgentUngrounded, 0.2}, {AgentToolError, 0.15}, {AgentBadArguments, 0.15}}

// AgentKindCounts returns how many of n sampled runs have each kind: 50% grounded, 20%
// ungrounded, 15% tool errors and 15% bad arguments, apportioned by rounding the cumulative
// shares, so the counts sum to n (0 for a negative n).
func AgentKindCounts(n int) map[string]int {
	n = max(n, 0)
	out := make(map[string]int, len(agentKindShares))
	cum, prev := 0.0, 0
	for i, s := range agentKindShares {
		cum += s.share
		c := int(math.Round(cum * float64(n)))
		if i == len(agentKindShares)-1 {
			c = n // the shares sum to 1; no float error may lose one
		}
		out[s.kind] = c - prev
		prev = c
	}
	return out
}

// agentScenario is one tool an agent uses and the texts of a run of each kind, each built
// from the values drawn for the run.
type agentScenario struct {
	agent, tool string
	question    func(v agentValues) string
	args        func(v agentValues) string
	badArgs     func(v agentValues) string
	result      func(v agentValues) string
	grounded    func(v agentValues) string
	ungrounded  func(v agentValues) string // states a number the result does not hold
	confident   func(v agentValues) string // ignores a failed tool
}

// agentValues are the drawn values one run's texts are filled with.
type agentValues struct {
	id        string // order or invoice id
	carrier   string
	eta, eta2 string // the result's date and a wrong one
	days      int
	cents     int // an amount in cents; wrong amounts differ from it
	seats     int
	plan      string
}

func usd(cents int) string { return fmt.Sprintf("$%d.%02d", cents/100, cents%100) }

var agentScenarios = []agentScenario{
	{
		agent: "support-agent", tool: "get_order_status",
		question: func(v agentValues) string { return fmt.Sprintf("Where is my order %s? It still hasn't arrived.", v.id) },
		args:     func(v agentValues) string { return fmt.Sprintf(`{"order_id":%q}`, v.id) },
		badArgs:  func(v agentValues) string { return fmt.Sprintf(`{"order_id": "%s",`, v.id) },
		result: func(v agentValues) string {
			return fmt.Sprintf(`{"order_id":%q,"status":"in_transit","carrier":%q,"days_in_transit":%d,"estimated_delivery":%q}`, v.id, v.carrier, v.days, v.eta)
		},
		grounded: func(v agentValues) string {
			return fmt.Sprintf("Your order %s is in transit with %s (%d days so far) and is expected to arrive on %s.", v.id, v.carrier, v.days, v.eta)
		},
		ungrounded: func(v agentValues) string {
			return fmt.Sprintf("Your order %s is in transit with %s and is expected to arrive on %s.", v.id, v.carrier, v.eta2)
		},
		confident: func(v agentValues) string {
			return fmt.Sprintf("Good news: your order %s was delivered on %s and left at your front door.", v.id, v.eta2)
		},
	},
	{
		agent: "billing-agent", tool: "get_invoice",
		question: func(v agentValues) string { return fmt.Sprintf("How much was invoice %s and has it been paid?", v.id) },
		args:     func(v agentValues) string { return fmt.Sprintf(`{"invoice_id":%q}`, v.id) },
		badArgs:  func(v agentValues) string { return fmt.Sprintf(`{invoice_id: %s}`, v.id) },
		result: func(v agentValues) string {
			return fmt.Sprintf(`{"invoice_id":%q,"amount_due":%q,"currency":"USD","status":"paid","paid_on":%q}`, v.id, usd(v.cents), v.eta)
		},
		grounded: func(v agentValues) string {
			return fmt.Sprintf("Invoice %s was for %s and was paid in full on %s.", v.id, usd(v.cents), v.eta)
		},
		ungrounded: func(v agentValues) string {
			return fmt.Sprintf("Invoice %s was for %s and was paid in full on %s.", v.id, usd(v.cents+1500+v.days*100), v.eta)
		},
		confident: func(v agentValues) string {
			return fmt.Sprintf("Invoice %s was for %s and is still open; payment is due by %s.", v.id, usd(v.cents*2), v.eta2)
		},
	},
	{
		agent: "billing-agent", tool: "quote_plan_price",
		question: func(v agentValues) string {
			return fmt.Sprintf("What would the %s plan cost per month for %d seats?", v.plan, v.seats)
		},
		args: func(v agentValues) string {
			return fmt.Sprintf(`{"plan":%q,"seats":%d}`, strings.ToLower(v.plan), v.seats)
		},
		badArgs: func(v agentValues) string {
			return fmt.Sprintf(`{"plan":%q,"seats":%d`, strings.ToLower(v.plan), v.seats)
		},
		result: func(v agentValues) string {
			return fmt.Sprintf(`{"plan":%q,"seats":%d,"price_per_seat":%q,"monthly_total":%q}`, strings.ToLower(v.plan), v.seats, usd(v.cents), usd(v.cents*v.seats))
		},
		grounded: func(v agentValues) string {
			return fmt.Sprintf("The %s plan is %s per seat, so %d seats come to %s per month.", v.plan, usd(v.cents), v.seats, usd(v.cents*v.seats))
		},
		ungrounded: func(v agentValues) string {
			return fmt.Sprintf("The %s plan is %s per seat, so %d seats come to %s per month.", v.plan, usd(v.cents), v.seats, usd(v.cents*v.seats-v.cents/2))
		},
		confident: func(v agentValues) string {
			return fmt.Sprintf("The %s plan costs a flat %s per month for up to %d seats.", v.plan, usd(v.cents*3), v.seats+5)
		},
	},
	{
		agent: "support-agent", tool: "check_refund",
		question: func(v agentValues) string { return fmt.Sprintf("Did you process the refund for order %s yet?", v.id) },
		args:     func(v agentValues) string { return fmt.Sprintf(`{"order_id":%q}`, v.id) },
		badArgs:  func(v agentValues) string { return fmt.Sprintf(`{"order_id": %s}`, v.id) },
		result: func(v agentValues) string {
			return fmt.Sprintf(`{"order_id":%q,"refund_status":"processing","amount":%q,"expected_by":%q}`, v.id, usd(v.cents), v.eta)
		},
		grounded: func(v agentValues) string {
			return fmt.Sprintf("Yes — the refund of %s for order %s is being processed and should reach your account by %s.", usd(v.cents), v.id, v.eta)
		},
		ungrounded: func(v agentValues) string {
			return fmt.Sprintf("Yes — the refund of %s for order %s is being processed and should reach your account by %s.", usd(v.cents+2500), v.id, v.eta)
		},
		confident: func(v agentValues) string {
			return fmt.Sprintf("Yes — the refund of %s for order %s was completed on %s.", usd(v.cents+999), v.id, v.eta2)
		},
	},
}

var (
	agentModels    = []struct{ model, provider string }{{"gpt-4o-mini", "openai"}, {"claude-sonnet-4", "anthropic"}}
	agentCarriers  = []string{"UPS", "DHL", "FedEx", "DPD"}
	agentPlans     = []string{"Starter", "Team", "Business"}
	agentToolFails = []string{
		"error: upstream timeout after 5000ms",
		"error: 503 Service Unavailable from orders-api",
		"error: permission denied: token lacks scope billing:read",
	}
)

// SampleAgentRuns returns n realistic support and billing agent runs (order status,
// invoices, plan prices, refunds), the same for the same n and seed, with the kinds
// AgentKindCounts(n) gives, shuffled: AgentGrounded, AgentUngrounded, AgentToolError and
// AgentBadArguments runs (see their doc). A bad-arguments run's tool result is an error
// too (ToolError set), and its answer says the lookup failed. Every third run carries a
// conversation id.
func SampleAgentRuns(n int, seed uint64) []AgentRun {
	n = max(n, 0)
	r := rand.New(rand.NewPCG(seed, agentSeedSalt))
	counts := AgentKindCounts(n)
	kinds := make([]string, 0, n)
	for _, s := range agentKindShares {
		for range counts[s.kind] {
			kinds = append(kinds, s.kind)
		}
	}
	r.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	runs := make([]AgentRun, n)
	for i := range runs {
		sc := agentScenarios[r.IntN(len(agentScenarios))]
		m := agentModels[r.IntN(len(agentModels))]
		day := 1 + r.IntN(27)
		v := agentValues{
			carrier: agentCarriers[r.IntN(len(agentCarriers))],
			eta:     time.Date(2026, 12, day, 0, 0, 0, 0, time.UTC).Format("2006-01-02"),
			eta2:    time.Date(2026, 12, day+1+r.IntN(3), 0, 0, 0, 0, time.UTC).Format("2006-01-02"),
			days:    2 + r.IntN(8),
			cents:   (12 + r.IntN(400)) * 100,
			seats:   2 + r.IntN(40),
			plan:    agentPlans[r.IntN(len(agentPlans))],
		}
		if sc.tool == "get_invoice" {
			v.id = fmt.Sprintf("INV-2026-%05d", r.IntN(100_000))
		} else {
			v.id = fmt.Sprintf("BW-%07d", r.IntN(10_000_000))
		}
		run := AgentRun{
			Agent: sc.agent, Model: m.model, Provider: m.provider, Question: sc.question(v),
			ToolName: sc.tool, ToolArgs: sc.args(v), ToolResult: sc.result(v), Answer: sc.grounded(v), Kind: kinds[i],
		}
		switch run.Kind {
		case AgentUngrounded:
			run.Answer = sc.ungrounded(v)
		case AgentToolError:
			run.ToolResult, run.ToolError = agentToolFails[r.IntN(len(agentToolFails))], true
			run.Answer = sc.confident(v)
		case AgentBadArguments:
			run.ToolArgs = sc.badArgs(v)
			run.ToolResult, run.ToolError = "error: invalid arguments: could not parse JSON", true
			run.Answer = "Sorry, I couldn't look that up just now. Could you try again in a moment?"
		}
		if i%3 == 0 {
			run.ConversationID = fmt.Sprintf("conv-agent-%06d", i)
		}
		runs[i] = run
	}
	return runs
}
