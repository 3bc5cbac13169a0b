#!/usr/bin/env bash
# Builds llama.cpp's llama-lookup (prompt-lookup speculative decoding, the n-gram drafter that
# bench/spec_bench.py compares against) from the same pinned llama-cpp-python sdist and with the
# same hand-set ISA flags as bench/build-llama-bench.sh (which unpacks the sdist and configures
# the build directory). Output: bench/llama.cpp/build/bin/llama-lookup (ignored by git).
set -euo pipefail
cd "$(dirname "$0")"
OUT=llama.cpp
if [ -x "$OUT/build/bin/llama-lookup" ]; then echo "$OUT/build/bin/llama-lookup"; exit 0; fi
bash build-llama-bench.sh >/dev/null
cmake --build "$OUT/build" --target llama-lookup -j "${JOBS:-2}" >&2
echo "$OUT/build/bin/llama-lookup"
