#!/usr/bin/env bash
# Builds the Jetstream image from deploy/Containerfile with podman, or with
# docker where podman is absent (ENGINE=podman|docker chooses).
#
#   deploy/build_image.sh [--tag NAME]
#       The full multi-stage build from this checkout: the builder stage
#       runs tools/setup.sh --build and bazel build -c opt inside Debian 12
#       (a cold Bazel build: long), the runtime stage gets its binaries.
#   deploy/build_image.sh --runtime-only [BIN_DIR] [--tag NAME]
#       The same runtime stage with binaries built on this machine:
#       BIN_DIR/gateway/gateway and BIN_DIR/syncservice/syncservice, by
#       default those of `bazel build -c opt //gateway //syncservice`
#       (bazel info -c opt bazel-bin). They are copied into a staging
#       folder inside a small build context, so nothing is read through
#       Bazel's output symlinks.
#   --refresh-base   make the Debian base image again (security updates).
#
# The Debian base image (localhost/jetstream-base:bookworm) is made once
# with mmdebstrap --variant=minbase from Debian's archive and reused while
# it exists. The image is tagged NAME (default localhost/jetstream:latest);
# the last line printed is that name.
set -euo pipefail

deploy_dir=$(cd "$(dirname "$0")" && pwd)
root_dir=$(cd "$deploy_dir/.." && pwd)

tag=localhost/jetstream:latest
base=localhost/jetstream-base:bookworm
runtime_only=0
bin_dir=""
refresh_base=0
while (($#)); do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --tag=*) tag=${1#--tag=}; shift ;;
    --runtime-only)
      runtime_only=1; shift
      if (($#)) && [[ "$1" != --* ]]; then bin_dir=$1; shift; fi
      ;;
    --refresh-base) refresh_base=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build_image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

engine=${ENGINE:-}
if [[ -z "$engine" ]]; then
  if command -v podman >/dev/null 2>&1; then engine=podman
  elif command -v docker >/dev/null 2>&1; then engine=docker
  else
    echo "build_image: neither podman nor docker is installed (tools/setup.sh installs podman)" >&2
    exit 1
  fi
fi
if [[ "$engine" == podman && -z "${CONTAINERS_CONF:-}" ]]; then
  export CONTAINERS_CONF="$deploy_dir/podman/containers.conf"
fi

if ! engine_error=$("$engine" info 2>&1 >/dev/null); then
  echo "build_image: $engine does not work here: $engine_error" >&2
  exit 1
fi

# The base image, from Debian's archive; one maker at a time.
make_base() {
  if ((!refresh_base)) && "$engine" image inspect "$base" >/dev/null 2>&1; then
    return
  fi
  command -v mmdebstrap >/dev/null 2>&1 || {
    echo "build_image: mmdebstrap is not installed (tools/setup.sh installs it)" >&2
    return 1
  }
  local work
  work=$(mktemp -d)
  # Without man pages or translations, but with the (empty) man folders:
  # packages such as OpenJDK (Bazel's) register alternatives in them.
  echo "build_image: making $base with mmdebstrap (Debian 12 minbase)" >&2
  mmdebstrap --variant=minbase --format=tar --quiet \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='for i in 1 2 3 4 5 6 7 8; do mkdir -p "$1/usr/share/man/man$i"; done' \
    bookworm "$work/base.tar" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" \
    || { rm -rf "$work"; return 1; }
  "$engine" import "$work/base.tar" "$base" >/dev/null || { rm -rf "$work"; return 1; }
  rm -rf "$work"
}
lock=/tmp/jetstream-image-base.lock
(
  flock 9
  make_base
) 9>"$lock"

if ((runtime_only)); then
  if [[ -z "$bin_dir" ]]; then
    bin_dir=$(cd "$root_dir" && bazel info -c opt bazel-bin 2>/dev/null) || {
      echo "build_image: no BIN_DIR given and bazel info failed" >&2
      exit 1
    }
  fi
  for b in gateway/gateway syncservice/syncservice; do
    [[ -x "$bin_dir/$b" ]] || {
      echo "build_image: $bin_dir/$b missing: run bazel build -c opt //gateway //syncservice first" >&2
      exit 1
    }
  done
  context=$(mktemp -d)
  trap 'rm -rf "$context"' EXIT
  mkdir -p "$context/deploy/staging" "$context/syncservice/config"
  cp -L "$deploy_dir/Containerfile" "$deploy_dir/entrypoint.sh" "$context/deploy/"
  chmod 0755 "$context/deploy/entrypoint.sh"
  cp -L "$root_dir/syncservice/config/demo_schema.json" \
        "$root_dir/syncservice/config/demo_scopes.json" "$context/syncservice/config/"
  cp -L "$bin_dir/gateway/gateway" "$context/deploy/staging/jetstream-gateway"
  cp -L "$bin_dir/syncservice/syncservice" "$context/deploy/staging/jetstream-syncservice"
  chmod 0755 "$context"/deploy/staging/*
  target=runtime-prebuilt
else
  context=$root_dir
  target=runtime
fi

echo "build_image: $engine build --target $target -t $tag" >&2
# Host networking: the RUN steps fetch packages from Debian's archive.
"$engine" build --network=host --target "$target" \
  --build-arg "BASE_IMAGE=$base" \
  --build-arg "JETSTREAM_COMMIT=$(git -C "$root_dir" rev-parse HEAD 2>/dev/null || echo unknown)" \
  -f "$context/deploy/Containerfile" -t "$tag" "$context" >&2
echo "$tag"
