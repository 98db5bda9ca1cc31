#!/usr/bin/env bash
# Takes the README's picture of the demo's HTML report: runs `raterd demo` in a temporary
# directory (no services needed) and photographs the top of the report it writes with
# headless Chromium, 1280 px wide, with the network disabled.
#
#   scripts/report-screenshot.sh                      writes docs/images/demo-report.png
#   scripts/report-screenshot.sh /tmp/report.png      writes there
#   RATERD_BIN=bin/raterd scripts/report-screenshot.sh    uses a built binary instead of building one
#
# Chromium is RATERD_TEST_CHROMIUM (scripts/services.sh env), else chromium on PATH
# (scripts/services.sh up installs Debian's). SCREENSHOT_HEIGHT sets the picture's height
# in pixels (default 1600): the top of the page, not all of it. The network is off three
# ways: every request goes to a proxy on the discard port (nothing listens there), no
# host name resolves, and the browser's own services (sign-in, component updates) are
# pointed at the discard port too.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/docs/images/demo-report.png}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
width=1280
height="${SCREENSHOT_HEIGHT:-1600}"
discard=127.0.0.1:9

die() { printf 'report-screenshot.sh: %s\n' "$*" >&2; exit 1; }

chromium="${RATERD_TEST_CHROMIUM:-}"
if [ -z "$chromium" ]; then
  chromium="$(command -v chromium || command -v chromium-browser || true)"
fi
[ -n "$chromium" ] && [ -x "$chromium" ] ||
  die "no Chromium (RATERD_TEST_CHROMIUM unset, none on PATH); scripts/services.sh up installs Debian's chromium"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/raterd-report-shot.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

raterd="${RATERD_BIN:-}"
if [ -z "$raterd" ]; then
  echo "building raterd" >&2
  (cd "$root" && go build -o "$tmp/raterd" ./cmd/raterd)
  raterd="$tmp/raterd"
fi
case "$raterd" in /*) ;; *) raterd="$PWD/$raterd" ;; esac

echo "running raterd demo in $tmp" >&2
(cd "$tmp" && "$raterd" demo --quiet --traffic "$root/testdata/traffic.jsonl" \
  --out raterd-demo-scores.ndjson --report raterd-demo-report.html >demo-summary.txt) ||
  die "raterd demo failed"
[ -s "$tmp/raterd-demo-report.html" ] || die "raterd demo wrote no report"

flags=(--headless --disable-gpu --hide-scrollbars --no-first-run --no-default-browser-check
  --user-data-dir="$tmp/profile" --window-size="$width,$height" --force-device-scale-factor=1
  --proxy-server="http://$discard" --proxy-bypass-list="<-loopback>"
  --host-resolver-rules="MAP * ~NOTFOUND"
  --gaia-url="http://$discard" --lso-url="http://$discard" --google-apis-url="http://$discard"
  --component-updater="url-source=http://$discard/"
  --disable-background-networking --disable-component-update --disable-extensions --disable-sync
  --disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate
  --screenshot="$tmp/shot.png")
# Chromium's sandbox refuses to run as root.
[ "$(id -u)" -ne 0 ] || flags+=(--no-sandbox)

echo "photographing the report with $chromium" >&2
"$chromium" "${flags[@]}" "file://$tmp/raterd-demo-report.html" >"$tmp/chromium.log" 2>&1 ||
  { tail -n 20 "$tmp/chromium.log" >&2; die "chromium failed"; }
[ -s "$tmp/shot.png" ] || { tail -n 20 "$tmp/chromium.log" >&2; die "chromium wrote no screenshot"; }
# A PNG's signature, then its IHDR width and height (big-endian, bytes 16..23).
[ "$(head -c 8 "$tmp/shot.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || die "the screenshot is not a PNG"
size="$(od -An -tu1 -j16 -N8 "$tmp/shot.png" | awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}')"

mkdir -p "$(dirname "$out")"
cp "$tmp/shot.png" "$out"
echo "wrote $out ($size px) from raterd demo's report" >&2
