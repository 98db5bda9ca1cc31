# shellcheck shell=bash
# The llama.cpp test engine of scripts/services.sh (sourced by it; not run on its own):
# llama.cpp's OpenAI-compatible server, built from the source the llama-cpp-python sdist on
# PyPI vendors, serving tiny random-weight models that carry real tokenizers, with the judge
# model families' real chat templates. The tests need the server's request handling, chat
# templates, tokenizer, logprobs and constrained decoding, not a model that judges well.
#
#   llama3   127.0.0.1:8090  Llama 3's tokenizer, Llama 3.1 8B Instruct's chat template
#                            (Selene Mini's, Llama Guard 3's family); 4 parallel slots
#   mistral  127.0.0.1:8091  Llama 2 / Mistral's SentencePiece tokenizer, Mistral-7B-
#                            Instruct v0.2's template (Prometheus 2's), which refuses a
#                            system turn
#
# Needs cmake and a C++ compiler (Debian's cmake, g++; installed when missing) and python3.
# The first build takes about 15 minutes on 2 cores; the sdist, the build, the virtualenv,
# the models and the templates are cached under $LLAMA_DIR, keyed by the versions and
# build flags below, and reused after.

LLAMA_CPP_PYTHON_VERSION=0.3.36
# Only the server; CPU only; portable code (the cache may outlive a CPU change); no curl
# (the server never downloads a model here).
LLAMA_CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON"
LLAMA_DIR="$DIR/llama-cpp-$LLAMA_CPP_PYTHON_VERSION-$(printf '%s' "$LLAMA_CMAKE_FLAGS" | sha256sum | cut -c1-8)"
LLAMA_SRC="$LLAMA_DIR/src/vendor/llama.cpp"
LLAMA_SERVER="$LLAMA_DIR/build/bin/llama-server"
LLAMA_VENV="$DIR/llama-venv-$(sha256sum "$ROOT/deploy/llama/requirements.txt" | cut -c1-12)"
# Keyed by the scripts that make them.
LLAMA_ASSETS="$LLAMA_DIR/assets-$(cat "$ROOT/scripts/llama/tiny_gguf.py" "$ROOT/scripts/llama/templates.py" | sha256sum | cut -c1-12)"
LLAMA3_PORT=8090
LLAMA_MISTRAL_PORT=8091
PATTERN[llama3]="llama-server.*--port $LLAMA3_PORT"
PATTERN[llama-mistral]="llama-server.*--port $LLAMA_MISTRAL_PORT"

# llama_fetch_sdist downloads the sdist from PyPI, checks its sha256 against PyPI's
# metadata, and unpacks it into $LLAMA_DIR/src.
llama_fetch_sdist() {
  [ -f "$LLAMA_DIR/src/.complete" ] && return 0
  log "llama.cpp: downloading the llama-cpp-python $LLAMA_CPP_PYTHON_VERSION sdist from PyPI (75 MB)"
  rm -rf "$LLAMA_DIR/src"; mkdir -p "$LLAMA_DIR/src"
  python3 - "$LLAMA_CPP_PYTHON_VERSION" "$LLAMA_DIR/sdist.tar.gz" <<'PY' || die "llama.cpp: sdist download failed"
import hashlib, json, sys, urllib.request
version, out = sys.argv[1], sys.argv[2]
# The simple index's JSON form (PEP 691): every file of the project with its sha256.
req = urllib.request.Request("https://pypi.org/simple/llama-cpp-python/",
                             headers={"Accept": "application/vnd.pypi.simple.v1+json"})
files = json.load(urllib.request.urlopen(req, timeout=60))["files"]
name = "llama_cpp_python-%s.tar.gz" % version
sdist = [f for f in files if f["filename"] == name]
if len(sdist) != 1:
    sys.exit("want one %s on PyPI, found %d" % (name, len(sdist)))
h = hashlib.sha256()
with urllib.request.urlopen(sdist[0]["url"], timeout=600) as r, open(out, "wb") as f:
    while chunk := r.read(1 << 20):
        h.update(chunk)
        f.write(chunk)
if h.hexdigest() != sdist[0]["hashes"]["sha256"]:
    sys.exit("sha256 of %s does not match PyPI's" % sdist[0]["url"])
PY
  tar -xzf "$LLAMA_DIR/sdist.tar.gz" -C "$LLAMA_DIR/src" --strip-components=1 || die "llama.cpp: cannot unpack the sdist"
  rm -f "$LLAMA_DIR/sdist.tar.gz"
  [ -f "$LLAMA_SRC/CMakeLists.txt" ] || die "llama.cpp: the sdist has no vendor/llama.cpp"
  touch "$LLAMA_DIR/src/.complete"
}

# llama_built: the server was built to the end (a build cut short leaves no marker).
llama_built() { [ -f "$LLAMA_DIR/build/.complete" ] && [ -x "$LLAMA_SERVER" ]; }

# llama_build_tools installs cmake and a C++ compiler when the server is not built yet;
# cmd_up calls it in the foreground, so that apt runs once at a time.
llama_build_tools() {
  llama_built && return 0
  command -v cmake >/dev/null || apt_install cmake
  command -v g++ >/dev/null || apt_install g++
}

# llama_build builds llama-server, printing progress every minute. One build at a time
# per cache directory: a second `up` (after a first one failed elsewhere and left its
# build running) waits for the first build and uses it.
llama_build() {
  llama_built && return 0
  exec 8>"$LLAMA_DIR/.build.lock"
  flock -w 3600 8 || die "llama.cpp: another build holds $LLAMA_DIR/.build.lock"
  llama_built && return 0
  command -v cmake >/dev/null || die "llama.cpp: cmake is missing"
  command -v g++ >/dev/null || die "llama.cpp: g++ is missing"
  local gen=() jobs
  command -v ninja >/dev/null && gen=(-G Ninja)
  jobs="$(nproc)"
  log "llama.cpp: building llama-server from the sdist's vendor/llama.cpp ($jobs jobs; about 15 minutes on 2 cores the first time; log: $LOGS/llama-build.log)"
  # shellcheck disable=SC2086  # the flags are words
  cmake -S "$LLAMA_SRC" -B "$LLAMA_DIR/build" "${gen[@]}" $LLAMA_CMAKE_FLAGS >"$LOGS/llama-build.log" 2>&1 ||
    { tail -n 30 "$LOGS/llama-build.log" >&2; die "llama.cpp: cmake configure failed"; }
  cmake --build "$LLAMA_DIR/build" --target llama-server -j "$jobs" >>"$LOGS/llama-build.log" 2>&1 &
  local build=$! t0=$SECONDS
  while kill -0 "$build" 2>/dev/null; do
    sleep 5
    if [ $(((SECONDS - t0) % 60)) -lt 5 ] && [ $((SECONDS - t0)) -ge 60 ]; then
      log "llama.cpp: building, $(((SECONDS - t0) / 60)) min: $(grep -o '^\[[0-9]*/[0-9]*\]' "$LOGS/llama-build.log" | tail -n1)"
    fi
  done
  wait "$build" || { tail -n 30 "$LOGS/llama-build.log" >&2; die "llama.cpp: build failed (log: $LOGS/llama-build.log)"; }
  [ -x "$LLAMA_SERVER" ] || die "llama.cpp: the build made no $LLAMA_SERVER"
  touch "$LLAMA_DIR/build/.complete"
  log "llama.cpp: built in $(((SECONDS - t0) / 60)) min"
}

# llama_assets writes the tiny models (scripts/llama/tiny_gguf.py) and collects the chat
# templates (scripts/llama/templates.py).
llama_assets() {
  if ! { [ -x "$LLAMA_VENV/bin/python" ] && [ -f "$LLAMA_VENV/.complete" ]; }; then
    python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
    log "llama.cpp: installing gguf and jinja2 into $LLAMA_VENV"
    rm -rf "$LLAMA_VENV"
    { python3 -m venv "$LLAMA_VENV" &&
      "$LLAMA_VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/deploy/llama/requirements.txt"; } >"$LOGS/llama-venv.log" 2>&1 ||
      { tail -n 20 "$LOGS/llama-venv.log" >&2; rm -rf "$LLAMA_VENV"; die "llama.cpp: virtualenv install failed"; }
    touch "$LLAMA_VENV/.complete"
  fi
  [ -f "$LLAMA_ASSETS/.complete" ] && return 0
  log "llama.cpp: writing the tiny models and collecting the chat templates into $LLAMA_ASSETS"
  rm -rf "$LLAMA_ASSETS"; mkdir -p "$LLAMA_ASSETS/templates"
  {
    "$LLAMA_VENV/bin/python" "$ROOT/scripts/llama/tiny_gguf.py" "$LLAMA_SRC/models/ggml-vocab-llama-bpe.gguf" "$LLAMA_ASSETS/tiny-llama3.gguf" tiny-llama3 &&
      "$LLAMA_VENV/bin/python" "$ROOT/scripts/llama/tiny_gguf.py" "$LLAMA_SRC/models/ggml-vocab-llama-spm.gguf" "$LLAMA_ASSETS/tiny-mistral.gguf" tiny-mistral &&
      "$LLAMA_VENV/bin/python" "$ROOT/scripts/llama/templates.py" "$LLAMA_SRC" "$LLAMA_ASSETS/templates"
  } >"$LOGS/llama-assets.log" 2>&1 || { tail -n 20 "$LOGS/llama-assets.log" >&2; die "llama.cpp: making the models or templates failed"; }
  touch "$LLAMA_ASSETS/.complete"
}

llama_install() {
  mkdir -p "$LLAMA_DIR"
  llama_fetch_sdist; llama_build; llama_assets
}

llama_ready() { curl -fsS "http://127.0.0.1:$1/health" >/dev/null; }

# llama_start_one NAME PORT MODEL TEMPLATE
llama_start_one() {
  local name=$1 port=$2 model=$3 template=$4
  if pid_alive "$name" "${PATTERN[$name]}"; then log "$name: already running"; return 0; fi
  port_free "$name" "$port"
  log "$name: starting llama-server on 127.0.0.1:$port ($(basename "$model"), $(basename "$template"))"
  # -np 4 parallel slots sharing -c; one thread each: the tests are the CPU's other users.
  spawn "$name" "$LOGS/$name.log" "$LLAMA_SERVER" --host 127.0.0.1 --port "$port" \
    -m "$model" --jinja --chat-template-file "$template" -np 4 -c 16384 -t 1 --no-webui --metrics
}

llama_start() {
  llama_start_one llama3 "$LLAMA3_PORT" "$LLAMA_ASSETS/tiny-llama3.gguf" "$LLAMA_ASSETS/templates/llama-3.1.jinja"
  llama_start_one llama-mistral "$LLAMA_MISTRAL_PORT" "$LLAMA_ASSETS/tiny-mistral.gguf" "$LLAMA_ASSETS/templates/mistral-v0.2.jinja"
}

llama_wait() {
  wait_for llama3 60 "$LOGS/llama3.log" llama_ready "$LLAMA3_PORT"
  wait_for llama-mistral 60 "$LOGS/llama-mistral.log" llama_ready "$LLAMA_MISTRAL_PORT"
  log "llama.cpp: up on 127.0.0.1:$LLAMA3_PORT (llama3) and :$LLAMA_MISTRAL_PORT (mistral), llama-cpp-python $LLAMA_CPP_PYTHON_VERSION's llama.cpp"
}

llama_status() {
  local name port rc=0
  for name in llama3 llama-mistral; do
    port=$LLAMA3_PORT; [ "$name" = llama-mistral ] && port=$LLAMA_MISTRAL_PORT
    if pid_alive "$name" "${PATTERN[$name]}" && llama_ready "$port" 2>/dev/null; then
      printf '%-12s up   127.0.0.1:%s (llama-server, pid %s)\n' "$name:" "$port" "$(cat "$RUN/$name.pid")"
    else printf '%-12s down\n' "$name:"; rc=1; fi
  done
  return $rc
}

llama_env() {
  echo "export RATERD_TEST_LLAMA=http://127.0.0.1:$LLAMA3_PORT/v1"
  echo "export RATERD_TEST_LLAMA_MISTRAL=http://127.0.0.1:$LLAMA_MISTRAL_PORT/v1"
  echo "export RATERD_TEST_LLAMA_TEMPLATES=$LLAMA_ASSETS/templates"
  echo "export RATERD_TEST_LLAMA_PYTHON=$LLAMA_VENV/bin/python"
  echo "export RATERD_TEST_LLAMA_VERSION=llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION"
}
