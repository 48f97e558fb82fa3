#!/usr/bin/env bash
# usage: scripts/test-side-by-side.sh THREADS FILTER [FILTER ...]
# Runs `cargo test --workspace -- FILTER` for each filter at the same time, each on
# its own moto (local-aws.sh with its own STATE directory): the heavy runs spend their time in
# moto, which serves one request at a time, so one moto each puts both cores to work instead of
# queueing every test on one. Each run's output is printed whole when it ends; exits 1 if any
# failed. `--workspace`, as the first phase of `make test` builds it: `-p wxopen-tests` unifies
# features differently and would build every crate again (about 100 s, both runs waiting on it).
set -uo pipefail
cd "$(dirname "$0")/.."
threads=$1; shift
logs=target/side-by-side
mkdir -p "$logs"
pids=()
filters=("$@")
names=()
for filter in "${filters[@]}"; do
  name=$(printf '%s' "$filter" | tr -c 'A-Za-z0-9_' '-')
  names+=("$name")
  (
    set -e
    export STATE=target/local-aws-$name
    scripts/local-aws.sh start
    trap 'scripts/local-aws.sh stop' EXIT
    eval "$(scripts/local-aws.sh env)"
    start=$(date +%s)
    cargo test --workspace --locked -q -- --test-threads="$threads" "$filter"
    echo "== $filter: passed in $(( $(date +%s) - start )) s"
  ) >"$logs/$name.log" 2>&1 &
  pids+=($!)
done
failed=()
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then status=passed; else status=FAILED; failed+=("${filters[$i]}"); fi
  echo "== ${filters[$i]} ($status, on its own moto):"
  cat "$logs/${names[$i]}.log"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "side by side: FAILED: ${failed[*]}"
  exit 1
fi
