// File: gateway/sync/routing_sync_client.h
//
// A SyncClient over the sync service's replicas, found from a seed.
//
// Discovery. The gateway is given seeds: one address or DNS name (e.g. a
// Kubernetes headless Service), or a comma list. Every replica's stream
// starts with a Membership event listing the live replicas (id and
// address), and sends another whenever they change; the newest view wins.
// The router keeps one client per member address, so scaling needs no
// gateway restart and no list kept by hand. A replica without peers
// (SQLite or memory store) reports itself standalone: then each seed is a
// member of its own, named by the seed as written.
//
// Routing. A scope goes to the first member in its rendezvous ranking
// (common/rendezvous.h, over member ids, the same ranking the replicas
// use) whose stream is up; a request to any other member is marked
// Routing.take_over. The replica holding the scope's lease serves it; any
// other redirects (a Redirect in the answer, or ScopeLost.moved_to).
//
// Moves. When a scope must move (a redirect, ScopeLost, its replica's
// stream ended, its replica left the members), the router holds the
// scope's new requests until every request already sent for it has been
// answered, then places the scope anew, sends the held and redirected
// requests there in their original order (marked Routing.rerouted), and
// tells the listener OnScopeLost() so its watch moves too. So a scope's
// requests from this gateway are applied in the order they were made, and
// a scope's events are passed on only from the replica it is placed on. A
// fetch that failed because its replica's stream ended is sent again; an
// apply is not (its outcome is unknown: the service replays it).
//
// A scope lost with nowhere to go is watched again after a backoff (50 ms,
// doubling to 2 s), so a replica that cannot serve it is not hammered.
//
// Thread-safety: like every SyncClient, public methods and listener calls
// run on the hub executor only; so do the `schedule` callbacks.

#ifndef JETSTREAM_GATEWAY_SYNC_ROUTING_SYNC_CLIENT_H_
#define JETSTREAM_GATEWAY_SYNC_ROUTING_SYNC_CLIENT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/sync/sync_client.h"

namespace jetstream::gateway {

class RoutingSyncClient : public SyncClient {
 public:
  // Makes the client of the replica at `address` (its listener is set by
  // the router); called on the hub executor.
  using ClientFactory =
      std::function<std::unique_ptr<SyncClient>(const std::string& address)>;
  // Runs `task` on the hub executor after `delay`.
  using Scheduler =
      std::function<void(absl::Duration delay, std::function<void()> task)>;

  // `seeds` must not be empty. Clients for the seeds are made at once.
  RoutingSyncClient(std::vector<std::string> seeds, ClientFactory make_client,
                    Scheduler schedule);
  ~RoutingSyncClient() override;

  // The member (id) a new request for `scope` would go to now, or "" if
  // none is known. For tests and logs.
  std::string RouteForTest(const std::string& scope) const;
  // The id of the member the scope is placed on, or "".
  std::string PlacementForTest(const std::string& scope) const;
  // The member ids known live, sorted.
  std::vector<std::string> MembersForTest() const;

  // SyncClient
  void SetListener(Listener* listener) override { listener_ = listener; }
  void Fetch(sync::v1::FetchRequest request, FetchCallback done) override;
  void Apply(sync::v1::ApplyRequest request, ApplyCallback done) override;
  void AuthorizeSession(sync::v1::AuthorizeSessionRequest request,
                        AuthorizeCallback done) override;
  void Watch(sync::v1::WatchRequest request) override;
  void Unwatch(const std::string& scope) override;
  // True while a member's (or, before any is known, a seed's) stream is up.
  bool connected() const override;
  // Shuts every replica's client down.
  void Shutdown() override;

  // Live members known, and how many of them have their stream up. Any
  // thread (updated on the hub).
  int live_members() const { return live_members_.load(); }
  int links_up() const { return links_up_.load(); }
  // Streams opened again to a replica that had one before. Any thread.
  uint64_t reconnects() const { return reconnects_.load(); }

 private:
  class ReplicaListener;
  // One connection: to a seed as written, or to a member's address.
  struct Replica {
    std::string address;
    bool seed = false;
    // The member it is (empty: not known as one).
    std::string member_id;
    bool live = false;  // in the current view (or a standalone seed)
    bool standalone = false;
    uint64_t generation = 0;  // stream starts seen
    std::unique_ptr<SyncClient> client;
    std::unique_ptr<ReplicaListener> listener;
  };
  // A request waiting for its scope to move, in the order it was made.
  struct Held {
    uint64_t seq = 0;
    int hops = 0;  // redirects followed so far
    std::variant<std::pair<sync::v1::FetchRequest, FetchCallback>,
                 std::pair<sync::v1::ApplyRequest, ApplyCallback>>
        request;
  };
  struct ScopeRoute {
    Replica* replica = nullptr;  // placement
    uint64_t generation = 0;     // of the replica's stream when placed
    bool watched = false;        // a Watch went to the placement
    int inflight = 0;            // fetches and applies sent, not answered
    bool moving = false;
    // Where it moves: a member (id and/or address), or anywhere.
    std::string move_id;
    std::string move_address;
    // The placement came from a redirect (not from the ranking): requests
    // there never ask to take the lease over.
    bool placed_by_redirect = false;
    // Requests sent now are resends after a redirect.
    bool rerouted = false;
    // The replica a redirect pointed to is down: the placement may take
    // the lease over.
    bool holder_unreachable = false;
    std::deque<Held> held;
    uint64_t next_seq = 1;
    int lost_without_target = 0;  // for the rewatch backoff
    bool rewatch_scheduled = false;
    // Redirected requests wait out a RedirectBackoff before the move ends.
    bool resend_scheduled = false;
  };

  Replica& AddReplica(const std::string& address, bool seed);
  Replica* ReplicaAt(const std::string& address);
  Replica* MemberReplica(const std::string& id);
  // Live members with their streams up, in `key`'s ranking; `*first` is
  // whether the pick is the first-ranked member overall.
  Replica* Choose(absl::string_view key, bool* first) const;
  // Whether `replica` is the first member in `key`'s ranking (connected or
  // not); true while no member is known.
  bool IsFirstRanked(absl::string_view key, const Replica* replica) const;
  void Place(const std::string& scope, ScopeRoute& route, Replica* replica);
  // Where a request for `scope` goes now: the route's replica while it is
  // live, else the best-ranked live one (the route is placed there).
  // `*first` is whether that is the scope's first-ranked member (or where a
  // redirect sent it). False when no replica is live; nothing changes then.
  bool RouteNow(const std::string& scope, ScopeRoute& route, bool* first);

  // MaybeFinishMove() once `delay` has passed (at once for no delay).
  void FinishMoveAfter(const std::string& scope, absl::Duration delay);

  void SendFetch(const std::string& scope, ScopeRoute& route, uint64_t seq,
                 int hops, sync::v1::FetchRequest request, FetchCallback done);
  void SendApply(const std::string& scope, ScopeRoute& route, uint64_t seq,
                 int hops, sync::v1::ApplyRequest request, ApplyCallback done);
  void SendWatch(const std::string& scope, ScopeRoute& route,
                 sync::v1::WatchRequest request);
  // Fills the routing hints for a request of `route` to its placement.
  void Mark(ScopeRoute& route, sync::v1::Routing* routing, bool take_over);
  void StartMove(const std::string& scope, const std::string& to_id,
                 const std::string& to_address);
  void MaybeFinishMove(const std::string& scope);

  // Listener calls from a replica.
  void OnCommit(Replica* from, const sync::v1::Commit& commit);
  void OnResync(Replica* from, const sync::v1::ScopeSnapshot& snapshot);
  void OnStreamStarted(Replica* from);
  void OnScopeLost(Replica* from, const sync::v1::ScopeLost& lost);
  void OnStreamEnded(Replica* from);
  void OnMembership(Replica* from, const sync::v1::Membership& membership);
  // Moves every scope placed on (or moving to) `replica`.
  void MoveScopesOff(Replica* replica);
  void UpdateCounts();

  const ClientFactory make_client_;
  const Scheduler schedule_;
  Listener* listener_ = nullptr;
  std::vector<std::unique_ptr<Replica>> replicas_;
  // Replicas that left the members: their clients are shut down, kept
  // until the router goes (their callbacks may still be queued).
  std::vector<std::unique_ptr<Replica>> retired_;
  int64_t view_as_of_ = -1;
  absl::flat_hash_map<std::string, ScopeRoute> routes_;
  std::atomic<int> live_members_{0};
  std::atomic<int> links_up_{0};
  std::atomic<uint64_t> reconnects_{0};
  // Keeps callbacks of a destroyed router from running.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SYNC_ROUTING_SYNC_CLIENT_H_
