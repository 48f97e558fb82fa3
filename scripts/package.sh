#!/usr/bin/env bash
# Builds every function's Lambda bootstrap with cargo-lambda (what `sam build` runs) and prints
# the sizes. arm64 (as deployed) when the aarch64 target can be had, else x86_64 (CI fallback).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${TOOLS:-.venv-tools}
export PATH="$PWD/$TOOLS/bin:$PATH"
# wxopen-cli is the operator's command, not a Lambda (tests/tests/it/template.rs NOT_LAMBDAS).
FUNCTIONS=$(ls functions | grep -vx wxopen-cli)
ARCH_FLAG=""
if timeout 180 rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
  ARCH_FLAG="--arm64"; ARCH=arm64
else
  echo "aarch64 target not available here: building x86_64 bundles instead"; ARCH=x86_64
fi
PKGS=$(for f in $FUNCTIONS; do printf -- '-p %s ' "$f"; done)
# shellcheck disable=SC2086
cargo lambda build --release $ARCH_FLAG $PKGS
echo "Lambda bootstraps ($ARCH, release):"
over=0
for f in $FUNCTIONS; do
  b="target/lambda/$f/bootstrap"
  [ -f "$b" ] || { echo "missing: $b"; exit 1; }
  raw=$(stat -c %s "$b"); gz=$(gzip -9 -c "$b" | wc -c)
  awk -v f="$f" -v r="$raw" -v g="$gz" 'BEGIN { printf "  %-22s %6.2f MB  gzip %5.2f MB\n", f, r / 1e6, g / 1e6 }'
  [ "$gz" -le 4000000 ] || over=1
done
[ "$over" -eq 0 ] || { echo "error: a bootstrap is over 4 MB gzipped (the size goal)"; exit 1; }
