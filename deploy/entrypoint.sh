#!/bin/sh
# The image's entrypoint:
#   jetstream syncservice [flags]   the sync service
#   jetstream gateway [flags]       the gateway
# Each starts with the image's defaults (below); flags given here override
# them, since the last occurrence of a flag wins. exec keeps the program as
# the container's main process, so it receives SIGTERM itself.
set -eu
command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  syncservice)
    exec /usr/local/bin/jetstream-syncservice \
      --listen=0.0.0.0:50051 \
      --metrics_listen=0.0.0.0:9464 \
      --schema=/etc/jetstream/schema.json \
      --scopes=/etc/jetstream/scopes.json \
      --store=sqlite:/var/lib/jetstream/jetstream.db \
      "$@"
    ;;
  gateway)
    exec /usr/local/bin/jetstream-gateway \
      --listen_address=0.0.0.0 \
      --port=3000 \
      --metrics_listen=0.0.0.0:9465 \
      "$@"
    ;;
  *)
    echo "usage: jetstream syncservice|gateway [flags...]" >&2
    echo "  (the programs themselves: /usr/local/bin/jetstream-syncservice," >&2
    echo "   /usr/local/bin/jetstream-gateway; --help lists their flags)" >&2
    exit 2
    ;;
esac
