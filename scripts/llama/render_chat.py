"""Render chat messages through a model's chat template with Jinja2, as Hugging Face
transformers' apply_chat_template does: a sandboxed environment with trim_blocks and
lstrip_blocks, the loopcontrols extension, raise_exception and strftime_now.

Reads one JSON request per line on stdin: {"template": PATH, "messages": [...],
"bos_token": ..., "eos_token": ...}; writes one JSON line per request:
{"text": ...} or {"error": ...} (the template's own exception, e.g. "Conversation roles
must alternate user/assistant/user/assistant/...").
"""

import datetime
import json
import sys

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateRaised(Exception):
    """An exception the template raised with raise_exception."""


def raise_exception(message):
    raise TemplateRaised(message)


def strftime_now(fmt):
    return datetime.datetime.now().strftime(fmt)


def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    cache = {}
    for line in sys.stdin:
        req = json.loads(line)
        try:
            path = req["template"]
            if path not in cache:
                with open(path, encoding="utf-8") as f:
                    cache[path] = env.from_string(f.read())
            text = cache[path].render(
                messages=req["messages"],
                bos_token=req.get("bos_token", "<s>"),
                eos_token=req.get("eos_token", "</s>"),
                add_generation_prompt=True,
            )
            out = {"text": text}
        except (TemplateRaised, TemplateError) as e:
            out = {"error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
