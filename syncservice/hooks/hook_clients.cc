#include "syncservice/hooks/hook_clients.h"

#include <utility>
#include <vector>

#include "common/logging.h"
#include "common/metrics/metrics_registry.h"
#include "common/status_util.h"
#include "common/trace_context.h"
#include "grpcpp/grpcpp.h"

namespace jetstream::hooks {
namespace {

template <typename Request, typename Response>
using Starter =
    std::function<void(grpc::ClientContext*, const Request*, Response*,
                       std::function<void(grpc::Status)>)>;

// One attempt in flight; owns what gRPC needs until the callback ran.
template <typename Request, typename Response>
struct Attempt {
  grpc::ClientContext context;
  Response response;
};

// Calls `start` with a fresh context per attempt; `attempts` counts the
// first one. Only UNAVAILABLE is retried.
template <typename Request, typename Response>
void Call(std::string hook, Starter<Request, Response> start,
          std::shared_ptr<const Request> request, absl::Duration per_attempt,
          absl::Time cap, int attempts, std::string traceparent,
          HookCallback<Response> done) {
  auto attempt = std::make_shared<Attempt<Request, Response>>();
  const absl::Time deadline = std::min(absl::Now() + per_attempt, cap);
  attempt->context.set_deadline(absl::ToChronoTime(deadline));
  if (!traceparent.empty()) {
    // Each attempt is a span of the changeset's trace.
    attempt->context.AddMetadata("traceparent", ChildTraceparent(traceparent));
  }
  Response* response = &attempt->response;
  grpc::ClientContext* context = &attempt->context;
  start(context, request.get(), response,
        [hook = std::move(hook), start, request, per_attempt, cap, attempts,
         traceparent = std::move(traceparent), done = std::move(done),
         attempt](grpc::Status status) mutable {
          if (status.ok()) {
            done(std::move(attempt->response));
            return;
          }
          if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
              attempts > 1 && absl::Now() < cap) {
            VLOG(1) << "hook " << hook << " unavailable ("
                    << status.error_message() << "); retrying once";
            Call<Request, Response>(std::move(hook), std::move(start),
                                    std::move(request), per_attempt, cap,
                                    attempts - 1, std::move(traceparent),
                                    std::move(done));
            return;
          }
          LOG(WARNING) << "hook " << hook
                       << " failed: code=" << status.error_code() << " "
                       << status.error_message()
                       << " trace_id=" << TraceIdOf(traceparent);
          done(FromGrpcStatus(status));
        });
}

}  // namespace

HookCallMetrics::HookCallMetrics(prometheus::Registry& registry)
    : grpc_(registry, GrpcMetrics::kClient),
      seconds_(prometheus::BuildHistogram()
                   .Name("jetstream_sync_hook_call_seconds")
                   .Help("Latency of each call to a downstream hook, by the "
                         "hook's name in the hooks file and the status code.")
                   .Register(registry)) {}

void HookCallMetrics::Record(absl::string_view hook, grpc::StatusCode code,
                             absl::Duration latency) {
  seconds_
      .Add({{"hook", std::string(hook)},
            {"grpc_code", std::string(GrpcCodeName(code))}},
           LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

HookClients::HookClients(const HookConfig& config, HookCallMetrics* metrics) {
  std::vector<const HookSpec*> all;
  if (config.session_authorizer) all.push_back(&*config.session_authorizer);
  for (const HookSpec& s : config.scope_authorizers) all.push_back(&s);
  for (const HookSpec& s : config.validators) all.push_back(&s);
  for (const auto& [name, s] : config.procedures) all.push_back(&s);
  for (const HookSpec* spec : all) {
    std::vector<
        std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
        interceptors;
    if (metrics != nullptr) {
      interceptors.push_back(
          std::make_unique<GrpcClientMetricsInterceptorFactory>(
              &metrics->grpc(), [metrics, hook = spec->name](
                                    absl::string_view, grpc::StatusCode code,
                                    absl::Duration latency) {
                metrics->Record(hook, code, latency);
              }));
    }
    interceptors.push_back(
        std::make_unique<HookIdentityInterceptorFactory>(spec->name));
    grpc::ChannelArguments args;
    // Fail fast while the hook is down instead of waiting for the deadline.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    Stubs stubs;
    stubs.channel = grpc::experimental::CreateCustomChannelWithInterceptors(
        spec->endpoint, grpc::InsecureChannelCredentials(), args,
        std::move(interceptors));
    stubs.session = v1::SessionAuthorizer::NewStub(stubs.channel);
    stubs.scope = v1::ScopeAuthorizer::NewStub(stubs.channel);
    stubs.validator = v1::ChangesetValidator::NewStub(stubs.channel);
    stubs.procedure = v1::ProcedureHandler::NewStub(stubs.channel);
    stubs_.emplace(spec->name, std::move(stubs));
  }
}

HookClients::~HookClients() = default;

HookClients::Stubs& HookClients::StubsFor(const HookSpec& spec) {
  auto it = stubs_.find(spec.name);
  CHECK(it != stubs_.end()) << "hook " << spec.name << " not configured";
  return it->second;
}

void HookClients::AuthorizeSession(
    const HookSpec& spec, v1::AuthorizeSessionRequest request, absl::Time cap,
    HookCallback<v1::AuthorizeSessionResponse> done) {
  v1::SessionAuthorizer::Stub* stub = StubsFor(spec).session.get();
  Call<v1::AuthorizeSessionRequest, v1::AuthorizeSessionResponse>(
      spec.name,
      [stub](grpc::ClientContext* c, const v1::AuthorizeSessionRequest* req,
             v1::AuthorizeSessionResponse* resp,
             std::function<void(grpc::Status)> cb) {
        stub->async()->AuthorizeSession(c, req, resp, std::move(cb));
      },
      std::make_shared<const v1::AuthorizeSessionRequest>(std::move(request)),
      spec.deadline, cap, /*attempts=*/2, /*traceparent=*/"", std::move(done));
}

void HookClients::AuthorizeScope(
    const HookSpec& spec, v1::AuthorizeScopeRequest request, absl::Time cap,
    HookCallback<v1::AuthorizeScopeResponse> done) {
  v1::ScopeAuthorizer::Stub* stub = StubsFor(spec).scope.get();
  Call<v1::AuthorizeScopeRequest, v1::AuthorizeScopeResponse>(
      spec.name,
      [stub](grpc::ClientContext* c, const v1::AuthorizeScopeRequest* req,
             v1::AuthorizeScopeResponse* resp,
             std::function<void(grpc::Status)> cb) {
        stub->async()->AuthorizeScope(c, req, resp, std::move(cb));
      },
      std::make_shared<const v1::AuthorizeScopeRequest>(std::move(request)),
      spec.deadline, cap, /*attempts=*/2, /*traceparent=*/"", std::move(done));
}

void HookClients::ValidateChangeset(
    const HookSpec& spec, v1::ValidateChangesetRequest request, absl::Time cap,
    const std::string& traceparent,
    HookCallback<v1::ValidateChangesetResponse> done) {
  v1::ChangesetValidator::Stub* stub = StubsFor(spec).validator.get();
  Call<v1::ValidateChangesetRequest, v1::ValidateChangesetResponse>(
      spec.name,
      [stub](grpc::ClientContext* c, const v1::ValidateChangesetRequest* req,
             v1::ValidateChangesetResponse* resp,
             std::function<void(grpc::Status)> cb) {
        stub->async()->ValidateChangeset(c, req, resp, std::move(cb));
      },
      std::make_shared<const v1::ValidateChangesetRequest>(std::move(request)),
      spec.deadline, cap, /*attempts=*/2, traceparent, std::move(done));
}

void HookClients::RunProcedure(const HookSpec& spec,
                               v1::RunProcedureRequest request, absl::Time cap,
                               const std::string& traceparent,
                               HookCallback<v1::RunProcedureResponse> done) {
  v1::ProcedureHandler::Stub* stub = StubsFor(spec).procedure.get();
  Call<v1::RunProcedureRequest, v1::RunProcedureResponse>(
      spec.name,
      [stub](grpc::ClientContext* c, const v1::RunProcedureRequest* req,
             v1::RunProcedureResponse* resp,
             std::function<void(grpc::Status)> cb) {
        stub->async()->RunProcedure(c, req, resp, std::move(cb));
      },
      std::make_shared<const v1::RunProcedureRequest>(std::move(request)),
      spec.deadline, cap, /*attempts=*/1, traceparent, std::move(done));
}

}  // namespace jetstream::hooks
