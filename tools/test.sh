#!/usr/bin/env bash
# Runs every test of the project and ends with one line "N passed, M failed",
# counted from the test cases themselves (GoogleTest XML reports), not from
# Bazel's per-target summary. Installs what it needs first.
set -uo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp)
bazel test //... --test_tag_filters=-manual --test_summary=short 2>&1 | tee "$log"
bazel_rc=${PIPESTATUS[0]}

passed=0
failed=0
testlogs=$(bazel info bazel-testlogs 2>/dev/null)
# Count the test cases of every test target, from its GoogleTest XML report.
# A target without a report (it did not build, or crashed before writing
# one) counts as one failure.
while read -r target; do
  [[ -n "$target" ]] || continue
  if grep -qE "^$target +(FAILED TO BUILD|NO STATUS)" "$log"; then
    echo "$target did not run"
    failed=$((failed + 1))
    continue
  fi
  dir="$testlogs/${target#//}"
  dir="${dir/://}"
  # One report, or one per shard for a sharded target.
  reports=()
  if [[ -f "$dir/test.xml" ]]; then
    reports=("$dir/test.xml")
  else
    for shard in "$dir"/shard_*_of_*/test.xml; do
      [[ -f "$shard" ]] && reports+=("$shard")
    done
  fi
  if (( ${#reports[@]} == 0 )); then
    echo "no test report for $target"
    failed=$((failed + 1))
    continue
  fi
  target_bad=0
  for xml in "${reports[@]}"; do
    header=$(grep -m1 -o '<testsuites[^>]*>' "$xml")
    tests=$(sed -n 's/.* tests="\([0-9]*\)".*/\1/p' <<<"$header")
    failures=$(sed -n 's/.* failures="\([0-9]*\)".*/\1/p' <<<"$header")
    errors=$(sed -n 's/.* errors="\([0-9]*\)".*/\1/p' <<<"$header")
    disabled=$(sed -n 's/.* disabled="\([0-9]*\)".*/\1/p' <<<"$header")
    if [[ -z "$tests" ]]; then
      # Not a GoogleTest report (a shell test, or a generated one): judge
      # the report by its failures and the target by its status.
      if grep -q '<failure' "$xml" || grep -qE "^$target .*(FAILED|TIMEOUT)" "$log"; then
        failed=$((failed + 1))
        target_bad=1
      else
        passed=$((passed + 1))
      fi
      continue
    fi
    bad=$(( ${failures:-0} + ${errors:-0} ))
    passed=$((passed + tests - bad - ${disabled:-0}))
    failed=$((failed + bad))
    (( bad > 0 )) && target_bad=1
  done
  # A binary that crashed after some cases still fails its target.
  if (( target_bad == 0 )) && grep -qE "^$target +(FAILED|TIMEOUT)" "$log"; then
    failed=$((failed + 1))
  fi
done < <(bazel query 'tests(//...) except attr(tags, manual, //...)' 2>/dev/null)

# Build failures that stop Bazel before any summary line.
if (( bazel_rc != 0 && passed + failed == 0 )); then failed=1; fi
echo "C++ tests: ${passed} passed and ${failed} failed"

# The JavaScript client's tests and the browser test (Node's test runner).
js_log=$(mktemp)
bash tools/js_test.sh >"$js_log" 2>&1
js_rc=$?
# Only the last line of this script may read as a test summary.
grep -vE '^([0-9]+ passed, [0-9]+ failed|# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) .*)$' "$js_log"
js_summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$js_log" | tail -n 1)
echo "JS tests: ${js_summary:-none ran}" | sed 's/, / and /'
if [[ -n "$js_summary" ]]; then
  passed=$((passed + $(cut -d' ' -f1 <<<"$js_summary")))
  failed=$((failed + $(cut -d' ' -f3 <<<"$js_summary")))
else
  failed=$((failed + 1))
fi

echo "${passed} passed, ${failed} failed"
(( failed == 0 && bazel_rc == 0 && js_rc == 0 ))
