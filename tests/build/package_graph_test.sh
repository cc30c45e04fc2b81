#!/usr/bin/env bash
# The repository's BUILD graph has no package-level cycle
# (tests/build/package_graph.py), and the checker finds one where there is:
# a copy of two packages that name each other must fail.
set -euo pipefail

if [[ -n "${TEST_SRCDIR:-}" ]]; then
  root="$TEST_SRCDIR/${TEST_WORKSPACE:-jetstream}"
else
  root="$(cd "$(dirname "$0")/../.." && pwd)"
fi
checker="$root/tests/build/package_graph.py"

# The checker itself: a cycle through a library is found, one through a
# test only is not (tests are leaves), and visibility lists are no edges.
fixture="$(mktemp -d)"
trap 'rm -rf "$fixture"' EXIT
mkdir -p "$fixture/a" "$fixture/b" "$fixture/c"
cat >"$fixture/a/BUILD" <<'B'
cc_library(name = "a", deps = ["//b:b"], visibility = ["//c:__pkg__"])
B
cat >"$fixture/b/BUILD" <<'B'
cc_library(name = "b")
cc_test(name = "b_test", deps = ["//a"])  # a test: no edge
B
cat >"$fixture/c/BUILD" <<'B'
cc_library(name = "c", visibility = ["//a:__pkg__"])
B
if ! python3 "$checker" "$fixture" >/dev/null; then
  echo "FAIL: a graph without a cycle was reported as cyclic"
  python3 "$checker" "$fixture"
  exit 1
fi
cat >>"$fixture/b/BUILD" <<'B'
cc_library(
    name = "uses_a",
    deps = [
        "//a:a",  # closes //a -> //b -> //a
    ],
)
B
if python3 "$checker" "$fixture" >/dev/null; then
  echo "FAIL: the cycle //a -> //b -> //a was not found"
  exit 1
fi

# The repository.
python3 "$checker" "$root"
