"""Collect the chat templates of the judge model families from the llama-cpp-python sdist.

Usage: templates.py LLAMA_CPP_DIR OUT_DIR

Writes OUT_DIR/<family>.jinja for each family of FAMILIES. Most are files llama.cpp ships in
models/templates (copied from each model's published tokenizer_config.json); Mistral-7B-
Instruct v0.2's original template, which Prometheus 2 inherits, is not among them, so it is
read from llama.cpp's own chat-template test (tests/test-chat-template.cpp), which quotes it
under that model's name. testdata/chat-templates.md names each source.
"""

import ast
import pathlib
import re
import sys

# family -> ("file", path under the llama.cpp tree) or ("test", the test case's name).
FAMILIES = {
    "llama-3.1": ("file", "models/templates/meta-llama-Llama-3.1-8B-Instruct.jinja"),
    "gemma-2": ("file", "models/templates/google-gemma-2-2b-it.jinja"),
    "granite-3.3": ("file", "models/templates/ibm-granite-granite-3.3-2B-Instruct.jinja"),
    "qwen3": ("file", "models/templates/Qwen-Qwen3-0.6B.jinja"),
    "mistral-v0.2": ("test", "mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 without a system prompt)"),
}


def from_test(tree, name):
    """Returns the template_str C literal that follows the test case called name."""
    src = (tree / "tests/test-chat-template.cpp").read_text(encoding="utf-8")
    at = src.find('/* .name= */ "%s"' % name)
    if at < 0:
        sys.exit("templates.py: no test case %r in tests/test-chat-template.cpp" % name)
    m = re.compile(r'/\* \.template_str= \*/ ("(?:[^"\\]|\\.)*")').search(src, at)
    if not m:
        sys.exit("templates.py: no template_str after test case %r" % name)
    # The C escapes used there (\\n, \\", \\\\) read the same as Python's.
    return ast.literal_eval(m.group(1))


def main(tree, out):
    tree, out = pathlib.Path(tree), pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for family, (kind, where) in FAMILIES.items():
        text = (tree / where).read_text(encoding="utf-8") if kind == "file" else from_test(tree, where)
        (out / (family + ".jinja")).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: templates.py LLAMA_CPP_DIR OUT_DIR")
    main(*sys.argv[1:])
