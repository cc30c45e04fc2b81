// Tests of RoutingSyncClient with fake replicas: discovery from a seed,
// rendezvous routing over member ids, redirects and moves that keep a
// scope's requests in order, failover, and events passed on only from the
// replica a scope is placed on.

#include "gateway/sync/routing_sync_client.h"

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rendezvous.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jetstream::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string Flags(const sync::v1::Routing& r) {
  std::string out;
  if (r.take_over()) out += " take_over";
  if (r.rerouted()) out += " rerouted";
  return out;
}

// A replica: records what it is asked (with the routing hints); answers
// and events are injected by the test.
class FakeReplica : public SyncClient {
 public:
  void SetListener(Listener* listener) override { listener_ = listener; }
  void Fetch(sync::v1::FetchRequest request, FetchCallback done) override {
    calls.push_back("fetch " + request.scope() + Flags(request.routing()));
    fetches.push_back(std::move(done));
  }
  void Apply(sync::v1::ApplyRequest request, ApplyCallback done) override {
    calls.push_back("apply " + request.scope() + " " + request.session_id() +
                    Flags(request.routing()));
    applies.push_back(std::move(done));
  }
  void AuthorizeSession(sync::v1::AuthorizeSessionRequest request,
                        AuthorizeCallback) override {
    calls.push_back("authorize " + request.session_id());
  }
  void Watch(sync::v1::WatchRequest request) override {
    calls.push_back("watch " + request.scope() + Flags(request.routing()));
  }
  void Unwatch(const std::string& scope) override {
    calls.push_back("unwatch " + scope);
  }
  bool connected() const override { return up; }
  void Shutdown() override { shut_down = true; }

  // Answers the oldest fetch / apply.
  void AnswerFetch(absl::StatusOr<sync::v1::FetchResult> result) {
    ASSERT_FALSE(fetches.empty());
    FetchCallback done = std::move(fetches.front());
    fetches.erase(fetches.begin());
    done(std::move(result));
  }
  void AnswerApply(absl::StatusOr<sync::v1::ApplyResult> result) {
    ASSERT_FALSE(applies.empty());
    ApplyCallback done = std::move(applies.front());
    applies.erase(applies.begin());
    done(std::move(result));
  }

  Listener* listener_ = nullptr;
  bool up = true;
  bool shut_down = false;
  std::vector<std::string> calls;
  std::vector<FetchCallback> fetches;
  std::vector<ApplyCallback> applies;
};

// The router's listener: what the session manager would hear.
class RecordingListener : public SyncClient::Listener {
 public:
  void OnCommit(const sync::v1::Commit& commit) override {
    events.push_back(
        absl::StrCat("commit ", commit.scope(), " ", commit.version()));
  }
  void OnResync(const sync::v1::ScopeSnapshot& snapshot) override {
    events.push_back("resync " + snapshot.scope());
  }
  void OnStreamStarted() override { events.push_back("started"); }
  void OnScopeLost(const std::string& scope) override {
    events.push_back("lost " + scope);
    if (rewatch) rewatch(scope);
  }
  std::vector<std::string> events;
  // What the session manager does: watch the scope again, at once.
  std::function<void(const std::string&)> rewatch;
};

sync::v1::FetchResult Redirect(const std::string& id,
                               const std::string& address) {
  sync::v1::FetchResult r;
  r.mutable_redirect()->set_member_id(id);
  r.mutable_redirect()->set_address(address);
  return r;
}
sync::v1::ApplyResult ApplyRedirect(const std::string& id,
                                    const std::string& address) {
  sync::v1::ApplyResult r;
  r.mutable_redirect()->set_member_id(id);
  r.mutable_redirect()->set_address(address);
  return r;
}
sync::v1::ApplyResult Applied() {
  sync::v1::ApplyResult r;
  r.add_replies();
  return r;
}

// A router over fake replicas, made on demand by address.
struct Gateway {
  explicit Gateway(std::vector<std::string> seeds) {
    router = std::make_unique<RoutingSyncClient>(
        std::move(seeds),
        [this](const std::string& address) {
          auto fake = std::make_unique<FakeReplica>();
          replicas[address] = fake.get();
          order.push_back(address);
          return fake;
        },
        [this](absl::Duration delay, std::function<void()> task) {
          scheduled.push_back({delay, std::move(task)});
        });
    router->SetListener(&listener);
    listener.rewatch = [this](const std::string& scope) {
      if (watching.count(scope)) Watch(scope);
    };
  }

  FakeReplica& at(const std::string& address) {
    EXPECT_TRUE(replicas.count(address)) << address;
    return *replicas[address];
  }
  // Runs what the router scheduled (zero-delay answers, backoffs).
  void RunScheduled() {
    while (!scheduled.empty()) {
      auto task = std::move(scheduled.front().second);
      scheduled.erase(scheduled.begin());
      task();
    }
  }

  // Every replica at `from` reports the cluster `members` (id -> address).
  void Members(const std::string& from,
               const std::vector<std::pair<std::string, std::string>>& members,
               int64_t as_of) {
    sync::v1::Membership m;
    for (const auto& [id, address] : members) {
      sync::v1::Member* member = m.add_members();
      member->set_id(id);
      member->set_address(address);
    }
    m.set_as_of_micros(as_of);
    at(from).listener_->OnMembership(m);
  }
  void Standalone(const std::string& seed) {
    sync::v1::Membership m;
    m.set_standalone(true);
    at(seed).listener_->OnMembership(m);
  }

  void Fetch(const std::string& scope) {
    sync::v1::FetchRequest request;
    request.set_scope(scope);
    router->Fetch(std::move(request), [this, scope](auto result) {
      answers.push_back(!result.ok()
                            ? "fetch error"
                            : (result->has_redirect() ? "fetch REDIRECT"
                                                      : "fetched " + scope));
    });
  }
  void Apply(const std::string& scope, const std::string& session) {
    sync::v1::ApplyRequest request;
    request.set_scope(scope);
    request.set_session_id(session);
    router->Apply(std::move(request), [this, session](auto result) {
      answers.push_back(!result.ok()
                            ? "apply error " + session
                            : (result->has_redirect() ? "apply REDIRECT"
                                                      : "applied " + session));
    });
  }
  void Watch(const std::string& scope) {
    watching.insert(scope);
    sync::v1::WatchRequest request;
    request.set_scope(scope);
    request.set_epoch("e");
    router->Watch(std::move(request));
  }
  void Commit(const std::string& address, const std::string& scope,
              uint64_t version) {
    sync::v1::Commit commit;
    commit.set_scope(scope);
    commit.set_version(version);
    at(address).listener_->OnCommit(commit);
  }
  void ClearCalls() {
    for (auto& [address, fake] : replicas) fake->calls.clear();
    listener.events.clear();
    answers.clear();
  }

  std::map<std::string, FakeReplica*> replicas;  // owned by the router
  std::vector<std::string> order;
  std::vector<std::pair<absl::Duration, std::function<void()>>> scheduled;
  std::unique_ptr<RoutingSyncClient> router;
  RecordingListener listener;
  std::vector<std::string> answers;
  std::set<std::string> watching;  // scopes the "sessions" watch
};

// A scope name that ranks `want` first among `ids`.
std::string ScopeRankingFirst(const std::vector<std::string>& ids,
                              const std::string& want, int skip = 0) {
  for (int i = 0;; ++i) {
    std::string scope = absl::StrCat("Canvas-", i);
    if (ids[RankByRendezvous(ids, scope).front()] == want && skip-- == 0) {
      return scope;
    }
  }
}

const std::vector<std::pair<std::string, std::string>> kThree = {
    {"sync-0", "10.0.0.1:50051"},
    {"sync-1", "10.0.0.2:50051"},
    {"sync-2", "10.0.0.3:50051"}};
const std::vector<std::string> kIds = {"sync-0", "sync-1", "sync-2"};

// A gateway with one seed that reported the three members.
struct Clustered : Gateway {
  Clustered() : Gateway({"dns:///sync"}) {
    Members("dns:///sync", kThree, 100);
    for (const auto& [id, address] : kThree)
      at(address).listener_->OnStreamStarted();
    listener.events.clear();
  }
};

TEST(RoutingSyncClientTest, LearnsTheMembersFromOneSeedAndRoutesOverTheirIds) {
  Clustered g;
  EXPECT_THAT(g.router->MembersForTest(),
              ElementsAre("sync-0", "sync-1", "sync-2"));
  EXPECT_THAT(g.order, ElementsAre("dns:///sync", "10.0.0.1:50051",
                                   "10.0.0.2:50051", "10.0.0.3:50051"));
  // Every scope goes to the member its ranking puts first, by id.
  for (const auto& [id, address] : kThree) {
    const std::string scope = ScopeRankingFirst(kIds, id);
    g.Fetch(scope);
    EXPECT_THAT(g.at(address).calls, ElementsAre("fetch " + scope)) << id;
    EXPECT_EQ(g.router->PlacementForTest(scope), id);
    g.at(address).calls.clear();
  }
  // The seed itself carries no scope.
  EXPECT_THAT(g.at("dns:///sync").calls, IsEmpty());
}

TEST(RoutingSyncClientTest, ANewerViewWinsAndAnOlderOneIsIgnored) {
  Clustered g;
  g.Members("10.0.0.1:50051", {kThree[0], kThree[1]}, 200);
  EXPECT_THAT(g.router->MembersForTest(), ElementsAre("sync-0", "sync-1"));
  g.Members("10.0.0.2:50051", kThree, 150);  // read before the last one
  EXPECT_THAT(g.router->MembersForTest(), ElementsAre("sync-0", "sync-1"));
  g.Members("10.0.0.2:50051",
            {kThree[0], kThree[1], {"sync-3", "10.0.0.4:50051"}}, 300);
  EXPECT_THAT(g.router->MembersForTest(),
              ElementsAre("sync-0", "sync-1", "sync-3"));
  EXPECT_TRUE(g.replicas.count("10.0.0.4:50051"));
}

TEST(RoutingSyncClientTest, ARedirectedFetchIsAnsweredWhereTheRedirectPoints) {
  Clustered g;
  const std::string scope = ScopeRankingFirst(kIds, "sync-0");
  g.Fetch(scope);
  // sync-0 does not hold it: sync-2 does.
  g.at("10.0.0.1:50051").AnswerFetch(Redirect("sync-2", "10.0.0.3:50051"));
  EXPECT_THAT(g.answers, IsEmpty());  // the caller never sees the redirect
  EXPECT_THAT(g.at("10.0.0.3:50051").calls,
              ElementsAre("fetch " + scope + " rerouted"));
  EXPECT_EQ(g.router->PlacementForTest(scope), "sync-2");
  EXPECT_THAT(g.listener.events, ElementsAre("lost " + scope));
  g.at("10.0.0.3:50051").AnswerFetch(sync::v1::FetchResult());
  EXPECT_THAT(g.answers, ElementsAre("fetched " + scope));
  // Later requests go straight there, as ordinary ones.
  g.Apply(scope, "s");
  EXPECT_THAT(g.at("10.0.0.3:50051").calls.back(), "apply " + scope + " s");
}

TEST(RoutingSyncClientTest, AMovingScopesRequestsKeepTheirOrder) {
  Clustered g;
  const std::string scope = ScopeRankingFirst(kIds, "sync-0");
  FakeReplica& a = g.at("10.0.0.1:50051");
  FakeReplica& c = g.at("10.0.0.3:50051");
  g.Apply(scope, "1");
  g.Apply(scope, "2");
  // The first is redirected; the second is still on its way.
  a.AnswerApply(ApplyRedirect("sync-2", "10.0.0.3:50051"));
  g.Apply(scope, "3");  // made while the scope moves: held
  EXPECT_THAT(c.calls, IsEmpty());
  a.AnswerApply(ApplyRedirect("sync-2", "10.0.0.3:50051"));
  // All three reach the new holder in the order they were made.
  EXPECT_THAT(c.calls, ElementsAre("apply " + scope + " 1 rerouted",
                                   "apply " + scope + " 2 rerouted",
                                   "apply " + scope + " 3 rerouted"));
  c.AnswerApply(Applied());
  c.AnswerApply(Applied());
  c.AnswerApply(Applied());
  EXPECT_THAT(g.answers, ElementsAre("applied 1", "applied 2", "applied 3"));
}

TEST(RoutingSyncClientTest, ARedirectToAReplicaThatIsDownMayTakeTheLeaseOver) {
  Clustered g;
  const std::string scope = ScopeRankingFirst(kIds, "sync-0");
  // sync-2, the holder, was up and is down.
  g.at("10.0.0.3:50051").up = false;
  g.at("10.0.0.3:50051").listener_->OnStreamEnded();
  g.Fetch(scope);
  g.at("10.0.0.1:50051").AnswerFetch(Redirect("sync-2", "10.0.0.3:50051"));
  // Resent where routing points instead: a resend (which ends the stream's
  // redirect) that may take the lease over.
  EXPECT_THAT(
      g.at("10.0.0.1:50051").calls,
      ElementsAre("fetch " + scope, "fetch " + scope + " take_over rerouted"));
  g.Apply(scope, "later");
  EXPECT_EQ(g.at("10.0.0.1:50051").calls.back(),
            "apply " + scope + " later take_over");
}

TEST(RoutingSyncClientTest, AnApplyAnsweredBeforeTheMoveStaysAnswered) {
  Clustered g;
  const std::string scope = ScopeRankingFirst(kIds, "sync-0");
  FakeReplica& a = g.at("10.0.0.1:50051");
  g.Apply(scope, "1");
  g.Apply(scope, "2");
  a.AnswerApply(Applied());
  a.AnswerApply(ApplyRedirect("sync-1", "10.0.0.2:50051"));
  EXPECT_THAT(g.at("10.0.0.2:50051").calls,
              ElementsAre("apply " + scope + " 2 rerouted"));
  EXPECT_THAT(g.answers, ElementsAre("applied 1"));
}

TEST(RoutingSyncClientTest, AScopeLostWithADestinationMovesItsWatchThere) {
  Clustered g;
  const std::string scope = ScopeRankingFirst(kIds, "sync-0");
  g.Watch(scope);
  EXPECT_THAT(g.at("10.0.0.1:50051").calls, ElementsAre("watch " + scope));
  // Handed off to sync-1: events from sync-0 no longer count.
  sync::v1::ScopeLost lost;
  lost.set_scope(scope);
  lost.mutable_moved_to()->set_member_id("sync-1");
  lost.mutable_moved_to()->set_address("10.0.0.2:50051");
  g.at("10.0.0.1:50051").listener_->OnScopeLostEvent(lost);
  EXPECT_THAT(g.listener.events, ElementsAre("lost " + scope));
  EXPECT_THAT(g.at("10.0.0.2:50051").calls,
              ElementsAre("watch " + scope + " rerouted"));
  g.listener.events.clear();
  g.Commit("10.0.0.1:50051", scope, 5);
  g.Commit("10.0.0.2:50051", scope, 6);
  EXPECT_THAT(g.listener.events, ElementsAre("commit " + scope + " 6"));
}

TEST(RoutingSyncClientTest, AMemberLeavingTheViewHasItsScopesMoved) {
  Clustered g;
  const std::string scope = ScopeRankingFirst(kIds, "sync-0");
  g.Watch(scope);
  g.ClearCalls();
  // sync-0 stopped heartbeating (paused, say) although its stream is up.
  g.Members("10.0.0.2:50051", {kThree[1], kThree[2]}, 200);
  const std::vector<std::string> rest = {"sync-1", "sync-2"};
  const std::string next =
      rest[RankByRendezvous(rest, scope).front()] == "sync-1"
          ? "10.0.0.2:50051"
          : "10.0.0.3:50051";
  EXPECT_THAT(g.listener.events, ElementsAre("lost " + scope));
  EXPECT_THAT(g.at(next).calls, ElementsAre("watch " + scope));
  // Its client is shut down once nothing is placed there any more.
  g.RunScheduled();
  EXPECT_TRUE(g.at("10.0.0.1:50051").shut_down);
}

TEST(RoutingSyncClientTest, AFetchWhoseStreamEndedIsSentAgainAndAnApplyIsNot) {
  Clustered g;
  const std::string scope = ScopeRankingFirst(kIds, "sync-0");
  FakeReplica& a = g.at("10.0.0.1:50051");
  g.Fetch(scope);
  g.Apply(scope, "1");
  a.up = false;
  a.listener_->OnStreamEnded();
  // What the stream's end does to pending requests.
  a.AnswerFetch(absl::UnknownError("lost"));
  a.AnswerApply(absl::UnknownError("lost"));
  EXPECT_THAT(g.answers, ElementsAre("apply error 1"));
  const std::vector<std::string> rest = {"sync-1", "sync-2"};
  const std::string next =
      rest[RankByRendezvous(rest, scope).front()] == "sync-1"
          ? "10.0.0.2:50051"
          : "10.0.0.3:50051";
  // Sent to the next member in the ranking; its owner may be unreachable
  // from here, so it may take the lease over.
  EXPECT_THAT(g.at(next).calls, ElementsAre("fetch " + scope + " take_over"));
}

TEST(RoutingSyncClientTest,
     AScopeLostWithNowhereToGoIsWatchedAgainAfterABackoff) {
  Clustered g;
  const std::string scope = ScopeRankingFirst(kIds, "sync-0");
  g.Watch(scope);
  sync::v1::ScopeLost lost;
  lost.set_scope(scope);
  g.at("10.0.0.1:50051").listener_->OnScopeLostEvent(lost);
  EXPECT_THAT(g.listener.events, ElementsAre("lost " + scope));  // at once
  g.listener.events.clear();
  g.at("10.0.0.1:50051").listener_->OnScopeLostEvent(lost);
  // Again: not at once.
  EXPECT_THAT(g.listener.events, IsEmpty());
  ASSERT_EQ(g.scheduled.size(), 1u);
  EXPECT_EQ(g.scheduled[0].first, absl::Milliseconds(50));
  g.RunScheduled();
  EXPECT_THAT(g.listener.events, ElementsAre("lost " + scope));
}

TEST(RoutingSyncClientTest, StandaloneSeedsAreMembersNamedAsWritten) {
  Gateway g({"a:1", "b:1", "c:1"});
  for (const char* seed : {"a:1", "b:1", "c:1"}) g.Standalone(seed);
  const std::vector<std::string> names = {"a:1", "b:1", "c:1"};
  EXPECT_THAT(g.router->MembersForTest(), ElementsAre("a:1", "b:1", "c:1"));
  for (const std::string& name : names) {
    const std::string scope = ScopeRankingFirst(names, name);
    g.Fetch(scope);
    g.Apply(scope, "s");
    EXPECT_THAT(g.at(name).calls,
                ElementsAre("fetch " + scope, "apply " + scope + " s"));
    g.at(name).calls.clear();
  }
  // The same gateway with the list in another order routes the same.
  Gateway reversed({"c:1", "b:1", "a:1"});
  for (const char* seed : {"c:1", "b:1", "a:1"}) reversed.Standalone(seed);
  for (int i = 0; i < 30; ++i) {
    const std::string scope = absl::StrCat("scope-", i);
    EXPECT_EQ(g.router->RouteForTest(scope),
              reversed.router->RouteForTest(scope));
  }
}

TEST(RoutingSyncClientTest, AStandaloneReplicaComingBackTakesItsScopesBack) {
  Gateway g({"a:1", "b:1"});
  g.Standalone("a:1");
  g.Standalone("b:1");
  g.at("a:1").listener_->OnStreamStarted();
  g.at("b:1").listener_->OnStreamStarted();
  g.listener.events.clear();
  const std::vector<std::string> names = {"a:1", "b:1"};
  const std::string scope = ScopeRankingFirst(names, "a:1");
  g.Watch(scope);
  g.at("a:1").up = false;
  g.at("a:1").listener_->OnStreamEnded();
  EXPECT_THAT(g.at("b:1").calls, ElementsAre("watch " + scope + " take_over"));
  g.ClearCalls();
  g.at("a:1").up = true;
  g.at("a:1").listener_->OnStreamStarted();
  EXPECT_THAT(g.listener.events, ElementsAre("lost " + scope, "started"));
  EXPECT_THAT(g.at("b:1").calls, ElementsAre("unwatch " + scope));
  EXPECT_THAT(g.at("a:1").calls, ElementsAre("watch " + scope + " rerouted"));
}

TEST(RoutingSyncClientTest, PassesOnEventsOnlyFromTheScopesReplica) {
  Clustered g;
  const std::string scope = ScopeRankingFirst(kIds, "sync-1");
  g.Watch(scope);
  g.Commit("10.0.0.1:50051", scope, 1);
  g.Commit("10.0.0.2:50051", scope, 2);
  EXPECT_THAT(g.listener.events, ElementsAre("commit " + scope + " 2"));
}

TEST(RoutingSyncClientTest, UnwatchForgetsThePlacement) {
  Clustered g;
  const std::string scope = ScopeRankingFirst(kIds, "sync-1");
  g.Watch(scope);
  g.router->Unwatch(scope);
  EXPECT_EQ(g.router->PlacementForTest(scope), "");
  EXPECT_THAT(g.at("10.0.0.2:50051").calls,
              ElementsAre("watch " + scope, "unwatch " + scope));
}

TEST(RoutingSyncClientTest, SessionsAreAuthorizedByAConnectedMember) {
  Clustered g;
  for (auto& [id, address] : kThree) g.at(address).up = false;
  g.at("10.0.0.3:50051").up = true;
  sync::v1::AuthorizeSessionRequest request;
  request.set_session_id("s1");
  g.router->AuthorizeSession(request, [](auto) {});
  EXPECT_THAT(g.at("10.0.0.3:50051").calls, ElementsAre("authorize s1"));
  EXPECT_TRUE(g.router->connected());
  g.at("10.0.0.3:50051").up = false;
  EXPECT_FALSE(g.router->connected());
}

TEST(RoutingSyncClientTest, BeforeAnyMemberIsKnownRequestsGoToASeed) {
  Gateway g({"dns:///sync"});
  g.Fetch("Canvas");
  EXPECT_THAT(g.at("dns:///sync").calls, ElementsAre("fetch Canvas"));
  EXPECT_TRUE(g.router->connected());
}

}  // namespace
}  // namespace jetstream::gateway
