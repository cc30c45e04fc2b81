#include "gateway/routing_sync_client.h"

#include <utility>

#include "common/logging.h"

namespace jetstream::gateway {

uint64_t RendezvousWeight(absl::string_view replica, absl::string_view key) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a offset basis
  auto mix = [&h](absl::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ull;  // FNV-1a prime
    }
  };
  mix(replica);
  mix(absl::string_view("\0", 1));
  mix(key);
  // FNV-1a alone spreads similar names poorly over the top bits; finish
  // with the murmur3 64-bit finaliser.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

// Passes one replica's events to the router, tagged with the replica.
class RoutingSyncClient::ReplicaListener : public SyncClient::Listener {
 public:
  ReplicaListener(RoutingSyncClient* router, size_t replica)
      : router_(router), replica_(replica) {}
  void OnCommit(const sync::v1::Commit& commit) override {
    router_->OnCommit(replica_, commit);
  }
  void OnResync(const sync::v1::ScopeSnapshot& snapshot) override {
    router_->OnResync(replica_, snapshot);
  }
  void OnStreamStarted() override { router_->OnStreamStarted(replica_); }
  void OnScopeLost(const std::string& scope) override {
    router_->OnScopeLost(replica_, scope);
  }
  void OnStreamEnded() override { router_->OnStreamEnded(replica_); }

 private:
  RoutingSyncClient* const router_;
  const size_t replica_;
};

RoutingSyncClient::RoutingSyncClient(std::vector<Replica> replicas)
    : replicas_(std::move(replicas)), generations_(replicas_.size(), 0) {
  CHECK(!replicas_.empty()) << "no sync service replica";
  for (size_t i = 0; i < replicas_.size(); ++i) {
    listeners_.push_back(std::make_unique<ReplicaListener>(this, i));
    replicas_[i].client->SetListener(listeners_.back().get());
  }
}

RoutingSyncClient::~RoutingSyncClient() = default;

size_t RoutingSyncClient::Route(absl::string_view key) const {
  size_t best = 0;
  bool best_connected = false;
  uint64_t best_weight = 0;
  for (size_t i = 0; i < replicas_.size(); ++i) {
    const bool up = replicas_[i].client->connected();
    const uint64_t weight = RendezvousWeight(replicas_[i].name, key);
    // A connected replica beats any disconnected one; then the weight
    // decides (ties, practically impossible, go to the earlier name).
    if (i == 0 || (up && !best_connected) ||
        (up == best_connected && weight > best_weight)) {
      best = i;
      best_connected = up;
      best_weight = weight;
    }
  }
  return best;
}

int RoutingSyncClient::PlacementForTest(const std::string& scope) const {
  auto it = placements_.find(scope);
  return it == placements_.end() ? -1 : static_cast<int>(it->second.replica);
}

bool RoutingSyncClient::connected() const {
  for (const Replica& r : replicas_) {
    if (r.client->connected()) return true;
  }
  return false;
}

void RoutingSyncClient::Place(const std::string& scope, size_t replica) {
  auto [it, inserted] = placements_.try_emplace(scope);
  if (!inserted && it->second.replica != replica) {
    VLOG(1) << "scope '" << scope << "' moves from "
            << replicas_[it->second.replica].name << " to "
            << replicas_[replica].name;
    replicas_[it->second.replica].client->Unwatch(scope);
  }
  it->second.replica = replica;
  it->second.generation = generations_[replica];
}

bool RoutingSyncClient::PlacedOn(const std::string& scope,
                                 size_t replica) const {
  auto it = placements_.find(scope);
  return it != placements_.end() && it->second.replica == replica;
}

void RoutingSyncClient::Fetch(sync::v1::FetchRequest request,
                              FetchCallback done) {
  // A scope already placed stays where it is: one source of events per
  // scope. Moves happen only when the scope is watched again.
  const size_t replica = PlacementOrRoute(request.scope());
  if (!PlacedOn(request.scope(), replica)) Place(request.scope(), replica);
  if (replicas_.size() == 1) {
    replicas_[0].client->Fetch(std::move(request), std::move(done));
    return;
  }
  std::string scope = request.scope();
  replicas_[replica].client->Fetch(
      std::move(request),
      [this, scope = std::move(scope), done = std::move(done)](
          absl::StatusOr<sync::v1::FetchResult> result) {
        done(std::move(result));
        // Placed while its first-ranked replica was unreachable, and that
        // one is back: have it watched again, which moves it there.
        auto placed = placements_.find(scope);
        if (listener_ != nullptr && placed != placements_.end() &&
            Route(scope) != placed->second.replica) {
          listener_->OnScopeLost(scope);
        }
      });
}

void RoutingSyncClient::Apply(sync::v1::ApplyRequest request,
                              ApplyCallback done) {
  replicas_[PlacementOrRoute(request.scope())].client->Apply(std::move(request),
                                                             std::move(done));
}

size_t RoutingSyncClient::PlacementOrRoute(const std::string& scope) const {
  auto it = placements_.find(scope);
  return it != placements_.end() ? it->second.replica : Route(scope);
}

void RoutingSyncClient::AuthorizeSession(
    sync::v1::AuthorizeSessionRequest request, AuthorizeCallback done) {
  const size_t replica = Route(request.session_id());
  replicas_[replica].client->AuthorizeSession(std::move(request),
                                              std::move(done));
}

void RoutingSyncClient::Watch(sync::v1::WatchRequest request) {
  const size_t replica = Route(request.scope());
  auto it = placements_.find(request.scope());
  if (it != placements_.end() && it->second.replica == replica &&
      it->second.generation == generations_[replica]) {
    return;  // already watched there, on the same stream
  }
  Place(request.scope(), replica);
  replicas_[replica].client->Watch(std::move(request));
}

void RoutingSyncClient::Unwatch(const std::string& scope) {
  auto it = placements_.find(scope);
  if (it == placements_.end()) return;
  replicas_[it->second.replica].client->Unwatch(scope);
  placements_.erase(it);
}

void RoutingSyncClient::OnCommit(size_t i, const sync::v1::Commit& commit) {
  if (listener_ != nullptr && PlacedOn(commit.scope(), i)) {
    listener_->OnCommit(commit);
  }
}

void RoutingSyncClient::OnResync(size_t i,
                                 const sync::v1::ScopeSnapshot& snapshot) {
  if (listener_ != nullptr && PlacedOn(snapshot.scope(), i)) {
    listener_->OnResync(snapshot);
  }
}

void RoutingSyncClient::OnStreamStarted(size_t i) {
  ++generations_[i];
  LOG(INFO) << "sync service " << replicas_[i].name << " is up";
  // Every watched scope is watched again: those placed on `i` (their old
  // stream is gone) and those that rank `i` first move there; the rest are
  // already watched where they are and are skipped by Watch().
  if (listener_ != nullptr) listener_->OnStreamStarted();
}

void RoutingSyncClient::OnScopeLost(size_t i, const std::string& scope) {
  if (!PlacedOn(scope, i)) return;
  placements_.erase(scope);
  if (listener_ != nullptr) listener_->OnScopeLost(scope);
}

void RoutingSyncClient::OnStreamEnded(size_t i) {
  std::vector<std::string> lost;
  for (const auto& [scope, placement] : placements_) {
    if (placement.replica == i) lost.push_back(scope);
  }
  if (!lost.empty()) {
    LOG(WARNING) << "sync service " << replicas_[i].name << " is down; "
                 << lost.size() << " scopes move";
  }
  for (const std::string& scope : lost) {
    placements_.erase(scope);
    if (listener_ != nullptr) listener_->OnScopeLost(scope);
  }
}

}  // namespace jetstream::gateway
