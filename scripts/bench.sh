#!/usr/bin/env bash
# make bench: every figure measured in one run on this machine, printed as one table.
# Needs moto running (the Makefile starts it), node/npm for the wechat-crypto peer.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/bench
mkdir -p "$OUT"
FUNCTIONS=$(ls functions | grep -vx wxopen-cli)  # wxopen-cli: the operator command, not a Lambda
SECONDS_PER_CASE=${BENCH_SECONDS:-3}

echo "== push path: wxopen (criterion) =="
cargo bench -q -p wxopen --bench push_path -- --noplot >"$OUT/criterion.txt" 2>&1 || { cat "$OUT/criterion.txt"; exit 1; }

echo "== push path: wechatpy =="
.venv/bin/python scripts/bench/wechatpy_push.py "$OUT/push-inputs.json" "$SECONDS_PER_CASE" >"$OUT/wechatpy.json"

echo "== push path: wechat-crypto (npm) =="
if command -v node >/dev/null && command -v npm >/dev/null; then
  if [ ! -d "$OUT/node/node_modules/wechat-crypto" ]; then
    mkdir -p "$OUT/node" && (cd "$OUT/node" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund wechat-crypto@0.0.2 >/dev/null)
  fi
  NODE_PATH="$OUT/node/node_modules" node scripts/bench/wechat_crypto_push.js "$OUT/push-inputs.json" "$SECONDS_PER_CASE" >"$OUT/wechat-crypto.json"
else
  echo '{}' >"$OUT/wechat-crypto.json"; echo "node/npm not found: wechat-crypto skipped"
fi

echo "== release binaries =="
PKGS=$(for f in $FUNCTIONS; do printf -- '-p %s ' "$f"; done)
# shellcheck disable=SC2086
cargo build -q --release $PKGS
: >"$OUT/sizes.txt"
for f in $FUNCTIONS; do
  raw=$(stat -c %s "target/release/$f"); gz=$(gzip -9 -c "target/release/$f" | wc -c)
  echo "$f $raw $gz" >>"$OUT/sizes.txt"
done

cargo build -q -p wxopen-tests --bin wxopen-bench
echo "== init time (Lambda Runtime API stand-in) =="
# shellcheck disable=SC2046
target/debug/wxopen-bench init $(for f in $FUNCTIONS; do printf 'target/release/%s ' "$f"; done) >"$OUT/init.jsonl"

echo "== refresher at scale (moto + sandbox; the release token-refresh binary) =="
: >"$OUT/refresh.jsonl"
for spec in ${BENCH_REFRESH-"10000:10000" "100000:1000"}; do
  total=${spec%%:*}; due=${spec##*:}
  echo "   $total authorizers, $due due"
  target/debug/wxopen-bench refresh "$total" "$due" target/release/token-refresh >>"$OUT/refresh.jsonl"
done

echo "== WeChat API gateway: proxied vs direct (release build, warm, alternating batches) =="
cargo build -q --release -p wxopen-tests --bin wxopen-bench
target/release/wxopen-bench gateway "${BENCH_GATEWAY_BATCHES:-200}" "${BENCH_GATEWAY_BATCH:-25}" >"$OUT/gateway.json"
.venv/bin/python - "$OUT/gateway.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
p, d, r, a = g["proxied_us"], g["direct_us"], g["ratio"], g["added_us"]
print(f"   {g['api']}, {g['calls_each']} calls each: proxied median {p['median']:.0f} µs p99 {p['p99']:.0f} µs; "
      f"direct median {d['median']:.0f} µs p99 {d['p99']:.0f} µs; ratio {r['median']:.2f}× / {r['p99']:.2f}×; "
      f"added {a['median']:.0f} µs / {a['p99']:.0f} µs; DynamoDB requests per proxied call {g['dynamodb_requests_per_call']:g}")
PY
echo "== events out: calls per push on the wire, added latency (moto) =="
target/debug/wxopen-bench events "${BENCH_EVENTS:-50}" >"$OUT/events.jsonl"

echo "== fleet release at scale (moto + sandbox; BENCH_RELEASES=targets, default 2000) =="
WXOPEN_TEST_HTTP_TIMEOUT_SECS=${WXOPEN_TEST_HTTP_TIMEOUT_SECS:-300} target/debug/wxopen-bench releases "${BENCH_RELEASES:-2000}" "${BENCH_RELEASES_CONCURRENCY:-100}" "${BENCH_RELEASES_POLLERS:-8}" >"$OUT/releases.json"

.venv/bin/python scripts/bench/report.py "$OUT"
