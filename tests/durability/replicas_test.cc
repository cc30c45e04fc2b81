// Several sync service replicas on one real PostgreSQL server
// (tests/testing/postgres_server.h), with real gateways:
//
// * Gateways seeded with different replicas find all of them and send a
//   scope's requests to the one replica holding its lease: writers on both
//   gateways never race for versions, and the history checker finds one
//   history with every acknowledged change.
// * A replica that comes back gets the scopes that prefer it handed over:
//   the lease moves back, the clients get the state, nothing is lost.
// * A backend asking a replica that does not hold a scope is told which
//   replica does (FAILED_PRECONDITION, the address in trailing metadata),
//   and nothing is applied.

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rendezvous.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/sync/v1/sync_service.grpc.pb.h"
#include "tests/durability/replica_cluster.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/proto/health.grpc.pb.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

// A scope that ranks `member` first among `members`.
std::string ScopePreferring(const std::vector<std::string>& members,
                            const std::string& member) {
  for (int i = 0;; ++i) {
    std::string scope = absl::StrCat("canvas/replicas-", i);
    if (members[RankByRendezvous(members, scope).front()] == member)
      return scope;
  }
}

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = ReplicaCluster::Start();
    ASSERT_OK(cluster);
    cluster_ = *std::move(cluster);
  }

  std::unique_ptr<ReplicaCluster> cluster_;
};

TEST_F(ReplicasTest, GatewaysWithDifferentSeedsSendAScopeToItsOneHolder) {
  for (int k = 0; k < 3; ++k) ASSERT_TRUE(cluster_->StartReplica(k).ok());
  ASSERT_TRUE(
      cluster_->StartGateway(0, {cluster_->replica(0)->address()}).ok());
  ASSERT_TRUE(
      cluster_->StartGateway(1, {cluster_->replica(2)->address()}).ok());
  ASSERT_TRUE(cluster_->WaitForGatewaysToSee(3));
  Workload::Options options;
  options.writers = 3;
  Workload load(*cluster_, options);
  ASSERT_OK(load.Start());
  ASSERT_TRUE(load.WaitForAcks(300));
  // The scope went where its ranking points, and stayed there.
  const std::vector<std::string> ids = {"sync-0", "sync-1", "sync-2"};
  EXPECT_EQ(cluster_->LeaseHolder("canvas/faults"),
            ids[RankByRendezvous(ids, "canvas/faults").front()]);
  load.StopAndCheck("two gateways, one holder");
  // One tenure, no refusals: nobody raced.
  auto history = ReadHistory(cluster_->conninfo(), "canvas/faults");
  ASSERT_OK(history);
  EXPECT_EQ(history->front().lease_epoch, history->back().lease_epoch);
}

TEST_F(ReplicasTest, AReplicaThatComesBackGetsItsScopesHandedBack) {
  ASSERT_OK(cluster_->StartReplica(0));
  ASSERT_OK(cluster_->StartReplica(1));
  ASSERT_TRUE(
      cluster_->StartGateway(0, {cluster_->replica(1)->address()}).ok());
  ASSERT_TRUE(cluster_->WaitForGatewaysToSee(2));
  const std::string scope = ScopePreferring({"sync-0", "sync-1"}, "sync-0");
  Workload::Options options;
  options.scopes = {scope};
  Workload load(*cluster_, options);
  ASSERT_OK(load.Start());
  ASSERT_TRUE(load.WaitForAcks(40));
  EXPECT_EQ(cluster_->LeaseHolder(scope), "sync-0");

  cluster_->KillReplica(0);
  EXPECT_EQ(cluster_->WaitForLeaseHolder(scope, "sync-0"), "sync-1");
  ASSERT_TRUE(load.WaitForAcks(40));

  // Back, at a new address: the scope prefers it again and is handed over.
  ASSERT_OK(cluster_->StartReplica(0));
  EXPECT_EQ(cluster_->WaitForLeaseHolder(scope, "sync-1"), "sync-0");
  ASSERT_TRUE(load.WaitForAcks(40));
  load.StopAndCheck("a replica back");
  // At least three tenures: sync-0, sync-1, sync-0 again (seen above), each
  // under a newer lease epoch than the last (fencing never goes back). On a
  // loaded machine a 1.5 s lease may also lapse and be taken again in
  // between, which adds a tenure but must keep the order.
  auto history = ReadHistory(cluster_->conninfo(), scope);
  ASSERT_OK(history);
  std::vector<uint64_t> epochs;
  for (const StoredChange& c : *history) {
    if (epochs.empty() || epochs.back() != c.lease_epoch) {
      if (!epochs.empty()) {
        EXPECT_GT(c.lease_epoch, epochs.back()) << "at version " << c.version;
      }
      epochs.push_back(c.lease_epoch);
    }
  }
  EXPECT_GE(epochs.size(), 3u);
}

TEST_F(ReplicasTest, ABackendIsToldWhichReplicaHoldsAScope) {
  ASSERT_OK(cluster_->StartReplica(0));
  ASSERT_OK(cluster_->StartReplica(1));
  const std::string scope = ScopePreferring({"sync-0", "sync-1"}, "sync-0");
  auto stub_of = [](const std::string& address) {
    return sync::v1::SyncService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  };
  auto holder = stub_of(cluster_->replica(0)->address());
  auto other = stub_of(cluster_->replica(1)->address());
  // Both replicas must see each other before sync-1 redirects: wait for
  // the members table to show them.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (cluster_->LiveMembers().size() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));  // polling the database
  }
  {
    grpc::ClientContext context;
    sync::v1::GetScopeRequest request;
    request.set_scope(scope);
    sync::v1::GetScopeResponse response;
    ASSERT_OK(holder->GetScope(&context, request, &response));
  }
  ASSERT_EQ(cluster_->LeaseHolder(scope), "sync-0");
  grpc::ClientContext context;
  sync::v1::ApplyChangesetRequest request;
  request.set_scope(scope);
  sync::v1::ApplyChangesetResponse response;
  grpc::Status status = other->ApplyChangeset(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("sync-0"));
  auto address =
      context.GetServerTrailingMetadata().find("jetstream-redirect-address");
  ASSERT_NE(address, context.GetServerTrailingMetadata().end());
  EXPECT_EQ(std::string(address->second.data(), address->second.size()),
            cluster_->replica(0)->address());
  EXPECT_EQ(cluster_->LeaseHolder(scope), "sync-0");
}

TEST_F(ReplicasTest, ACleanShutdownReleasesItsLeasesAtOnce) {
  ASSERT_OK(cluster_->StartReplica(0));
  ASSERT_OK(cluster_->StartReplica(1));
  const std::string scope = ScopePreferring({"sync-0", "sync-1"}, "sync-0");
  auto stub = sync::v1::SyncService::NewStub(grpc::CreateChannel(
      cluster_->replica(0)->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  sync::v1::GetScopeRequest request;
  request.set_scope(scope);
  sync::v1::GetScopeResponse response;
  ASSERT_OK(stub->GetScope(&context, request, &response));
  ASSERT_EQ(cluster_->LeaseHolder(scope), "sync-0");
  // SIGTERM: the lease is released before the process exits, not left to
  // expire, and the replica leaves the members.
  EXPECT_TRUE(cluster_->StopReplica(0));
  auto rows = QuerySql(cluster_->conninfo(),
                       "SELECT expires_at < clock_timestamp() FROM "
                       "jetstream_leases WHERE scope = '" +
                           scope + "'");
  ASSERT_OK(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0][0], "t");
  EXPECT_EQ(cluster_->LiveMembers(), std::set<std::string>{"sync-1"});
}

TEST_F(ReplicasTest, HealthSaysWhetherAReplicaTakesTraffic) {
  ASSERT_OK(cluster_->StartReplica(0));
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      cluster_->replica(0)->address(), grpc::InsecureChannelCredentials()));
  auto status_of = [&](const std::string& service) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status s = health->Check(&context, request, &response);
    return s.ok() ? response.status()
                  : grpc::health::v1::HealthCheckResponse::UNKNOWN;
  };
  auto wait_for = [&](const std::string& service, auto want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (status_of(service) != want && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));  // polling the health service
    }
    return status_of(service) == want;
  };
  using Status = grpc::health::v1::HealthCheckResponse;
  EXPECT_EQ(status_of(""), Status::SERVING);
  EXPECT_EQ(status_of("jetstream.sync.v1.SyncService"), Status::SERVING);
  EXPECT_EQ(status_of("liveness"), Status::SERVING);
  // The database goes away: not ready (no leases can be had), yet alive.
  ASSERT_OK(cluster_->postgres().Stop());
  EXPECT_TRUE(wait_for("", Status::NOT_SERVING));
  EXPECT_EQ(status_of("liveness"), Status::SERVING);
  ASSERT_OK(cluster_->postgres().Restart());
  EXPECT_TRUE(wait_for("", Status::SERVING));
  EXPECT_TRUE(cluster_->StopReplica(0));
}

}  // namespace
}  // namespace jetstream::testing
