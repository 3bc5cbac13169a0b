#!/usr/bin/env bash
# Instructions retired per token by whole models on the Arm NEON path, outboard against
# llama.cpp, on an x86 machine: both are cross-built for aarch64 and run under qemu-aarch64
# with a counting plugin (bench/qemu/insn_plugin.c). Counts, not times: a Mac owner gets the
# wall-clock comparison from bench/run.sh, which works on Arm unchanged.
#
#   bench/neon-model-insn.sh [FILE.gguf ...]
#     default files: models/synth-1b-{q4_0,q8_0,q4_k_m,q6_k}.gguf and the default model
#   env: CPU=max        qemu's CPU: "max" has SDOT and I8MM (outboard runs its SMMLA kernels;
#                       llama.cpp is built with +i8mm), "cortex-a76" has SDOT only (llama.cpp
#                       built without i8mm)
#        TG=16 PP=128   tokens of one decode run and of one prompt (one batch)
#        PIN=0          the host CPU qemu is pinned to (two runs, one per CPU model, can go
#                       side by side on two CPUs from two checkouts)
#
# One "run" is what each program's bench does per repetition: a prompt of PP tokens, or TG
# decode steps, from an empty cache, on one thread (the plugin's counter is not atomic, and one
# thread keeps thread-pool spinning out of the count; qemu itself is pinned to one host CPU,
# see count()). Each count is the difference between
# invocations with 2 and 1 repetitions, so model loading, outboard's repacking and llama.cpp's
# warm-up cancel, and the per-token figure is that one run divided by its tokens.
#
# Both programs find their aarch64 libraries where Debian's multiarch puts them (no
# QEMU_LD_PREFIX: with it the cross toolchain's loader meets the multiarch C library through the
# host's ld.so.cache, and the programs hang; see the Makefile's neon-test).
# Needs (scripts/setup-arm64.sh installs them when missing): aarch64-linux-gnu-g++, Debian's
# dynamically linked qemu-user (qemu-user-static cannot load plugins), and the arm64 -dev
# packages of the libraries outboard links (multiarch).
set -euo pipefail
cd "$(dirname "$0")/.."
CPU=${CPU:-max}
TG=${TG:-16}
PP=${PP:-128}
case "$CPU" in
max) LLAMA_ISA=aarch64-i8mm ;;
cortex-a76) LLAMA_ISA=aarch64-dotprod ;;
*) echo "CPU: max or cortex-a76, not '$CPU'" >&2; exit 2 ;;
esac
if [ $# -gt 0 ]; then FILES=("$@"); else
    FILES=(models/synth-1b-q4_0.gguf models/synth-1b-q8_0.gguf models/synth-1b-q4_k_m.gguf
           models/synth-1b-q6_k.gguf models/gemma-3-270m-q4_k_m.gguf)
fi

bash scripts/setup-arm64.sh g++-aarch64-linux-gnu qemu-user

BUILD=build-aarch64-full # its own folder: a native rebuild cannot swap the binary mid-run
PLUGIN=$BUILD/insn_plugin.so
mkdir -p $BUILD
cc -O2 -Wall -Wextra -Werror -shared -fPIC -o $PLUGIN bench/qemu/insn_plugin.c
make -s -j2 neon-full-build NEON_FULL_BUILD=$BUILD >&2
OB=$BUILD/outboard
LLAMA=bench/$(LLAMA_ISA=$LLAMA_ISA bash bench/build-llama-bench.sh)

# count PROGRAM ARGS... -> the guest instructions of one invocation. qemu runs pinned to one
# host CPU: the plugin's add is not atomic, and a program's load-time threads (outboard repacks
# large weights on every CPU it sees) ran on both host CPUs at once and lost counts. Unpinned,
# one 1B Q8_0 invocation counted 9.07 G instructions; pinned, 11.33 G. Both cancel in the
# difference of two invocations, so per-token figures moved by under 2%.
count() {
    local log
    log=$(mktemp)
    taskset -c "${PIN:-0}" qemu-aarch64 -cpu "$CPU" -plugin "$PLUGIN" \
        -d plugin -D "$log" "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; rm -f "$log"; exit 1; }
    awk '/^qemu-insns / { print $2 }' "$log"
    rm -f "$log"
}

# one_run KIND(pp|tg) PROGRAM(ob|llama) FILE -> instructions of one repetition
one_run() {
    local kind=$1 prog=$2 file=$3 p=0 n=0 a b
    if [ "$kind" = pp ]; then p=$PP; else n=$TG; fi
    if [ "$prog" = ob ]; then
        a=$(count $OB bench -m "$file" -p $p -n $n -t 1 -r 1 --no-warmup)
        b=$(count $OB bench -m "$file" -p $p -n $n -t 1 -r 2 --no-warmup)
    else
        a=$(count $LLAMA -m "$file" -p $p -n $n -t 1 -r 1 --no-warmup)
        b=$(count $LLAMA -m "$file" -p $p -n $n -t 1 -r 2 --no-warmup)
    fi
    echo $((b - a))
}

echo "qemu-aarch64 -cpu $CPU; outboard $(git rev-parse --short HEAD); llama.cpp $LLAMA_ISA;" \
     "decode: one run of tg$TG, prefill: one pp$PP; millions of instructions per token"
printf '| file | decode outboard | decode llama.cpp | fewer | prefill outboard | prefill llama.cpp | fewer |\n'
printf '| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for f in "${FILES[@]}"; do
    obt=$(one_run tg ob "$f"); llt=$(one_run tg llama "$f")
    obp=$(one_run pp ob "$f"); llp=$(one_run pp llama "$f")
    awk -v f="$(basename "$f")" -v obt="$obt" -v llt="$llt" -v obp="$obp" -v llp="$llp" \
        -v tg="$TG" -v pp="$PP" 'BEGIN {
        printf "| %s | %.1f | %.1f | %.2fx | %.1f | %.1f | %.2fx |\n", f,
               obt / tg / 1e6, llt / tg / 1e6, llt / obt, obp / pp / 1e6, llp / pp / 1e6, llp / obp }'
done
