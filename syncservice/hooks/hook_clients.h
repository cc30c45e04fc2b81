// File: syncservice/hooks/hook_clients.h
//
// The sync service's gRPC clients of the downstream hooks
// (proto/hooks/v1/hooks.proto): one channel per configured hook, with the
// standard grpc_client_* metrics, jetstream_sync_hook_call_seconds{hook,
// grpc_code} (HookCallMetrics) and the hook identity interceptor
// (syncservice/rpc/interceptors.h), a
// deadline on every call and, for idempotent calls (authorization,
// validation), one retry when the first attempt fails with UNAVAILABLE.
// Procedures are never retried: they may have side effects.
//
// Example:
//   HookCallMetrics metrics(registry.registry());
//   HookClients clients(config, &metrics);
//   clients.ValidateChangeset(spec, std::move(request), absl::InfiniteFuture(),
//       [](absl::StatusOr<hooks::v1::ValidateChangesetResponse> r) { ... });
//
// Callback contract: `done` is called exactly once, on a gRPC thread (never
// inline), with the response or the call's final status (kDeadlineExceeded,
// kUnavailable, ...). It must not block.
//
// Thread-safety: all methods are thread-safe. Lifetime: must outlive every
// call it started (destroy it after the server and the scopes are gone).

#ifndef JETSTREAM_SYNCSERVICE_HOOKS_HOOK_CLIENTS_H_
#define JETSTREAM_SYNCSERVICE_HOOKS_HOOK_CLIENTS_H_

#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/metrics/grpc_metrics.h"
#include "proto/hooks/v1/hooks.grpc.pb.h"
#include "syncservice/hooks/hook_config.h"
#include "syncservice/rpc/interceptors.h"

namespace jetstream::hooks {

template <typename Response>
using HookCallback = std::function<void(absl::StatusOr<Response>)>;

// HookCallMetrics
//
// The metrics of calls out to hooks, in one registry: grpc_client_* and
// jetstream_sync_hook_call_seconds{hook,grpc_code}. Thread-safe.
class HookCallMetrics {
 public:
  explicit HookCallMetrics(prometheus::Registry& registry);
  GrpcMetrics& grpc() { return grpc_; }
  // One finished attempt of a call to `hook`.
  void Record(absl::string_view hook, grpc::StatusCode code,
              absl::Duration latency);

 private:
  GrpcMetrics grpc_;
  prometheus::Family<prometheus::Histogram>& seconds_;
};

class HookClients {
 public:
  // Creates a channel for every hook and procedure of `config`. Channels
  // connect lazily: an unreachable endpoint fails calls, not startup.
  // `metrics` (null: none recorded) must outlive this object.
  HookClients(const HookConfig& config, HookCallMetrics* metrics);
  ~HookClients();

  HookClients(const HookClients&) = delete;
  HookClients& operator=(const HookClients&) = delete;

  // Each call's deadline is now + spec.deadline, or `cap` if earlier (the
  // deadline of the call that caused it, when there is one).
  void AuthorizeSession(const HookSpec& spec,
                        v1::AuthorizeSessionRequest request, absl::Time cap,
                        HookCallback<v1::AuthorizeSessionResponse> done);
  void AuthorizeScope(const HookSpec& spec, v1::AuthorizeScopeRequest request,
                      absl::Time cap,
                      HookCallback<v1::AuthorizeScopeResponse> done);
  // `traceparent` (W3C, may be empty): every attempt carries a child of
  // it as `traceparent` metadata.
  void ValidateChangeset(const HookSpec& spec,
                         v1::ValidateChangesetRequest request, absl::Time cap,
                         const std::string& traceparent,
                         HookCallback<v1::ValidateChangesetResponse> done);
  void RunProcedure(const HookSpec& spec, v1::RunProcedureRequest request,
                    absl::Time cap, const std::string& traceparent,
                    HookCallback<v1::RunProcedureResponse> done);

 private:
  struct Stubs {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::SessionAuthorizer::Stub> session;
    std::unique_ptr<v1::ScopeAuthorizer::Stub> scope;
    std::unique_ptr<v1::ChangesetValidator::Stub> validator;
    std::unique_ptr<v1::ProcedureHandler::Stub> procedure;
  };
  Stubs& StubsFor(const HookSpec& spec);

  // By hook or procedure name; built in the constructor, never changed.
  std::map<std::string, Stubs> stubs_;
};

}  // namespace jetstream::hooks

#endif  // JETSTREAM_SYNCSERVICE_HOOKS_HOOK_CLIENTS_H_
