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
// timeout per connection. PrometheusText() builds the /metrics body from
// the sync service's counters.
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
#include "syncservice/rpc/interceptors.h"
#include "syncservice/scope_host.h"

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

// PrometheusText()
//
// The sync service's metrics in Prometheus text format:
//   jetstream_sync_calls_total{method}            calls into the SyncService
//   jetstream_sync_call_failures_total{method}    ... finished non-OK
//   jetstream_sync_call_latency_seconds_sum{method}
//   jetstream_sync_call_latency_seconds_max{method}  (gauge, since start)
//   jetstream_hook_calls_total{hook,method}       calls out to hooks (hook:
//   jetstream_hook_call_failures_total{hook,method}  its name in the hooks
//   jetstream_hook_call_latency_seconds_sum{hook,method}  file), and the
//   jetstream_hook_call_latency_seconds_max{hook,method}  same for them
//   jetstream_sync_auth_refused_total             calls refused by
//                                                 CallAuthenticator
//   jetstream_sync_scopes_loaded                  scopes held live
//   jetstream_sync_scope_version{scope}           a scope's version (one per
//                                                 commit in its history)
//   jetstream_sync_scope_watchers{scope}          gateway streams watching it
// `method` is the full gRPC method ("/jetstream.sync.v1.SyncService/
// GetScope").
std::string PrometheusText(
    const std::map<CallMetrics::Key, CallMetrics::Method>& calls,
    uint64_t auth_refused, const std::vector<ScopeHostInfo>& scopes);

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_METRICS_HTTP_SERVER_H_
