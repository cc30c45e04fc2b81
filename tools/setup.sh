#!/usr/bin/env bash
# Installs every Debian package the project needs to build, test and run the
# demo. Idempotent: safe to run on every invocation of the README commands.
set -euo pipefail

PACKAGES=(
  # Build system (Bazel 4.2.3, offline, see notes in bazel/README.md).
  bazel-bootstrap pkg-config g++
  # RPC and serialisation.
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # Core libraries.
  libabsl-dev libboost-dev rapidjson-dev libgoogle-glog-dev
  # Tests and benchmarks; openssl makes the TLS/mTLS tests' certificates.
  libgtest-dev libgmock-dev libbenchmark-dev openssl
  # Scope stores (syncservice/storage): SQLite, and PostgreSQL's client
  # library plus a server the storage tests start on their own.
  libsqlite3-dev libpq-dev postgresql
  # Browser test of the demo pages (clients/js/browser-test, tools/js_test.sh).
  chromium
  # System benchmark (tools/bench_system.sh): its plot and its JSON reading.
  gnuplot-nox jq
)

# The JS client and its tests run on Node; Debian's only when none is there.
if ! command -v node >/dev/null 2>&1; then PACKAGES+=(nodejs npm); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages of the JS client's tests (ws, playwright-core) and of the
# Node.js validator example (@grpc/grpc-js), from their committed
# package-lock.json files: installed when missing or out of date.
root_dir="$(cd "$(dirname "$0")/.." && pwd)"
for js_dir in "$root_dir/clients/js" "$root_dir/examples/validator-node"; do
  [[ -f "$js_dir/package.json" ]] || continue
  stamp="$js_dir/node_modules/.package-lock.json"
  if [[ ! -f "$stamp" || "$js_dir/package-lock.json" -nt "$stamp" || "$js_dir/package.json" -nt "$stamp" ]]; then
    echo "setup: installing npm packages in ${js_dir#"$root_dir"/}" >&2
    if [[ -f "$js_dir/package-lock.json" ]]; then
      (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error)
    else
      (cd "$js_dir" && npm install --no-audit --no-fund --loglevel=error)
    fi
  fi
done
