// Tests of RoutingSyncClient: stable rendezvous routing, failover when a
// replica's stream breaks, moves when a replica loses a scope or comes back,
// and events passed on only from the replica a scope is placed on.

#include "gateway/routing_sync_client.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jetstream::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A replica: records what it is asked; events are injected by the test.
class FakeReplica : public SyncClient {
 public:
  void SetListener(Listener* listener) override { listener_ = listener; }
  void Fetch(sync::v1::FetchRequest request, FetchCallback done) override {
    calls.push_back("fetch " + request.scope());
    fetches.push_back(std::move(done));
  }
  void Apply(sync::v1::ApplyRequest request, ApplyCallback) override {
    calls.push_back("apply " + request.scope());
  }
  void AuthorizeSession(sync::v1::AuthorizeSessionRequest request,
                        AuthorizeCallback) override {
    calls.push_back("authorize " + request.session_id());
  }
  void Watch(sync::v1::WatchRequest request) override {
    calls.push_back("watch " + request.scope());
  }
  void Unwatch(const std::string& scope) override {
    calls.push_back("unwatch " + scope);
  }
  bool connected() const override { return up; }

  Listener* listener_ = nullptr;
  bool up = true;
  std::vector<std::string> calls;
  std::vector<FetchCallback> fetches;
};

// The router's listener: what the session manager would hear.
class RecordingListener : public SyncClient::Listener {
 public:
  void OnCommit(const sync::v1::Commit& commit) override {
    events.push_back(absl::StrCat("commit ", commit.scope(), " ",
                                  commit.version()));
  }
  void OnResync(const sync::v1::ScopeSnapshot& snapshot) override {
    events.push_back("resync " + snapshot.scope());
  }
  void OnStreamStarted() override { events.push_back("started"); }
  void OnScopeLost(const std::string& scope) override {
    events.push_back("lost " + scope);
  }
  std::vector<std::string> events;
};

struct Cluster {
  explicit Cluster(std::vector<std::string> names) {
    std::vector<RoutingSyncClient::Replica> replicas;
    for (const std::string& name : names) {
      auto fake = std::make_unique<FakeReplica>();
      fakes.push_back(fake.get());
      replicas.push_back({name, std::move(fake)});
    }
    router = std::make_unique<RoutingSyncClient>(std::move(replicas));
    router->SetListener(&listener);
  }
  void Fetch(const std::string& scope) {
    sync::v1::FetchRequest request;
    request.set_scope(scope);
    router->Fetch(std::move(request), [](auto) {});
  }
  void Watch(const std::string& scope) {
    sync::v1::WatchRequest request;
    request.set_scope(scope);
    request.set_epoch("e");
    router->Watch(std::move(request));
  }
  void Commit(size_t replica, const std::string& scope, uint64_t version) {
    sync::v1::Commit commit;
    commit.set_scope(scope);
    commit.set_version(version);
    fakes[replica]->listener_->OnCommit(commit);
  }
  void ClearCalls() {
    for (FakeReplica* f : fakes) f->calls.clear();
    listener.events.clear();
  }

  std::vector<FakeReplica*> fakes;  // owned by the router
  std::unique_ptr<RoutingSyncClient> router;
  RecordingListener listener;
};

// A scope name that ranks `want` first among `names` (all connected).
std::string ScopeRankingFirst(const std::vector<std::string>& names,
                              size_t want, int skip = 0) {
  for (int i = 0;; ++i) {
    std::string scope = absl::StrCat("Canvas-", i);
    size_t best = 0;
    for (size_t r = 1; r < names.size(); ++r) {
      if (RendezvousWeight(names[r], scope) >
          RendezvousWeight(names[best], scope)) {
        best = r;
      }
    }
    if (best == want && skip-- == 0) return scope;
  }
}

const std::vector<std::string> kThree = {"sync-0:50051", "sync-1:50051",
                                         "sync-2:50051"};

TEST(RendezvousWeightTest, IsTheSameInEveryProcess) {
  // Gateways agree on routing only if the weight never changes: these
  // values are part of the contract between gateway versions.
  // (Computed independently from the definition: FNV-1a 64 of
  // "replica\0key", then the murmur3 fmix64 finaliser.)
  EXPECT_EQ(RendezvousWeight("sync-0:50051", "Canvas"), 5783848716994031002u);
  EXPECT_EQ(RendezvousWeight("sync-1:50051", "Canvas"), 2248081690499436497u);
  // The separator keeps ("ab", "c") and ("a", "bc") apart.
  EXPECT_NE(RendezvousWeight("ab", "c"), RendezvousWeight("a", "bc"));
}

TEST(RoutingSyncClientTest, SpreadsScopesEvenlyAndIgnoresTheListOrder) {
  const std::vector<std::string> reversed = {kThree[2], kThree[1], kThree[0]};
  Cluster forward(kThree);
  Cluster backward(reversed);
  std::map<std::string, int> per_replica;
  for (int i = 0; i < 3000; ++i) {
    std::string scope = absl::StrCat("Chat-", i);
    const std::string& a = kThree[forward.router->Route(scope)];
    const std::string& b = reversed[backward.router->Route(scope)];
    ASSERT_EQ(a, b) << scope;
    ++per_replica[a];
  }
  for (const std::string& name : kThree) {
    EXPECT_GT(per_replica[name], 800) << name;  // a third is 1000
    EXPECT_LT(per_replica[name], 1200) << name;
  }
}

TEST(RoutingSyncClientTest, AddingAReplicaMovesOnlyTheScopesItWins) {
  Cluster three(kThree);
  std::vector<std::string> four_names = kThree;
  four_names.push_back("sync-3:50051");
  Cluster four(four_names);
  int moved = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string scope = absl::StrCat("Canvas-", i);
    size_t before = three.router->Route(scope);
    size_t after = four.router->Route(scope);
    if (after != before) {
      EXPECT_EQ(after, 3u) << scope << " moved between old replicas";
      ++moved;
    }
  }
  EXPECT_GT(moved, 350);  // about a quarter of 2000
  EXPECT_LT(moved, 650);
}

TEST(RoutingSyncClientTest, FetchAndApplyGoToTheScopesReplica) {
  Cluster c(kThree);
  std::string scope = ScopeRankingFirst(kThree, 1);
  c.Fetch(scope);
  sync::v1::ApplyRequest apply;
  apply.set_scope(scope);
  c.router->Apply(std::move(apply), [](auto) {});
  EXPECT_THAT(c.fakes[0]->calls, IsEmpty());
  EXPECT_THAT(c.fakes[1]->calls, ElementsAre("fetch " + scope, "apply " + scope));
  EXPECT_THAT(c.fakes[2]->calls, IsEmpty());
  EXPECT_EQ(c.router->PlacementForTest(scope), 1);
}

TEST(RoutingSyncClientTest, PassesOnEventsOnlyFromTheScopesReplica) {
  Cluster c(kThree);
  std::string scope = ScopeRankingFirst(kThree, 2);
  c.Fetch(scope);
  c.Commit(2, scope, 7);
  c.Commit(0, scope, 8);  // a stale replica's event
  c.Commit(2, "not-fetched", 1);
  EXPECT_THAT(c.listener.events, ElementsAre("commit " + scope + " 7"));
}

TEST(RoutingSyncClientTest, ADisconnectedReplicasScopesFailOver) {
  Cluster c(kThree);
  std::string on_0 = ScopeRankingFirst(kThree, 0);
  std::string on_1 = ScopeRankingFirst(kThree, 1);
  c.Fetch(on_0);
  c.Fetch(on_1);
  c.ClearCalls();

  c.fakes[0]->up = false;
  c.fakes[0]->listener_->OnStreamEnded();
  // Only the scope placed on the broken replica is lost.
  EXPECT_THAT(c.listener.events, ElementsAre("lost " + on_0));
  EXPECT_EQ(c.router->PlacementForTest(on_0), -1);

  // Watching it again (as the session manager does) goes elsewhere.
  c.Watch(on_0);
  size_t next = c.router->Route(on_0);
  EXPECT_NE(next, 0u);
  EXPECT_THAT(c.fakes[next]->calls, ElementsAre("watch " + on_0));
  EXPECT_THAT(c.fakes[0]->calls, IsEmpty());

  // With every replica down the router is not connected.
  EXPECT_TRUE(c.router->connected());
  c.fakes[1]->up = false;
  c.fakes[2]->up = false;
  EXPECT_FALSE(c.router->connected());
}

TEST(RoutingSyncClientTest, AReplicaComingBackTakesItsScopesBack) {
  Cluster c(kThree);
  std::string scope = ScopeRankingFirst(kThree, 0);
  std::string other = ScopeRankingFirst(kThree, 1);
  c.fakes[0]->up = false;
  c.Fetch(scope);
  c.Fetch(other);
  size_t interim = c.router->PlacementForTest(scope);
  ASSERT_NE(interim, 0u);
  c.ClearCalls();

  c.fakes[0]->up = true;
  c.fakes[0]->listener_->OnStreamStarted();
  EXPECT_THAT(c.listener.events, ElementsAre("started"));
  // The session manager re-watches every scope it holds.
  c.Watch(scope);
  c.Watch(other);
  EXPECT_EQ(c.router->PlacementForTest(scope), 0);
  EXPECT_THAT(c.fakes[interim]->calls, ::testing::Contains("unwatch " + scope));
  EXPECT_THAT(c.fakes[0]->calls, ElementsAre("watch " + scope));
  // `other` is already watched on its replica's live stream: no request.
  EXPECT_THAT(c.fakes[1]->calls,
              ::testing::Not(::testing::Contains("watch " + other)));
}

TEST(RoutingSyncClientTest, AScopeFetchedWhileItsReplicaWasDownMovesBack) {
  Cluster c(kThree);
  std::string scope = ScopeRankingFirst(kThree, 0);
  c.fakes[0]->up = false;
  c.Fetch(scope);
  size_t interim = c.router->PlacementForTest(scope);
  ASSERT_NE(interim, 0u);
  // The replica returns before the fetch is answered: the stream restart
  // finds nothing to re-watch yet, so the fetch's completion asks for it.
  c.fakes[0]->up = true;
  c.fakes[0]->listener_->OnStreamStarted();
  c.listener.events.clear();
  c.fakes[interim]->fetches[0](sync::v1::FetchResult());
  EXPECT_THAT(c.listener.events, ElementsAre("lost " + scope));
  c.Watch(scope);
  EXPECT_EQ(c.router->PlacementForTest(scope), 0);
  EXPECT_THAT(c.fakes[interim]->calls, ::testing::Contains("unwatch " + scope));
}

TEST(RoutingSyncClientTest, AScopeLostByItsReplicaIsWatchedAgain) {
  Cluster c(kThree);
  std::string scope = ScopeRankingFirst(kThree, 2);
  c.Fetch(scope);
  c.ClearCalls();
  c.fakes[1]->listener_->OnScopeLost(scope);  // not its replica: ignored
  EXPECT_THAT(c.listener.events, IsEmpty());
  c.fakes[2]->listener_->OnScopeLost(scope);
  EXPECT_THAT(c.listener.events, ElementsAre("lost " + scope));
  // The new watch goes out even though routing picks the same replica:
  // that replica loads the scope afresh and answers with a Resync.
  c.Watch(scope);
  EXPECT_THAT(c.fakes[2]->calls, ElementsAre("watch " + scope));
}

TEST(RoutingSyncClientTest, UnwatchForgetsThePlacement) {
  Cluster c(kThree);
  std::string scope = ScopeRankingFirst(kThree, 1);
  c.Fetch(scope);
  c.router->Unwatch(scope);
  EXPECT_EQ(c.router->PlacementForTest(scope), -1);
  EXPECT_THAT(c.fakes[1]->calls, ElementsAre("fetch " + scope, "unwatch " + scope));
  c.Commit(1, scope, 3);
  EXPECT_THAT(c.listener.events, IsEmpty());
}

TEST(RoutingSyncClientTest, SessionsAreAuthorizedByAConnectedReplica) {
  Cluster c(kThree);
  for (FakeReplica* f : c.fakes) f->up = false;
  c.fakes[2]->up = true;
  for (int i = 0; i < 20; ++i) {
    sync::v1::AuthorizeSessionRequest request;
    request.set_session_id(absl::StrCat("session-", i));
    c.router->AuthorizeSession(std::move(request), [](auto) {});
  }
  EXPECT_EQ(c.fakes[2]->calls.size(), 20u);
}

}  // namespace
}  // namespace jetstream::gateway
