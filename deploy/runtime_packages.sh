#!/usr/bin/env bash
# The Debian packages that hold the shared libraries the given binaries link
# directly (their NEEDED entries, readelf -d), found where the dynamic
# loader finds them (ldd) and looked up with dpkg -S.
#
#   deploy/runtime_packages.sh BINARY...
#       prints the packages, one a line
#   deploy/runtime_packages.sh --check CONTAINERFILE BINARY...
#       compares them with the Containerfile's ARG RUNTIME_PACKAGES="..."
#       and exits 1, naming the differences, unless they are the same set
#
# tests/deploy:runtime_packages_test runs the check on the binaries of the
# build against deploy/Containerfile.
set -euo pipefail

containerfile=""
if [[ "${1:-}" == "--check" ]]; then
  containerfile=${2:?--check needs a Containerfile}
  shift 2
fi
(($#)) || { echo "usage: $0 [--check CONTAINERFILE] BINARY..." >&2; exit 2; }

# The shared libraries the binaries link directly, where the loader finds
# them: "binary<TAB>lib<TAB>path" lines.
links=()
for binary in "$@"; do
  [[ -f "$binary" ]] || { echo "runtime_packages: $binary: no such file" >&2; exit 2; }
  mapfile -t needed < <(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
  ((${#needed[@]})) || { echo "runtime_packages: $binary links no shared library" >&2; exit 2; }
  ldd_output=$(ldd "$binary")
  for lib in "${needed[@]}"; do
    # "libfoo.so.1 => /path (addr)"; the loader itself as "/path (addr)".
    path=$(awk -v lib="$lib" '($1 == lib && $2 == "=>") { print $3; exit }
      (substr($1, 1, 1) == "/" && substr($1, length($1) - length(lib)) == "/" lib) { print $1; exit }' <<<"$ldd_output")
    if [[ -z "$path" || "$path" == not ]]; then
      echo "runtime_packages: $binary: $lib not found by the dynamic loader" >&2
      exit 1
    fi
    links+=("$binary"$'\t'"$lib"$'\t'"$path")
  done
done

# Each file under the names dpkg may know it by: as given, its real path,
# and each with and without the /usr prefix (Debian 12 merges /lib into
# /usr/lib; dpkg knows a file under the name its package shipped).
names_of() {
  local c
  for c in "$1" "$(readlink -f "$1")"; do
    echo "$c"
    if [[ "$c" == /usr/* ]]; then echo "${c#/usr}"; else echo "/usr$c"; fi
  done
}
declare -A owner
mapfile -t paths < <(printf '%s\n' "${links[@]}" | cut -f3 | sort -u)
mapfile -t names < <(for p in "${paths[@]}"; do names_of "$p"; done | sort -u)
# One dpkg -S for all of them: "package[, package]: /file" per known file.
while IFS= read -r line; do
  [[ "$line" == diversion* || "$line" != *": /"* ]] && continue
  owner["${line#*: }"]=${line%%: *}
done < <(dpkg -S "${names[@]}" 2>/dev/null || true)

derived=()
status=0
for link in "${links[@]}"; do
  IFS=$'\t' read -r binary lib path <<<"$link"
  pkg=""
  while IFS= read -r name; do
    if [[ -n "${owner[$name]:-}" ]]; then pkg=${owner[$name]%%:*}; break; fi
  done < <(names_of "$path")
  if [[ -z "$pkg" ]]; then
    echo "runtime_packages: $binary: $lib ($path) belongs to no Debian package" >&2
    status=1
    continue
  fi
  derived+=("$pkg")
done
((status == 0)) || exit "$status"
mapfile -t derived < <(printf '%s\n' "${derived[@]}" | sort -u)

if [[ -z "$containerfile" ]]; then
  printf '%s\n' "${derived[@]}"
  exit 0
fi

listed_line=$(sed -n 's/^ARG RUNTIME_PACKAGES="\([^"]*\)".*$/\1/p' "$containerfile")
[[ -n "$listed_line" ]] || {
  echo "runtime_packages: $containerfile has no ARG RUNTIME_PACKAGES=\"...\" line" >&2
  exit 1
}
mapfile -t listed < <(tr -s ' \t' '\n' <<<"$listed_line" | sed '/^$/d' | sort -u)
missing=$(comm -23 <(printf '%s\n' "${derived[@]}") <(printf '%s\n' "${listed[@]}"))
extra=$(comm -13 <(printf '%s\n' "${derived[@]}") <(printf '%s\n' "${listed[@]}"))
if [[ -n "$missing" || -n "$extra" ]]; then
  [[ -z "$missing" ]] || echo "runtime_packages: linked but not in $containerfile: $(echo $missing)" >&2
  [[ -z "$extra" ]] || echo "runtime_packages: in $containerfile but not linked: $(echo $extra)" >&2
  echo "runtime_packages: the binaries need: ${derived[*]}" >&2
  exit 1
fi
echo "runtime_packages: $containerfile lists exactly the ${#derived[@]} packages the binaries link: ${derived[*]}"
