#!/usr/bin/env bash
# Serves outboard's default model, Gemma 3 270M (models/gemma-3-270m-q4_k_m.gguf, fetched by
# scripts/fetch-default-model.sh), over the OpenAI and Ollama APIs on 127.0.0.1. This is what
# `make run` does after building and fetching; it prints the chat page's URL. Ctrl-C stops it.
#
# The default model is the pretrained Gemma 3 270M: it continues text (POST /v1/completions,
# /api/generate) better than it answers chat turns. HOST, PORT, PARALLEL and THREADS change the
# server's settings; MODEL serves another file.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-models/gemma-3-270m-q4_k_m.gguf}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8080}
PARALLEL=${PARALLEL:-4}
OUTBOARD=${OUTBOARD:-build/outboard}

if [ ! -x "$OUTBOARD" ]; then
  echo "serve-default: $OUTBOARD not built; run: make" >&2
  exit 1
fi
if [ ! -f "$MODEL" ]; then
  echo "serve-default: $MODEL not found; run: scripts/fetch-default-model.sh" >&2
  exit 1
fi
NAME=$(basename "$MODEL" .gguf) # the model's name in the APIs
# A wildcard bind is reached through loopback from this machine; an IPv6 address is bracketed.
case "$HOST" in
  0.0.0.0 | :: | "[::]") URL_HOST=127.0.0.1 ;;
  \[*) URL_HOST=$HOST ;;
  *:*) URL_HOST="[$HOST]" ;;
  *) URL_HOST=$HOST ;;
esac
cat >&2 <<MSG

  Chat in your browser: http://$URL_HOST:$PORT/

Or try, from another terminal:
  curl http://$URL_HOST:$PORT/v1/completions -d '{"prompt": "The lighthouse keeper had not seen a ship in eleven years.", "max_tokens": 64}'
  curl http://$URL_HOST:$PORT/api/generate -d '{"model": "$NAME", "prompt": "Once upon a time", "stream": false}'
MSG
args=(serve -m "$MODEL" --host "$HOST" --port "$PORT" --parallel "$PARALLEL")
[ -n "${THREADS:-}" ] && args+=(--threads "$THREADS")
exec "$OUTBOARD" "${args[@]}"
