// File: gateway/core/gateway_metrics.h
//
// The gateway's metrics (docs/metrics.md), recorded where the work happens:
// sessions and messages by the Session and SessionManager, bytes and close
// codes by the WebSocket connections (through ConnectionEvents), links to
// the replicas by the sync clients. Gauges of live counts (sessions,
// connections, links up, reconnects) are read at each scrape by a
// collector the GatewayServer adds. The standard grpc_client_* metrics of the
// calls to the sync service come from an interceptor on each channel
// (grpc_client()).
//
// Thread-safety: every method is thread-safe and cheap (a prometheus-cpp
// update; label lookups only for message types and close codes, whose
// values are bounded). Lifetime: must outlive everything recording into it.

#ifndef JETSTREAM_GATEWAY_CORE_GATEWAY_METRICS_H_
#define JETSTREAM_GATEWAY_CORE_GATEWAY_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/metrics/grpc_metrics.h"

namespace jetstream::gateway {

class GatewayMetrics {
 public:
  explicit GatewayMetrics(prometheus::Registry& registry);

  void SessionStarted();
  void SessionEnded();
  // A client message of `type` ("ScopeSync"; "invalid": unparseable).
  void MessageReceived(absl::string_view type);
  // `count` messages of `type` queued for clients.
  void MessageSent(absl::string_view type, size_t count = 1);
  void BytesReceived(size_t bytes);
  void BytesSent(size_t bytes);
  // A WebSocket connection ended with `code` (sent by either side; 1006:
  // no close frame).
  void Closed(uint16_t code);
  void WriteQueueOverflow();
  void Resent(size_t messages);
  // A ScopeSync from its frame read to its reply queued.
  void ObserveChangeset(absl::Duration took);
  // A commit from the sync service's apply to its fan-out here.
  void ObserveDeliveryLag(absl::Duration lag);
  // A commit from its arrival at the gateway to its fan-out by a hub.
  void ObserveHubDelay(absl::Duration delay);
  // `count` sessions ended by the overload policy (server-overloaded).
  void SessionsShed(size_t count);

  GrpcMetrics& grpc_client() { return grpc_client_; }

 private:
  prometheus::Counter& sessions_started_;
  prometheus::Counter& sessions_ended_;
  // The series of one type label: looked up in `cached` (built in the
  // constructor for every type the protocol has, read-only after), else
  // added to `family` (a mutex and a label map: rare).
  static prometheus::Counter& OfType(
      prometheus::Family<prometheus::Counter>& family,
      const absl::flat_hash_map<std::string, prometheus::Counter*>& cached,
      absl::string_view type);

  prometheus::Family<prometheus::Counter>& received_;
  prometheus::Family<prometheus::Counter>& sent_;
  absl::flat_hash_map<std::string, prometheus::Counter*> received_by_type_;
  absl::flat_hash_map<std::string, prometheus::Counter*> sent_by_type_;
  prometheus::Counter& bytes_received_;
  prometheus::Counter& bytes_sent_;
  prometheus::Family<prometheus::Counter>& closes_;
  prometheus::Counter& overflows_;
  prometheus::Counter& resends_;
  prometheus::Histogram& changeset_;
  prometheus::Histogram& delivery_lag_;
  prometheus::Histogram& hub_delay_;
  prometheus::Counter& shed_;
  GrpcMetrics grpc_client_;
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_CORE_GATEWAY_METRICS_H_
