// File: gateway/core/gateway_options.h
//
// Everything configurable about the gateway, with the defaults of
// docs/protocol.md#timers and sane limits. Filled from flags in gateway/main.cc
// only.

#ifndef JETSTREAM_GATEWAY_CORE_GATEWAY_OPTIONS_H_
#define JETSTREAM_GATEWAY_CORE_GATEWAY_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace jetstream::gateway {

struct GatewayOptions {
  // Where clients connect (WebSocket on any path, HTTP for the rest).
  std::string listen_address = "127.0.0.1";
  uint16_t port = 3000;
  // Seeds for the sync service replicas (gRPC addresses, or one DNS name).
  // Replicas that share PostgreSQL report their members, and scopes are
  // routed by rendezvous hashing over member ids; a standalone replica is
  // named by its seed as written, so then every gateway must list the same
  // seeds, spelt the same way (in any order). See
  // gateway/sync/routing_sync_client.h.
  std::vector<std::string> sync_service_targets = {"127.0.0.1:50051"};
  // Sent as `authorization: Bearer <token>` to the sync service; empty
  // sends none.
  std::string sync_service_token;
  // TLS to the sync service (PEM files): the CA that signed its
  // certificate, and for mTLS this gateway's certificate chain and key.
  // All empty: plaintext.
  std::string sync_service_tls_ca;
  std::string sync_service_tls_cert;
  std::string sync_service_tls_key;
  // Event-loop threads, each with a hub of its own (its share of the
  // sessions and their connections). main.cc turns 0 into the machine's
  // cores.
  int threads = 1;
  // Folder of the demo web pages served over HTTP; empty serves none.
  std::string static_dir;
  // Where /metrics, /healthz and /readyz are served apart from the public
  // port ("ip:port"; port 0 picks one). Empty: on the public port.
  std::string metrics_listen;
  // On SIGTERM, sessions are ended (4097) spread over this window, so their
  // clients do not all reconnect at once.
  absl::Duration drain_window = absl::Seconds(10);

  // Limits.
  size_t max_frame_bytes = 1 << 20;  // a larger frame closes with 1009
  size_t max_messages_per_frame = 1000;
  size_t max_fragments_per_changeset = 10000;
  size_t max_scopes_per_session = 100;
  size_t max_write_queue_bytes = 16 << 20;  // per connection
  // A connection whose oldest queued frame waited longer than this for the
  // socket ends its session like an overflow (4097 write-queue-overflow).
  // Zero: no age bound.
  absl::Duration max_write_queue_age = absl::Seconds(30);
  // Overload (docs/protocol.md#overload): a commit that waited longer
  // than this in its hub's queue makes the hub end its newest sessions
  // (a tenth of them, at least one) with 4097 `server-overloaded`, and
  // again for every later commit that still waits too long. Zero: never.
  absl::Duration max_delivery_lag = absl::Seconds(2);
  size_t max_unacked_messages = 100000;  // per session
  // Open WebSocket connections, in total and from one source address; over
  // either, a new connection is closed with 4096 `too-many-connections`.
  // 0: no limit. The per-address limit is off by default: behind a load
  // balancer or proxy every client shares the proxy's address.
  size_t max_connections = 100000;
  size_t max_connections_per_address = 0;
  // Origins a browser may connect from ("https://app.example.com"), compared
  // without case; an upgrade with another Origin header gets HTTP 403. A
  // request without Origin (not a browser) is let in. Empty: any origin.
  std::vector<std::string> allowed_origins;
  // New connections per second from one source address (two seconds'
  // worth at once, kRateLimitBurst);
  // over it, 4096 `connection-rate-limited`. 0: no limit. Off by default
  // for the same reason as max_connections_per_address.
  size_t max_connection_rate_per_address = 0;
  // Per session, messages and frame bytes per second (two seconds' worth at
  // once):
  // a message over either is answered `rate-limited` and not acted on
  // (docs/protocol.md#rate-limits). 0: no limit.
  size_t max_messages_per_second = 1000;
  size_t max_bytes_per_second = 4 << 20;
  // Peers (IP addresses, CIDR blocks) believed about the client they
  // forward for in X-Forwarded-For (docs/protocol.md#client-address):
  // load balancers and reverse proxies in front of the gateway. Empty:
  // the TCP peer is the client.
  std::vector<std::string> trusted_proxies;

  // A connection refused in its handshake (not SessionCreate first, a bad
  // first frame, an unknown session token) is closed only after a delay
  // that starts here and doubles per refusal from the same address, up to
  // the maximum (docs/protocol.md#tarpit). A zero maximum closes at once.
  absl::Duration tarpit_first_delay = absl::Milliseconds(100);
  absl::Duration tarpit_max_delay = absl::Seconds(10);

  // Timers (docs/protocol.md#timers).
  absl::Duration handshake_timeout = absl::Seconds(10);
  absl::Duration ping_interval = absl::Seconds(10);  // +/- ping_jitter
  absl::Duration ping_jitter = absl::Seconds(1);
  absl::Duration session_expiry = absl::Minutes(10);
  // How long a request may wait for the sync service before the client gets
  // an error reply.
  absl::Duration sync_request_timeout = absl::Seconds(10);
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_CORE_GATEWAY_OPTIONS_H_
