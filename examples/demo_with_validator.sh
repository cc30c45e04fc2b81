#!/usr/bin/env bash
# The demo with a downstream validator: starts the demo validator (C++ by
# default, or the Node.js one) on 127.0.0.1:50061, then tools/demo.sh with
# the hooks file examples/demo_hooks.json. Shapes must then stay inside the
# 0..10000 canvas, chat messages are cut to 500 characters and empty ones
# are refused. Ctrl-C stops everything.
#   examples/demo_with_validator.sh [cpp|node] [extra gateway flags]
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:-cpp}
[[ $# -gt 0 ]] && shift

ready=$(mktemp)
case "$kind" in
  cpp)
    bash tools/setup.sh
    bazel build -c opt //examples/validator-cpp:demo_validator
    bin=$(bazel info -c opt bazel-bin)
    "$bin/examples/validator-cpp/demo_validator" --listen=127.0.0.1:50061 >"$ready" &
    ;;
  node)
    (cd examples/validator-node && npm ci --no-audit --no-fund >/dev/null)
    node examples/validator-node/validator.js --listen=127.0.0.1:50061 >"$ready" &
    ;;
  *) echo "usage: $0 [cpp|node] [gateway flags]" >&2; exit 2 ;;
esac
validator_pid=$!
trap 'kill -TERM "$validator_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q '^LISTENING' "$ready" && break
  kill -0 "$validator_pid" 2>/dev/null || { echo "the validator failed to start" >&2; exit 1; }
  sleep 0.1
done
rm -f "$ready"
echo "demo validator ($kind) on 127.0.0.1:50061"
HOOKS=examples/demo_hooks.json bash tools/demo.sh "$@"
