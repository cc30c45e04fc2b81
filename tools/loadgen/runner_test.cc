// Runs every scenario briefly against the real gateway and sync service
// binaries (and the echo scenario against an in-process echo server), to
// show that the load generator speaks the protocol: clients get running,
// changesets are answered without errors, deliveries arrive. Figures are
// benchmark output: nothing here asserts a rate or a latency.
#include "tools/loadgen/runner.h"

#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/status_matchers.h"
#include "tools/echo_server/echo_server.h"

namespace jetstream::loadgen {
namespace {

using ::jetstream::testing::ChildProcess;
using ::jetstream::testing::Runfile;

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sync = ChildProcess::StartListening(
        "syncservice/syncservice",
        {"--listen=127.0.0.1:0",
         "--schema=" + Runfile("syncservice/config/demo_schema.json"),
         "--scopes=" + Runfile("syncservice/config/demo_scopes.json"),
         "--store=memory"});
    ASSERT_OK(sync);
    sync_ = *std::move(sync);
    auto gateway = ChildProcess::StartListening(
        "gateway/gateway", {"--port=0", "--sync_service=" + sync_->address()});
    ASSERT_OK(gateway);
    gateway_ = *std::move(gateway);
  }

  LoadOptions Options(Scenario scenario, int clients) {
    LoadOptions o;
    o.url = absl::StrCat("ws://", gateway_->address(), "/");
    o.scenario = scenario;
    o.clients = clients;
    o.warmup = absl::Milliseconds(100);
    o.duration = absl::Milliseconds(400);
    o.ping_interval = absl::Milliseconds(100);
    o.pids = {{"gateway", gateway_->pid()}, {"syncservice", sync_->pid()}};
    return o;
  }

  static void ExpectClean(const Report& r) {
    EXPECT_EQ(r.failed, 0);
    EXPECT_EQ(r.fragment_errors, 0u);
    EXPECT_EQ(r.protocol_errors, 0u);
    EXPECT_EQ(r.disconnects, 0u);
  }

  std::unique_ptr<ChildProcess> sync_;
  std::unique_ptr<ChildProcess> gateway_;
};

TEST_F(RunnerTest, IndependentWriters) {
  auto r = RunScenario(Options(Scenario::kWriters, 3));
  ASSERT_OK(r);
  ExpectClean(*r);
  EXPECT_EQ(r->ready, 3);
  EXPECT_GT(r->replies, 0u);
  EXPECT_EQ(r->reply_latency.count, r->replies);
  EXPECT_EQ(r->deliveries, 0u);  // nobody else reads their scopes
  ASSERT_EQ(r->processes.size(), 2u);
  EXPECT_GE(r->processes[0].cpu_percent, 0);
}

TEST_F(RunnerTest, SharedScopeDeliversToTheOthers) {
  auto r = RunScenario(Options(Scenario::kShared, 3));
  ASSERT_OK(r);
  ExpectClean(*r);
  EXPECT_GT(r->replies, 0u);
  EXPECT_GT(r->deliveries, 0u);
  EXPECT_GT(r->delivery_latency.count, 0u);
}

TEST_F(RunnerTest, FanOut) {
  LoadOptions o = Options(Scenario::kFanout, 5);
  o.rate = 200;
  auto r = RunScenario(o);
  ASSERT_OK(r);
  ExpectClean(*r);
  EXPECT_EQ(r->ready, 6);  // five readers and the writer
  EXPECT_GT(r->deliveries, 0u);
  EXPECT_EQ(r->delivery_latency.count, r->deliveries);
  // Each delivery falls in one half of the window.
  EXPECT_EQ(r->delivery_latency_first_half.count +
                r->delivery_latency_second_half.count,
            r->delivery_latency.count);
  EXPECT_GT(r->delivery_latency_first_half.count, 0u);
  EXPECT_GT(r->delivery_latency_second_half.count, 0u);
}

TEST_F(RunnerTest, IdleSessionsMeasureMemory) {
  LoadOptions o = Options(Scenario::kIdle, 0);
  o.sessions = 50;
  auto r = RunScenario(o);
  ASSERT_OK(r);
  ExpectClean(*r);
  EXPECT_EQ(r->ready, 50);
  ASSERT_EQ(r->processes.size(), 2u);
  EXPECT_GT(r->processes[0].rss_before_kb, 0);
  EXPECT_GT(r->processes[0].rss_after_kb, 0);
  EXPECT_NE(r->bytes_per_session, -1);
}

TEST_F(RunnerTest, ConnectStorm) {
  auto r = RunScenario(Options(Scenario::kStorm, 4));
  ASSERT_OK(r);
  EXPECT_EQ(r->failed, 0);
  EXPECT_GT(r->sessions, 0u);
  EXPECT_EQ(r->setup_latency.count, r->sessions);
}

TEST_F(RunnerTest, NoServerIsAnError) {
  LoadOptions o = Options(Scenario::kWriters, 2);
  gateway_.reset();
  o.setup_timeout = absl::Seconds(10);
  auto r = RunScenario(o);
  EXPECT_FALSE(r.ok());
}

class EchoRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!server_) server_.emplace(echo::EchoServerOptions{});
    auto port = server_->Start();
    ASSERT_OK(port);
    port_ = *port;
  }

  LoadOptions Options(Scenario scenario) {
    LoadOptions o;
    o.url = absl::StrCat("ws://127.0.0.1:", port_, "/");
    o.scenario = scenario;
    o.clients = 4;
    o.warmup = absl::Milliseconds(100);
    o.duration = absl::Milliseconds(300);
    return o;
  }

  std::optional<echo::EchoServer> server_;
  uint16_t port_ = 0;
};

TEST_F(EchoRunnerTest, EchoesFrames) {
  auto r = RunScenario(Options(Scenario::kEcho));
  ASSERT_OK(r);
  EXPECT_EQ(r->ready, 4);
  EXPECT_GT(r->replies, 0u);
  EXPECT_EQ(r->reply_unit, "echoes");
  EXPECT_EQ(r->protocol_errors, 0u);
}

TEST_F(EchoRunnerTest, ConnectionStorm) {
  auto r = RunScenario(Options(Scenario::kEchoStorm));
  ASSERT_OK(r);
  EXPECT_EQ(r->failed, 0);
  EXPECT_GT(r->sessions, 0u);
}

class BroadcastRunnerTest : public EchoRunnerTest {
 protected:
  BroadcastRunnerTest() {
    server_.emplace(echo::EchoServerOptions{.broadcast = true});
  }
};

// Every reader receives the writer's stamped frames; the writer's own copy
// is its reply.
TEST_F(BroadcastRunnerTest, EchoFanoutDeliversToEveryReader) {
  LoadOptions o = Options(Scenario::kEchoFanout);
  o.rate = 200;
  auto r = RunScenario(o);
  ASSERT_OK(r);
  EXPECT_EQ(r->ready, 5);  // 4 readers and the writer
  EXPECT_EQ(r->failed, 0);
  EXPECT_GT(r->replies, 0u);
  EXPECT_GT(r->deliveries, r->replies);
  EXPECT_EQ(r->delivery_latency.count, r->deliveries);
  EXPECT_EQ(r->protocol_errors, 0u);
}

TEST(ScenarioTest, Names) {
  for (Scenario s : {Scenario::kWriters, Scenario::kShared, Scenario::kFanout,
                     Scenario::kIdle, Scenario::kStorm, Scenario::kEcho,
                     Scenario::kEchoStorm, Scenario::kEchoFanout}) {
    auto parsed = ParseScenario(ScenarioName(s));
    ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(*ParseScenario("3"), Scenario::kFanout);
  EXPECT_FALSE(ParseScenario("nope").ok());
}

}  // namespace
}  // namespace jetstream::loadgen
