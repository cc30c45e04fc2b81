// PostgresCluster against a real PostgreSQL server started by the test:
// members see each other, a lease has one holder at a time, epochs grow,
// a lease runs out when it is not renewed, a takeover waits for a commit
// still running under the old lease, and a commit under a lost lease is
// refused by the store.

#include "syncservice/cluster/postgres_cluster.h"

#include <postgresql/libpq-fe.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "syncservice/storage/postgres_scope_store.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

PostgresServer* g_server = nullptr;

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto server = PostgresServer::Start();
    ASSERT_OK(server);
    server_ = *std::move(server);
    g_server = server_.get();
  }
  void TearDown() override {
    g_server = nullptr;
    server_.reset();
  }

 private:
  std::unique_ptr<PostgresServer> server_;
};

::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

// Records what a cluster tells; waits for it.
class RecordingListener : public Cluster::Listener {
 public:
  // Keeps the newest view (a seeded one may race with the cluster's).
  void OnMembersChanged(const MemberView& view) override {
    absl::MutexLock lock(&mu_);
    if (!views_.empty() && views_.back().as_of_micros > view.as_of_micros) {
      return;
    }
    views_.push_back(view);
  }
  void OnLeaseLost(const std::string& scope, uint64_t epoch,
                   const absl::Status& why) override {
    absl::MutexLock lock(&mu_);
    lost_.push_back(absl::StrCat(scope, "@", epoch, ": ", why.message()));
  }

  // Waits until the latest view has exactly `ids`.
  bool WaitForMembers(const std::vector<std::string>& ids,
                      absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    auto has = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (views_.empty()) return false;
      std::vector<std::string> got;
      for (const Member& m : views_.back().members) got.push_back(m.id);
      return got == ids;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&has), timeout);
  }
  bool WaitForLost(size_t n, absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return lost_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  std::vector<std::string> lost() {
    absl::MutexLock lock(&mu_);
    return lost_;
  }

 private:
  absl::Mutex mu_;
  std::vector<MemberView> views_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> lost_ ABSL_GUARDED_BY(mu_);
};

class PostgresClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conninfo = g_server->NewSchema();
    ASSERT_OK(conninfo);
    conninfo_ = *conninfo;
    // The store owns the schema: it creates the cluster's tables.
    auto store = PostgresScopeStore::Open(conninfo_);
    ASSERT_OK(store);
    store_ = *std::move(store);
  }

  std::unique_ptr<PostgresCluster> StartMember(
      const std::string& id, RecordingListener* listener,
      absl::Duration ttl = absl::Milliseconds(900),
      std::string incarnation = "") {
    PostgresClusterOptions options;
    options.self = {id, absl::StrCat(id, ":50051")};
    options.incarnation =
        incarnation.empty() ? absl::StrCat(id, "-incarnation") : incarnation;
    options.lease_ttl = ttl;
    auto cluster = PostgresCluster::Start(conninfo_, options);
    EXPECT_OK(cluster);
    if (!cluster.ok()) return nullptr;
    if (listener != nullptr) {
      (*cluster)->SetListener(listener);
      // The view read at Start() came before there was a listener.
      listener->OnMembersChanged((*cluster)->members());
    }
    return *std::move(cluster);
  }

  // Acquire() until granted (the lease is someone else's until it expires).
  static absl::StatusOr<LeaseOutcome> AcquireWhenFree(
      Cluster& cluster, const std::string& scope,
      absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      absl::StatusOr<LeaseOutcome> lease = cluster.Acquire(scope);
      if (!lease.ok() || lease->granted || absl::Now() > deadline) return lease;
      absl::SleepFor(std::max(lease->expires_in, absl::Milliseconds(10)));
    }
  }

  std::string conninfo_;
  std::unique_ptr<PostgresScopeStore> store_;
};

TEST_F(PostgresClusterTest, MembersSeeEachOtherAndADrainingOneLeaves) {
  RecordingListener a_events, b_events;
  auto a = StartMember("a", &a_events);
  auto b = StartMember("b", &b_events);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(a_events.WaitForMembers({"a", "b"}));
  EXPECT_TRUE(b_events.WaitForMembers({"a", "b"}));
  EXPECT_THAT(a->members().members,
              ElementsAre(Member{"a", "a:50051"}, Member{"b", "b:50051"}));

  b->Drain();
  // Its own view drops it at once, the other's at its next read.
  EXPECT_THAT(b->members().members, ElementsAre(Member{"a", "a:50051"}));
  EXPECT_TRUE(a_events.WaitForMembers({"a"}));

  // A member that stops heartbeating (here: is gone) leaves the views.
  auto c = StartMember("c", nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(a_events.WaitForMembers({"a", "c"}));
  c.reset();
  EXPECT_TRUE(a_events.WaitForMembers({"a"}));
}

TEST_F(PostgresClusterTest, ALeaseHasOneHolderAndEveryNewHolderANewerEpoch) {
  auto a = StartMember("a", nullptr);
  auto b = StartMember("b", nullptr);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);

  absl::StatusOr<LeaseOutcome> first = a->Acquire("Canvas");
  ASSERT_OK(first);
  ASSERT_TRUE(first->granted);
  EXPECT_EQ(first->epoch, 1u);
  EXPECT_TRUE(a->Valid("Canvas", 1));
  EXPECT_FALSE(a->Valid("Canvas", 2));

  absl::StatusOr<LeaseOutcome> refused = b->Acquire("Canvas");
  ASSERT_OK(refused);
  EXPECT_FALSE(refused->granted);
  EXPECT_EQ(refused->holder, (Member{"a", "a:50051"}));
  EXPECT_TRUE(refused->holder_live);
  EXPECT_GT(refused->expires_in, absl::ZeroDuration());
  EXPECT_FALSE(b->Valid("Canvas", 1));

  // Renewals keep it: well past the TTL it is still a's.
  for (int i = 0; i < 3; ++i) {
    absl::SleepFor(absl::Milliseconds(500));  // lets renewals run; not a sync
    ASSERT_TRUE(a->Valid("Canvas", 1));
    absl::StatusOr<LeaseOutcome> again = b->Acquire("Canvas");
    ASSERT_OK(again);
    EXPECT_FALSE(again->granted);
  }

  a->Release("Canvas", 1);
  EXPECT_FALSE(a->Valid("Canvas", 1));
  absl::StatusOr<LeaseOutcome> second = b->Acquire("Canvas");
  ASSERT_OK(second);
  ASSERT_TRUE(second->granted);
  EXPECT_EQ(second->epoch, 2u);
  EXPECT_TRUE(b->Valid("Canvas", 2));

  // Taking it back is a third epoch, never a reuse of the first.
  b->Release("Canvas", 2);
  absl::StatusOr<LeaseOutcome> third = a->Acquire("Canvas");
  ASSERT_OK(third);
  ASSERT_TRUE(third->granted);
  EXPECT_EQ(third->epoch, 3u);
}

TEST_F(PostgresClusterTest, ALeaseThatIsNotRenewedRunsOutAndIsToldLost) {
  RecordingListener events;
  auto a = StartMember("a", &events);
  auto b = StartMember("b", nullptr);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->Acquire("Canvas")->granted);

  // The database loses the lease (an operator, a restore): the next
  // renewal finds it gone.
  ASSERT_OK(ExecSql(conninfo_, "DELETE FROM jetstream_leases"));
  ASSERT_TRUE(events.WaitForLost(1));
  EXPECT_THAT(events.lost().front(), HasSubstr("Canvas@1"));
  EXPECT_FALSE(a->Valid("Canvas", 1));

  // A holder that stops renewing (destroyed without releasing): its lease
  // stays someone else's until it expires, then is free.
  ASSERT_TRUE(a->Acquire("Chat")->granted);
  a.reset();
  absl::StatusOr<LeaseOutcome> held = b->Acquire("Chat");
  ASSERT_OK(held);
  EXPECT_FALSE(held->granted);
  EXPECT_FALSE(held->holder_live);  // it left the members
  absl::StatusOr<LeaseOutcome> taken = AcquireWhenFree(*b, "Chat");
  ASSERT_OK(taken);
  EXPECT_TRUE(taken->granted);
}

TEST_F(PostgresClusterTest, ATakeOverWaitsForACommitRunningUnderTheOldLease) {
  auto b = StartMember("b", nullptr);
  ASSERT_NE(b, nullptr);
  // An expired lease of another writer, whose commit still runs: its
  // transaction holds the lease row as a commit does (FOR KEY SHARE).
  ASSERT_TRUE(
      ExecSql(conninfo_,
              "INSERT INTO jetstream_leases VALUES ('Canvas', 'old', 7, "
              "clock_timestamp() - interval '1 second')")
          .ok());
  PGconn* commit = PQconnectdb(conninfo_.c_str());
  ASSERT_EQ(PQstatus(commit), CONNECTION_OK);
  PQclear(PQexec(commit, "BEGIN"));
  PGresult* locked = PQexec(commit,
                            "SELECT 1 FROM jetstream_leases WHERE scope = "
                            "'Canvas' FOR KEY SHARE");
  ASSERT_EQ(PQresultStatus(locked), PGRES_TUPLES_OK);
  PQclear(locked);

  absl::Notification acquired;
  absl::StatusOr<LeaseOutcome> lease;
  std::thread taker([&] {
    lease = b->Acquire("Canvas");
    acquired.Notify();
  });
  // The taker waits on the row lock (seen by the server), not on time.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  bool waiting = false;
  while (!waiting && absl::Now() < deadline) {
    auto rows = QuerySql(conninfo_,
                         "SELECT count(*) FROM pg_stat_activity WHERE "
                         "wait_event_type = 'Lock' AND application_name = "
                         "'jetstream-syncservice/cluster'");
    ASSERT_OK(rows);
    waiting = (*rows)[0][0] == "1";
  }
  ASSERT_TRUE(waiting);
  EXPECT_FALSE(acquired.HasBeenNotified());
  PQclear(PQexec(commit, "COMMIT"));
  PQfinish(commit);
  taker.join();
  ASSERT_OK(lease);
  EXPECT_TRUE(lease->granted);
  EXPECT_EQ(lease->epoch, 8u);
}

TEST_F(PostgresClusterTest, TheStoreRefusesACommitUnderALostOrExpiredLease) {
  const std::string incarnation = store_->writer_id();
  auto a = StartMember("a", nullptr, absl::Milliseconds(900), incarnation);
  auto b = StartMember("b", nullptr);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_OK(store_->Create("Canvas", {0, "Canvas", "[]"}));
  absl::StatusOr<LeaseOutcome> lease = a->Acquire("Canvas");
  ASSERT_TRUE(lease.ok() && lease->granted);

  auto append = [&](uint64_t version, uint64_t epoch) {
    absl::Notification done;
    absl::Status status;
    StoredCommit commit{version, "[]", false, "[]", "o"};
    commit.lease_epoch = epoch;
    store_->Append("Canvas", commit, [&](absl::Status s) {
      status = s;
      done.Notify();
    });
    done.WaitForNotification();
    return status;
  };
  EXPECT_OK(append(1, lease->epoch));
  // Another epoch than the one held: refused.
  absl::Status wrong = append(2, lease->epoch + 1);
  EXPECT_TRUE(absl::IsAborted(wrong)) << wrong;
  EXPECT_THAT(wrong.message(), HasSubstr("lease lost"));

  // The lease expires (its holder stopped renewing): refused, although
  // nobody took it over.
  a.reset();
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (;;) {
    auto rows = QuerySql(conninfo_,
                         "SELECT expires_at < clock_timestamp() FROM "
                         "jetstream_leases WHERE scope = 'Canvas'");
    ASSERT_OK(rows);
    if ((*rows)[0][0] == "t" || absl::Now() > deadline) break;
  }
  absl::Status expired = append(2, lease->epoch);
  EXPECT_TRUE(absl::IsAborted(expired)) << expired;

  // The new holder commits; the commits record who wrote them.
  absl::StatusOr<LeaseOutcome> taken = b->Acquire("Canvas");
  ASSERT_TRUE(taken.ok() && taken->granted);
  auto rows = QuerySql(conninfo_,
                       "SELECT version, writer, lease_epoch FROM commits "
                       "ORDER BY version");
  ASSERT_OK(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0][1], incarnation);
  EXPECT_EQ((*rows)[0][2], std::to_string(lease->epoch));
}

TEST_F(PostgresClusterTest,
       AProcessRegisteringTheSameMemberIdSupersedesTheOld) {
  RecordingListener events;
  auto old_process = StartMember("a", &events, absl::Milliseconds(900), "one");
  ASSERT_NE(old_process, nullptr);
  ASSERT_TRUE(old_process->Acquire("Canvas")->granted);
  auto new_process = StartMember("a", nullptr, absl::Milliseconds(900), "two");
  ASSERT_NE(new_process, nullptr);
  // The old one learns it at its next heartbeat and gives up its leases.
  ASSERT_TRUE(events.WaitForLost(1));
  EXPECT_TRUE(old_process->superseded());
  EXPECT_FALSE(old_process->Valid("Canvas", 1));
  absl::StatusOr<LeaseOutcome> refused = old_process->Acquire("Chat");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace jetstream::testing
