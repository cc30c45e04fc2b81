// File: gateway/routing_sync_client.h
//
// A SyncClient over several sync service replicas: every scope is routed to
// one replica, chosen by rendezvous hashing of the scope's name over the
// replicas' names (docs: README "Several sync service replicas"). Every
// gateway given the same replica names routes a scope to the same replica,
// whatever the order of the names, so one replica owns each scope and its
// history has one writer; adding or removing a replica moves only the
// scopes that hash to it.
//
// Failover: a scope goes to the highest-ranked replica whose stream is
// established. When a replica's stream breaks, or the replica reports that
// it lost a scope (another replica committed the scope's next version
// first), the scope's watchers hear OnScopeLost() and watch it again, which
// routes anew; the new owner loads the scope from the shared store and
// answers with a Resync. When a replica comes back, its stream restart
// re-watches every scope, and those that rank it first move back (a scope
// whose first fetch was in flight then moves when that fetch completes).
//
// Events of a scope are passed on only from the replica the scope is
// currently placed on; stale events from a previous placement are dropped.
//
// Thread-safety: like every SyncClient, public methods and listener calls
// run on the hub executor only.

#ifndef JETSTREAM_GATEWAY_ROUTING_SYNC_CLIENT_H_
#define JETSTREAM_GATEWAY_ROUTING_SYNC_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "gateway/sync_client.h"

namespace jetstream::gateway {

// The rendezvous weight of `key` on the replica named `replica`: a stable
// 64-bit hash (FNV-1a, then a 64-bit finaliser), the same in every process
// and on every platform.
uint64_t RendezvousWeight(absl::string_view replica, absl::string_view key);

class RoutingSyncClient : public SyncClient {
 public:
  struct Replica {
    // How every gateway names this replica (its address as configured).
    std::string name;
    std::unique_ptr<SyncClient> client;
  };

  // `replicas` must not be empty and names must be distinct. Takes
  // ownership; sets itself as each client's listener.
  explicit RoutingSyncClient(std::vector<Replica> replicas);
  ~RoutingSyncClient() override;

  // The replica `key` ranks first among those connected (the first overall
  // if none is connected). For tests and logs.
  size_t Route(absl::string_view key) const;
  // The replica the scope is placed on, or -1.
  int PlacementForTest(const std::string& scope) const;

  // SyncClient
  void SetListener(Listener* listener) override { listener_ = listener; }
  void Fetch(sync::v1::FetchRequest request, FetchCallback done) override;
  void Apply(sync::v1::ApplyRequest request, ApplyCallback done) override;
  void AuthorizeSession(sync::v1::AuthorizeSessionRequest request,
                        AuthorizeCallback done) override;
  void Watch(sync::v1::WatchRequest request) override;
  void Unwatch(const std::string& scope) override;
  // True while at least one replica's stream is established.
  bool connected() const override;

 private:
  class ReplicaListener;
  struct Placement {
    size_t replica = 0;
    // The replica's stream generation when the scope was watched there.
    uint64_t generation = 0;
  };

  // Places `scope` on `replica`, unwatching it where it was before.
  void Place(const std::string& scope, size_t replica);
  // True if `scope` is placed on `replica` (its events count).
  bool PlacedOn(const std::string& scope, size_t replica) const;
  // Where `scope` is placed, or where it would be routed now.
  size_t PlacementOrRoute(const std::string& scope) const;

  // Listener calls from replica `i`.
  void OnCommit(size_t i, const sync::v1::Commit& commit);
  void OnResync(size_t i, const sync::v1::ScopeSnapshot& snapshot);
  void OnStreamStarted(size_t i);
  void OnScopeLost(size_t i, const std::string& scope);
  void OnStreamEnded(size_t i);

  std::vector<Replica> replicas_;
  std::vector<std::unique_ptr<ReplicaListener>> listeners_;
  // Per replica: stream starts seen so far.
  std::vector<uint64_t> generations_;
  Listener* listener_ = nullptr;
  // Scopes fetched or watched, and where.
  absl::flat_hash_map<std::string, Placement> placements_;
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_ROUTING_SYNC_CLIENT_H_
