#!/usr/bin/env bash
# Runs schemathesis against `hookline serve` with openapi/hookline.yaml (as the server serves it
# at /openapi.json): every answer must be documented, match its schema, and no request may get a
# 5xx. Usage: scripts/api-conformance.sh [path to the hookline binary] (default target/debug).
#
# The server and schemathesis run in a network namespace of their own that holds only a
# loopback interface, with private targets refused: the webhook URLs schemathesis makes up
# (test sends, deliveries to the subscriptions it creates) can reach no host at all.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${HOOKLINE_CONFORMANCE_NETNS:-}" ]; then
  if ! unshare --net --map-root-user true 2>/dev/null; then
    echo "scripts/api-conformance.sh needs 'unshare --net --map-root-user' (util-linux, with user namespaces allowed) to keep the run off the network" >&2
    exit 1
  fi
  exec unshare --net --map-root-user env HOOKLINE_CONFORMANCE_NETNS=1 "$0" "$@"
fi
ip link set lo up
if ip -o link show | grep -qv ': lo:'; then
  echo "refusing to run: this network namespace has interfaces besides loopback" >&2
  exit 1
fi

BINARY="${1:-target/debug/hookline}"
SCHEMATHESIS="${SCHEMATHESIS:-schemathesis}"
DATA_DIR=$(mktemp -d)
SERVE_PID=
stop() {
  if [ -n "$SERVE_PID" ]; then
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  rm -rf "$DATA_DIR"
}
trap stop EXIT

HOOKLINE_ALLOW_PRIVATE_TARGETS=false RUST_LOG=warn \
  "$BINARY" serve --addr 127.0.0.1:0 --data-dir "$DATA_DIR" >"$DATA_DIR/serve.out" 2>"$DATA_DIR/serve.log" &
SERVE_PID=$!
BASE=
for _ in $(seq 150); do
  BASE=$(sed -n 's/^Hookline local mode listening on //p' "$DATA_DIR/serve.out")
  [ -n "$BASE" ] && [ -f "$DATA_DIR/dev-workspace.json" ] && break
  kill -0 "$SERVE_PID" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$BASE" ]; then
  echo "hookline serve did not start:" >&2
  cat "$DATA_DIR/serve.log" >&2
  exit 1
fi
read -r HOOKLINE_WORKSPACE_ID HOOKLINE_API_KEY < <(python3 -c '
import json, sys
dev = json.load(open(sys.argv[1]))
print(dev["workspace_id"], dev["api_key"])' "$DATA_DIR/dev-workspace.json")
export HOOKLINE_WORKSPACE_ID HOOKLINE_API_KEY
echo "==> schemathesis against $BASE/openapi.json"

status=0
timeout 170 "$SCHEMATHESIS" --config-file scripts/schemathesis.toml run "$BASE/openapi.json" \
  --url "$BASE" --no-color "${@:2}" || status=$?
if [ "$status" -ne 0 ]; then
  echo "==> schemathesis failed ($status); the server's log:" >&2
  tail -n 50 "$DATA_DIR/serve.log" >&2
fi
exit "$status"
