// File: gateway/gateway_server.h
//
// The gateway process assembled: an io_context run by N threads
// (--threads), one hub per thread (a strand with its SessionManager, its
// share of the sessions and their connections), the link to the sync
// service (the router and its gRPC streams, on a strand of its own) shared
// by the hubs through HubFanout, the connection gate they share, and the
// TCP listener for WebSocket and HTTP on one port, which hands new
// connections to the hubs in turn. With one thread, the hub and the link
// are one strand.
//
// Example:
//   GatewayServer server(options);
//   uint16_t port = server.Start().value();  // binds; port 0 picks one
//   server.Wait();                            // until Stop() from elsewhere

#ifndef JETSTREAM_GATEWAY_GATEWAY_SERVER_H_
#define JETSTREAM_GATEWAY_GATEWAY_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "common/metrics/metrics_registry.h"
#include "gateway/core/gateway_metrics.h"
#include "gateway/core/gateway_options.h"
#include "gateway/net/http_session.h"
#include "gateway/net/trusted_proxies.h"
#include "gateway/session/connection_gate.h"
#include "gateway/session/session_manager.h"
#include "gateway/sync/grpc_sync_client.h"
#include "gateway/sync/hub_fanout.h"
#include "gateway/sync/routing_sync_client.h"

namespace jetstream::gateway {

class GatewayServer {
 public:
  explicit GatewayServer(GatewayOptions options);
  ~GatewayServer();

  // Binds the listening port (and the metrics port, if any) and starts the
  // threads. Returns the port.
  absl::StatusOr<uint16_t> Start();
  // The metrics port's "ip:port", once started; empty without one.
  const std::string& metrics_address() const { return metrics_address_; }
  // Graceful stop (SIGTERM): readiness turns off, no new connections are
  // accepted, the sessions are ended (4097) spread over `window` in a
  // random order, then Stop(). Thread-safe; returns at once.
  void Drain(absl::Duration window);
  // Ends every session (close 4097), stops accepting, stops the threads.
  // Thread-safe; returns at once.
  void Stop();
  // Blocks until the threads have stopped.
  void Wait();

 private:
  void DoAccept();
  void DoAcceptMetrics();
  // `public_port`: the WebSocket and web pages port, or the metrics one.
  boost::beast::http::response<boost::beast::http::string_body> HandleHttp(
      const boost::beast::http::request<boost::beast::http::string_body>& req,
      bool public_port);

  // The gauges and counters read at each scrape.
  std::vector<prometheus::MetricFamily> CollectMetrics() const;

  GatewayOptions options_;
  // Before everything that records into them; the collector reads sync_,
  // gate_ and managers_, and runs only on the metrics port's connections,
  // which end with the threads.
  MetricsRegistry metrics_registry_{"gateway"};
  GatewayMetrics metrics_{metrics_registry_.registry()};
  boost::asio::io_context ioc_;
  // The link's strand: the router, its clients, their timers, and the
  // server's own start and stop.
  HubExecutor link_;
  // Owns one GrpcSyncClient per sync service replica and seed.
  std::unique_ptr<RoutingSyncClient> sync_;
  // Clients made before the threads run, started with them (link only).
  bool clients_started_ = false;
  std::vector<GrpcSyncClient*> unstarted_clients_;
  // Shared by the hubs; its timers run on the link.
  std::unique_ptr<ConnectionGate> gate_;
  std::unique_ptr<HubFanout> fanout_;
  // One per hub, each on its own strand.
  std::vector<std::unique_ptr<SessionManager>> managers_;
  // The hub the next accepted connection goes to (the accept loop's).
  size_t next_hub_ = 0;
  HubSelector select_hub_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::ip::tcp::acceptor metrics_acceptor_;
  std::string metrics_address_;
  HttpHandler http_handler_;
  HttpHandler metrics_handler_;
  // From options_.trusted_proxies, parsed by Start() (before any accept).
  TrustedProxies trusted_proxies_;
  // Set by Drain(): /readyz answers 503.
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
  std::vector<std::thread> threads_;
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_GATEWAY_SERVER_H_
