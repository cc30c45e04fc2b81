#!/usr/bin/env bash
# Runs the JS client's tests against freshly built gateway and sync service
# binaries: the unit and integration tests (clients/js/test) and the browser
# test of the demo pages in headless Chromium (clients/js/browser-test);
# then the Node.js validator example's tests (examples/validator-node) and
# the deployment files' checks (deploy/test).
# Ends with one line "N passed, M failed", counted from node's test runner.
#   tools/js_test.sh              everything
#   JS_TESTS="test/" tools/js_test.sh   only the Node tests (paths under clients/js)
# Screenshots of the browser test go to $TEST_ARTIFACTS_DIR, else test-artifacts/.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
bazel build //gateway //syncservice || { echo "0 passed, 1 failed"; exit 1; }
# The fastbuild output folder itself: the bazel-bin link follows whichever
# configuration was built last (tools/demo.sh builds -c opt).
if [[ -z "${JETSTREAM_BIN_DIR:-}" ]]; then
  JETSTREAM_BIN_DIR=$(bazel info bazel-bin 2>/dev/null) || JETSTREAM_BIN_DIR="$root/bazel-bin"
fi
export JETSTREAM_BIN_DIR

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# shellcheck disable=SC2086
passed=0 failed=0 all_rc=0
# run_node DIR TEST-PATHS...: node's test runner in DIR; adds to the totals.
run_node() {
  local dir=$1; shift
  # shellcheck disable=SC2068
  (cd "$dir" && node --test --test-reporter=tap $@) 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]} p f c
  p=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$log" | tail -1)
  f=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$log" | tail -1)
  c=$(sed -n 's/^# cancelled \([0-9][0-9]*\)$/\1/p' "$log" | tail -1)
  f=$(( ${f:-0} + ${c:-0} ))
  # node failed without a summary (a crash, no test file found).
  if (( rc != 0 && f == 0 )); then f=1; fi
  passed=$(( passed + ${p:-0} ))
  failed=$(( failed + f ))
  if (( rc != 0 )); then all_rc=$rc; fi
}
# shellcheck disable=SC2086
run_node clients/js ${JS_TESTS:-test/ browser-test/}
if [[ -z "${JS_TESTS:-}" ]]; then
  run_node examples/validator-node test/
  # The deployment files: Kubernetes overlays rendered and validated
  # offline, systemd units verified, monitoring rules and dashboard checked.
  run_node deploy/test kubernetes.test.js monitoring.test.js systemd.test.js
fi

echo "${passed} passed, ${failed} failed"
(( failed == 0 && all_rc == 0 ))
