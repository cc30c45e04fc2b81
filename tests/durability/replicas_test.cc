// Several sync service replicas on one real PostgreSQL server (a throw-away
// cluster, tests/testing/postgres_server.h), with real gateways:
//
// * Two replicas serving the same scope at once (each gateway routed to a
//   different one: the worst case, e.g. during a rollout) cannot fork its
//   history. Every changeset either replica acknowledged is in the stored
//   history, the loser of each race drops the scope and its clients get
//   the winner's state, and in the end both replicas and a fresh one agree.
// * A gateway routing over two replicas re-routes a scope when its replica
//   dies (clients get the state from the other one, with everything
//   acknowledged, and go on writing) and moves it back when the replica
//   returns.

#include <signal.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/rendezvous.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/durability/crash_scenario.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/e2e/system_fixture.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/process.h"
#include "tests/testing/ws_test_client.h"

namespace jetstream::testing {
namespace {

constexpr char kReplicaScope[] = "canvas/replicas";

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    postgres_ = *std::move(server);
    ASSERT_TRUE(postgres_->CreateDatabase("replicas").ok());
  }

  std::unique_ptr<ChildProcess> StartSyncService(int port = 0) {
    auto process = ChildProcess::StartListening(
        "syncservice/syncservice",
        {absl::StrCat("--listen=127.0.0.1:", port),
         "--schema=" + Runfile("syncservice/config/demo_schema.json"),
         "--scopes=" + Runfile("syncservice/config/demo_scopes.json"),
         "--store=postgres:" + postgres_->ConnectionString("replicas"),
         "--snapshot_every=40"});
    EXPECT_TRUE(process.ok()) << process.status();
    return process.ok() ? *std::move(process) : nullptr;
  }

  std::unique_ptr<ChildProcess> StartGateway(
      const std::vector<std::string>& sync_services) {
    auto process = ChildProcess::StartListening(
        "gateway/gateway",
        {"--port=0", "--sync_service=" + absl::StrJoin(sync_services, ","),
         "--ping_interval=1h", "--sync_request_timeout=5s"});
    EXPECT_TRUE(process.ok()) << process.status();
    return process.ok() ? *std::move(process) : nullptr;
  }

  static std::unique_ptr<WsTestClient> Client(const ChildProcess& gateway) {
    auto client = WsTestClient::Connect("127.0.0.1", gateway.port(), "/", {});
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    auto token = (*client)->CreateSession();
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? *std::move(client) : nullptr;
  }

  // Creates `n` shapes in the scope through `gateway`; returns their UUIDs.
  static std::vector<std::string> CreateShapes(const ChildProcess& gateway,
                                               int n) {
    std::vector<std::string> shapes;
    auto client = Client(gateway);
    if (client == nullptr) return shapes;
    absl::StatusOr<Fetched> f = FetchState(*client, kReplicaScope);
    EXPECT_TRUE(f.ok()) << f.status();
    if (!f.ok()) return shapes;
    for (int k = 0; k < n; ++k) shapes.push_back(TestUuid(0xe0, k + 1));
    absl::Status added = AddShapes(*client, *f, shapes);
    EXPECT_TRUE(added.ok()) << added;
    return shapes;
  }

  // Moves `shape` to x = `x` until a move is acknowledged (a replica that
  // lost the scope, or a replica that died, refuses it; routing and the
  // winner's state follow within moments).
  static bool MoveUntilAcknowledged(WsTestClient& client, uint64_t scope_index,
                                    const std::string& shape, double x,
                                    double y) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      absl::StatusOr<uint64_t> sync = client.SendScopeSync(
          scope_index, FragmentList({MoveShapeFragment(shape, x, y)}));
      if (!sync.ok()) return false;
      absl::StatusOr<UntilReply> r = ReadUntilReply(client, *sync);
      if (!r.ok()) return false;
      if (Field(r->reply, "fragmentReplies") == "[{}]") return true;
    }
    return false;
  }

  // The scope's state as a new session on `gateway` fetches it.
  static std::string StateThrough(const ChildProcess& gateway) {
    auto client = Client(gateway);
    if (client == nullptr) return "";
    absl::StatusOr<Fetched> f = FetchState(*client, kReplicaScope);
    EXPECT_TRUE(f.ok()) << f.status();
    if (!f.ok()) return "";
    ScopeModel model;
    EXPECT_TRUE(model.ApplyState(f->state).ok());
    return model.Canonical();
  }

  std::unique_ptr<PostgresServer> postgres_;
};

struct ReplicaWriter {
  std::unique_ptr<WsTestClient> client;
  uint64_t scope_index = 0;
  std::string shape;
  int y = 0;
  int64_t acked = 0;     // the last x acknowledged
  int fenced = 0;        // moves refused because the replica lost the scope
  int other_errors = 0;  // anything else (then the last x is uncertain)
  std::vector<std::string> unexpected;
};

TEST_F(ReplicasTest, TwoReplicasServingOneScopeCannotForkIt) {
  constexpr int kWritersPerGateway = 3;
  constexpr int kMoves = 120;
  auto replica_a = StartSyncService();
  auto replica_b = StartSyncService();
  ASSERT_NE(replica_a, nullptr);
  ASSERT_NE(replica_b, nullptr);
  // Each gateway knows only one replica: both replicas serve the scope.
  auto gateway_a = StartGateway({replica_a->address()});
  auto gateway_b = StartGateway({replica_b->address()});
  ASSERT_NE(gateway_a, nullptr);
  ASSERT_NE(gateway_b, nullptr);

  std::vector<std::string> shapes =
      CreateShapes(*gateway_a, 2 * kWritersPerGateway);
  ASSERT_EQ(shapes.size(), 2u * kWritersPerGateway);
  std::vector<ReplicaWriter> writers(2 * kWritersPerGateway);
  for (size_t k = 0; k < writers.size(); ++k) {
    const ChildProcess& gateway = k < kWritersPerGateway ? *gateway_a : *gateway_b;
    writers[k].client = Client(gateway);
    ASSERT_NE(writers[k].client, nullptr);
    absl::StatusOr<Fetched> f = FetchState(*writers[k].client, kReplicaScope);
    ASSERT_TRUE(f.ok()) << f.status();
    writers[k].scope_index = f->scope_index;
    writers[k].shape = shapes[k];
    writers[k].y = static_cast<int>(k);
  }

  // All writers at once, half through each replica: x = 1, 2, 3, ...
  std::vector<std::thread> threads;
  for (ReplicaWriter& w : writers) {
    threads.emplace_back([&w] {
      for (int64_t x = 1; x <= kMoves; ++x) {
        absl::StatusOr<uint64_t> sync = w.client->SendScopeSync(
            w.scope_index, FragmentList({MoveShapeFragment(w.shape, x, w.y)}));
        if (!sync.ok()) return;
        absl::StatusOr<UntilReply> r = ReadUntilReply(*w.client, *sync);
        if (!r.ok()) {
          w.unexpected.push_back(std::string(r.status().message()));
          return;
        }
        const std::string replies = Field(r->reply, "fragmentReplies");
        if (replies == "[{}]") {
          w.acked = x;
        } else if (absl::StrContains(replies, "storage failed")) {
          ++w.fenced;
        } else {
          ++w.other_errors;
          w.unexpected.push_back(replies);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();

  int fenced = 0;
  for (const ReplicaWriter& w : writers) {
    EXPECT_THAT(w.unexpected, ::testing::IsEmpty()) << w.shape;
    EXPECT_GT(w.acked, 0) << w.shape;
    fenced += w.fenced;
  }
  // The replicas did race for the scope's versions (the case under test).
  EXPECT_GT(fenced, 0);
  std::printf("moves acknowledged and refused by fencing: %d refused\n",
              fenced);

  // Each replica catches up by committing once more (a move to where the
  // shape already is), then serves the head of the shared history.
  ASSERT_TRUE(MoveUntilAcknowledged(*writers[0].client, writers[0].scope_index,
                                    writers[0].shape,
                                    static_cast<double>(writers[0].acked), 0));
  const std::string through_a = StateThrough(*gateway_a);
  const ReplicaWriter& wb = writers[kWritersPerGateway];
  ASSERT_TRUE(MoveUntilAcknowledged(*wb.client, wb.scope_index, wb.shape,
                                    static_cast<double>(wb.acked), wb.y));
  const std::string through_b = StateThrough(*gateway_b);

  // A third replica loads the scope from the store alone.
  auto replica_c = StartSyncService();
  ASSERT_NE(replica_c, nullptr);
  auto gateway_c = StartGateway({replica_c->address()});
  ASSERT_NE(gateway_c, nullptr);
  auto reader = Client(*gateway_c);
  ASSERT_NE(reader, nullptr);
  absl::StatusOr<Fetched> stored = FetchState(*reader, kReplicaScope);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ScopeModel stored_model;
  ASSERT_TRUE(stored_model.ApplyState(stored->state).ok());

  // One history: both replicas and the store agree...
  EXPECT_EQ(through_a, stored_model.Canonical());
  EXPECT_EQ(through_b, stored_model.Canonical());
  // ...and it holds every acknowledged move, and no refused one after it.
  std::map<std::string, double> xs = ShapeXs(stored->state);
  ASSERT_EQ(xs.size(), writers.size()) << stored->state;
  for (const ReplicaWriter& w : writers) {
    EXPECT_EQ(xs[w.shape], static_cast<double>(w.acked)) << w.shape;
  }
}

TEST_F(ReplicasTest, AGatewayReroutesAScopeWhenItsReplicaDiesAndMovesItBack) {
  auto first = StartSyncService();
  auto second = StartSyncService();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  auto gateway = StartGateway({first->address(), second->address()});
  ASSERT_NE(gateway, nullptr);
  // Which replica the scope ranks first: every gateway computes the same.
  const bool first_owns =
      RendezvousWeight(first->address(), kReplicaScope) >
      RendezvousWeight(second->address(), kReplicaScope);
  std::unique_ptr<ChildProcess>& owner = first_owns ? first : second;

  std::vector<std::string> shapes = CreateShapes(*gateway, 1);
  ASSERT_EQ(shapes.size(), 1u);
  const std::string& shape = shapes[0];
  auto writer = Client(*gateway);
  auto reader = Client(*gateway);
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(reader, nullptr);
  absl::StatusOr<Fetched> w = FetchState(*writer, kReplicaScope);
  absl::StatusOr<Fetched> r = FetchState(*reader, kReplicaScope);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE(r.ok()) << r.status();
  ScopeModel reader_model;
  ASSERT_TRUE(reader_model.ApplyState(r->state).ok());

  int64_t x = 0;
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(MoveUntilAcknowledged(*writer, w->scope_index, shape, ++x, 0));
  }

  // The owner dies. Moves fail until the gateway has re-routed the scope;
  // then they are acknowledged by the other replica.
  const int owner_port = owner->port();
  owner->Kill(SIGKILL);
  ASSERT_TRUE(MoveUntilAcknowledged(*writer, w->scope_index, shape, ++x, 0));
  // The reader got the surviving replica's state (with all 30 moves) as a
  // ScopeState, then the new move.
  absl::StatusOr<std::vector<std::string>> seen =
      Barrier(*reader, r->scope_index);
  ASSERT_TRUE(seen.ok()) << seen.status();
  int states = 0;
  for (const std::string& m : WithoutPings(*seen)) {
    if (Field(m, "type") == "\"ScopeState\"") {
      ++states;
      EXPECT_EQ(ShapeXs(m)[shape], 30) << m;
      ASSERT_TRUE(reader_model.ApplyState(m).ok());
    } else if (Field(m, "type") == "\"ScopeSync\"") {
      JsonDocument doc = ParseOrDie(m);
      ASSERT_TRUE(reader_model.ApplyFragments(doc["fragments"]).ok());
    }
  }
  EXPECT_GE(states, 1);
  ScopeModel expected;
  {
    auto check = Client(*gateway);
    ASSERT_NE(check, nullptr);
    absl::StatusOr<Fetched> now = FetchState(*check, kReplicaScope);
    ASSERT_TRUE(now.ok()) << now.status();
    EXPECT_EQ(ShapeXs(now->state)[shape], static_cast<double>(x));
    ASSERT_TRUE(expected.ApplyState(now->state).ok());
  }
  EXPECT_EQ(reader_model.Canonical(), expected.Canonical());

  // The replica returns on its address: the scope moves back to it, which
  // loads it from the store with the moves made meanwhile.
  owner = StartSyncService(owner_port);
  ASSERT_NE(owner, nullptr);
  absl::StatusOr<std::string> state =
      reader->WaitFor("ScopeState", absl::Seconds(30));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(ShapeXs(*state)[shape], static_cast<double>(x));
  ASSERT_TRUE(MoveUntilAcknowledged(*writer, w->scope_index, shape, ++x, 0));
  auto check = Client(*gateway);
  ASSERT_NE(check, nullptr);
  absl::StatusOr<Fetched> last = FetchState(*check, kReplicaScope);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(ShapeXs(last->state)[shape], static_cast<double>(x));
}

}  // namespace
}  // namespace jetstream::testing
