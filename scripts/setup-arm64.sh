#!/usr/bin/env bash
# The arm64 builds of the libraries outboard links (Debian's multiarch archive), so the whole
# program cross-builds for aarch64 and runs under qemu-user: `make neon-model-test` and
# bench/neon-model-insn.sh. Debian/Ubuntu only; safe to run again (it adds what is missing).
set -euo pipefail
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
missing=()
for p in libjansson-dev libpcre2-dev libutf8proc-dev libmicrohttpd-dev libcurl4-openssl-dev \
         libssl-dev; do
    dpkg -s "$p:arm64" >/dev/null 2>&1 || missing+=("$p:arm64")
done
for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
