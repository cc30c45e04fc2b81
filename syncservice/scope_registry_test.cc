#include "syncservice/scope_registry.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/rendezvous.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "syncservice/scope_config.h"
#include "tests/testing/engine_fixtures.h"
#include "tests/testing/status_matchers.h"

namespace jetstream {
namespace {

using ::jetstream::testing::DemoSchema;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"({
  "scopes": [
    {"name": "Canvas", "root": {"clsName": "Canvas", "properties": {"name": "Static"}}},
    {"name": "canvas/fixed", "root": {"clsName": "Canvas", "properties": {"name": "Fixed"}}}
  ],
  "templates": [
    {"pattern": "canvas/*", "root": {"clsName": "Canvas", "properties": {"name": "Templated"}}},
    {"pattern": "chat/*", "root": {"clsName": "ChatRoom", "properties": {
       "attributes": {"clsName": "ChatRoomAttributes", "properties": {"topic": "T"}}}}}
  ]
})";

std::unique_ptr<ScopeRegistry> NewRegistry(ScopeRegistryOptions options = {}) {
  return ScopeRegistry::Create(DemoSchema(),
                               ParseScopeConfig(kConfig, "test.json").value(),
                               options)
      .value();
}

std::string StateOf(ScopeHost& host) { return *host.Snapshot().fragments_json; }

TEST(ScopeRegistryTest, StaticScopesExistFromTheStart) {
  auto registry = NewRegistry();
  ASSERT_NE(registry->Find("Canvas"), nullptr);
  absl::StatusOr<std::shared_ptr<ScopeHost>> host = registry->Fetch("Canvas");
  ASSERT_OK(host);
  EXPECT_EQ(host->get(), registry->Find("Canvas").get());
  EXPECT_EQ((*host)->name(), "Canvas");
}

TEST(ScopeRegistryTest, UnknownNamesAreNoSuchScope) {
  auto registry = NewRegistry();
  absl::StatusOr<std::shared_ptr<ScopeHost>> host = registry->Fetch("Nope");
  EXPECT_EQ(host.status(), absl::NotFoundError("No such scope"));
  EXPECT_EQ(registry->Find("Nope"), nullptr);
}

TEST(ScopeRegistryTest, TemplatesCreateOnFirstFetchOnly) {
  auto registry = NewRegistry();
  EXPECT_EQ(registry->Find("chat/lobby"), nullptr);
  std::shared_ptr<ScopeHost> first = registry->Fetch("chat/lobby").value();
  EXPECT_EQ(first->Info().root_model, "ChatRoom");
  EXPECT_EQ(first->Info().object_count, 2u);
  EXPECT_EQ(registry->Fetch("chat/lobby").value(), first);
  EXPECT_EQ(registry->Find("chat/lobby"), first);
  // Another name, another scope with its own objects and epoch.
  std::shared_ptr<ScopeHost> other = registry->Fetch("chat/other").value();
  EXPECT_NE(other, first);
  EXPECT_NE(other->Snapshot().root_uuid, first->Snapshot().root_uuid);
  EXPECT_NE(other->epoch(), first->epoch());
}

TEST(ScopeRegistryTest, StaticScopesTakePrecedenceOverTemplates) {
  auto registry = NewRegistry();
  EXPECT_THAT(StateOf(*registry->Fetch("canvas/fixed").value()),
              HasSubstr(R"("name":"Fixed")"));
  EXPECT_THAT(StateOf(*registry->Fetch("canvas/x").value()),
              HasSubstr(R"("name":"Templated")"));
}

TEST(ScopeRegistryTest, ListIsSortedByName) {
  auto registry = NewRegistry();
  registry->Fetch("chat/b").value();
  registry->Fetch("canvas/a").value();
  std::vector<std::string> names;
  for (const auto& host : registry->List()) names.push_back(host->name());
  EXPECT_EQ(names, (std::vector<std::string>{"Canvas", "canvas/a",
                                             "canvas/fixed", "chat/b"}));
}

TEST(ScopeRegistryTest, LimitsOnTemplateScopes) {
  ScopeRegistryOptions options;
  options.max_scopes = 3;
  options.max_name_length = 16;
  auto registry = NewRegistry(options);
  EXPECT_OK(registry->Fetch("chat/1"));
  EXPECT_EQ(registry->Fetch("chat/2").status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(registry->Fetch("chat/1").ok());  // existing ones still work
  EXPECT_EQ(registry->Fetch("chat/a-very-long-name").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ScopeRegistryTest, BadScopesFailAtStartupNamingFileAndScope) {
  absl::StatusOr<std::unique_ptr<ScopeRegistry>> registry =
      ScopeRegistry::Create(
          DemoSchema(),
          ParseScopeConfig(R"({"scopes": [{"name": "Broken", "root":
              {"clsName": "Canvas", "properties": {"shapes": 3}}}]})",
                           "conf/scopes.json")
              .value());
  ASSERT_FALSE(registry.ok());
  EXPECT_EQ(registry.status().message(),
            "conf/scopes.json: scope 'Broken': the root Canvas is refused: "
            "Not valid type at 'shapes', should be array of UUIDs");
}

TEST(ScopeRegistryTest, BadTemplatesFailAtStartupToo) {
  absl::StatusOr<std::unique_ptr<ScopeRegistry>> registry =
      ScopeRegistry::Create(
          DemoSchema(),
          ParseScopeConfig(R"({"templates": [{"pattern": "x/*", "root":
              {"clsName": "Unknown"}}]})",
                           "conf/scopes.json")
              .value());
  ASSERT_FALSE(registry.ok());
  EXPECT_EQ(registry.status().message(),
            "conf/scopes.json: template 'x/*': No such model 'Unknown' for a "
            "scope root");
}

namespace loading {

// A store whose loads of one scope wait until the test lets them go; the
// rest of it holds nothing (every scope is new) and writes nothing.
class GatedStore : public ScopeStore {
 public:
  explicit GatedStore(std::string gated) : gated_(std::move(gated)) {}

  absl::StatusOr<std::optional<StoredScope>> Load(
      const std::string& scope) override {
    absl::MutexLock lock(&mu_);
    ++loads_[scope];
    if (scope == gated_) {
      waiting_ = true;
      mu_.Await(absl::Condition(&open_));
    }
    return std::optional<StoredScope>();
  }
  absl::Status Create(const std::string&, const StoredSnapshot&) override {
    return absl::OkStatus();
  }
  void Append(const std::string&, StoredCommit,
              std::function<void(absl::Status)> done) override {
    std::thread([done = std::move(done)] { done(absl::OkStatus()); }).detach();
  }
  absl::Status SaveSnapshot(const std::string&,
                            const StoredSnapshot&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> List() override {
    return std::vector<std::string>();
  }
  ScopeStoreStats Stats() const override { return {}; }

  void Open() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }
  bool WaitUntilWaiting() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&waiting_), absl::Seconds(10));
  }
  int loads(const std::string& scope) {
    absl::MutexLock lock(&mu_);
    return loads_[scope];
  }

 private:
  const std::string gated_;
  absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, int> loads_ ABSL_GUARDED_BY(mu_);
};

TEST(ScopeRegistryLoadingTest,
     ASlowLoadHoldsUpNoOtherScopeAndServesItsWaitersInOrder) {
  GatedStore store("canvas/slow");
  ScopeRegistryOptions options;
  options.store = &store;
  auto registry = NewRegistry(options);

  absl::Mutex mu;
  std::vector<int> answered;
  for (int i = 0; i < 3; ++i) {
    registry->Acquire("canvas/slow", RoutingHints{}, [&, i](ScopeLookup found) {
      EXPECT_NE(found.host, nullptr);
      absl::MutexLock lock(&mu);
      answered.push_back(i);
    });
  }
  ASSERT_TRUE(store.WaitUntilWaiting());
  // Another scope loads and serves while the first one's load is stuck.
  absl::StatusOr<std::shared_ptr<ScopeHost>> fast =
      registry->Fetch("canvas/fast");
  ASSERT_OK(fast);
  EXPECT_EQ(registry->Find("canvas/slow"), nullptr);
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(answered.empty());
  }
  store.Open();
  absl::StatusOr<std::shared_ptr<ScopeHost>> slow =
      registry->Fetch("canvas/slow");
  ASSERT_OK(slow);
  absl::MutexLock lock(&mu);
  // One load for all of them; answered in the order they asked.
  EXPECT_EQ(store.loads("canvas/slow"), 1);
  EXPECT_THAT(answered, ::testing::ElementsAre(0, 1, 2));
}

// A cluster the test drives: who holds which lease, who is live.
class FakeCluster : public Cluster {
 public:
  explicit FakeCluster(Member self) : self_(std::move(self)) {}

  void SetListener(Listener*) override {}
  Member self() const override { return self_; }
  bool standalone() const override { return false; }
  MemberView members() const override {
    absl::MutexLock lock(&mu_);
    return view_;
  }
  absl::StatusOr<LeaseOutcome> Acquire(const std::string& scope) override {
    absl::MutexLock lock(&mu_);
    ++acquires_;
    LeaseOutcome outcome;
    auto it = holders_.find(scope);
    if (it != holders_.end() && it->second.id != self_.id) {
      outcome.holder = it->second;
      outcome.holder_live = true;
      outcome.expires_in = absl::Milliseconds(20);
      return outcome;
    }
    outcome.granted = true;
    outcome.epoch = ++epochs_[scope];
    holders_[scope] = self_;
    valid_[scope] = outcome.epoch;
    return outcome;
  }
  void Release(const std::string& scope, uint64_t epoch) override {
    absl::MutexLock lock(&mu_);
    if (valid_[scope] == epoch) {
      valid_.erase(scope);
      holders_.erase(scope);
      released_.push_back(scope);
    }
  }
  bool Valid(const std::string& scope, uint64_t epoch) const override {
    absl::MutexLock lock(&mu_);
    auto it = valid_.find(scope);
    return it != valid_.end() && it->second == epoch;
  }
  void Drain() override {}

  void SetMembers(std::vector<Member> members) {
    absl::MutexLock lock(&mu_);
    view_.members = std::move(members);
    ++view_.as_of_micros;
  }
  void SetHolder(const std::string& scope, std::optional<Member> holder) {
    absl::MutexLock lock(&mu_);
    if (holder.has_value()) {
      holders_[scope] = *holder;
    } else {
      holders_.erase(scope);
    }
  }
  void Expire(const std::string& scope) {
    absl::MutexLock lock(&mu_);
    valid_.erase(scope);
  }
  std::vector<std::string> released() {
    absl::MutexLock lock(&mu_);
    return released_;
  }

 private:
  const Member self_;
  mutable absl::Mutex mu_;
  MemberView view_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Member> holders_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> epochs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> valid_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> released_ ABSL_GUARDED_BY(mu_);
  int acquires_ ABSL_GUARDED_BY(mu_) = 0;
};

const Member kMe{"me", "10.0.0.1:50051"};
const Member kOther{"other", "10.0.0.2:50051"};

// A scope that ranks `first` before the other of {me, other}.
std::string ScopePreferring(const std::string& first) {
  const std::vector<std::string> ids = {kMe.id, kOther.id};
  for (int i = 0;; ++i) {
    std::string scope = absl::StrCat("canvas/s", i);
    if (ids[RankByRendezvous(ids, scope).front()] == first) return scope;
  }
}

ScopeLookup AcquireAndWait(ScopeRegistry& registry, const std::string& scope,
                           RoutingHints hints = {}) {
  absl::Notification done;
  ScopeLookup out;
  registry.Acquire(scope, hints, [&](ScopeLookup l) {
    out = std::move(l);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

struct Clustered {
  Clustered() : cluster(kMe) {
    cluster.SetMembers({kMe, kOther});
    ScopeRegistryOptions options;
    options.cluster = &cluster;
    options.max_lease_wait = absl::Seconds(10);
    registry = NewRegistry(options);
  }
  FakeCluster cluster;
  std::unique_ptr<ScopeRegistry> registry;
};

TEST(ScopeRegistryLeaseTest,
     AFreshRequestForAScopeThatPrefersAnotherMemberIsRedirected) {
  Clustered c;
  const std::string scope = ScopePreferring(kOther.id);
  ScopeLookup found = AcquireAndWait(*c.registry, scope);
  EXPECT_EQ(found.host, nullptr);
  ASSERT_TRUE(found.redirect.has_value());
  EXPECT_EQ(*found.redirect, kOther);
  // A resend after a redirect goes there too: a replica that just handed
  // the scope off must not take it back.
  found = AcquireAndWait(*c.registry, scope, RoutingHints{false, true});
  EXPECT_EQ(found.host, nullptr);
  ASSERT_TRUE(found.redirect.has_value());
  EXPECT_EQ(*found.redirect, kOther);
  // Only a gateway that cannot reach the preferred member has it served
  // here.
  found = AcquireAndWait(*c.registry, scope, RoutingHints{true, false});
  ASSERT_NE(found.host, nullptr);
  EXPECT_EQ(found.host->lease_epoch(), 1u);
}

TEST(ScopeRegistryLeaseTest, AScopeWhoseLeaseIsHeldElsewhereIsRedirectedThere) {
  Clustered c;
  const std::string scope = ScopePreferring(kMe.id);
  c.cluster.SetHolder(scope, kOther);
  ScopeLookup found = AcquireAndWait(*c.registry, scope);
  ASSERT_TRUE(found.redirect.has_value());
  EXPECT_EQ(*found.redirect, kOther);
  // A take-over request waits for the lease instead, and gets it once it
  // is free.
  absl::Notification served;
  c.registry->Acquire(scope, RoutingHints{true, false}, [&](ScopeLookup l) {
    EXPECT_NE(l.host, nullptr);
    served.Notify();
  });
  EXPECT_FALSE(served.HasBeenNotified());
  c.cluster.SetHolder(scope, std::nullopt);
  EXPECT_TRUE(served.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(ScopeRegistryLeaseTest,
     ALostLeaseStopsTheHostAndTheNextRequestLoadsAfresh) {
  Clustered c;
  const std::string scope = ScopePreferring(kMe.id);
  ScopeLookup first = AcquireAndWait(*c.registry, scope);
  ASSERT_NE(first.host, nullptr);
  c.cluster.Expire(scope);
  c.registry->OnLeaseLost(scope, 1, absl::AbortedError("ran out"));
  EXPECT_TRUE(first.host->failed());
  ScopeLookup second = AcquireAndWait(*c.registry, scope);
  ASSERT_NE(second.host, nullptr);
  EXPECT_NE(second.host, first.host);
  EXPECT_EQ(second.host->lease_epoch(), 2u);
}

TEST(ScopeRegistryLeaseTest, AScopeThatNowPrefersAnotherMemberIsHandedOff) {
  Clustered c;
  c.cluster.SetMembers({kMe});
  const std::string scope = ScopePreferring(kOther.id);
  ScopeLookup found = AcquireAndWait(*c.registry, scope);
  ASSERT_NE(found.host, nullptr);
  // The other member joins: the scope goes to it, its lease is released
  // and requests meanwhile are redirected there.
  c.cluster.SetMembers({kMe, kOther});
  c.registry->OnMembersChanged(c.cluster.members());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (c.cluster.released().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));  // the handoff runs on a worker
  }
  EXPECT_THAT(c.cluster.released(), ::testing::ElementsAre(scope));
  EXPECT_TRUE(found.host->failed());
  ScopeLookup after = AcquireAndWait(*c.registry, scope);
  ASSERT_TRUE(after.redirect.has_value());
  EXPECT_EQ(*after.redirect, kOther);
}

// A membership change that arrives while the loaded host is being handed
// to its waiters (here: from the waiter's own callback) is not lost: the
// handoff follows as soon as they have it.
TEST(ScopeRegistryLeaseTest, AMembersChangeDuringTheFirstAnswerStillHandsOff) {
  Clustered c;
  c.cluster.SetMembers({kMe});
  const std::string scope = ScopePreferring(kOther.id);
  absl::Notification answered;
  ScopeLookup found;
  c.registry->Acquire(scope, RoutingHints{}, [&](ScopeLookup l) {
    found = std::move(l);
    c.cluster.SetMembers({kMe, kOther});
    c.registry->OnMembersChanged(c.cluster.members());
    answered.Notify();
  });
  answered.WaitForNotification();
  ASSERT_NE(found.host, nullptr);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (c.cluster.released().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));  // the handoff runs on a worker
  }
  EXPECT_THAT(c.cluster.released(), ::testing::ElementsAre(scope));
  ScopeLookup after = AcquireAndWait(*c.registry, scope);
  ASSERT_TRUE(after.redirect.has_value());
  EXPECT_EQ(*after.redirect, kOther);
}

}  // namespace loading

}  // namespace
}  // namespace jetstream
