// File: gateway/sync/sync_client.h
//
// The gateway's view of the sync service: fetch scopes, apply changesets,
// watch committed changesets. The production implementation multiplexes all
// of it over one gRPC stream (grpc_sync_client.h).

#ifndef JETSTREAM_GATEWAY_SYNC_SYNC_CLIENT_H_
#define JETSTREAM_GATEWAY_SYNC_SYNC_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/sync/v1/sync_service.pb.h"

namespace jetstream::gateway {

// A committed changeset as the fan-out (hub_fanout.h) hands it to each of
// the gateway's hubs: one decoded copy shared by all of them, the body of
// its client message made once for all of them, and when the gateway
// received it (a hub's queueing delay is measured from there).
struct FannedOutCommit {
  std::shared_ptr<const sync::v1::Commit> commit;
  // What `encode` of the fan-out made of it; null if it made nothing.
  std::shared_ptr<const std::string> encoded;
  absl::Time received;
};

class SyncClient {
 public:
  // Events of the sync service. Called on the gateway's hub executor, in the
  // order the service sent them (per scope: commit order).
  class Listener {
   public:
    virtual ~Listener() = default;
    // A committed changeset of a watched scope. The result of the apply
    // that made it, if that apply came through this client and was still
    // waiting, has been delivered before (its `done` ran first).
    virtual void OnCommit(const sync::v1::Commit& commit) = 0;
    // OnCommit as a hub of several receives it (FannedOutCommit). Defaults
    // to OnCommit(*commit.commit).
    virtual void OnFannedOutCommit(const FannedOutCommit& commit) {
      OnCommit(*commit.commit);
    }
    virtual void OnResync(const sync::v1::ScopeSnapshot& snapshot) = 0;
    // A new stream to the service is established (the service answered):
    // watched scopes must be re-watched.
    virtual void OnStreamStarted() = 0;
    // The service stopped holding `scope` (another replica took it over, or
    // its storage failed): nothing more comes for it until it is watched
    // again, which routes anew and brings the current state as a Resync.
    virtual void OnScopeLost(const std::string& scope) = 0;
    // The stream broke: pending requests have failed; the client reconnects
    // by itself and calls OnStreamStarted() again.
    virtual void OnStreamEnded() {}
    // The service's view of the live replicas (the first event of every
    // stream, and every change). Only the router needs it.
    virtual void OnMembership(const sync::v1::Membership& membership) {
      (void)membership;
    }
    // The service no longer serves `scope` and says where it went (or
    // not): ScopeLost in full. Defaults to OnScopeLost(scope).
    virtual void OnScopeLostEvent(const sync::v1::ScopeLost& lost) {
      OnScopeLost(lost.scope());
    }
  };

  // The service's FetchResult (a snapshot, or an error for the client such
  // as "No such scope"), or an error of the request itself: kUnavailable
  // (no stream to the service: nothing was sent), kUnknown (the stream broke
  // before the answer came) or kDeadlineExceeded (no answer in time). After
  // kUnknown or kDeadlineExceeded an apply may have taken effect: if it
  // did, its commit still arrives through Listener::OnCommit, with its
  // origin, after `done` (the listener then sends it to the sender too,
  // which was told the apply failed). A result (fetch
  // or apply) from one replica may be a Redirect instead; RoutingSyncClient
  // resolves those, so its own callers never see one.
  using FetchCallback =
      std::function<void(absl::StatusOr<sync::v1::FetchResult>)>;
  using ApplyCallback =
      std::function<void(absl::StatusOr<sync::v1::ApplyResult>)>;
  // The service's decision on a new session, or kUnavailable /
  // kDeadlineExceeded.
  using AuthorizeCallback =
      std::function<void(absl::StatusOr<sync::v1::SessionAuthorization>)>;

  virtual ~SyncClient() = default;

  // Sets who receives events. Call once, before anything else.
  virtual void SetListener(Listener* listener) = 0;

  // SyncClient::Fetch() / SyncClient::Apply()
  //
  // Call on the hub executor. `done` is called exactly once, on the hub
  // executor, never inline. A successful fetch also makes the stream watch
  // the scope: every later commit arrives through Listener::OnCommit.
  virtual void Fetch(sync::v1::FetchRequest request, FetchCallback done) = 0;
  virtual void Apply(sync::v1::ApplyRequest request, ApplyCallback done) = 0;
  // SyncClient::AuthorizeSession()
  //
  // Asks whether a new client session may be created (the sync service's
  // session authorizer hook). Same callback contract as Fetch().
  virtual void AuthorizeSession(sync::v1::AuthorizeSessionRequest request,
                                AuthorizeCallback done) = 0;

  // Re-watch after OnStreamStarted; stop watching. Call on the hub executor.
  virtual void Watch(sync::v1::WatchRequest request) = 0;
  virtual void Unwatch(const std::string& scope) = 0;

  // True while a stream is believed to be up.
  virtual bool connected() const = 0;

  // Stops for good: no more reconnects; pending requests fail. Any thread.
  virtual void Shutdown() {}
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SYNC_SYNC_CLIENT_H_
