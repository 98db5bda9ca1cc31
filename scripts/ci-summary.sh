#!/usr/bin/env bash
# ci-summary.sh LOG: a short account of what failed in a `go test -v` / fuzz log, for the
# end of .ci/run's output (CI keeps only the last lines of a run, where a long -v log would
# otherwise show the last package that passed). Prints each failing test with the first
# error lines it logged, failing packages, panics and fuzz failures, at most about 40 lines.
set -uo pipefail
log=${1:?usage: ci-summary.sh LOG}
echo "=== what failed (from $log) ==="
awk '
  # A test logs its errors (indented "file_test.go:N: ...") before its "--- FAIL" line.
  /^=== (RUN|CONT|NAME)/ { errs = ""; n = 0; next }
  /^[ \t]+[A-Za-z0-9_]+\.go:[0-9]+: / { if (n < 3) { errs = errs "\n      " substr($0, 1, 300); n++ } ; next }
  /^[ \t]*--- FAIL/ { print substr($0, 1, 200) errs; errs = ""; n = 0; next }
  /^panic:|^fatal error:|test timed out|^FAIL[ \t]|^(FAIL|fail)[ \t]+raterd\/|^--- FAIL|^FAIL$/ { print substr($0, 1, 300) }
' "$log" | tail -n 40
