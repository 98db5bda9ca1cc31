"""Write Go fuzz seed corpus files ("go test fuzz v1") from Python."""

import os


def go_quote(data: bytes) -> str:
    """Quote bytes as a Go interpreted string literal (like strconv.Quote on bytes)."""
    out = ['"']
    for b in data:
        c = chr(b)
        if c == '"':
            out.append('\\"')
        elif c == '\\':
            out.append('\\\\')
        elif c == '\n':
            out.append('\\n')
        elif c == '\r':
            out.append('\\r')
        elif c == '\t':
            out.append('\\t')
        elif 0x20 <= b < 0x7f:
            out.append(c)
        else:
            out.append('\\x%02x' % b)
    out.append('"')
    return "".join(out)


def write_fuzz_seed(directory: str, name: str, value: str) -> None:
    """Write value as one []byte argument of a fuzz target's seed corpus."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w") as f:
        f.write("go test fuzz v1\n[]byte(%s)\n" % go_quote(value.encode("utf-8")))
