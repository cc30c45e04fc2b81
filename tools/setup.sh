#!/usr/bin/env bash
# Installs every Debian package the project needs to build, test and run the
# demo. Idempotent: safe to run on every invocation of the README commands.
#   tools/setup.sh           everything (build, tests, demo, benchmarks)
#   tools/setup.sh --build   only what `bazel build //gateway //syncservice`
#                            needs (the image's builder stage, deploy/)
set -euo pipefail

build_only=0
if [[ "${1:-}" == "--build" ]]; then build_only=1; fi

BUILD_PACKAGES=(
  # Build system (Bazel 4.2.3, offline, see notes in bazel/README.md).
  bazel-bootstrap pkg-config g++
  # RPC and serialisation.
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # Core libraries.
  libabsl-dev libboost-dev rapidjson-dev libgoogle-glog-dev
  # Scope stores' client libraries (syncservice/storage).
  libsqlite3-dev libpq-dev
  # Prometheus metrics: registry, metric types and text serializer
  # (common/metrics).
  prometheus-cpp-dev
)

PACKAGES=(
  "${BUILD_PACKAGES[@]}"
  # Tests and benchmarks; openssl makes the TLS/mTLS tests' certificates.
  libgtest-dev libgmock-dev libbenchmark-dev openssl
  # The C++ format check (tests/build:format_test, .clang-format).
  clang-format
  # A PostgreSQL server the storage tests start on their own.
  postgresql
  # Browser test of the demo pages (clients/js/browser-test, tools/js_test.sh).
  chromium
  # System benchmark (tools/bench_system.sh): its plot and its JSON reading.
  gnuplot-nox jq
  # Container image and its smoke test (deploy/build_image.sh,
  # tests/deploy): podman run by runc (crun fails on hosts with hybrid
  # cgroups), mmdebstrap for the Debian base image. systemd-analyze checks
  # the systemd units (deploy/test).
  podman runc mmdebstrap systemd
  # promtool (Debian's prometheus package) checks the metrics both
  # processes export (tests/hooks:observability_test) and checks and
  # unit-tests the alerting rules (deploy/prometheus, deploy/test).
  prometheus
)
if ((build_only)); then PACKAGES=("${BUILD_PACKAGES[@]}"); fi

# The JS client and its tests run on Node; Debian's only when none is there.
if ((!build_only)) && ! command -v node >/dev/null 2>&1; then PACKAGES+=(nodejs npm); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# kubectl renders the Kubernetes overlays (kubectl kustomize, deploy/test).
# Any kubectl already on the PATH will do (it may come from another
# repository, e.g. Google's cloud-sdk one, whose package is also called
# kubectl); otherwise a "kubectl" package if an apt source offers one, else
# Debian's kubernetes-client.
need_kubectl=0
if ((!build_only)) && ! command -v kubectl >/dev/null 2>&1; then need_kubectl=1; fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
if ((${#missing[@]} || need_kubectl)); then
  $SUDO apt-get update -qq
fi
if ((need_kubectl)); then
  if apt-cache policy kubectl 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    missing+=(kubectl)
  else
    missing+=(kubernetes-client)
  fi
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ((build_only)); then exit 0; fi

# npm packages of the JS client's tests (ws, playwright-core), of the
# Node.js validator example (@grpc/grpc-js) and of the deployment checks
# (kubernetes-models, yaml), from their committed
# package-lock.json files: installed when missing or out of date.
root_dir="$(cd "$(dirname "$0")/.." && pwd)"
for js_dir in "$root_dir/clients/js" "$root_dir/examples/validator-node" "$root_dir/deploy/test"; do
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
