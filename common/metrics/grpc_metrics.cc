// File: common/metrics/grpc_metrics.cc

#include "common/metrics/grpc_metrics.h"

#include <grpcpp/server_context.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/logging.h"
#include "common/metrics/metrics_registry.h"

namespace jetstream {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::InterceptorBatchMethods;

template <typename Type>
absl::string_view TypeName(Type type) {
  switch (type) {
    case Type::UNARY:
      return "unary";
    case Type::CLIENT_STREAMING:
      return "client_stream";
    case Type::SERVER_STREAMING:
      return "server_stream";
    case Type::BIDI_STREAMING:
      return "bidi_stream";
    default:
      return "unknown";
  }
}

class ServerInterceptor : public grpc::experimental::Interceptor {
 public:
  ServerInterceptor(GrpcMetrics* metrics,
                    grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics),
        full_method_(info->method()),
        labels_(GrpcMetrics::Labels(full_method_, TypeName(info->type()))),
        context_(info->server_context()) {}

  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      start_ = absl::Now();
      metrics_->Started(labels_);
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const absl::Duration latency = absl::Now() - start_;
      metrics_->Handled(labels_, status.error_code(), latency);
      VLOG(1) << "rpc method=" << full_method_ << " peer=" << context_->peer()
              << " code=" << GrpcCodeName(status.error_code())
              << " latency=" << absl::FormatDuration(latency);
    }
    methods->Proceed();
  }

 private:
  GrpcMetrics* const metrics_;
  const std::string full_method_;
  const GrpcMetrics::CallLabels labels_;
  grpc::ServerContextBase* const context_;
  absl::Time start_ = absl::Now();
};

class ClientInterceptor : public grpc::experimental::Interceptor {
 public:
  ClientInterceptor(GrpcMetrics* metrics,
                    const GrpcClientMetricsInterceptorFactory::OnHandled* on,
                    grpc::experimental::ClientRpcInfo* info)
      : metrics_(metrics),
        on_handled_(on),
        full_method_(info->method()),
        labels_(GrpcMetrics::Labels(full_method_, TypeName(info->type()))) {}

  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      start_ = absl::Now();
      metrics_->Started(labels_);
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_STATUS)) {
      const grpc::StatusCode code = methods->GetRecvStatus()->error_code();
      const absl::Duration latency = absl::Now() - start_;
      metrics_->Handled(labels_, code, latency);
      if (*on_handled_) (*on_handled_)(full_method_, code, latency);
    }
    methods->Proceed();
  }

 private:
  GrpcMetrics* const metrics_;
  const GrpcClientMetricsInterceptorFactory::OnHandled* const on_handled_;
  const std::string full_method_;
  const GrpcMetrics::CallLabels labels_;
  absl::Time start_ = absl::Now();
};

}  // namespace

absl::string_view GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "Canceled";
    case grpc::StatusCode::UNKNOWN:
      return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FailedPrecondition";
    case grpc::StatusCode::ABORTED:
      return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "Unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "Internal";
    case grpc::StatusCode::UNAVAILABLE:
      return "Unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

GrpcMetrics::CallLabels GrpcMetrics::Labels(absl::string_view full_method,
                                            absl::string_view type) {
  absl::string_view path = absl::StripPrefix(full_method, "/");
  const size_t slash = path.rfind('/');
  CallLabels labels;
  if (slash == absl::string_view::npos) {
    labels.service = "unknown";
    labels.method = std::string(path);
  } else {
    labels.service = std::string(path.substr(0, slash));
    labels.method = std::string(path.substr(slash + 1));
  }
  labels.type = std::string(type);
  return labels;
}

GrpcMetrics::GrpcMetrics(prometheus::Registry& registry, Side side)
    : started_(prometheus::BuildCounter()
                   .Name(side == kServer ? "grpc_server_started_total"
                                         : "grpc_client_started_total")
                   .Help(side == kServer ? "RPCs started on the server."
                                         : "RPCs started by the client.")
                   .Register(registry)),
      handled_(prometheus::BuildCounter()
                   .Name(side == kServer ? "grpc_server_handled_total"
                                         : "grpc_client_handled_total")
                   .Help(side == kServer
                             ? "RPCs completed on the server, by status code."
                             : "RPCs completed by the client, by status code.")
                   .Register(registry)),
      handling_(prometheus::BuildHistogram()
                    .Name(side == kServer ? "grpc_server_handling_seconds"
                                          : "grpc_client_handling_seconds")
                    .Help(side == kServer
                              ? "Time from an RPC's start to its status "
                                "sent, in seconds."
                              : "Time from an RPC's start to its status "
                                "received, in seconds.")
                    .Register(registry)) {}

void GrpcMetrics::Started(const CallLabels& call) {
  started_
      .Add({{"grpc_service", call.service},
            {"grpc_method", call.method},
            {"grpc_type", call.type}})
      .Increment();
}

void GrpcMetrics::Handled(const CallLabels& call, grpc::StatusCode code,
                          absl::Duration latency) {
  handled_
      .Add({{"grpc_service", call.service},
            {"grpc_method", call.method},
            {"grpc_type", call.type},
            {"grpc_code", std::string(GrpcCodeName(code))}})
      .Increment();
  handling_
      .Add({{"grpc_service", call.service},
            {"grpc_method", call.method},
            {"grpc_type", call.type}},
           LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

grpc::experimental::Interceptor*
GrpcServerMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new ServerInterceptor(metrics_, info);
}

grpc::experimental::Interceptor*
GrpcClientMetricsInterceptorFactory::CreateClientInterceptor(
    grpc::experimental::ClientRpcInfo* info) {
  return new ClientInterceptor(metrics_, &on_handled_, info);
}

}  // namespace jetstream
