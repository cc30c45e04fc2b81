// File: syncservice/connect_reactor.h
//
// One gateway's Connect stream on the sync service (proto/sync/v1/
// sync_service.proto): requests are read one frame at a time and
// dispatched in order; answers and the commits of watched scopes leave
// through the stream's Outbox (stream_outbox.h).
//
// A request names a scope; the scope is found through the registry
// (ScopeRegistry::Acquire), which may load it on a worker thread first:
// nothing blocks the reading thread, and requests for one scope keep their
// order. A scope served by another replica is answered with a Redirect
// (FetchResult.redirect, ApplyResult.redirect, ScopeLost.moved_to) and
// nothing of the request is applied. Once the stream was redirected for a
// scope, every later request for it is redirected the same way until the
// gateway sends one marked Routing.rerouted: so a gateway that resends
// its redirected requests in order cannot see a later one overtake them.
//
// Authorization: AuthorizeSessionRequest is answered from the AccessPolicy;
// a FetchRequest asks it for the scope first (a denial is a FetchResult
// error; read-only access sets FetchResult.read_only and the stream then
// refuses that session's changesets for the scope).

#ifndef JETSTREAM_SYNCSERVICE_CONNECT_REACTOR_H_
#define JETSTREAM_SYNCSERVICE_CONNECT_REACTOR_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "syncservice/core/access_policy.h"
#include "syncservice/scope_registry.h"
#include "syncservice/stream_outbox.h"

namespace jetstream {

// What a Connect stream needs from its service. Everything must outlive
// every stream (the service outlives the gRPC server).
struct ConnectDeps {
  ScopeRegistry* registry = nullptr;
  // Null: every session accepted, every scope read-write.
  AccessPolicy* access = nullptr;
  // False refuses every changeset naming a procedure.
  bool procedures_enabled = false;
  size_t max_frame_bytes = 1 << 20;
  // The stream opened (the service sends it the Membership now and on
  // every change) or is gone (before its reactor is deleted).
  std::function<void(const std::shared_ptr<Outbox>&)> opened;
  std::function<void(const Outbox*)> closed;
};

// A new reactor for one Connect call; it deletes itself when the call is
// done.
ConnectReactorBase* NewConnectReactor(const ConnectDeps* deps,
                                      std::string peer);

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_CONNECT_REACTOR_H_
