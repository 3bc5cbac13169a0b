#!/usr/bin/env bash
# Side-by-side speed of outboard and llama.cpp (llama-bench, built from the pinned
# llama-cpp-python sdist by bench/build-llama-bench.sh) on the same files: random-weight models
# of Llama 3.2 1B's and Llama 3.1 8B's shapes (outboard synth --shape 1b|8b, Llama 2 tokenizer
# of 32000 tokens), FILES as shape:type pairs or paths of real models under models/ (the
# default model: models/gemma-3-270m-q4_k_m.gguf), prompt processing (pp) and generation (tg),
# THREADS threads (2), plus the machine's read bandwidth (bench/bw_bench.c) so generation can
# be quoted as a share of its memory-bandwidth limit.
#
# The machine may be shared and noisy (its read bandwidth has been seen to move between 26 and
# 40 GB/s from one minute to the next), so the two programs take turns at short range: ROUNDS
# rounds, and in each round, for every file, a prompt-processing pair and then a generation pair
# (one llama-bench run and one outboard run each, each run a warm-up plus one timed repetition,
# the order swapped every round), plus one bandwidth probe per round. The report quotes medians
# over the rounds and judges the targets on the median of the per-pair ratios, which a slow
# minute affects far less than it affects either program's own median. Writes its section of
# BENCHMARKS.md.
#
# ISA=avx2 measures the AVX2 path instead: outboard under OB_ISA=avx2 against llama-bench built
# without AVX-512 (LLAMA_ISA=avx2 bench/build-llama-bench.sh), with bench/peak (int8
# multiply-add and read bandwidth limits) as the per-round probe; results in bench/out-avx2 and
# the "AVX2 path" section. MODELS names the folder of the files (default models/).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-5}
PP=${PP:-512}
TG=${TG:-128}
FILES=${FILES:-"1b:q8_0 1b:q4_0 1b:q4_k_m 1b:q6_k 8b:q4_k_m"}
# KEEP=1 keeps earlier results in bench/out (to add files in a later run); REPORT_FILES names
# every file the report covers (default FILES).
REPORT_FILES=${REPORT_FILES:-$FILES}
VOCAB=${VOCAB:-../shared/models/vocab/ggml-vocab-llama-spm.gguf}
ISA=${ISA:-native}
MODELS=${MODELS:-models}
case "$ISA" in
native) OUT=bench/out; OB_ENV="" ;;
avx2) OUT=bench/out-avx2; OB_ENV="env OB_ISA=avx2 " ;;
*) echo "ISA: native or avx2, not '$ISA'" >&2; exit 2 ;;
esac

LLAMA_BENCH=bench/$(LLAMA_ISA=$ISA bash bench/build-llama-bench.sh)
make -j2 build/outboard build/bench/bw_bench build/bench/peak >&2
mkdir -p "$MODELS" "$OUT"
[ "${KEEP:-0}" = 1 ] || rm -f "$OUT"/*.json
# name of a FILES entry: the file $MODELS/NAME.gguf
file_name() { case "$1" in *.gguf) basename "$1" .gguf ;; *) echo "synth-${1%%:*}-${1#*:}" ;; esac; }
for spec in $FILES; do
    f=$MODELS/$(file_name "$spec").gguf
    case "$spec" in *.gguf) [ -f "$f" ] || { echo "$f: not found" >&2; exit 1; }; continue ;; esac
    [ -f "$f" ] || build/outboard synth --shape "${spec%%:*}" --type "${spec#*:}" \
        --vocab "$VOCAB" -o "$f"
done
LB_CMD="$LLAMA_BENCH -r 1 -t $THREADS -o json"
OB_CMD="${OB_ENV}build/outboard bench -r 1 -t $THREADS --json"
BW_CMD="build/bench/bw_bench $THREADS 1024 5 --json"
PEAK_CMD="build/bench/peak $THREADS 1024 3 --json"
for r in $(seq 1 "$ROUNDS"); do
    # native: bandwidth for generation and the AVX-512 int8 rate for prompt processing
    [ "$ISA" = native ] && $BW_CMD > "$OUT/bw-$(date +%s)-$r.json"
    $PEAK_CMD > "$OUT/peak-$(date +%s)-$r.json"
    for spec in $FILES; do
        name=$(file_name "$spec")
        echo "round $r/$ROUNDS: $name" >&2
        for test in pp tg; do
            if [ "$test" = pp ]; then sizes="-p $PP -n 0"; else sizes="-p 0 -n $TG"; fi
            llama() { $LB_CMD $sizes -m "$MODELS/$name.gguf" > "$OUT/llama-$name-$r-$test.json" 2>/dev/null; }
            ours() { $OB_CMD $sizes -m "$MODELS/$name.gguf" > "$OUT/outboard-$name-$r-$test.json"; }
            if [ $((r % 2)) = 1 ]; then llama; ours; else ours; llama; fi
        done
    done
done
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python  # the gguf package reads the tensor sizes
$PY bench/report.py --threads "$THREADS" --rounds "$ROUNDS" --files "$REPORT_FILES" \
    --llama-cmd "$LB_CMD -p $PP -n 0 | -p 0 -n $TG" --outboard-cmd "$OB_CMD -p $PP -n 0 | -p 0 -n $TG" --bw-cmd "$BW_CMD" --pp "$PP" --tg "$TG" \
    --isa "$ISA" --out "$OUT" --models "$MODELS" --peak-cmd "$PEAK_CMD" \
    > "$OUT/engine.md"
# Replace this section of BENCHMARKS.md (other sections belong to other benchmarks).
OUT=$OUT ISA=$ISA python3 - <<'PY'
import os, re
text = open("BENCHMARKS.md").read() if os.path.exists("BENCHMARKS.md") else "# Benchmarks\n"
sec = open(os.environ["OUT"] + "/engine.md").read()
head = ("## AVX2 path: outboard (OB_ISA=avx2) vs llama.cpp built for AVX2"
        if os.environ["ISA"] == "avx2" else "## Engine: outboard vs llama.cpp (llama-bench)")
pat = re.compile(re.escape(head) + r".*?(?=^## |\Z)", re.S | re.M)
text = pat.sub(lambda m: sec + "\n", text) if pat.search(text) else text.rstrip("\n") + "\n\n" + sec
open("BENCHMARKS.md", "w").write(text)
PY
cat "$OUT/engine.md"
