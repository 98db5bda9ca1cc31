"""Runs SQL on chdb (the ClickHouse engine in-process) for sinks' current-release tests.

Usage: chdb_exec.py SESSION_DIR. Reads one JSON object per line from stdin,
{"sql": "...", "format": "TSV" | "JSONCompact"}, runs it in one chdb session (so tables
persist between statements) and writes one JSON object per line to stdout:
{"out": "<the query's output>"} or {"error": "<message>"}. Exits at end of input.
"""
import json
import sys

from chdb import session


def main() -> None:
    sess = session.Session(sys.argv[1])
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            out = str(sess.query(req["sql"], req.get("format", "TSV")))
            resp = {"out": out}
        except Exception as e:  # every failure goes back to the test, which names the statement
            resp = {"error": str(e)}
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
