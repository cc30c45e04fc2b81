// File: syncservice/sync_service_impl.h
//
// The SyncService gRPC service (proto/sync/v1/sync_service.proto) over a
// ScopeRegistry: the gateways' Connect streams (connect_reactor.h) and the
// backends' unary calls. Here protos meet scopes, and absl::Status becomes
// grpc::Status.
//
// Every Connect stream starts with a Membership event (this replica and the
// live members it knows) and gets another whenever the membership changes
// (OnMembersChanged), so a gateway given one address learns every replica.
//
// Backend calls (GetScope, ApplyChangeset) for a scope that another replica
// holds fail with FAILED_PRECONDITION, naming that replica, with its
// address in the trailing metadata `jetstream-redirect-address`: call it
// there. Nothing was read or applied.
//
// Callers' credentials are not checked here. With TLS, SyncServer::Start
// (sync_server.cc) installs a CallAuthenticator (interceptors.h) as the
// port's AuthMetadataProcessor, which gRPC runs for every call before it is
// dispatched to any method of this class: a refused call never reaches
// one. mTLS is enforced earlier still, by the TLS handshake. A plaintext
// port has no such check (tokens require TLS).
//
// Example:
//   SyncServiceImpl service(registry.get(), options);
//   grpc::ServerBuilder builder;
//   builder.RegisterService(&service);
//
// Thread-safety: gRPC calls the service from its own threads; all methods
// are thread-safe. Lifetime: `registry` (and the options' pointers) must
// outlive the service, and the service the grpc::Server (Shutdown() and
// destroy the server first).

#ifndef JETSTREAM_SYNCSERVICE_SYNC_SERVICE_IMPL_H_
#define JETSTREAM_SYNCSERVICE_SYNC_SERVICE_IMPL_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/sync/v1/sync_service.grpc.pb.h"
#include "syncservice/cluster/cluster.h"
#include "syncservice/connect_reactor.h"
#include "syncservice/core/access_policy.h"
#include "syncservice/scope_registry.h"

namespace jetstream {

inline constexpr char kRedirectAddressMetadata[] = "jetstream-redirect-address";

struct SyncServiceOptions {
  // A soft bound on one coalesced ServiceFrame: events are added until the
  // estimate passes it (one oversized event still goes alone). Gateways
  // must accept messages of at least this size plus the largest snapshot
  // (common/grpc_link.h).
  size_t max_frame_bytes = 1 << 20;
  // Decides session creation and scope access (AuthorizeSessionRequest,
  // FetchRequest). Null: every session accepted, every scope read-write.
  // Not owned; must outlive the service.
  AccessPolicy* access = nullptr;
  // True when the scope hosts' validator runs procedures
  // (docs/protocol.md#procedures); false refuses every changeset naming
  // one as an unknown procedure.
  bool procedures_enabled = false;
  // This replica's place among its peers, for the Membership events. Null:
  // standalone, named by `self` alone. Not owned; must outlive the service.
  Cluster* cluster = nullptr;
  Member self;
};

class SyncServiceImpl final : public sync::v1::SyncService::CallbackService {
 public:
  explicit SyncServiceImpl(ScopeRegistry* registry,
                           SyncServiceOptions options = {});
  ~SyncServiceImpl() override;

  // SyncService::CallbackService
  grpc::ServerBidiReactor<sync::v1::GatewayFrame, sync::v1::ServiceFrame>*
  Connect(grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* GetScope(
      grpc::CallbackServerContext* context,
      const sync::v1::GetScopeRequest* request,
      sync::v1::GetScopeResponse* response) override;
  grpc::ServerUnaryReactor* ListScopes(
      grpc::CallbackServerContext* context,
      const sync::v1::ListScopesRequest* request,
      sync::v1::ListScopesResponse* response) override;
  grpc::ServerUnaryReactor* ApplyChangeset(
      grpc::CallbackServerContext* context,
      const sync::v1::ApplyChangesetRequest* request,
      sync::v1::ApplyChangesetResponse* response) override;

  // Sends the new view to every open stream. Any thread.
  void OnMembersChanged(const MemberView& view);

  // The number of Connect streams whose reactor is alive.
  size_t open_streams() const;
  // Waits until no Connect stream is alive (every reactor's OnDone ran and
  // it unwatched its scopes). Returns false on timeout. For tests.
  bool WaitForNoStreamsForTest(absl::Duration timeout) const;

 private:
  void StreamOpened(const std::shared_ptr<Outbox>& outbox);
  void StreamClosed(const Outbox* outbox);
  sync::v1::ServiceEvent MembershipEvent(const MemberView& view) const;

  ScopeRegistry* const registry_;
  const SyncServiceOptions options_;
  ConnectDeps deps_;

  mutable absl::Mutex mu_;
  // Open streams, to send them membership changes.
  std::vector<std::shared_ptr<Outbox>> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_SYNC_SERVICE_IMPL_H_
