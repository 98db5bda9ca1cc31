"""Generate the litellm seed corpus from the real LiteLLM SDK (issue 14).

Every file is the `standard_logging_object` (StandardLoggingPayload) that LiteLLM hands
its callbacks, dumped as-is by a CustomLogger: nothing here is typed by hand except the
requests. No network is used: litellm's mock_response answers locally.

Run from the repository root (versions used for the committed files: litellm 1.110.2,
Python 3.11):

    python3 -m venv /tmp/seedvenv && /tmp/seedvenv/bin/pip install litellm==1.110.2
    LITELLM_LOCAL_MODEL_COST_MAP=True /tmp/seedvenv/bin/python consumer/testdata/gen/litellm_seeds.py

It writes consumer/testdata/inputs/litellm/*.json and the matching Go fuzz seeds under
consumer/testdata/fuzz/FuzzDecodeLiteLLM/.
"""

import json
import os
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
from litellm.integrations.custom_logger import CustomLogger  # noqa: E402

from fuzzseed import write_fuzz_seed  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "inputs", "litellm")
FUZZ = os.path.join(HERE, "..", "fuzz", "FuzzDecodeLiteLLM")


class Dump(CustomLogger):
    """Keeps the standard logging payload of every call, success or failure."""

    def __init__(self):
        super().__init__()
        self.payloads = []

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.payloads.append(kwargs["standard_logging_object"])

    def log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self.payloads.append(kwargs["standard_logging_object"])


DUMP = Dump()


def capture(name, call):
    # One logger for every call: litellm copies litellm.callbacks into its own lists on
    # first use, so a replaced list would not be seen.
    dump = DUMP
    dump.payloads.clear()
    try:
        call()
    except Exception as exc:  # the failure seeds raise on purpose
        print(f"{name}: call raised {type(exc).__name__} (expected for failures)", file=sys.stderr)
    for _ in range(50):  # callbacks may run on a worker thread
        if dump.payloads:
            break
        time.sleep(0.1)
    if not dump.payloads:
        raise SystemExit(f"{name}: no standard_logging_object logged")
    text = json.dumps(dump.payloads[-1], default=str, indent=1, sort_keys=True)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        f.write(text + "\n")
    # The fuzz seed leaves out model_map_information (litellm's price table entry, 13 KB
    # that raterd never reads) so that the fuzzer mutates what matters.
    compact = {k: v for k, v in dump.payloads[-1].items() if k != "model_map_information"}
    write_fuzz_seed(FUZZ, name, json.dumps(compact, default=str, separators=(",", ":")))
    print(f"{name}: ok")


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(FUZZ, exist_ok=True)
    litellm.callbacks = [DUMP]

    capture("chat_simple", lambda: litellm.completion(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        mock_response="Paris.",
        # The keys the LiteLLM proxy sets for a virtual key of a team, and the caller's own
        # metadata (the proxy's requester_metadata).
        metadata={"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "session_id": "sess-42",
                  "user_api_key_team_alias": "support-bot", "user_api_key_alias": "support-bot-prod",
                  "user_api_key_team_id": "team-123",
                  "metadata": {"tenant": "acme", "ticket": 4711}},
        temperature=0.2,
    ))

    # With request_correlation_in_logs litellm keeps trace_id and session_id apart
    # (session_id is empty otherwise, and the session id lands in trace_id).
    litellm.request_correlation_in_logs = True
    capture("chat_multiturn_parts", lambda: litellm.completion(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": [{"type": "text", "text": "Name a prime number"},
                                         {"type": "text", "text": "greater than 10."}]},
            {"role": "assistant", "content": "11 is prime."},
            {"role": "user", "content": "And one greater than 20?"},
        ],
        mock_response="23 is prime.",
        litellm_session_id="conv-7",
        litellm_trace_id="trace-7a",
    ))
    litellm.request_correlation_in_logs = False

    capture("chat_tool_call", lambda: litellm.completion(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_prev", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\": \"Lyon\"}"}}]},
            {"role": "tool", "tool_call_id": "call_prev", "content": "{\"temp_c\": 18}"},
            {"role": "user", "content": "Now Paris please."},
        ],
        tools=[WEATHER_TOOL],
        mock_tool_calls=[{"id": "call_abc123", "type": "function",
                          "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}],
        mock_response="",
    ))

    capture("failure", lambda: litellm.completion(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "This call fails."}],
        mock_response=Exception("upstream exploded"),
    ))

    capture("responses_api", lambda: litellm.responses(
        model="gpt-4.1-mini",
        instructions="You are a terse assistant.",
        input="What is the capital of France?",
        mock_response="Paris.",
    ))

    capture("text_completion", lambda: litellm.text_completion(
        model="gpt-3.5-turbo-instruct",
        prompt="Say hello",
        mock_response="Hello!",
    ))

    capture("embedding", lambda: litellm.embedding(
        model="text-embedding-3-small",
        input=["embed me"],
        mock_response=[0.1, 0.2, 0.3],
    ))


if __name__ == "__main__":
    main()
