// File: tests/durability/crash_scenario.h
//
// The sync service killed (SIGKILL) in the middle of a write load and
// restarted on the same store: every changeset whose success reply a client
// received is in the recovered state, the one each writer had in flight at
// the kill is either fully there or not at all; clients still connected get
// the recovered state and go on writing; a clean restart keeps it all.
// A test derives from CrashTestBase, names its store, and calls
// RunKillUnderLoad().

#ifndef JETSTREAM_TESTS_DURABILITY_CRASH_SCENARIO_H_
#define JETSTREAM_TESTS_DURABILITY_CRASH_SCENARIO_H_

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/e2e/system_fixture.h"

namespace jetstream::testing {

inline constexpr absl::Duration kRequestTimeout = absl::Seconds(2);
inline constexpr int kWriters = 6;
inline constexpr int kAcksBeforeKill = 400;
inline constexpr char kScope[] = "canvas/durability";

inline std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

// Shape uuid -> x, from a ScopeState message.
inline std::map<std::string, double> ShapeXs(const std::string& state_message) {
  std::map<std::string, double> out;
  JsonDocument doc = ParseOrDie(state_message);
  for (const JsonValue& f : doc["fragments"].GetArray()) {
    if (std::string(f["clsName"].GetString()) != "Shape") continue;
    out[f["uuid"].GetString()] = f["properties"]["x"].GetDouble();
  }
  return out;
}

class CrashTestBase : public SystemFixture {
 protected:
  // The --store value; the same for every start of the test.
  virtual std::string Store() = 0;
  std::vector<std::string> SyncServiceFlags() override {
    return {"--store=" + Store(), "--snapshot_every=50"};
  }
  void RunKillUnderLoad();
  std::vector<std::string> GatewayFlags() override {
    return {"--ping_interval=1h",
            absl::StrCat("--sync_request_timeout=",
                         absl::FormatDuration(kRequestTimeout))};
  }

  // Fetches until the gateway has reconnected and the scope is served,
  // backing off between attempts (5 ms doubling to 100 ms) as a client
  // should; a tight loop would run into the session's message rate.
  Fetched FetchUntilServed(WsTestClient& client, const std::string& name) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    absl::Duration backoff = absl::Milliseconds(5);
    for (bool first = true; absl::Now() < deadline; first = false) {
      if (!first) {
        absl::SleepFor(backoff);
        backoff = std::min(2 * backoff, absl::Milliseconds(100));
      }
      absl::StatusOr<Fetched> f = FetchState(client, name);
      if (f.ok()) return *std::move(f);
      EXPECT_TRUE(absl::IsNotFound(f.status())) << f.status();
      if (!absl::IsNotFound(f.status())) break;
    }
    ADD_FAILURE() << "not served again";
    return {};
  }

  const std::string db_path_ = [] {
    std::string p = TempDir() + "/crash.db";
    std::remove(p.c_str());
    std::remove((p + "-wal").c_str());
    std::remove((p + "-shm").c_str());
    return p;
  }();
};

struct Writer {
  std::unique_ptr<WsTestClient> client;
  uint64_t scope_index = 0;
  std::string shape;
  int y = 0;
  // The last x acknowledged with success, and the last one sent.
  int64_t acked = 0;
  int64_t sent = 0;
};

inline void CrashTestBase::RunKillUnderLoad() {
  // One client creates a shape per writer.
  std::vector<Writer> writers(kWriters);
  std::vector<std::string> shapes;
  for (int k = 0; k < kWriters; ++k) shapes.push_back(TestUuid(0xd0, k + 1));
  std::string root;
  {
    auto setup = ConnectWithSession();
    ASSERT_NE(setup, nullptr);
    absl::StatusOr<Fetched> f = FetchState(*setup, kScope);
    ASSERT_TRUE(f.ok()) << f.status();
    root = f->root_uuid;
    absl::Status added = AddShapes(*setup, *f, shapes);
    ASSERT_TRUE(added.ok()) << added;
  }
  for (int k = 0; k < kWriters; ++k) {
    writers[k].client = ConnectWithSession();
    ASSERT_NE(writers[k].client, nullptr);
    absl::StatusOr<Fetched> f = FetchState(*writers[k].client, kScope);
    ASSERT_TRUE(f.ok()) << f.status();
    writers[k].scope_index = f->scope_index;
    writers[k].shape = shapes[k];
    writers[k].y = k;
  }

  // Each writer moves its own shape to x = 1, 2, 3, ... (every changeset a
  // unique value), one at a time, until a changeset fails.
  absl::Mutex mu;
  int total_acks = 0;
  std::vector<std::thread> threads;
  for (Writer& w : writers) {
    threads.emplace_back([&w, &mu, &total_acks] {
      for (int64_t x = 1;; ++x) {
        w.sent = x;
        absl::StatusOr<uint64_t> sync = w.client->SendScopeSync(
            w.scope_index, FragmentList({MoveShapeFragment(w.shape, x, w.y)}));
        if (!sync.ok()) return;
        absl::StatusOr<UntilReply> r = ReadUntilReply(
            *w.client, *sync, kRequestTimeout + absl::Seconds(5));
        if (!r.ok() || Field(r->reply, "fragmentReplies") != "[{}]") return;
        w.acked = x;
        absl::MutexLock lock(&mu);
        ++total_acks;
      }
    });
  }
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(
        absl::Condition(
            +[](int* n) { return *n >= kAcksBeforeKill; }, &total_acks),
        absl::Seconds(60)));
  }
  // Sessions for reading afterwards (creating one needs the sync service).
  auto fresh = ConnectWithSession();
  ASSERT_NE(fresh, nullptr);
  auto again = ConnectWithSession();
  ASSERT_NE(again, nullptr);
  const int port = sync_service_->port();
  sync_service_->Kill(SIGKILL);
  for (std::thread& t : threads) t.join();
  for (const Writer& w : writers) ASSERT_GT(w.acked, 0);

  // Back on the same store.
  StartSyncService(port);
  ASSERT_NE(sync_service_, nullptr);
  Fetched recovered = FetchUntilServed(*fresh, kScope);
  ASSERT_FALSE(recovered.state.empty());
  EXPECT_EQ(recovered.root_uuid, root);
  std::map<std::string, double> xs = ShapeXs(recovered.state);
  ASSERT_EQ(xs.size(), static_cast<size_t>(kWriters)) << recovered.state;
  int unacked_committed = 0;
  for (const Writer& w : writers) {
    // Acknowledged: there. The one in flight at the kill: there or not.
    double x = xs[w.shape];
    EXPECT_TRUE(x == w.acked || x == w.sent)
        << w.shape << " x=" << x << " acked=" << w.acked << " sent=" << w.sent;
    if (x == w.sent && w.sent != w.acked) ++unacked_committed;
  }
  // The recovered state is the initial one with exactly those moves: the
  // shapes list, sizes and colors as created, each x as checked above.
  JsonDocument doc = ParseOrDie(recovered.state);
  for (const JsonValue& f : doc["fragments"].GetArray()) {
    if (std::string(f["clsName"].GetString()) != "Shape") continue;
    EXPECT_EQ(f["properties"]["width"].GetDouble(), 100);
  }
  std::printf(
      "acks before kill: %d; in-flight changesets committed: %d\n",
      [&] {
        absl::MutexLock lock(&mu);
        return total_acks;
      }(),
      unacked_committed);

  // Sessions still connected get the recovered state (a new epoch) and go
  // on writing.
  Writer& w = writers[0];
  std::string state;
  for (;;) {
    absl::StatusOr<std::string> m = w.client->NextMessage(absl::Seconds(30));
    ASSERT_TRUE(m.ok()) << m.status();
    if (Field(*m, "type") == "\"ScopeState\"") {
      state = *m;
      break;
    }
  }
  EXPECT_EQ(ShapeXs(state), xs);
  absl::StatusOr<uint64_t> sync = w.client->SendScopeSync(
      w.scope_index, FragmentList({MoveShapeFragment(w.shape, -1, 0)}));
  ASSERT_TRUE(sync.ok());
  absl::StatusOr<UntilReply> r = ReadUntilReply(*w.client, *sync);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{}]");
  absl::StatusOr<std::vector<std::string>> before =
      Barrier(*fresh, recovered.scope_index);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_THAT(*before, ::testing::SizeIs(1));
  EXPECT_THAT(Field((*before)[0], "fragments"), ::testing::HasSubstr("-1"));

  // And that survives a clean restart too.
  sync_service_->Kill(SIGTERM);
  StartSyncService(port);
  Fetched after = FetchUntilServed(*again, kScope);
  std::map<std::string, double> expected = xs;
  expected[w.shape] = -1;
  EXPECT_EQ(ShapeXs(after.state), expected);
}

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_DURABILITY_CRASH_SCENARIO_H_
