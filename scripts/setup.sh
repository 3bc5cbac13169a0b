#!/usr/bin/env bash
# Installs what outboard needs to build and test, on Debian/Ubuntu (apt-get) or macOS (brew),
# and the pinned Python test tools into .venv. Safe to run again: it only adds what is missing.
# `setup.sh --run`: the system packages only, enough for `make run`; the test tools (whose
# llama.cpp reference builds from source for minutes) are left for `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

test_tools=1
case "${1:-}" in
    --run) test_tools=0 ;;
    "") ;;
    *) echo "usage: scripts/setup.sh [--run]" >&2; exit 2 ;;
esac

packages() { grep -v '^#' "$1" | grep -v '^$'; }

if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    missing=()
    for p in $(packages scripts/apt-packages.txt); do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            "${missing[@]}"
    fi
elif command -v brew >/dev/null 2>&1; then
    brew install $(packages scripts/brew-packages.txt)
else
    echo "setup.sh: neither apt-get nor brew found; install the packages in scripts/ by hand" >&2
fi

[ "$test_tools" = 1 ] || exit 0

# Python test tools, pinned, in a virtual environment of the checkout's own.
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# llama.cpp (inside llama-cpp-python) is built for a portable x86-64 level: a native build has
# been seen to pick up AMX from cpuid on hypervisors where AMX then faults.
case "$(uname -m)" in
    x86_64) export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_OPENMP=OFF}" ;;
    *) export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_OPENMP=OFF}" ;;
esac
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
.venv/bin/python -m pip install -q -r tests/requirements.txt
