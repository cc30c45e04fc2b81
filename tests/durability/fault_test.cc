// Fault scenarios for sync service replicas: three replicas and two
// gateways on a real PostgreSQL server, writers and readers on both
// gateways, one fault under the load, then the history checker
// (replica_cluster.h): nothing acknowledged lost, one history, every client
// converged, no client ever sent an older state than it had.
//
// Time only enters through the lease TTL (1.5 s, a flag of the replicas);
// the tests wait for conditions (acknowledgements, the lease table), never
// for time.

#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/rendezvous.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/durability/replica_cluster.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

constexpr char kScope[] = "canvas/faults";
constexpr int kAcks = 40;  // acknowledged moves between the steps

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = ReplicaCluster::Start();
    ASSERT_OK(cluster);
    cluster_ = *std::move(cluster);
    for (int k = 0; k < 3; ++k) ASSERT_TRUE(cluster_->StartReplica(k).ok());
    // Each gateway knows one replica and finds the others.
    ASSERT_TRUE(
        cluster_->StartGateway(0, {cluster_->replica(0)->address()}).ok());
    ASSERT_TRUE(
        cluster_->StartGateway(1, {cluster_->replica(1)->address()}).ok());
    ASSERT_TRUE(cluster_->WaitForGatewaysToSee(3));
  }

  void StartLoad(Workload::Options options = {}) {
    workload_ = std::make_unique<Workload>(*cluster_, std::move(options));
    ASSERT_OK(workload_->Start());
    ASSERT_TRUE(workload_->WaitForAcks(kAcks)) << "no load before the fault";
  }

  // The replica index holding `scope`'s lease.
  int Holder(const std::string& scope = kScope) {
    std::string holder = cluster_->WaitForLeaseHolder(scope, "");
    EXPECT_FALSE(holder.empty()) << "nobody holds " << scope;
    return ReplicaCluster::IndexOf(holder);
  }

  std::unique_ptr<ReplicaCluster> cluster_;
  std::unique_ptr<Workload> workload_;
};

TEST_F(FaultTest, AKilledOwnerIsReplacedAndAReplacementKilledInTurnToo) {
  StartLoad();
  const absl::Time fault = absl::Now();
  for (int round = 0; round < 2; ++round) {
    // The owner dies; another replica takes the lease once it expires and
    // loads the scope from the store (the second time, the replica that
    // stood in before must not serve the copy it once held).
    const int owner = Holder();
    ASSERT_GE(owner, 0);
    cluster_->KillReplica(owner);
    const std::string next =
        cluster_->WaitForLeaseHolder(kScope, absl::StrCat("sync-", owner));
    ASSERT_FALSE(next.empty()) << "no replica took the scope over";
    ASSERT_TRUE(workload_->WaitForAcks(kAcks)) << "no moves after the kill";
    // It comes back (at a new address, under its member id).
    ASSERT_OK(cluster_->StartReplica(owner));
    ASSERT_TRUE(cluster_->WaitForGatewaysToSee(3));
    ASSERT_TRUE(workload_->WaitForAcks(kAcks)) << "no moves after the return";
  }
  workload_->StopAndCheck("owner killed twice", fault);
}

TEST_F(FaultTest, AnOwnerPausedPastItsLeaseCommitsNothingAfterItWakes) {
  StartLoad();
  const int owner = Holder();
  ASSERT_GE(owner, 0);
  const std::string member = absl::StrCat("sync-", owner);
  const std::string incarnation = cluster_->IncarnationOf(member);
  const absl::Time fault = absl::Now();
  cluster_->replica(owner)->Signal(SIGSTOP);
  // Its lease runs out; another replica takes over and the load goes on.
  ASSERT_FALSE(cluster_->WaitForLeaseHolder(kScope, member).empty());
  ASSERT_TRUE(workload_->WaitForAcks(kAcks))
      << "no failover from a paused owner";
  auto before = ReadHistory(cluster_->conninfo(), kScope);
  ASSERT_OK(before);
  const uint64_t head_at_wake = before->back().version;
  uint64_t paused_epoch = 0;
  for (const StoredChange& c : *before) {
    if (c.writer == incarnation) paused_epoch = c.lease_epoch;
  }
  cluster_->replica(owner)->Signal(SIGCONT);
  ASSERT_TRUE(workload_->WaitForAcks(kAcks)) << "no moves after the owner woke";
  workload_->StopAndCheck("owner paused past its lease", fault);
  // Nothing it had in hand when it was paused was committed after it woke.
  auto after = ReadHistory(cluster_->conninfo(), kScope);
  ASSERT_OK(after);
  int late = 0;
  for (const StoredChange& c : *after) {
    if (c.writer == incarnation && c.lease_epoch == paused_epoch &&
        c.version > head_at_wake) {
      ++late;
    }
  }
  EXPECT_EQ(late, 0) << "the woken replica committed under its old lease";
}

TEST_F(FaultTest, PostgresRestartedUnderLoad) {
  StartLoad();
  const absl::Time fault = absl::Now();
  // Immediate shutdown: no checkpoint, every session cut mid-transaction,
  // crash recovery on the way back up.
  ASSERT_OK(cluster_->postgres().Kill(SIGQUIT));
  ASSERT_TRUE(cluster_->postgres().Restart().ok())
      << cluster_->postgres().LogTail();
  ASSERT_TRUE(workload_->WaitForAcks(kAcks)) << "no moves after the restart";
  // Again, and this time it stays down until changes are refused (the
  // leases ran out): the replicas take them anew.
  ASSERT_OK(cluster_->postgres().Kill(SIGQUIT));
  ASSERT_TRUE(workload_->WaitForFailures(1)) << "nothing noticed the outage";
  ASSERT_TRUE(cluster_->postgres().Restart().ok())
      << cluster_->postgres().LogTail();
  ASSERT_TRUE(workload_->WaitForAcks(kAcks)) << "no moves after the restart";
  workload_->StopAndCheck("PostgreSQL stopped (immediate) and restarted",
                          fault);
}

TEST_F(FaultTest, AnOwnersDatabaseConnectionsKilledUnderLoad) {
  StartLoad();
  const int owner = Holder();
  ASSERT_GE(owner, 0);
  const absl::Time fault = absl::Now();
  // Every connection of the owner (store writer, reader, cluster), a few
  // times over.
  for (int i = 0; i < 3; ++i) {
    auto killed =
        QuerySql(cluster_->conninfo(),
                 absl::StrCat("SELECT count(pg_terminate_backend(pid)) FROM "
                              "pg_stat_activity WHERE application_name LIKE "
                              "'jetstream-syncservice sync-",
                              owner, "%'"));
    ASSERT_OK(killed);
    ASSERT_TRUE(workload_->WaitForAcks(10)) << "no moves after the kill";
  }
  ASSERT_TRUE(workload_->WaitForAcks(kAcks));
  workload_->StopAndCheck("an owner's connections killed", fault);
}

TEST_F(FaultTest, AReplicaAddedAndOneRemovedUnderLoad) {
  // Scopes of which two prefer the replica still to come.
  const std::vector<std::string> four = {"sync-0", "sync-1", "sync-2",
                                         "sync-3"};
  Workload::Options options;
  options.scopes.clear();
  options.writers = 1;
  for (int i = 0; options.scopes.size() < 4; ++i) {
    const std::string scope = absl::StrCat("canvas/scaling-", i);
    const bool prefers_new =
        four[RankByRendezvous(four, scope).front()] == "sync-3";
    const size_t want_new = options.scopes.size() < 2 ? 1 : 0;
    if (prefers_new == (want_new == 1)) options.scopes.push_back(scope);
  }
  StartLoad(options);
  const absl::Time fault = absl::Now();
  ASSERT_OK(cluster_->StartReplica(3));
  ASSERT_TRUE(cluster_->WaitForGatewaysToSee(4));
  // The scopes that now prefer it are handed over to it.
  for (int s = 0; s < 2; ++s) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (cluster_->LeaseHolder(options.scopes[s]) != "sync-3" &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));  // polling the database
    }
    EXPECT_EQ(cluster_->LeaseHolder(options.scopes[s]), "sync-3")
        << options.scopes[s];
  }
  ASSERT_TRUE(workload_->WaitForAcks(kAcks));
  // One leaves cleanly: its scopes are handed off at once.
  const int leaving = Holder(options.scopes[2]);
  ASSERT_GE(leaving, 0);
  EXPECT_TRUE(cluster_->StopReplica(leaving)) << "no clean exit";
  EXPECT_NE(cluster_->LeaseHolder(options.scopes[2]),
            absl::StrCat("sync-", leaving));
  ASSERT_TRUE(workload_->WaitForAcks(kAcks));
  workload_->StopAndCheck("a replica added, one removed", fault);
}

TEST_F(FaultTest, AKilledGatewaysClientsContinueOnTheOther) {
  StartLoad();
  const absl::Time fault = absl::Now();
  cluster_->KillGateway(0);
  ASSERT_TRUE(workload_->WaitForAcks(kAcks)) << "no moves after the kill";
  workload_->StopAndCheck("a gateway killed", fault);
}

}  // namespace
}  // namespace jetstream::testing
