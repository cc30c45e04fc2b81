#!/usr/bin/env bash
# Installs the Jetstream programs, their configuration and the systemd units
# on this machine, where the units expect them:
#   /usr/local/bin/jetstream-syncservice, /usr/local/bin/jetstream-gateway
#   /etc/jetstream/schema.json, /etc/jetstream/scopes.json   (the demo's;
#                                  files already there are kept)
#   /etc/systemd/system/jetstream-syncservice.service,
#   /etc/systemd/system/jetstream-gateway.service
# The sync service's data goes to /var/lib/jetstream, which systemd creates
# (StateDirectory=jetstream).
#
#   deploy/systemd/install.sh [--bin-dir DIR] [--root DIR]
#     --bin-dir  holds gateway/gateway and syncservice/syncservice; default
#                the output of `bazel build -c opt //gateway //syncservice`
#     --root     install under DIR instead of / (for packaging and tests)
#
# Then: systemctl enable --now jetstream-syncservice jetstream-gateway
# On a machine other than the build machine, install the shared libraries
# first: apt-get install $(deploy/runtime_packages.sh <the two binaries>).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
root=""
bin_dir=""
while (($#)); do
  case "$1" in
    --root) root=$2; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --bin-dir=*) bin_dir=${1#--bin-dir=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$bin_dir" ]]; then
  bin_dir=$(cd "$repo" && bazel info -c opt bazel-bin 2>/dev/null) || {
    echo "install: no --bin-dir given and bazel info failed" >&2
    exit 1
  }
fi
for b in gateway/gateway syncservice/syncservice; do
  [[ -x "$bin_dir/$b" ]] || {
    echo "install: $bin_dir/$b missing: bazel build -c opt //gateway //syncservice first" >&2
    exit 1
  }
done

install -d -m 0755 "$root/usr/local/bin" "$root/etc/jetstream" "$root/etc/systemd/system"
install -m 0755 "$bin_dir/syncservice/syncservice" "$root/usr/local/bin/jetstream-syncservice"
install -m 0755 "$bin_dir/gateway/gateway" "$root/usr/local/bin/jetstream-gateway"
for f in schema scopes; do
  if [[ ! -e "$root/etc/jetstream/$f.json" ]]; then
    install -m 0644 "$repo/syncservice/config/demo_$f.json" "$root/etc/jetstream/$f.json"
  fi
done
install -m 0644 "$here/jetstream-syncservice.service" "$here/jetstream-gateway.service" \
  "$root/etc/systemd/system/"

if [[ -z "$root" && -d /run/systemd/system ]]; then
  systemctl daemon-reload
fi
echo "installed under ${root:-/}; start with: systemctl enable --now jetstream-syncservice jetstream-gateway"
