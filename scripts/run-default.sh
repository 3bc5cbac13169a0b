#!/usr/bin/env bash
# Runs outboard's default model, Gemma 3 270M (models/gemma-3-270m-q4_k_m.gguf, fetched by
# scripts/fetch-default-model.sh), on a fixed prompt and streams the text it writes. This is
# what `make run` does after building and fetching.
#
# The default model is the pretrained Gemma 3 270M, not the instruction-tuned one: it continues
# text rather than answering a chat turn (formatted with Gemma's chat template it repeats the
# request and drifts into other languages, in llama.cpp as here), so the prompt is the opening
# of a story, given as plain text. Sampling is outboard's default (temperature 0.8, top-k 40,
# top-p 0.95, min-p 0.05) with a fixed seed, so a run is repeatable; set PROMPT, N or SEED to
# change them, or use build/outboard run directly.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-models/gemma-3-270m-q4_k_m.gguf}
PROMPT=${PROMPT:-"The lighthouse keeper had not seen a ship in eleven years. On the morning the fog lifted,"}
N=${N:-160}
SEED=${SEED:-7}
OUTBOARD=${OUTBOARD:-build/outboard}

if [ ! -x "$OUTBOARD" ]; then
  echo "run-default: $OUTBOARD not built; run: make" >&2
  exit 1
fi
if [ ! -f "$MODEL" ]; then
  echo "run-default: $MODEL not found; run: scripts/fetch-default-model.sh" >&2
  exit 1
fi
exec "$OUTBOARD" run -m "$MODEL" -p "$PROMPT" -n "$N" --seed "$SEED" --repeat-penalty 1.1
