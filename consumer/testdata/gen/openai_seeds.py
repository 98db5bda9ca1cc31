"""Generate the openai seed corpus with the official OpenAI Python SDK (issue 14).

Each file is the envelope a gateway logs for one call:

    {"id"?, "timestamp"?, "app"?, "metadata"?, "latency_ms"?, "conversation_id"?,
     "request": <the JSON body the SDK sent>, "response": <the JSON body it received>}

The request bodies are exactly what openai's client serialised (captured by an httpx
event hook). The response bodies come from:
  - Chat Completions without tools: raterd's judge simulator (cmd/judgesim), a real
    OpenAI-compatible server, started by this script on a free local port;
  - Chat Completions with tool calls and the Responses API (judgesim serves neither):
    objects built with the SDK's own pydantic types (openai.types.chat.ChatCompletion,
    openai.types.responses.Response), validated by them, served to the client through an
    httpx.MockTransport and parsed back by the SDK.
Nothing leaves the machine.

Run from the repository root (versions used for the committed files: openai 3.63.0,
httpx 0.29.0, pydantic 2.14.4, Python 3.11, Go 1.26):

    python3 -m venv /tmp/seedvenv && /tmp/seedvenv/bin/pip install openai==3.63.0
    /tmp/seedvenv/bin/python consumer/testdata/gen/openai_seeds.py

It writes consumer/testdata/inputs/openai/*.json and the matching Go fuzz seeds under
consumer/testdata/fuzz/FuzzDecodeOpenAI/.
"""

import json
import os
import socket
import subprocess
import tempfile
import time

import httpx
import openai
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from fuzzseed import write_fuzz_seed

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
OUT = os.path.join(HERE, "..", "inputs", "openai")
FUZZ = os.path.join(HERE, "..", "fuzz", "FuzzDecodeOpenAI")


class Capture:
    """An httpx event hook pair that keeps the last request and response bodies."""

    def __init__(self):
        self.request = None
        self.response = None

    def on_request(self, request: httpx.Request):
        self.request = json.loads(request.content)

    def on_response(self, response: httpx.Response):
        response.read()
        self.response = json.loads(response.content)


def client_for(base_url, cap, transport=None):
    http = httpx.Client(transport=transport,
                        event_hooks={"request": [cap.on_request], "response": [cap.on_response]})
    return openai.OpenAI(api_key="sk-seed", base_url=base_url, http_client=http, max_retries=0)


def mock_transport(body):
    """A transport answering every request with body (a pydantic model of the SDK)."""
    text = body.model_dump_json(exclude_unset=False)

    def handle(request):
        return httpx.Response(200, headers={"content-type": "application/json"}, text=text)

    return httpx.MockTransport(handle)


def write(name, cap, latency_ms, **envelope):
    env = dict(envelope)
    env["latency_ms"] = round(latency_ms, 3)
    env["request"] = cap.request
    env["response"] = cap.response
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        f.write(json.dumps(env, indent=1) + "\n")
    write_fuzz_seed(FUZZ, name, json.dumps(env, separators=(",", ":")))
    print(f"{name}: ok")


def timed(call):
    t0 = time.monotonic()
    call()
    return (time.monotonic() - t0) * 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_judgesim(tmp):
    # Built first and run directly: `go run` would leave the simulator behind when stopped.
    binary = os.path.join(tmp, "judgesim")
    subprocess.run(["go", "build", "-o", binary, "./cmd/judgesim"], cwd=ROOT, check=True)
    port = free_port()
    proc = subprocess.Popen([binary, "-listen", f"127.0.0.1:{port}", "-model", "gpt-4o-mini-2024-07-18"])
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base + "/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("judgesim did not start")


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def chat_seeds(base):
    cap = Capture()
    c = client_for(base, cap)
    ms = timed(lambda: c.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "You are a terse assistant."},
                  {"role": "user", "content": "What is the capital of France?"}],
        temperature=0.2, max_tokens=64))
    write("chat_simple", cap, ms, id="gw-0001", timestamp="2026-11-28T12:00:00.250Z",
          app="support-bot", metadata={"tenant": "acme", "env": "prod"},
          conversation_id="conv-123")

    cap = Capture()
    c = client_for(base, cap)
    ms = timed(lambda: c.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "developer", "content": [{"type": "text", "text": "Answer in one sentence."}]},
                  {"role": "user", "content": [{"type": "text", "text": "Name a prime number"},
                                               {"type": "text", "text": "greater than 10."}]},
                  {"role": "assistant", "content": "11 is prime."},
                  {"role": "user", "content": "And one greater than 20?"}]))
    write("chat_parts_developer", cap, ms, timestamp=1796040000)

    completion = ChatCompletion.model_validate({
        "id": "chatcmpl-seedtools01", "object": "chat.completion", "created": 1796040100,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None,
                     "message": {"role": "assistant", "content": None, "refusal": None,
                                 "tool_calls": [{"id": "call_paris", "type": "function",
                                                 "function": {"name": "get_weather",
                                                              "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 91, "completion_tokens": 17, "total_tokens": 108}})
    cap = Capture()
    c = client_for("https://api.openai.com/v1", cap, mock_transport(completion))
    ms = timed(lambda: c.chat.completions.create(
        model="gpt-4o-mini", tools=[WEATHER_TOOL],
        messages=[{"role": "system", "content": "Use tools when useful."},
                  {"role": "user", "content": "What's the weather in Lyon, then Paris?"},
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "call_lyon", "type": "function",
                       "function": {"name": "get_weather", "arguments": "{\"city\":\"Lyon\"}"}}]},
                  {"role": "tool", "tool_call_id": "call_lyon", "content": "{\"temp_c\":18}"}]))
    write("chat_tool_calls", cap, ms)


def responses_seeds():
    common = {"object": "response", "created_at": 1796040200, "model": "gpt-4.1-mini-2025-04-14",
              "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}

    resp = Response.model_validate({**common, "id": "resp_seedsimple01", "status": "completed",
        "output": [{"type": "message", "id": "msg_01", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": "Paris is the capital of France.",
                                 "annotations": []}]}],
        "usage": {"input_tokens": 25, "output_tokens": 8, "total_tokens": 33,
                  "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 0}}})
    cap = Capture()
    c = client_for("https://api.openai.com/v1", cap, mock_transport(resp))
    ms = timed(lambda: c.responses.create(model="gpt-4.1-mini", instructions="You are a terse assistant.",
                                          input="What is the capital of France?"))
    write("responses_simple", cap, ms, app="docs-search")

    resp = Response.model_validate({**common, "id": "resp_seedtools01", "status": "completed",
        "tools": [{"type": "function", "name": "get_weather", "strict": True,
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                  "required": ["city"], "additionalProperties": False}}],
        "output": [{"type": "function_call", "id": "fc_02", "call_id": "call_paris",
                    "name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "status": "completed"}],
        "usage": {"input_tokens": 120, "output_tokens": 19, "total_tokens": 139,
                  "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 0}}})
    cap = Capture()
    c = client_for("https://api.openai.com/v1", cap, mock_transport(resp))
    ms = timed(lambda: c.responses.create(
        model="gpt-4.1-mini",
        tools=[{"type": "function", "name": "get_weather", "strict": True,
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"], "additionalProperties": False}}],
        input=[{"role": "developer", "content": "Use tools when useful."},
               {"role": "user", "content": [{"type": "input_text", "text": "Weather in Lyon, then Paris?"}]},
               {"type": "function_call", "call_id": "call_lyon", "name": "get_weather",
                "arguments": "{\"city\":\"Lyon\"}"},
               {"type": "function_call_output", "call_id": "call_lyon", "output": "{\"temp_c\":18}"},
               {"role": "assistant", "content": [{"type": "output_text", "text": "Lyon: 18 °C. Checking Paris."}]}]))
    write("responses_function_call", cap, ms, conversation_id="thread-9")

    resp = Response.model_validate({**common, "id": "resp_seedincomplete01", "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [{"type": "message", "id": "msg_03", "role": "assistant", "status": "incomplete",
                    "content": [{"type": "output_text", "text": "Once upon a time, in a", "annotations": []}]}],
        "usage": {"input_tokens": 12, "output_tokens": 16, "total_tokens": 28,
                  "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 0}}})
    cap = Capture()
    c = client_for("https://api.openai.com/v1", cap, mock_transport(resp))
    ms = timed(lambda: c.responses.create(model="gpt-4.1-mini", max_output_tokens=16,
                                          input=[{"role": "user", "content": "Tell me a long story."}]))
    write("responses_incomplete", cap, ms)


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(FUZZ, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_judgesim(tmp)
        try:
            chat_seeds(base)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    responses_seeds()


if __name__ == "__main__":
    main()
