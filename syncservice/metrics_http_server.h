// File: syncservice/metrics_http_server.h
//
// A tiny HTTP/1.1 server (Boost.Beast) for the sync service's operational
// endpoints, apart from its gRPC port:
//
//   GET /metrics  the text `render` returns, as Prometheus text format
//                 (Content-Type: text/plain; version=0.0.4)
//   GET /healthz  "ok"
//   anything else 404
//
// One thread, one request per connection (Connection: close), a 10 s
// timeout per connection. The body of /metrics is what `render` returns
// (MetricsRegistry::Text()).
//
// Example:
//   auto http = MetricsHttpServer::Start("127.0.0.1:0", [&] { return ...; });
//   LOG(INFO) << "metrics on " << (*http)->address();

#ifndef JETSTREAM_SYNCSERVICE_METRICS_HTTP_SERVER_H_
#define JETSTREAM_SYNCSERVICE_METRICS_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace jetstream {

// MetricsHttpServer
//
// Serves until destroyed; the destructor stops accepting, ends open
// connections and joins the thread. `render` runs on the server's thread,
// once per /metrics request, and must be thread-safe with respect to the
// rest of the program.
class MetricsHttpServer {
 public:
  using Render = std::function<std::string()>;

  // Binds `listen` ("ip:port"; port 0 picks a free one; "[::1]:p" for
  // IPv6) and starts serving. Fails with kInvalidArgument for a malformed
  // address, kUnavailable if it cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, Render render);

  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // "ip:port" actually bound.
  const std::string& address() const { return address_; }

 private:
  class Impl;
  explicit MetricsHttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_METRICS_HTTP_SERVER_H_
