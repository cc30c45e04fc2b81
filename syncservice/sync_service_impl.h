// File: syncservice/sync_service_impl.h
//
// The SyncService gRPC service (proto/sync/v1/sync_service.proto) over a
// ScopeRegistry: the gateway's Connect stream and the backends' unary calls.
// This is the only place where protos meet the scopes and where absl::Status
// becomes grpc::Status.
//
// Connect: one reactor per gateway stream. Requests are dispatched in frame
// order as they are read (the next read starts when a frame is done, which
// is the stream's backpressure). Results and the commits of watched scopes
// go to one outgoing queue; exactly one write is in flight, and everything
// queued while it was in flight is coalesced into the next ServiceFrame.
// Per scope the stream's events are in commit order: a FetchResult (or
// Resync) at version v is queued under the scope's lock, so it precedes
// commit v+1; an ApplyResult precedes the Commit of its own changeset.
// When the gateway half-closes, queued events are flushed and the stream
// finishes with OK; on cancellation or a failed write it finishes at once.
//
// Authorization: an AuthorizeSessionRequest is answered with a
// SessionAuthorization from the AccessPolicy; a FetchRequest asks the policy
// for the scope first (a denial is a FetchResult error, read-only access sets
// FetchResult.read_only and the stream then refuses that session's
// changesets for the scope). Every method first checks the caller's
// credentials (CallAuthenticator) and fails with UNAUTHENTICATED.
//
// Example:
//   SyncServiceImpl service(registry.get());
//   grpc::ServerBuilder builder;
//   builder.RegisterService(&service);
//
// Thread-safety: gRPC calls the service from its own threads; the service
// keeps no state of its own beyond the stream count. Lifetime: `registry`
// must outlive the service, and the service must outlive the grpc::Server
// (Shutdown() and destroy the server first).

#ifndef JETSTREAM_SYNCSERVICE_SYNC_SERVICE_IMPL_H_
#define JETSTREAM_SYNCSERVICE_SYNC_SERVICE_IMPL_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/sync/v1/sync_service.grpc.pb.h"
#include "syncservice/access_policy.h"
#include "syncservice/interceptors.h"
#include "syncservice/scope_registry.h"

namespace jetstream {

struct SyncServiceOptions {
  // A soft bound on one coalesced ServiceFrame: events are added until the
  // estimate passes it (one oversized event still goes alone). Gateways
  // must accept messages of at least this size plus the largest snapshot.
  size_t max_frame_bytes = 1 << 20;
  // Decides session creation and scope access (AuthorizeSessionRequest,
  // FetchRequest). Null: every session accepted, every scope read-write.
  // Not owned; must outlive the service.
  AccessPolicy* access = nullptr;
  // True when the scope hosts' validator runs procedures (docs/protocol.md#procedures); false
  // refuses every changeset naming one as an unknown procedure.
  bool procedures_enabled = false;
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

  // The number of Connect streams whose reactor is alive.
  size_t open_streams() const;
  // Waits until no Connect stream is alive (every reactor's OnDone ran and
  // it unwatched its scopes). Returns false on timeout. For tests.
  bool WaitForNoStreamsForTest(absl::Duration timeout) const;

 private:
  class ConnectReactor;

  void StreamOpened();
  void StreamClosed();

  ScopeRegistry* const registry_;
  const SyncServiceOptions options_;

  mutable absl::Mutex mu_;
  size_t open_streams_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_SYNC_SERVICE_IMPL_H_
