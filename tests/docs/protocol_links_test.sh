#!/usr/bin/env bash
# Checks the links into the protocol description, over every file of the
# repository that Bazel hands the test (the all_files filegroups, see BUILD):
#
#  * every "protocol.md#<anchor>" (as docs/protocol.md#..., or relative from
#    another markdown file) names an anchor of docs/protocol.md: an explicit
#    <a id="..."> or a heading's GitHub slug;
#  * every in-page link "](#<anchor>)" of docs/protocol.md exists too;
#  * explicit anchors are unique;
#  * no file points at a specification outside the repository.
#
# Exits 1 naming each file, line and anchor that fails.
#
# Runs under `bazel test //tests/docs/...`, or by hand from the repository
# root: bash tests/docs/protocol_links_test.sh
set -euo pipefail

if [[ -n "${TEST_SRCDIR:-}" ]]; then
  root="$TEST_SRCDIR/${TEST_WORKSPACE:-jetstream}"
else
  root="$(cd "$(dirname "$0")/../.." && pwd)"
fi
doc="$root/docs/protocol.md"
if [[ ! -f "$doc" ]]; then
  echo "FAIL: docs/protocol.md is missing"
  exit 1
fi

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# The anchors of docs/protocol.md, one per line.
anchors="$(mktemp)"
trap 'rm -f "$anchors"' EXIT
# Explicit anchors.
grep -oE '<a (id|name)="[^"]+"' "$doc" | sed -E 's/^<a (id|name)="//; s/"$//' \
  >"$anchors"
while read -r dup; do
  fail "docs/protocol.md: anchor '$dup' is defined more than once"
done < <(sort "$anchors" | uniq -d)
# Heading slugs, as GitHub makes them: lower case, punctuation other than
# '-' and '_' dropped, spaces to '-', repeats suffixed -1, -2, ... Headings
# inside fenced code blocks are not headings.
awk '
  /^```/ { fenced = !fenced; next }
  fenced { next }
  /^#+ / {
    text = $0
    sub(/^#+ +/, "", text)
    sub(/ +#* *$/, "", text)
    slug = tolower(text)
    gsub(/[^a-z0-9 _-]/, "", slug)
    gsub(/ /, "-", slug)
    if (slug in seen) { n = seen[slug]++; print slug "-" n } else { seen[slug] = 1; print slug }
  }
' "$doc" >>"$anchors"

has_anchor() { grep -qxF -- "$1" "$anchors"; }

# Every file to check, NUL-separated: under Bazel the runfiles (the data of
# the test), by hand the files git tracks.
list_files() {
  if [[ -n "${TEST_SRCDIR:-}" ]]; then
    find -L "$root" -type f -print0
  else
    git -C "$root" ls-files -z | while IFS= read -r -d '' f; do
      if [[ -f "$root/$f" ]]; then printf '%s\0' "$root/$f"; fi
    done
  fi
}

# Links into docs/protocol.md from anywhere. Anchors are letters, digits,
# '-' and '_'; a '.' or ')' after one ends it.
files=0
while IFS= read -r -d '' file; do
  files=$((files + 1))
  rel="${file#"$root"/}"
  while IFS=: read -r line anchor; do
    [[ -n "$anchor" ]] || continue
    has_anchor "$anchor" ||
      fail "$rel:$line: protocol.md#$anchor is not an anchor of docs/protocol.md"
  done < <(grep -InoE 'protocol\.md#[A-Za-z0-9_-]+' "$file" |
           sed -E 's/^([0-9]+):protocol\.md#/\1:/' || true)
  # Pointers at a specification that is not part of the repository.
  while IFS= read -r hit; do
    fail "$rel:${hit%%:*}: refers to a specification outside the repository: ${hit#*:}"
  done < <(grep -InE '\.\./shared|/work/[s]hared|jetstream-protocol\.md|steering[[:space:]]+repo' "$file" || true)
done < <(list_files)

# In-page links of docs/protocol.md.
while IFS=: read -r line anchor; do
  has_anchor "$anchor" ||
    fail "docs/protocol.md:$line: link to #$anchor, which is not an anchor"
done < <(grep -noE '\]\(#[A-Za-z0-9_-]+\)' "$doc" | sed -E 's/^([0-9]+):\]\(#/\1:/; s/\)$//')

if (( files < 100 )); then
  fail "only $files files were checked; are the all_files filegroups in tests/docs/BUILD's data?"
fi
if (( failures > 0 )); then
  echo "$failures problem(s) with links into docs/protocol.md ($files files checked)"
  exit 1
fi
echo "docs/protocol.md: $(wc -l <"$anchors") anchors; every link to one in $files files exists"
