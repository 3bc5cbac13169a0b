#!/usr/bin/env bash
# Builds llama.cpp's llama-server from the same pinned llama-cpp-python sdist and with the same
# hand-set ISA flags as bench/build-llama-bench.sh (which unpacks the sdist), for
# bench/serve_bench.py. Output: bench/llama.cpp/build/bin/llama-server (ignored by git).
set -euo pipefail
cd "$(dirname "$0")"
OUT=llama.cpp
if [ -x "$OUT/build/bin/llama-server" ]; then echo "$OUT/build/bin/llama-server"; exit 0; fi
# llama-bench's script fetches and unpacks the sdist and configures the build directory.
bash build-llama-bench.sh >/dev/null
cmake -S "$OUT/src/vendor/llama.cpp" -B "$OUT/build" -DLLAMA_BUILD_SERVER=ON >&2
cmake --build "$OUT/build" --target llama-server -j "${JOBS:-2}" >&2
echo "$OUT/build/bin/llama-server"
