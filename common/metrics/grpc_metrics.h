// File: common/metrics/grpc_metrics.h
//
// The standard gRPC metrics, under the names operators know from
// go-grpc-prometheus and java-grpc-prometheus, recorded by interceptors so
// no handler or stub has to:
//
//   grpc_server_started_total{grpc_service,grpc_method,grpc_type}
//   grpc_server_handled_total{grpc_service,grpc_method,grpc_type,grpc_code}
//   grpc_server_handling_seconds{grpc_service,grpc_method,grpc_type}
//
// and their grpc_client_* twins. grpc_service is the full service name
// ("jetstream.sync.v1.SyncService"), grpc_method the method alone
// ("GetScope"), grpc_type one of unary, client_stream, server_stream,
// bidi_stream, grpc_code the status name as grpc-go spells it ("OK",
// "Unavailable", "DeadlineExceeded"). A stream
// is handled when it ends, so its handling time is its lifetime.
//
// Example (server):
//   GrpcMetrics server_metrics(registry.registry(), GrpcMetrics::kServer);
//   std::vector<std::unique_ptr<ServerInterceptorFactoryInterface>> f;
//   f.push_back(std::make_unique<GrpcServerMetricsInterceptorFactory>(
//       &server_metrics));
//   builder.experimental().SetInterceptorCreators(std::move(f));
//
// Thread-safety: all classes are thread-safe; gRPC calls them from its own
// threads. A GrpcMetrics must outlive every server and channel using it.

#ifndef JETSTREAM_COMMON_METRICS_GRPC_METRICS_H_
#define JETSTREAM_COMMON_METRICS_GRPC_METRICS_H_

#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace jetstream {

// "OK", "Canceled", "Unavailable", ... as in grpc_code labels.
absl::string_view GrpcCodeName(grpc::StatusCode code);

// GrpcMetrics
//
// The three families of one side (server or client) in one registry.
class GrpcMetrics {
 public:
  enum Side { kServer, kClient };

  // The labels of one call: grpc_service, grpc_method, grpc_type.
  struct CallLabels {
    std::string service;
    std::string method;
    std::string type;
  };
  // From "/package.Service/Method" and the call's type name.
  static CallLabels Labels(absl::string_view full_method,
                           absl::string_view type);

  GrpcMetrics(prometheus::Registry& registry, Side side);

  void Started(const CallLabels& call);
  void Handled(const CallLabels& call, grpc::StatusCode code,
               absl::Duration latency);

 private:
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_;
};

// Server side: one interceptor per call, counted when it is dispatched
// (started) and when its status is sent (handled). Every finished call is
// also logged at VLOG(1). `metrics` must outlive the server.
class GrpcServerMetricsInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit GrpcServerMetricsInterceptorFactory(GrpcMetrics* metrics)
      : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  GrpcMetrics* const metrics_;
};

// Client side: counted when the call's initial metadata is sent (started)
// and when its status arrives (handled). `on_handled`, if set, runs then
// too, on a gRPC thread (the sync service times its hooks with it).
// `metrics` must outlive the channel.
class GrpcClientMetricsInterceptorFactory
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  using OnHandled = std::function<void(absl::string_view full_method,
                                       grpc::StatusCode, absl::Duration)>;
  explicit GrpcClientMetricsInterceptorFactory(GrpcMetrics* metrics,
                                               OnHandled on_handled = nullptr)
      : metrics_(metrics), on_handled_(std::move(on_handled)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override;

 private:
  GrpcMetrics* const metrics_;
  const OnHandled on_handled_;
};

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_METRICS_GRPC_METRICS_H_
