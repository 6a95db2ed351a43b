#!/usr/bin/env bash
# Build llama.cpp's llama-server once, from the llama.cpp sources that the pinned llama-cpp-python vendors,
# and cache it outside the repo. Prints the binary's path (the only stdout line). Used by `make bench-peers`.
#
# Flags (why):
#   GGML_NATIVE=ON   what llama-cpp-python's own pip build uses (its default), so both sides run the same
#                    kernels. On an AMX CPU this compiles the AMX kernels in; the crash they cause is avoided
#                    at run time with --no-repack (no extra buffer types), the engine's setting here.
#   LLAMA_CURL is gone from this llama.cpp (deprecated); LLAMA_OPENSSL=OFF and LLAMA_USE_PREBUILT_UI=OFF keep
#   the build offline and free of TLS; tests/examples/other tools off; only the llama-server target is built.
set -euo pipefail
PY=${PY:-.venv/bin/python}
VERSION=$("$PY" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')
CACHE=${WORKBENCH_CACHE:-$HOME/.cache/workbench}
BIN="$CACHE/llama-server-$VERSION"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
SRC="$CACHE/src"
mkdir -p "$SRC"
TREE="$SRC/llama_cpp_python-$VERSION/vendor/llama.cpp"
if [ ! -d "$TREE" ]; then
  "$PY" -m pip download -q --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$SRC" >&2
  tar xzf "$SRC/llama_cpp_python-$VERSION.tar.gz" -C "$SRC"
fi
BUILD="$SRC/build-llama-server-$VERSION"
nice -n 10 cmake -S "$TREE" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF >&2
nice -n 10 cmake --build "$BUILD" --target llama-server -j2 >&2
cp "$BUILD/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
echo "$BIN"
