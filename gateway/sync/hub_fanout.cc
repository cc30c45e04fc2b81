#include "gateway/sync/hub_fanout.h"

#include <algorithm>
#include <utility>

#include "boost/asio/post.hpp"

namespace jetstream::gateway {
namespace net = boost::asio;

// One hub's view of the link. Its calls run on the hub and hop to the link;
// what comes back hops to the hub.
class HubFanout::HubClient : public SyncClient {
 public:
  HubClient(HubFanout& fanout, HubExecutor hub)
      : fanout_(fanout), hub_(std::move(hub)) {}

  const HubExecutor& hub() const { return hub_; }
  Listener* listener() const { return listener_; }

  void SetListener(Listener* listener) override { listener_ = listener; }

  void Fetch(sync::v1::FetchRequest request, FetchCallback done) override {
    net::post(fanout_.link_, [this, request = std::move(request),
                              done = std::move(done)]() mutable {
      fanout_.AddWatcher(request.scope(), this);
      fanout_.upstream_.Fetch(std::move(request), Back(std::move(done)));
    });
  }

  void Apply(sync::v1::ApplyRequest request, ApplyCallback done) override {
    net::post(fanout_.link_, [this, request = std::move(request),
                              done = std::move(done)]() mutable {
      fanout_.upstream_.Apply(std::move(request), Back(std::move(done)));
    });
  }

  void AuthorizeSession(sync::v1::AuthorizeSessionRequest request,
                        AuthorizeCallback done) override {
    net::post(fanout_.link_, [this, request = std::move(request),
                              done = std::move(done)]() mutable {
      fanout_.upstream_.AuthorizeSession(std::move(request),
                                         Back(std::move(done)));
    });
  }

  void Watch(sync::v1::WatchRequest request) override {
    net::post(fanout_.link_, [this, request = std::move(request)]() mutable {
      fanout_.Watch(this, std::move(request));
    });
  }

  void Unwatch(const std::string& scope) override {
    net::post(fanout_.link_, [this, scope] { fanout_.Unwatch(this, scope); });
  }

  // Read from any thread, like the link's own.
  bool connected() const override { return fanout_.upstream_.connected(); }

 private:
  // A callback of the link's that runs `done` on the hub.
  template <typename Result>
  std::function<void(Result)> Back(std::function<void(Result)> done) {
    return [hub = hub_, done = std::move(done)](Result result) mutable {
      net::post(hub,
                [done = std::move(done), result = std::move(result)]() mutable {
                  done(std::move(result));
                });
    };
  }

  HubFanout& fanout_;
  const HubExecutor hub_;
  Listener* listener_ = nullptr;
};

HubFanout::HubFanout(HubExecutor link, SyncClient& upstream, const Clock& clock,
                     Encoder encode)
    : link_(std::move(link)),
      upstream_(upstream),
      clock_(clock),
      encode_(std::move(encode)) {
  upstream_.SetListener(this);
}

HubFanout::~HubFanout() = default;

SyncClient& HubFanout::AddHub(HubExecutor hub) {
  hubs_.push_back(std::make_unique<HubClient>(*this, std::move(hub)));
  return *hubs_.back();
}

void HubFanout::AddWatcher(const std::string& scope, HubClient* hub) {
  Watched& w = watched_[scope];
  if (std::find(w.hubs.begin(), w.hubs.end(), hub) == w.hubs.end()) {
    w.hubs.push_back(hub);
  }
}

bool HubFanout::RemoveWatcher(const std::string& scope, HubClient* hub) {
  auto it = watched_.find(scope);
  if (it == watched_.end()) return true;
  auto& hubs = it->second.hubs;
  hubs.erase(std::remove(hubs.begin(), hubs.end(), hub), hubs.end());
  if (!hubs.empty()) return false;
  watched_.erase(it);
  return true;
}

void HubFanout::Watch(HubClient* hub, sync::v1::WatchRequest request) {
  AddWatcher(request.scope(), hub);
  const Watched& w = watched_[request.scope()];
  const bool others = w.hubs.size() > 1;
  const bool behind = !w.epoch.empty() && (request.epoch() != w.epoch ||
                                           request.after_version() < w.version);
  if (others && behind) {
    // Watched afresh, so the holder replays from this hub's version.
    upstream_.Unwatch(request.scope());
  }
  upstream_.Watch(std::move(request));
}

void HubFanout::Unwatch(HubClient* hub, const std::string& scope) {
  if (RemoveWatcher(scope, hub)) upstream_.Unwatch(scope);
}

void HubFanout::OnCommit(const sync::v1::Commit& commit) {
  auto it = watched_.find(commit.scope());
  if (it == watched_.end()) return;
  Watched& w = it->second;
  if (w.epoch != commit.epoch()) {
    w.epoch = commit.epoch();
    w.version = commit.version();
  } else {
    w.version = std::max(w.version, commit.version());
  }
  FannedOutCommit shared;
  shared.commit = std::make_shared<const sync::v1::Commit>(commit);
  if (encode_) shared.encoded = encode_(commit);
  shared.received = clock_.Now();
  for (HubClient* hub : w.hubs) {
    net::post(hub->hub(), [hub, shared] {
      if (hub->listener() != nullptr)
        hub->listener()->OnFannedOutCommit(shared);
    });
  }
}

void HubFanout::OnResync(const sync::v1::ScopeSnapshot& snapshot) {
  auto it = watched_.find(snapshot.scope());
  if (it == watched_.end()) return;
  Watched& w = it->second;
  w.epoch = snapshot.epoch();
  w.version = snapshot.version();
  auto shared = std::make_shared<const sync::v1::ScopeSnapshot>(snapshot);
  for (HubClient* hub : w.hubs) {
    net::post(hub->hub(), [hub, shared] {
      if (hub->listener() != nullptr) hub->listener()->OnResync(*shared);
    });
  }
}

void HubFanout::OnStreamStarted() {
  for (const auto& hub : hubs_) {
    net::post(hub->hub(), [hub = hub.get()] {
      if (hub->listener() != nullptr) hub->listener()->OnStreamStarted();
    });
  }
}

void HubFanout::OnStreamEnded() {
  for (const auto& hub : hubs_) {
    net::post(hub->hub(), [hub = hub.get()] {
      if (hub->listener() != nullptr) hub->listener()->OnStreamEnded();
    });
  }
}

void HubFanout::OnScopeLost(const std::string& scope) {
  auto it = watched_.find(scope);
  if (it == watched_.end()) return;
  for (HubClient* hub : it->second.hubs) {
    net::post(hub->hub(), [hub, scope] {
      if (hub->listener() != nullptr) hub->listener()->OnScopeLost(scope);
    });
  }
}

size_t HubFanout::WatchersForTest(const std::string& scope) const {
  auto it = watched_.find(scope);
  return it == watched_.end() ? 0 : it->second.hubs.size();
}

}  // namespace jetstream::gateway
