#!/usr/bin/env bash
# Starts the demo: the sync service with the Canvas and ChatRoom scopes, and
# the gateway accepting Jetstream clients on ws://127.0.0.1:3000 (any path)
# and serving the demo pages on http://127.0.0.1:3000/. Ctrl-C stops both.
#   PORT=3000 SYNC_PORT=50051 tools/demo.sh [extra gateway flags]
# HOOKS=<hooks file> passes --hooks to the sync service (downstream hooks,
# e.g. examples/demo_hooks.json with a demo validator running: see
# examples/demo_with_validator.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-3000}
SYNC_PORT=${SYNC_PORT:-50051}
HOOKS=${HOOKS:-}

bash tools/setup.sh
bazel build -c opt //syncservice //gateway
bin=bazel-out/k8-opt/bin
[[ -x "$bin/gateway/gateway" ]] || bin=$(bazel info -c opt bazel-bin)

static_flag=()
if [[ -d web ]]; then static_flag=(--static_dir=web); fi

hooks_flag=()
if [[ -n "$HOOKS" ]]; then hooks_flag=(--hooks="$HOOKS"); fi

ready=$(mktemp)
"$bin/syncservice/syncservice" --listen="127.0.0.1:${SYNC_PORT}" \
  --schema=syncservice/config/demo_schema.json \
  --scopes=syncservice/config/demo_scopes.json "${hooks_flag[@]}" >"$ready" &
sync_pid=$!
# Start the gateway once the sync service listens.
for _ in $(seq 1 100); do
  grep -q '^LISTENING' "$ready" && break
  kill -0 "$sync_pid" 2>/dev/null || { echo "the sync service failed to start" >&2; exit 1; }
  sleep 0.1
done
rm -f "$ready"
"$bin/gateway/gateway" --port="${PORT}" --sync_service="127.0.0.1:${SYNC_PORT}" \
  "${static_flag[@]}" "$@" &
gateway_pid=$!

stop() {
  kill -TERM "$gateway_pid" "$sync_pid" 2>/dev/null || true
  wait "$gateway_pid" "$sync_pid" 2>/dev/null || true
}
trap stop INT TERM EXIT

echo
echo "Jetstream demo: WebSocket clients -> ws://127.0.0.1:${PORT}  (scopes: Canvas, ChatRoom)"
if [[ -d web ]]; then echo "Demo pages     -> http://127.0.0.1:${PORT}/"; fi
echo "Press Ctrl-C to stop."
wait -n "$gateway_pid" "$sync_pid"
