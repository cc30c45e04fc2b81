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
  # Tests and benchmarks.
  libgtest-dev libgmock-dev libbenchmark-dev
)

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
