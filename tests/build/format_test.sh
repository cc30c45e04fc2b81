#!/usr/bin/env bash
# Every C++ file of the repository is formatted as .clang-format says
# (Debian 12's clang-format 14, which tools/setup.sh installs). Fails naming
# each file clang-format would change; fix with `clang-format -i <file>`.
set -euo pipefail

if [[ -n "${TEST_SRCDIR:-}" ]]; then
  root="$TEST_SRCDIR/${TEST_WORKSPACE:-jetstream}"
else
  root="$(cd "$(dirname "$0")/../.." && pwd)"
fi
if ! command -v clang-format >/dev/null; then
  echo "FAIL: clang-format is not installed (tools/setup.sh installs it)"
  exit 1
fi
cd "$root"
if [[ ! -f .clang-format ]]; then
  echo "FAIL: .clang-format is missing"
  exit 1
fi

files=()
while IFS= read -r -d '' f; do files+=("$f"); done < <(
  find -L . \( -path ./third_party -o -path ./clients -o -path './bazel-*' \
    -o -name node_modules -o -name .git \) \
    -prune -o \( -name '*.cc' -o -name '*.h' \) -type f -print0 | sort -z)
if ((${#files[@]} < 100)); then
  echo "FAIL: only ${#files[@]} C++ files found; the test's data is incomplete"
  exit 1
fi

unformatted=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror --style=file "$f" >/dev/null 2>&1; then
    echo "not formatted: ${f#./}"
    unformatted=$((unformatted + 1))
  fi
done
if ((unformatted > 0)); then
  echo "FAIL: $unformatted of ${#files[@]} files are not clang-formatted"
  exit 1
fi
echo "${#files[@]} C++ files formatted as .clang-format says"
