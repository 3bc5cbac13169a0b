#!/usr/bin/env bash
# Side-by-side speed of outboard and llama.cpp (llama-bench, built from the pinned
# llama-cpp-python sdist by bench/build-llama-bench.sh) on the same files: random-weight models
# of Llama 3.2 1B's shape (outboard synth --shape 1b, Llama 2 tokenizer of 32000 tokens) in Q8_0
# and Q4_0, prompt processing (pp) and generation (tg), THREADS threads (2).
#
# The machine may be shared and noisy, so the two programs take turns: ROUNDS rounds, each one
# llama-bench run and one outboard run per file (each run itself a warm-up plus one timed
# repetition), and the report quotes medians over the rounds. Writes its section of
# BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
PP=${PP:-512}
TG=${TG:-128}
TYPES=${TYPES:-"q8_0 q4_0"}
VOCAB=${VOCAB:-../shared/models/vocab/ggml-vocab-llama-spm.gguf}

LLAMA_BENCH=bench/$(bash bench/build-llama-bench.sh)
make -j2 build/outboard >&2
mkdir -p models bench/out
rm -f bench/out/*.json
for t in $TYPES; do
    f=models/synth-1b-$t.gguf
    [ -f "$f" ] || build/outboard synth --shape 1b --type "$t" --vocab "$VOCAB" -o "$f"
done
LB_CMD="$LLAMA_BENCH -p $PP -n $TG -r 1 -t $THREADS -o json -m"
OB_CMD="build/outboard bench -p $PP -n $TG -r 1 -t $THREADS --json -m"
for r in $(seq 1 "$ROUNDS"); do
    for t in $TYPES; do
        f=models/synth-1b-$t.gguf
        echo "round $r/$ROUNDS: $t" >&2
        $LB_CMD "$f" > "bench/out/llama-$t-$r.json" 2>/dev/null
        $OB_CMD "$f" > "bench/out/outboard-$t-$r.json"
    done
done
python3 bench/report.py --threads "$THREADS" --rounds "$ROUNDS" --types "$TYPES" \
    --llama-cmd "$LB_CMD" --outboard-cmd "$OB_CMD" > bench/out/engine.md
# Replace this section of BENCHMARKS.md (other sections belong to other benchmarks).
python3 - <<'PY'
import re
text = open("BENCHMARKS.md").read() if __import__("os").path.exists("BENCHMARKS.md") else "# Benchmarks\n"
sec = open("bench/out/engine.md").read()
head = "## Engine: outboard vs llama.cpp (llama-bench)"
pat = re.compile(re.escape(head) + r".*?(?=^## |\Z)", re.S | re.M)
text = pat.sub(lambda m: sec + "\n", text) if pat.search(text) else text.rstrip("\n") + "\n\n" + sec
open("BENCHMARKS.md", "w").write(text)
PY
cat bench/out/engine.md
