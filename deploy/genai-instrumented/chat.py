#!/usr/bin/env python3
"""Real GenAI instrumentation traffic for raterd (issue 14).

One process per instrumentation MODE (instrumentations must not stack): it instruments the
official `openai` client with one real OpenTelemetry GenAI instrumentation, points the
client at an OpenAI-compatible server (raterd's judgesim, standing in for the model), makes
a few chat completions inside one parent span, and exports the spans and log records over
OTLP gRPC to a collector. Every resource carries service.name=--service-name and
raterd.genai.mode=MODE, so a reader can pick out one run and one mode.

    chat.py --mode openai-v2-latest-span --base-url http://127.0.0.1:8000/v1 \
            --otlp 127.0.0.1:4317 --service-name genai-demo-1234

scripts/genai-instrumented.sh runs it from the pinned virtualenv for every mode;
consumer/testdata/inputs/instrumented/README.md says what each mode emits.
"""

import argparse
import os
import sys

# MODE -> (instrumentation, environment it needs). The environment is set before any
# instrumentation module is imported, since some read it at import or instrument time.
MODES = {
    # opentelemetry-instrumentation-openai-v2 on its default conventions (semconv 1.30):
    # content as log records (gen_ai.system.message, gen_ai.user.message, gen_ai.choice...).
    "openai-v2-legacy": ("openai-v2", {
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
    }),
    # The same with the latest experimental conventions, content on the span only
    # (gen_ai.input.messages, gen_ai.output.messages, gen_ai.system_instructions).
    "openai-v2-latest-span": ("openai-v2", {
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only",
    }),
    # ... content in a gen_ai.client.inference.operation.details log record only.
    "openai-v2-latest-event": ("openai-v2", {
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "event_only",
    }),
    # Arize OpenInference: llm.input_messages.N.message.* flattened span attributes.
    "openinference": ("openinference", {}),
    # OpenLLMetry (traceloop) with its default use_attributes=True: content on the span.
    "traceloop": ("traceloop", {"TRACELOOP_TRACE_CONTENT": "true"}),
    # OpenLLMetry with use_attributes=False: content as log records (events).
    "traceloop-events": ("traceloop-events", {"TRACELOOP_TRACE_CONTENT": "true"}),
}

SYSTEM = "You are a concise assistant for a travel agency. Answer in one or two sentences."

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="chat.py --list-modes prints the modes, one a line.")
    p.add_argument("--mode", required=True, choices=sorted(MODES))
    p.add_argument("--base-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--otlp", required=True, help="collector OTLP gRPC endpoint, host:port")
    p.add_argument("--service-name", required=True, help="resource service.name (make it unique per run)")
    p.add_argument("--model", default="gpt-4o-mini", help="model name sent in the requests")
    return p.parse_args(argv)


def setup(args):
    """Install tracer and logger providers exporting to the collector; return a shutdown."""
    from opentelemetry import trace
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({
        "service.name": args.service_name,
        "raterd.genai.mode": args.mode,
    })
    endpoint = "http://" + args.otlp if "://" not in args.otlp else args.otlp
    # Export only at the flush in shutdown(), so each signal of a run is one OTLP export
    # (one Kafka message): the log processor's default 1 s schedule would split a run.
    delay = 120_000
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True),
                                             schedule_delay_millis=delay))
    trace.set_tracer_provider(tp)
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True),
                                                        schedule_delay_millis=delay))
    set_logger_provider(lp)

    def shutdown():
        # Flush first so an export failure is reported here, not lost at exit.
        ok = tp.force_flush(10_000) and lp.force_flush(10_000)
        tp.shutdown()
        lp.shutdown()
        return ok

    return tp, lp, shutdown


def instrument(kind, tp, lp):
    if kind == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=tp, logger_provider=lp)
    elif kind == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=tp)
    elif kind in ("traceloop", "traceloop-events"):
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        OpenAIInstrumentor(use_attributes=(kind == "traceloop")).instrument(
            tracer_provider=tp, logger_provider=lp)
    else:
        raise SystemExit(f"chat.py: unknown instrumentation {kind!r}")


def conversation(client, model):
    """The chat completions every mode makes; returns how many got an answer."""
    import openai

    answered = 0
    # 1. A system message and one question.
    r = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "What is the capital of France?"},
        ],
    )
    answered += bool(r.choices[0].message.content)
    # 2. A multi-turn conversation with request parameters.
    r = client.chat.completions.create(
        model=model,
        temperature=0.2,
        max_tokens=200,
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Plan a weekend in Lisbon."},
            {"role": "assistant", "content": "Day one: Alfama and the castle. Day two: Belem."},
            {"role": "user", "content": "And where should we eat on day two?"},
        ],
    )
    answered += bool(r.choices[0].message.content)
    # 3. A tool definition and an earlier tool call with its result in the history
    #    (judgesim never answers with tool calls, so the answer is text).
    r = client.chat.completions.create(
        model=model,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Should I pack an umbrella for Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_weather_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
            }]},
            {"role": "tool", "tool_call_id": "call_weather_1", "content": "{\"forecast\": \"rain\", \"celsius\": 14}"},
        ],
    )
    answered += bool(r.choices[0].message.content)
    # 4. A failing call: judgesim answers stream=true with 400, so the instrumentation
    #    records an error span (error.type) that a decoder has to skip or mark.
    try:
        client.chat.completions.create(
            model=model, stream=True,
            messages=[{"role": "user", "content": "This request fails on purpose."}],
        )
    except openai.BadRequestError:
        pass
    else:
        raise SystemExit("chat.py: the stream=true request was expected to fail with 400")
    return answered


def main(argv):
    if argv == ["--list-modes"]:
        print("\n".join(MODES))
        return 0
    args = parse_args(argv)
    kind, env = MODES[args.mode]
    os.environ.update(env)
    tp, lp, shutdown = setup(args)
    instrument(kind, tp, lp)

    import openai
    from opentelemetry import trace

    client = openai.OpenAI(base_url=args.base_url, api_key="judgesim-needs-no-key", max_retries=0, timeout=30)
    tracer = trace.get_tracer("raterd.genai-instrumented")
    # A parent span as an application would have one: not a GenAI span, so a decoder skips it.
    with tracer.start_as_current_span("handle-travel-request") as span:
        span.set_attribute("raterd.genai.mode", args.mode)
        answered = conversation(client, args.model)
    if not shutdown():
        print(f"chat.py: {args.mode}: exporting to {args.otlp} did not finish", file=sys.stderr)
        return 1
    if answered != 3:
        print(f"chat.py: {args.mode}: {answered} of 3 chat completions answered", file=sys.stderr)
        return 1
    print(f"chat.py: {args.mode}: 3 chat completions and 1 failed call exported as service.name={args.service_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
