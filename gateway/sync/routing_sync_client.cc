#include "gateway/sync/routing_sync_client.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "common/logging.h"
#include "common/rendezvous.h"

namespace jetstream::gateway {
namespace {

// How many times one request follows a redirect (or is sent again after its
// replica's stream ended) before it fails.
// Redirects a request follows before it fails. From the second one on,
// each resend waits a little longer (RedirectBackoff): two replicas can
// each send a request to the other for the moment a handoff takes.
constexpr int kMaxHops = 8;
// A retired replica's client keeps its stream this long, for the answers
// and handoff events still on their way.
constexpr absl::Duration kRetireAfter = absl::Seconds(30);

absl::Duration RewatchBackoff(int losses) {
  // 50 ms, 100 ms, ... 2 s.
  absl::Duration d = absl::Milliseconds(50);
  for (int i = 2; i < losses && d < absl::Seconds(2); ++i) d *= 2;
  return std::min(d, absl::Seconds(2));
}

}  // namespace

// Passes one replica's events to the router, tagged with the replica.
class RoutingSyncClient::ReplicaListener : public SyncClient::Listener {
 public:
  ReplicaListener(RoutingSyncClient* router, Replica* replica)
      : router_(router), replica_(replica) {}
  void OnCommit(const sync::v1::Commit& commit) override {
    router_->OnCommit(replica_, commit);
  }
  void OnResync(const sync::v1::ScopeSnapshot& snapshot) override {
    router_->OnResync(replica_, snapshot);
  }
  void OnStreamStarted() override { router_->OnStreamStarted(replica_); }
  void OnScopeLost(const std::string& scope) override {
    sync::v1::ScopeLost lost;
    lost.set_scope(scope);
    router_->OnScopeLost(replica_, lost);
  }
  void OnScopeLostEvent(const sync::v1::ScopeLost& lost) override {
    router_->OnScopeLost(replica_, lost);
  }
  void OnStreamEnded() override { router_->OnStreamEnded(replica_); }
  void OnMembership(const sync::v1::Membership& membership) override {
    router_->OnMembership(replica_, membership);
  }

 private:
  RoutingSyncClient* const router_;
  Replica* const replica_;
};

RoutingSyncClient::RoutingSyncClient(std::vector<std::string> seeds,
                                     ClientFactory make_client,
                                     Scheduler schedule)
    : make_client_(std::move(make_client)), schedule_(std::move(schedule)) {
  CHECK(!seeds.empty()) << "no sync service address";
  for (const std::string& seed : seeds) AddReplica(seed, /*seed=*/true);
}

RoutingSyncClient::~RoutingSyncClient() { *alive_ = false; }

void RoutingSyncClient::Shutdown() {
  for (const auto& r : replicas_) r->client->Shutdown();
}

RoutingSyncClient::Replica& RoutingSyncClient::AddReplica(
    const std::string& address, bool seed) {
  auto replica = std::make_unique<Replica>();
  replica->address = address;
  replica->seed = seed;
  replica->listener = std::make_unique<ReplicaListener>(this, replica.get());
  replica->client = make_client_(address);
  replica->client->SetListener(replica->listener.get());
  replicas_.push_back(std::move(replica));
  return *replicas_.back();
}

RoutingSyncClient::Replica* RoutingSyncClient::ReplicaAt(
    const std::string& address) {
  for (const auto& r : replicas_) {
    if (r->address == address) return r.get();
  }
  return nullptr;
}

RoutingSyncClient::Replica* RoutingSyncClient::MemberReplica(
    const std::string& id) {
  for (const auto& r : replicas_) {
    if (r->live && r->member_id == id) return r.get();
  }
  return nullptr;
}

RoutingSyncClient::Replica* RoutingSyncClient::Choose(absl::string_view key,
                                                      bool* first) const {
  std::vector<Replica*> candidates;
  std::vector<std::string> names;
  for (const auto& r : replicas_) {
    if (r->live && !r->member_id.empty()) {
      candidates.push_back(r.get());
      names.push_back(r->member_id);
    }
  }
  if (candidates.empty()) {
    // No member known yet: a seed, any of them (a replica redirects).
    for (const auto& r : replicas_) {
      if (r->seed) {
        candidates.push_back(r.get());
        names.push_back(r->address);
      }
    }
  }
  *first = true;
  if (candidates.empty()) return nullptr;
  std::vector<size_t> order = RankByRendezvous(names, key);
  for (size_t k : order) {
    // A member just heard of, whose stream is still opening, counts as up:
    // requests wait on its stream (rather than taking its scopes over).
    if (candidates[k]->client->connected() || candidates[k]->generation == 0) {
      *first = k == order.front();
      return candidates[k];
    }
  }
  // None is up: the first, which fails fast and is retried by the caller.
  return candidates[order.front()];
}

bool RoutingSyncClient::IsFirstRanked(absl::string_view key,
                                      const Replica* replica) const {
  std::vector<const Replica*> members;
  std::vector<std::string> ids;
  for (const auto& r : replicas_) {
    if (r->live && !r->member_id.empty()) {
      members.push_back(r.get());
      ids.push_back(r->member_id);
    }
  }
  if (members.empty()) return true;
  return members[RankByRendezvous(ids, key).front()] == replica;
}

std::string RoutingSyncClient::RouteForTest(const std::string& scope) const {
  bool first = false;
  Replica* r = Choose(scope, &first);
  return r == nullptr ? "" : (r->member_id.empty() ? r->address : r->member_id);
}

std::string RoutingSyncClient::PlacementForTest(
    const std::string& scope) const {
  auto it = routes_.find(scope);
  if (it == routes_.end() || it->second.replica == nullptr) return "";
  const Replica* r = it->second.replica;
  return r->member_id.empty() ? r->address : r->member_id;
}

std::vector<std::string> RoutingSyncClient::MembersForTest() const {
  std::vector<std::string> ids;
  for (const auto& r : replicas_) {
    if (r->live && !r->member_id.empty()) ids.push_back(r->member_id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

bool RoutingSyncClient::connected() const {
  bool members = false;
  for (const auto& r : replicas_) {
    if (!r->live || r->member_id.empty()) continue;
    members = true;
    if (r->client->connected()) return true;
  }
  if (members) return false;
  for (const auto& r : replicas_) {
    if (r->seed && r->client->connected()) return true;
  }
  return false;
}

void RoutingSyncClient::Place(const std::string& scope, ScopeRoute& route,
                              Replica* replica) {
  if (route.replica != nullptr && route.replica != replica) {
    VLOG(1) << "scope '" << scope << "' moves from " << route.replica->address
            << " to " << replica->address;
  }
  route.replica = replica;
  route.generation = replica->generation;
  route.watched = false;
  route.placed_by_redirect = false;
  route.holder_unreachable = false;
}

void RoutingSyncClient::Mark(ScopeRoute& route, sync::v1::Routing* routing,
                             bool take_over) {
  routing->set_take_over(take_over || route.holder_unreachable);
  routing->set_rerouted(route.rerouted);
}

void RoutingSyncClient::Fetch(sync::v1::FetchRequest request,
                              FetchCallback done) {
  const std::string scope = request.scope();
  ScopeRoute& route = routes_[scope];
  const uint64_t seq = route.next_seq++;
  if (route.moving) {
    route.held.push_back(
        Held{seq, 0, std::make_pair(std::move(request), std::move(done))});
    return;
  }
  SendFetch(scope, route, seq, 0, std::move(request), std::move(done));
}

void RoutingSyncClient::Apply(sync::v1::ApplyRequest request,
                              ApplyCallback done) {
  const std::string scope = request.scope();
  ScopeRoute& route = routes_[scope];
  const uint64_t seq = route.next_seq++;
  if (route.moving) {
    route.held.push_back(
        Held{seq, 0, std::make_pair(std::move(request), std::move(done))});
    return;
  }
  SendApply(scope, route, seq, 0, std::move(request), std::move(done));
}

namespace {

// Puts `held` into `queue` at its place by sequence number.
template <typename HeldT>
void InsertInOrder(std::deque<HeldT>& queue, HeldT held) {
  auto it = std::find_if(queue.begin(), queue.end(),
                         [&](const HeldT& h) { return h.seq > held.seq; });
  queue.insert(it, std::move(held));
}

// How long a request that has followed `hops` redirects waits before it
// is sent again: nothing for the first, then 5 ms doubling to 160 ms.
absl::Duration RedirectBackoff(int hops) {
  if (hops < 2) return absl::ZeroDuration();
  return absl::Milliseconds(5) * (1 << std::min(hops - 2, 5));
}

}  // namespace

bool RoutingSyncClient::RouteNow(const std::string& scope, ScopeRoute& route,
                                 bool* first) {
  if (route.replica != nullptr && route.replica->live) {
    *first = route.placed_by_redirect || IsFirstRanked(scope, route.replica);
    return true;
  }
  Replica* chosen = Choose(scope, first);
  if (chosen == nullptr) return false;
  Place(scope, route, chosen);
  return true;
}

void RoutingSyncClient::SendFetch(const std::string& scope, ScopeRoute& route,
                                  uint64_t seq, int hops,
                                  sync::v1::FetchRequest request,
                                  FetchCallback done) {
  bool first = true;
  if (!RouteNow(scope, route, &first)) {
    schedule_(absl::ZeroDuration(), [done = std::move(done)] {
      done(absl::UnavailableError("Sync service unavailable"));
    });
    return;
  }
  Mark(route, request.mutable_routing(), !first);
  ++route.inflight;
  Replica* sent_to = route.replica;
  sync::v1::FetchRequest copy = request;
  std::weak_ptr<bool> alive = alive_;
  sent_to->client->Fetch(
      std::move(request),
      [this, alive, scope, seq, hops, sent_to, copy = std::move(copy),
       done = std::move(done)](
          absl::StatusOr<sync::v1::FetchResult> result) mutable {
        if (alive.expired()) return;
        auto it = routes_.find(scope);
        if (it == routes_.end()) {
          done(std::move(result));
          return;
        }
        ScopeRoute& route = it->second;
        --route.inflight;
        const bool redirected = result.ok() && result->has_redirect();
        // Its replica's stream ended: a fetch changes nothing, so it is
        // sent again where the scope goes.
        const bool stream_lost = !result.ok() &&
                                 (absl::IsUnknown(result.status()) ||
                                  absl::IsUnavailable(result.status())) &&
                                 route.replica == sent_to && route.moving;
        if ((redirected || stream_lost) && hops < kMaxHops) {
          if (redirected && !route.moving) {
            StartMove(scope, result->redirect().member_id(),
                      result->redirect().address());
          }
          copy.clear_routing();
          InsertInOrder(route.held,
                        Held{seq, hops + 1,
                             std::make_pair(std::move(copy), std::move(done))});
          FinishMoveAfter(scope, RedirectBackoff(hops + 1));
          return;
        }
        if (redirected) {
          done(absl::UnavailableError(
              "the scope kept moving between sync service replicas"));
        } else {
          if (result.ok() && !result->has_error())
            route.lost_without_target = 0;
          done(std::move(result));
        }
        MaybeFinishMove(scope);
      });
}

void RoutingSyncClient::SendApply(const std::string& scope, ScopeRoute& route,
                                  uint64_t seq, int hops,
                                  sync::v1::ApplyRequest request,
                                  ApplyCallback done) {
  bool first = true;
  if (!RouteNow(scope, route, &first)) {
    schedule_(absl::ZeroDuration(), [done = std::move(done)] {
      done(absl::UnavailableError("Sync service unavailable"));
    });
    return;
  }
  Mark(route, request.mutable_routing(), !first);
  ++route.inflight;
  // Kept for a resend: only a redirect (nothing applied) resends it.
  auto copy = std::make_shared<sync::v1::ApplyRequest>(request);
  std::weak_ptr<bool> alive = alive_;
  route.replica->client->Apply(
      std::move(request),
      [this, alive, scope, seq, hops, copy, done = std::move(done)](
          absl::StatusOr<sync::v1::ApplyResult> result) mutable {
        if (alive.expired()) return;
        auto it = routes_.find(scope);
        if (it == routes_.end()) {
          done(std::move(result));
          return;
        }
        ScopeRoute& route = it->second;
        --route.inflight;
        if (result.ok() && result->has_redirect()) {
          if (hops >= kMaxHops) {
            done(absl::UnavailableError(
                "the scope kept moving between sync service replicas"));
            MaybeFinishMove(scope);
            return;
          }
          if (!route.moving) {
            StartMove(scope, result->redirect().member_id(),
                      result->redirect().address());
          }
          copy->clear_routing();
          InsertInOrder(route.held, Held{seq, hops + 1,
                                         std::make_pair(std::move(*copy),
                                                        std::move(done))});
          FinishMoveAfter(scope, RedirectBackoff(hops + 1));
          return;
        }
        done(std::move(result));
        MaybeFinishMove(scope);
      });
}

void RoutingSyncClient::AuthorizeSession(
    sync::v1::AuthorizeSessionRequest request, AuthorizeCallback done) {
  bool first = false;
  Replica* replica = Choose(request.session_id(), &first);
  if (replica == nullptr) {
    schedule_(absl::ZeroDuration(), [done = std::move(done)] {
      done(absl::UnavailableError("Sync service unavailable"));
    });
    return;
  }
  replica->client->AuthorizeSession(std::move(request), std::move(done));
}

void RoutingSyncClient::Watch(sync::v1::WatchRequest request) {
  const std::string scope = request.scope();
  ScopeRoute& route = routes_[scope];
  // While the scope moves, nothing is sent: the end of the move tells the
  // listener (OnScopeLost), which watches again with what it has seen
  // *then*. A request kept from now would carry a stale version, and a
  // replica would replay commits the sessions already have.
  if (route.moving) return;
  SendWatch(scope, route, std::move(request));
}

void RoutingSyncClient::SendWatch(const std::string& scope, ScopeRoute& route,
                                  sync::v1::WatchRequest request) {
  bool first = true;
  if (!RouteNow(scope, route, &first)) return;  // watched when a stream starts
  if (route.watched && route.generation == route.replica->generation) {
    return;  // already watched there, on the same stream
  }
  Mark(route, request.mutable_routing(), !first);
  route.watched = true;
  route.generation = route.replica->generation;
  route.replica->client->Watch(std::move(request));
}

void RoutingSyncClient::Unwatch(const std::string& scope) {
  auto it = routes_.find(scope);
  if (it == routes_.end()) return;
  ScopeRoute& route = it->second;
  if (route.replica != nullptr && route.watched) {
    route.replica->client->Unwatch(scope);
  }
  route.watched = false;
  if (route.inflight == 0 && route.held.empty() && !route.moving) {
    routes_.erase(it);
  }
}

void RoutingSyncClient::StartMove(const std::string& scope,
                                  const std::string& to_id,
                                  const std::string& to_address) {
  ScopeRoute& route = routes_[scope];
  route.moving = true;
  route.move_id = to_id;
  route.move_address = to_address;
  if (to_id.empty() && to_address.empty()) ++route.lost_without_target;
}

void RoutingSyncClient::FinishMoveAfter(const std::string& scope,
                                        absl::Duration delay) {
  if (delay <= absl::ZeroDuration()) {
    MaybeFinishMove(scope);
    return;
  }
  auto it = routes_.find(scope);
  if (it == routes_.end() || it->second.resend_scheduled) return;
  it->second.resend_scheduled = true;
  std::weak_ptr<bool> alive = alive_;
  schedule_(delay, [this, alive, scope] {
    if (alive.expired()) return;
    auto again = routes_.find(scope);
    if (again == routes_.end()) return;
    again->second.resend_scheduled = false;
    MaybeFinishMove(scope);
  });
}

void RoutingSyncClient::MaybeFinishMove(const std::string& scope) {
  auto it = routes_.find(scope);
  if (it == routes_.end()) return;
  ScopeRoute& route = it->second;
  if (!route.moving || route.inflight > 0 || route.rewatch_scheduled ||
      route.resend_scheduled) {
    return;
  }
  const bool anywhere = route.move_id.empty() && route.move_address.empty();
  if (anywhere && route.lost_without_target > 1) {
    // Lost again with nowhere to go: give the replicas a moment.
    route.rewatch_scheduled = true;
    std::weak_ptr<bool> alive = alive_;
    schedule_(RewatchBackoff(route.lost_without_target), [this, alive, scope] {
      if (alive.expired()) return;
      auto again = routes_.find(scope);
      if (again == routes_.end()) return;
      again->second.rewatch_scheduled = false;
      again->second.lost_without_target = 1;  // the wait is done
      MaybeFinishMove(scope);
    });
    return;
  }
  // A move to where a replica said the scope is: its requests are resends,
  // marked rerouted (which also ends the redirect the stream remembers).
  const bool redirected = !anywhere;
  bool by_redirect = redirected;
  Replica* target = nullptr;
  if (!route.move_id.empty()) target = MemberReplica(route.move_id);
  if (target == nullptr && !route.move_address.empty()) {
    target = ReplicaAt(route.move_address);
    if (target == nullptr) {
      // A member this gateway has not heard of yet: its own stream brings
      // the membership.
      target = &AddReplica(route.move_address, /*seed=*/false);
    }
    if (!route.move_id.empty()) {
      target->member_id = route.move_id;
      target->live = true;
    }
  }
  // A target whose stream was up once and is down now is no target.
  if (target == nullptr || !target->live ||
      (target->generation > 0 && !target->client->connected())) {
    bool first = false;
    Replica* chosen = Choose(scope, &first);
    if (chosen != nullptr) target = chosen;
    by_redirect = false;
  }
  route.moving = false;
  route.move_id.clear();
  route.move_address.clear();
  if (target != nullptr && target != route.replica) {
    if (route.replica != nullptr && route.watched) {
      route.replica->client->Unwatch(scope);
    }
    Place(scope, route, target);
  }
  route.placed_by_redirect = by_redirect;
  // Redirected to a replica this gateway cannot reach: whoever serves the
  // scope now may take its lease over once it expires.
  route.holder_unreachable = redirected && !by_redirect;
  route.watched = false;
  // The held requests go out in the order they were made, then the watch
  // moves (the session manager asks again, from OnScopeLost).
  route.rerouted = redirected;
  std::deque<Held> held = std::move(route.held);
  route.held.clear();
  std::sort(held.begin(), held.end(),
            [](const Held& a, const Held& b) { return a.seq < b.seq; });
  for (Held& h : held) {
    ScopeRoute& current = routes_[scope];
    if (auto* fetch = std::get_if<0>(&h.request)) {
      SendFetch(scope, current, h.seq, h.hops, std::move(fetch->first),
                std::move(fetch->second));
    } else {
      auto& apply = std::get<1>(h.request);
      SendApply(scope, current, h.seq, h.hops, std::move(apply.first),
                std::move(apply.second));
    }
  }
  if (listener_ != nullptr) listener_->OnScopeLost(scope);
  routes_[scope].rerouted = false;
}

void RoutingSyncClient::OnCommit(Replica* from,
                                 const sync::v1::Commit& commit) {
  auto it = routes_.find(commit.scope());
  if (it == routes_.end() || it->second.replica != from) {
    VLOG(1) << "scope '" << commit.scope() << "' commit " << commit.version()
            << " from " << from->address << " dropped: placed "
            << (it == routes_.end() || it->second.replica == nullptr
                    ? std::string("nowhere")
                    : it->second.replica->address);
    return;
  }
  it->second.lost_without_target = 0;
  if (listener_ != nullptr) listener_->OnCommit(commit);
}

void RoutingSyncClient::OnResync(Replica* from,
                                 const sync::v1::ScopeSnapshot& snapshot) {
  auto it = routes_.find(snapshot.scope());
  if (it == routes_.end() || it->second.replica != from) return;
  it->second.lost_without_target = 0;
  if (listener_ != nullptr) listener_->OnResync(snapshot);
}

void RoutingSyncClient::OnStreamStarted(Replica* from) {
  if (++from->generation > 1) ++reconnects_;
  UpdateCounts();
  LOG(INFO) << "sync service " << from->address << " is up";
  if (from->standalone) {
    // Replicas without peers each hold their own scopes: those that rank
    // this one first come back to it.
    std::vector<std::string> back;
    for (const auto& [scope, route] : routes_) {
      bool first = false;
      if (route.replica != from && !route.moving &&
          Choose(scope, &first) == from) {
        back.push_back(scope);
      }
    }
    for (const std::string& scope : back) {
      StartMove(scope, from->member_id, from->address);
      MaybeFinishMove(scope);
    }
  }
  // Every watched scope is watched again: those placed on it (their old
  // stream is gone); the rest are skipped by SendWatch().
  if (listener_ != nullptr) listener_->OnStreamStarted();
}

void RoutingSyncClient::OnScopeLost(Replica* from,
                                    const sync::v1::ScopeLost& lost) {
  auto it = routes_.find(lost.scope());
  if (it == routes_.end() || it->second.replica != from) return;
  ScopeRoute& route = it->second;
  route.watched = false;
  if (!route.moving) {
    StartMove(lost.scope(), lost.moved_to().member_id(),
              lost.moved_to().address());
  }
  MaybeFinishMove(lost.scope());
}

void RoutingSyncClient::OnStreamEnded(Replica* from) {
  UpdateCounts();
  MoveScopesOff(from);
}

void RoutingSyncClient::UpdateCounts() {
  int live = 0, up = 0;
  for (const auto& r : replicas_) {
    if (!r->live || r->member_id.empty()) continue;
    ++live;
    up += r->client->connected() ? 1 : 0;
  }
  live_members_ = live;
  links_up_ = up;
}

void RoutingSyncClient::MoveScopesOff(Replica* replica) {
  std::vector<std::string> scopes;
  for (auto& [scope, route] : routes_) {
    const bool moving_there =
        route.moving &&
        ((!route.move_id.empty() && route.move_id == replica->member_id) ||
         route.move_address == replica->address);
    if (moving_there) {
      // It is gone: go wherever routing points instead.
      route.move_id.clear();
      route.move_address.clear();
    }
    if (route.replica == replica || moving_there) scopes.push_back(scope);
  }
  if (!scopes.empty()) {
    LOG(WARNING) << "sync service " << replica->address << " is unavailable; "
                 << scopes.size() << " scopes move";
  }
  for (const std::string& scope : scopes) {
    ScopeRoute& route = routes_[scope];
    if (route.watched && route.replica == replica &&
        replica->client->connected()) {
      // Gone from the membership but still reachable: its commits would
      // only be dropped here.
      replica->client->Unwatch(scope);
    }
    route.watched = false;
    if (!route.moving) StartMove(scope, "", "");
    MaybeFinishMove(scope);
  }
}

void RoutingSyncClient::OnMembership(Replica* from,
                                     const sync::v1::Membership& membership) {
  if (membership.standalone()) {
    // A replica without peers: a member of its own, named as written.
    if (from->seed && !from->standalone) {
      LOG(INFO) << "sync service " << from->address << " runs standalone";
    }
    from->standalone = true;
    from->member_id = from->address;
    from->live = true;
    UpdateCounts();
    return;
  }
  if (membership.as_of_micros() < view_as_of_) return;  // an older view
  view_as_of_ = membership.as_of_micros();
  absl::flat_hash_set<std::string> addresses;
  std::vector<std::string> joined;
  for (const sync::v1::Member& m : membership.members()) {
    addresses.insert(m.address());
    Replica* r = ReplicaAt(m.address());
    if (r == nullptr) r = &AddReplica(m.address(), /*seed=*/false);
    if (!r->live || r->member_id != m.id()) joined.push_back(m.id());
    r->member_id = m.id();
    r->live = true;
    r->standalone = false;
  }
  std::vector<Replica*> left;
  for (const auto& r : replicas_) {
    if (addresses.contains(r->address)) continue;
    if (r->live && !r->member_id.empty()) left.push_back(r.get());
    r->live = false;
    if (r->seed) r->member_id.clear();
  }
  UpdateCounts();
  if (!joined.empty() || !left.empty()) {
    LOG(INFO) << "sync service members: " << membership.members_size()
              << " live (" << joined.size() << " new, " << left.size()
              << " gone)";
  }
  for (Replica* r : left) {
    MoveScopesOff(r);
    if (r->seed) continue;
    // Its stream may still bring answers and handoffs for a while.
    std::weak_ptr<bool> alive = alive_;
    const std::string address = r->address;
    schedule_(kRetireAfter, [this, alive, address] {
      if (alive.expired()) return;
      for (auto it = replicas_.begin(); it != replicas_.end(); ++it) {
        Replica* candidate = it->get();
        if (candidate->address != address || candidate->live) continue;
        bool placed = false;
        for (const auto& [scope, route] : routes_) {
          placed = placed || route.replica == candidate;
        }
        if (placed) return;
        candidate->client->Shutdown();
        retired_.push_back(std::move(*it));
        replicas_.erase(it);
        return;
      }
    });
  }
}

}  // namespace jetstream::gateway
