#!/usr/bin/env bash
# Fuzz every Go fuzz target of the module, one after the other, for DURATION each.
#
#   scripts/fuzz.sh [--warn] [DURATION]   DURATION as for go test -fuzztime (default 5s; "1000x" also works)
#
# With --warn (the test command's setting) new findings are reported but do not fail the
# run: fuzzing explores at random, so a finding is new bad input, not a regression of the
# change under test; the seed corpora, which plain `go test` runs, do gate. Fix what it
# finds and add the input to the target's corpus.
#
# Targets are the Fuzz* functions `go test -list` finds (so build tags are respected). One
# summary line per target; the exit status is non-zero if any target fails. A failing
# input is written by Go under <package>/testdata/fuzz/<Target>/ (which makes plain
# `go test` fail on it too) and its path is printed; full logs of failures are kept.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
warn=
if [[ "${1:-}" == --warn ]]; then warn=1; shift; fi
duration="${1:-5s}"
logs="$(mktemp -d "${TMPDIR:-/tmp}/raterd-fuzz.XXXXXX")"

# "<import path> <FuzzName>" per target; a package that does not build fails the script.
targets="$(go test -list '^Fuzz' ./... | awk '
	/^Fuzz/            { names = names " " $1 }
	/^ok[ \t]/         { n = split(names, a, " "); for (i = 1; i <= n; i++) print $2, a[i] }
	/^(ok|\?|FAIL)/    { names = "" }')"
if [[ -z "$targets" ]]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

total=0 failed=0
while read -r pkg name; do
	total=$((total + 1))
	log="$logs/${pkg//\//_}.$name.log"
	start=$SECONDS
	status=ok
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$duration" "$pkg" >"$log" 2>&1 || status=FAIL
	# Go's fuzz coordinator sometimes ends a run on a loaded machine with a bare "context
	# deadline exceeded" and no failing input (a worker slow to stop at -fuzztime): that
	# is not a finding, so run the target once more before calling it a failure.
	if [[ "$status" == FAIL ]] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'testdata/fuzz/' "$log"; then
		echo "      $name: the fuzz run ended with 'context deadline exceeded' and no failing input; running it again" >>"$log.retry"
		status=ok
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$duration" "$pkg" >"$log" 2>&1 || status=FAIL
	fi
	execs="$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)"
	printf '%-4s  %-30s %-26s %4ds  %10s execs\n' "$status" "$pkg" "$name" $((SECONDS - start)) "${execs:-?}"
	if [[ "$status" == FAIL ]]; then
		failed=$((failed + 1))
		dir="$(go list -f '{{.Dir}}' "$pkg")"
		input="$(grep -o 'testdata/fuzz/[^[:space:]]*' "$log" | tail -n 1 || true)"
		seed="$(grep -o 'seed corpus entry: [^[:space:]]*' "$log" | tail -n 1 || true)"
		if [[ -n "$input" ]]; then
			echo "      failing input written to ${dir#"$PWD"/}/$input"
			echo "      rerun: go test -run '^${input#testdata/fuzz/}\$' $pkg"
		elif [[ -n "$seed" ]]; then
			echo "      failing $seed (already in the corpus or an f.Add)"
		fi
		echo "      log: $log"
		tail -n 15 "$log" | sed 's/^/      | /'
	fi
done <<<"$targets"

echo "fuzz.sh: $total targets, $failed failed, ${duration} each"
if ((failed > 0)); then
	if [[ -n "$warn" ]]; then
		echo "fuzz.sh: WARNING: $failed new finding(s) above (--warn: not failing the run; fix them and add each input to its corpus)"
		exit 0
	fi
	exit 1
fi
rm -rf "$logs"
