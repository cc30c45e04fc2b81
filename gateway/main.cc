// The gateway: Jetstream clients connect here over WebSocket; scopes live in
// the sync service, reached over gRPC.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/termination_signals.h"
#include "gateway/gateway_server.h"

ABSL_FLAG(std::string, listen_address, "127.0.0.1",
          "Address for WebSocket and HTTP clients.");
ABSL_FLAG(uint16_t, port, 3000, "Port for WebSocket and HTTP; 0 picks one.");
ABSL_FLAG(std::vector<std::string>, sync_service, {"127.0.0.1:50051"},
          "Seeds for the sync service replicas: gRPC addresses or one DNS "
          "name (dns:///...), comma-separated. Replicas sharing PostgreSQL "
          "report their members and are routed by member id; standalone "
          "replicas are each named by the seed as written, so list the same "
          "seeds on every gateway.");
ABSL_FLAG(std::string, sync_service_token, "",
          "Bearer token presented to the sync service (its "
          "--auth_tokens_file); needs --sync_service_tls_ca; empty sends "
          "none.");
ABSL_FLAG(std::string, sync_service_tls_ca, "",
          "PEM CA of the sync service's certificate; empty: plaintext.");
ABSL_FLAG(std::string, sync_service_tls_cert, "",
          "PEM client certificate chain for mTLS to the sync service.");
ABSL_FLAG(std::string, sync_service_tls_key, "",
          "PEM client private key for mTLS to the sync service.");
ABSL_FLAG(int, threads, 0,
          "Event-loop threads, each with a hub of its own (its share of the "
          "sessions); 0: one per core.");
ABSL_FLAG(std::string, static_dir, "",
          "Folder of web pages served over HTTP (the demo); empty for none.");
ABSL_FLAG(uint64_t, max_frame_bytes, 1 << 20,
          "Largest WebSocket frame accepted; larger closes with 1009.");
ABSL_FLAG(uint64_t, max_fragments_per_changeset, 10000,
          "Largest changeset accepted; larger gets per-fragment errors.");
ABSL_FLAG(uint64_t, max_scopes_per_session, 100,
          "Scopes one session may fetch.");
ABSL_FLAG(uint64_t, max_write_queue_bytes, 16 << 20,
          "Bytes queued for one slow client before its session ends.");
ABSL_FLAG(absl::Duration, max_write_queue_age, absl::Seconds(30),
          "How long a frame may wait for a slow client's socket before its "
          "session ends (4097 write-queue-overflow); 0: no bound.");
ABSL_FLAG(absl::Duration, max_delivery_lag, absl::Seconds(2),
          "How far a hub may fall behind (a commit queued this long) before "
          "it ends its newest sessions with 4097 server-overloaded; 0: "
          "never.");
ABSL_FLAG(uint64_t, max_unacked_messages, 100000,
          "Unacknowledged messages kept for one session before it ends.");
ABSL_FLAG(uint64_t, max_connections, 100000,
          "Open WebSocket connections in total; over it a new one is closed "
          "with 4096 too-many-connections. 0: no limit.");
ABSL_FLAG(uint64_t, max_connections_per_address, 0,
          "Open WebSocket connections from one source address; 0: no limit "
          "(the default, since clients behind a proxy share its address).");
ABSL_FLAG(std::vector<std::string>, allowed_origins, {},
          "Comma-separated Origins browsers may connect from; others get "
          "HTTP 403. Empty: any.");
ABSL_FLAG(
    uint64_t, max_connection_rate_per_address, 0,
    "New connections per second from one source address (two seconds' "
    "worth at once); over it, 4096 connection-rate-limited. 0: no limit (the "
    "default: behind a proxy every client shares its address, unless "
    "--trusted_proxies names it).");
ABSL_FLAG(
    uint64_t, max_messages_per_second, 1000,
    "Messages per second per session (two seconds' worth at once); a message "
    "over it is answered rate-limited and not acted on. 0: no limit.");
ABSL_FLAG(
    uint64_t, max_bytes_per_second, 4 << 20,
    "Frame bytes per second per session (two seconds' worth at once); the "
    "messages of a frame over it are answered rate-limited and not "
    "acted on. 0: no limit.");
ABSL_FLAG(std::vector<std::string>, trusted_proxies, {},
          "Comma-separated IP addresses and CIDR blocks of proxies in front "
          "of the gateway whose X-Forwarded-For names the client (for limits, "
          "the tarpit and the session authorizer). Empty: the TCP peer is "
          "the client.");
ABSL_FLAG(absl::Duration, handshake_timeout, absl::Seconds(10),
          "Time a new connection has to send SessionCreate.");
ABSL_FLAG(absl::Duration, tarpit_first_delay, absl::Milliseconds(100),
          "A connection refused in its handshake is closed after this "
          "delay, doubled per refusal from the same address.");
ABSL_FLAG(absl::Duration, tarpit_max_delay, absl::Seconds(10),
          "Longest tarpit delay; 0 closes refused connections at once.");
ABSL_FLAG(absl::Duration, ping_interval, absl::Seconds(10),
          "Keep-alive ping interval (randomised by +/- ping_jitter).");
ABSL_FLAG(absl::Duration, ping_jitter, absl::Seconds(1),
          "Randomisation of the ping interval.");
ABSL_FLAG(absl::Duration, session_expiry, absl::Minutes(10),
          "A session without messages for this long expires.");
ABSL_FLAG(absl::Duration, sync_request_timeout, absl::Seconds(10),
          "How long a client request may wait for the sync service.");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:0",
          "ip:port serving Prometheus /metrics, /healthz and /readyz, apart "
          "from the public port (which never serves /metrics); the default, "
          "a free loopback port, is printed as \"METRICS ip:port\"; give a "
          "fixed one (0.0.0.0:9465) for a scraper; empty: no metrics.");
ABSL_FLAG(absl::Duration, drain_window, absl::Seconds(10),
          "On SIGTERM: readiness off, no new connections, sessions ended "
          "(4097) spread over this window, then exit.");
ABSL_FLAG(int, verbosity, 0, "Log verbosity: 1 logs every message.");
ABSL_FLAG(std::string, log_format, "text",
          "text: one line per event with key=value fields; json: one JSON "
          "object per line, the fields as members.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Jetstream gateway: WebSocket clients in, sync service over gRPC out.");
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<jetstream::LogFormat> log_format =
      jetstream::ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.ok()) {
    std::fprintf(stderr, "gateway: --log_format: %s\n",
                 std::string(log_format.status().message()).c_str());
    return 2;
  }
  jetstream::InitLogging(argv[0], absl::GetFlag(FLAGS_verbosity), *log_format);
  // Debian's Abseil checks every lock for deadlock cycles, gRPC's included;
  // that costs ~10% of the CPU under load (docs/profiling.md).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  jetstream::gateway::GatewayOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen_address);
  options.port = absl::GetFlag(FLAGS_port);
  options.sync_service_targets = absl::GetFlag(FLAGS_sync_service);
  options.sync_service_token = absl::GetFlag(FLAGS_sync_service_token);
  options.sync_service_tls_ca = absl::GetFlag(FLAGS_sync_service_tls_ca);
  options.sync_service_tls_cert = absl::GetFlag(FLAGS_sync_service_tls_cert);
  options.sync_service_tls_key = absl::GetFlag(FLAGS_sync_service_tls_key);
  // A bearer token only ever travels over TLS (the sync service accepts
  // tokens only on a TLS port); a client certificate needs TLS and its key.
  if (!options.sync_service_token.empty() &&
      options.sync_service_tls_ca.empty()) {
    std::fprintf(stderr,
                 "gateway: --sync_service_token needs --sync_service_tls_ca "
                 "(a bearer token is never sent in clear)\n");
    return 1;
  }
  if (options.sync_service_tls_cert.empty() !=
          options.sync_service_tls_key.empty() ||
      (!options.sync_service_tls_cert.empty() &&
       options.sync_service_tls_ca.empty())) {
    std::fprintf(stderr,
                 "gateway: --sync_service_tls_cert and --sync_service_tls_key "
                 "go together, with --sync_service_tls_ca\n");
    return 1;
  }
  options.threads = absl::GetFlag(FLAGS_threads);
  if (options.threads <= 0) {
    options.threads =
        std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }
  options.static_dir = absl::GetFlag(FLAGS_static_dir);
  options.max_frame_bytes = absl::GetFlag(FLAGS_max_frame_bytes);
  options.max_fragments_per_changeset =
      absl::GetFlag(FLAGS_max_fragments_per_changeset);
  options.max_scopes_per_session = absl::GetFlag(FLAGS_max_scopes_per_session);
  options.max_write_queue_bytes = absl::GetFlag(FLAGS_max_write_queue_bytes);
  options.max_write_queue_age = absl::GetFlag(FLAGS_max_write_queue_age);
  options.max_delivery_lag = absl::GetFlag(FLAGS_max_delivery_lag);
  options.max_unacked_messages = absl::GetFlag(FLAGS_max_unacked_messages);
  options.max_connections = absl::GetFlag(FLAGS_max_connections);
  options.max_connections_per_address =
      absl::GetFlag(FLAGS_max_connections_per_address);
  options.allowed_origins = absl::GetFlag(FLAGS_allowed_origins);
  options.max_connection_rate_per_address =
      absl::GetFlag(FLAGS_max_connection_rate_per_address);
  options.max_messages_per_second =
      absl::GetFlag(FLAGS_max_messages_per_second);
  options.max_bytes_per_second = absl::GetFlag(FLAGS_max_bytes_per_second);
  options.trusted_proxies = absl::GetFlag(FLAGS_trusted_proxies);
  options.handshake_timeout = absl::GetFlag(FLAGS_handshake_timeout);
  options.tarpit_first_delay = absl::GetFlag(FLAGS_tarpit_first_delay);
  options.tarpit_max_delay = absl::GetFlag(FLAGS_tarpit_max_delay);
  options.ping_interval = absl::GetFlag(FLAGS_ping_interval);
  options.ping_jitter = absl::GetFlag(FLAGS_ping_jitter);
  options.session_expiry = absl::GetFlag(FLAGS_session_expiry);
  options.sync_request_timeout = absl::GetFlag(FLAGS_sync_request_timeout);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.drain_window = absl::GetFlag(FLAGS_drain_window);

  // Signals are taken by a dedicated thread so shutdown runs outside any
  // signal handler.
  const jetstream::TerminationSignals signals;

  jetstream::gateway::GatewayServer server(options);
  absl::StatusOr<uint16_t> port = server.Start();
  if (!port.ok()) {
    std::cerr << "gateway: " << port.status().message() << "\n";
    return 1;
  }
  if (!server.metrics_address().empty()) {
    std::printf("METRICS %s\n", server.metrics_address().c_str());
  }
  std::printf("LISTENING %s:%u\n", options.listen_address.c_str(), *port);
  std::fflush(stdout);

  const absl::Duration drain_window = options.drain_window;
  std::thread signal_thread([&server, &signals, drain_window] {
    int sig = signals.Wait();
    LOG(INFO) << "signal " << sig << ": draining";
    server.Drain(drain_window);
    // A second signal stops at once.
    sig = signals.Wait();
    LOG(INFO) << "signal " << sig << ": shutting down";
    server.Stop();
  });
  signal_thread.detach();
  server.Wait();
  LOG(INFO) << "gateway stopped";
  return 0;
}
