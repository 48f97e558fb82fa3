#!/usr/bin/env bash
# Opens the authorization page in headless Chromium (Debian's package), takes a screenshot
# (target/authorize.png) and checks the link the button carries. Needs moto (the Makefile starts
# it) and `chromium` on PATH (`apt-get install chromium`).
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || { echo "chromium not found: apt-get install chromium"; exit 1; }
PORT=${PORT:-18787}
cargo build -q -p wxopen-tests --bin wxopen-local
target/debug/wxopen-local serve "$PORT" >target/screenshot-stack.log 2>&1 &
STACK=$!
trap 'kill $STACK 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q "sandbox" target/screenshot-stack.log 2>/dev/null && break; sleep 0.1; done
SANDBOX=$(sed -n 's#.*WeChat sandbox *\(http://[0-9.:]*\).*#\1#p' target/screenshot-stack.log)
curl -fs -X POST "$SANDBOX/sandbox/push/ticket" >/dev/null
PAGE="http://127.0.0.1:$PORT/authorize?auth_type=3"
FLAGS=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$(mktemp -d)" --window-size=900,760)
"$CHROMIUM" "${FLAGS[@]}" --screenshot="$PWD/target/authorize.png" "$PAGE" >/dev/null 2>&1
DOM=$("$CHROMIUM" "${FLAGS[@]}" --dump-dom "$PAGE" 2>/dev/null)
HREF=$(printf '%s' "$DOM" | sed -n 's/.*id="authorize-pc" href="\([^"]*\)".*/\1/p' | sed 's/&amp;/\&/g')
echo "screenshot: target/authorize.png ($(stat -c %s target/authorize.png) bytes)"
echo "button link: $HREF"
case "$HREF" in
  "$SANDBOX"/cgi-bin/componentloginpage\?component_appid=wx1234567890abcdef\&pre_auth_code=preauthcode%40%40%40*\&redirect_uri=http%3A%2F%2F127.0.0.1%3A"$PORT"%2Fauthorize%2Fcallback\&auth_type=3)
    echo "link checked: componentloginpage, this component, a fresh pre_auth_code, our redirect_uri, auth_type=3" ;;
  *) echo "unexpected link"; exit 1 ;;
esac
