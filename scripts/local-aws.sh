#!/usr/bin/env bash
# usage: scripts/local-aws.sh start|stop|env
# moto_server on 127.0.0.1 (a free port) for DynamoDB and Secrets Manager; the code reaches it
# only through AWS_ENDPOINT_URL.
set -euo pipefail
VENV=${VENV:-.venv}
STATE=${STATE:-target/local-aws}
case "${1:-}" in
  start)
    mkdir -p "$STATE"
    if [ -f "$STATE/moto.pid" ] && kill -0 "$(cat "$STATE/moto.pid")" 2>/dev/null; then
      echo "moto_server already running (pid $(cat "$STATE/moto.pid"))"; exit 0
    fi
    # The venv's python (not the moto_server script): a copied venv keeps working.
    # scripts/moto_server.py: moto_server with two emulation costs cut and DynamoDB requests
    # served one at a time (see its docstring).
    "$VENV/bin/python" "$(dirname "$0")/moto_server.py" -H 127.0.0.1 -p 0 >"$STATE/moto.log" 2>&1 &
    echo $! >"$STATE/moto.pid"
    for _ in $(seq 1 200); do
      port=$(sed -n 's#.*Running on http://127.0.0.1:\([0-9]*\).*#\1#p' "$STATE/moto.log" | head -1)
      if [ -n "$port" ] && "$VENV/bin/python" -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then
        echo "$port" >"$STATE/moto.port"
        echo "moto_server pid $(cat "$STATE/moto.pid") on 127.0.0.1:$port"
        exit 0
      fi
      if ! kill -0 "$(cat "$STATE/moto.pid")" 2>/dev/null; then break; fi
      sleep 0.1
    done
    echo "moto_server did not start:" >&2; cat "$STATE/moto.log" >&2; exit 1 ;;
  stop)
    if [ -f "$STATE/moto.pid" ]; then
      pid=$(cat "$STATE/moto.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/moto.pid" "$STATE/moto.port" ;;
  env)
    port=$(cat "$STATE/moto.port")
    echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
