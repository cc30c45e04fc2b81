// File: gateway/core/gateway_metrics.cc

#include "gateway/core/gateway_metrics.h"

#include <algorithm>
#include <string>

#include "common/metrics/metrics_registry.h"

namespace jetstream::gateway {
namespace {

prometheus::Family<prometheus::Counter>& Counters(
    prometheus::Registry& registry, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Histogram& Latency(prometheus::Registry& registry, const char* name,
                               const char* help) {
  return NewHistogram(registry, name, help, LatencyBuckets());
}

}  // namespace

GatewayMetrics::GatewayMetrics(prometheus::Registry& registry)
    : sessions_started_(NewCounter(registry,
                                   "jetstream_gateway_sessions_started_total",
                                   "Sessions created.")),
      sessions_ended_(
          NewCounter(registry, "jetstream_gateway_sessions_ended_total",
                     "Sessions ended (closed, expired, overflowed).")),
      received_(Counters(registry, "jetstream_gateway_messages_received_total",
                         "Client messages by type (invalid: unparseable).")),
      sent_(Counters(registry, "jetstream_gateway_messages_sent_total",
                     "Messages sent to clients by type.")),
      bytes_received_(NewCounter(registry,
                                 "jetstream_gateway_received_bytes_total",
                                 "WebSocket payload bytes read.")),
      bytes_sent_(NewCounter(registry, "jetstream_gateway_sent_bytes_total",
                             "WebSocket payload bytes queued for writing.")),
      closes_(Counters(registry, "jetstream_gateway_closes_total",
                       "WebSocket connections ended, by close code.")),
      overflows_(NewCounter(registry,
                            "jetstream_gateway_write_queue_overflows_total",
                            "Sessions ended with 4097 write-queue-overflow.")),
      resends_(NewCounter(registry, "jetstream_gateway_resends_total",
                          "Messages resent after a resume or a Ping that asked "
                          "for missing ones.")),
      changeset_(Latency(registry, "jetstream_gateway_changeset_seconds",
                         "A ScopeSync from its frame read to its reply.")),
      delivery_lag_(Latency(
          registry, "jetstream_gateway_delivery_lag_seconds",
          "A commit from its apply at the sync service to its fan-out to "
          "this gateway's sessions.")),
      hub_delay_(Latency(registry, "jetstream_gateway_hub_delay_seconds",
                         "A commit from its arrival at this gateway to its "
                         "fan-out by a hub (time queued behind the hub's "
                         "other work).")),
      shed_(NewCounter(registry, "jetstream_gateway_sessions_shed_total",
                       "Sessions ended with 4097 server-overloaded: their "
                       "hub's delay passed --max_delivery_lag.")),
      grpc_client_(registry, GrpcMetrics::kClient) {
  // Every message type of the protocol (docs/protocol.md), both ways.
  for (const char* type : {"SessionCreate", "SessionCreateReply", "ScopeFetch",
                           "ScopeFetchReply", "ScopeState", "ScopeSync",
                           "ScopeSyncReply", "Ping", "Reply", "invalid"}) {
    received_by_type_[type] = &received_.Add({{"type", type}});
    sent_by_type_[type] = &sent_.Add({{"type", type}});
  }
}

prometheus::Counter& GatewayMetrics::OfType(
    prometheus::Family<prometheus::Counter>& family,
    const absl::flat_hash_map<std::string, prometheus::Counter*>& cached,
    absl::string_view type) {
  auto it = cached.find(type);
  if (it != cached.end()) return *it->second;
  return family.Add({{"type", std::string(type)}});
}

void GatewayMetrics::SessionStarted() { sessions_started_.Increment(); }
void GatewayMetrics::SessionEnded() { sessions_ended_.Increment(); }
void GatewayMetrics::MessageReceived(absl::string_view type) {
  OfType(received_, received_by_type_, type).Increment();
}
void GatewayMetrics::MessageSent(absl::string_view type, size_t count) {
  OfType(sent_, sent_by_type_, type).Increment(static_cast<double>(count));
}
void GatewayMetrics::BytesReceived(size_t bytes) {
  bytes_received_.Increment(static_cast<double>(bytes));
}
void GatewayMetrics::BytesSent(size_t bytes) {
  bytes_sent_.Increment(static_cast<double>(bytes));
}
void GatewayMetrics::Closed(uint16_t code) {
  closes_.Add({{"code", std::to_string(code)}}).Increment();
}
void GatewayMetrics::WriteQueueOverflow() { overflows_.Increment(); }
void GatewayMetrics::Resent(size_t messages) {
  resends_.Increment(static_cast<double>(messages));
}
void GatewayMetrics::ObserveChangeset(absl::Duration took) {
  changeset_.Observe(absl::ToDoubleSeconds(took));
}
void GatewayMetrics::ObserveDeliveryLag(absl::Duration lag) {
  delivery_lag_.Observe(
      absl::ToDoubleSeconds(std::max(lag, absl::ZeroDuration())));
}

void GatewayMetrics::ObserveHubDelay(absl::Duration delay) {
  hub_delay_.Observe(
      absl::ToDoubleSeconds(std::max(delay, absl::ZeroDuration())));
}
void GatewayMetrics::SessionsShed(size_t count) {
  shed_.Increment(static_cast<double>(count));
}

}  // namespace jetstream::gateway
