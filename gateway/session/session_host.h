// File: gateway/session/session_host.h
//
// What a Session needs of the hub that owns it: the sync service (fetch and
// apply, with the hub's bookkeeping), subscription to a scope's commits,
// flush scheduling, the clock, and its own end. SessionManager implements
// it; a Session sees nothing else of the manager.
//
// Thread-safety: hub executor only, like Session.

#ifndef JETSTREAM_GATEWAY_SESSION_SESSION_HOST_H_
#define JETSTREAM_GATEWAY_SESSION_SESSION_HOST_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "gateway/core/gateway_metrics.h"
#include "gateway/session/connection.h"
#include "gateway/sync/sync_client.h"
#include "proto/sync/v1/sync_service.pb.h"

namespace jetstream::gateway {

class Session;

class SessionHost {
 public:
  virtual ~SessionHost() = default;

  // The hub's clock (rate limits, expiry).
  virtual absl::Time Now() const = 0;
  // Fetches `scope` for `session`; `done` follows SyncClient's contract.
  virtual void Fetch(Session& session, std::string scope,
                     std::string params_json,
                     SyncClient::FetchCallback done) = 0;
  // Applies a changeset of `session`; `done` follows SyncClient's contract.
  virtual void Apply(Session& session, sync::v1::ApplyRequest request,
                     SyncClient::ApplyCallback done) = 0;
  // Starts delivering the scope's commits to the session at `scope_index`;
  // the session holds the scope's state at `snapshot` (its fetch result).
  virtual void Subscribe(Session& session, const std::string& scope,
                         uint64_t scope_index,
                         const sync::v1::ScopeSnapshot& snapshot) = 0;
  // A message of the session was refused by its rate limits.
  virtual void CountRateLimited() = 0;
  // The session ended: forget it, its subscriptions and its mapping from
  // `connection`, its last one if any.
  virtual void Forget(Session& session, const Connection* connection) = 0;
  // Flushes `session` (Session::Flush) in a later hub turn.
  virtual void ScheduleFlush(std::shared_ptr<Session> session) = 0;
  // Where the session counts what it sends; null: nowhere.
  virtual GatewayMetrics* metrics() { return nullptr; }
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SESSION_SESSION_HOST_H_
