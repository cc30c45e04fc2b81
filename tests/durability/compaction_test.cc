// Snapshots and compaction under a long write load, with the real binaries
// and a SQLite store: the stored log of a scope stays bounded by the
// snapshot interval however many changesets are written, and after a
// SIGKILL the scope recovers (snapshot plus the log after it) to exactly
// the state the clients saw, with every acknowledged changeset.

#include <signal.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/durability/crash_scenario.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/e2e/system_fixture.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

constexpr int kSnapshotEvery = 50;
constexpr int kCompactionWriters = 4;
constexpr int kMovesPerWriter = 750;  // 3,000 changesets in all
constexpr char kCompactionScope[] = "canvas/compaction";

// What the store holds for a scope, read with SQLite's own API.
struct StoredLog {
  int64_t rows = 0;  // commits kept in the log
  int64_t snapshot_version = 0;
  int64_t head_version = 0;
};

StoredLog ReadStoredLog(const std::string& path, const std::string& scope) {
  StoredLog out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << path;
    sqlite3_close(db);
    return out;
  }
  sqlite3_busy_timeout(db, 5000);
  auto query = [&](const char* sql, int64_t* a, int64_t* b) {
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_bind_text(stmt, 1, scope.c_str(), -1, SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW) << sqlite3_errmsg(db);
    *a = sqlite3_column_int64(stmt, 0);
    if (b != nullptr) *b = sqlite3_column_int64(stmt, 1);
    sqlite3_finalize(stmt);
  };
  query("SELECT COUNT(*) FROM commits WHERE scope = ?1", &out.rows, nullptr);
  query("SELECT snapshot_version, head_version FROM scopes WHERE name = ?1",
        &out.snapshot_version, &out.head_version);
  sqlite3_close(db);
  return out;
}

class CompactionTest : public SystemFixture {
 protected:
  std::vector<std::string> SyncServiceFlags() override {
    return {"--store=sqlite:" + db_path_,
            absl::StrCat("--snapshot_every=", kSnapshotEvery)};
  }
  std::vector<std::string> GatewayFlags() override {
    return {"--ping_interval=1h"};
  }
  const std::string db_path_ = [] {
    std::string p = TempDir() + "/compaction.db";
    std::remove(p.c_str());
    std::remove((p + "-wal").c_str());
    std::remove((p + "-shm").c_str());
    return p;
  }();
};

TEST_F(CompactionTest, TheLogStaysBoundedAndRecoveryIsExact) {
  std::vector<std::string> shapes;
  for (int k = 0; k < kCompactionWriters; ++k) {
    shapes.push_back(TestUuid(0xc0, k + 1));
  }
  {
    auto setup = ConnectWithSession();
    ASSERT_NE(setup, nullptr);
    absl::StatusOr<Fetched> f = FetchState(*setup, kCompactionScope);
    ASSERT_OK(f);
    ASSERT_OK(AddShapes(*setup, *f, shapes));
  }

  // Writers move their shapes x = 1..kMovesPerWriter, one at a time. The
  // first writer reads the stored log after every 100 of its moves.
  std::vector<int64_t> acked(kCompactionWriters, 0);
  std::vector<StoredLog> samples;
  std::vector<std::thread> threads;
  for (int k = 0; k < kCompactionWriters; ++k) {
    threads.emplace_back([&, k] {
      auto client = ConnectWithSession();
      if (client == nullptr) return;
      absl::StatusOr<Fetched> f = FetchState(*client, kCompactionScope);
      if (!f.ok()) {
        ADD_FAILURE() << f.status();
        return;
      }
      for (int64_t x = 1; x <= kMovesPerWriter; ++x) {
        absl::StatusOr<uint64_t> sync = client->SendScopeSync(
            f->scope_index, FragmentList({MoveShapeFragment(shapes[k], x, k)}));
        ASSERT_OK(sync);
        absl::StatusOr<UntilReply> r = ReadUntilReply(*client, *sync);
        ASSERT_OK(r);
        ASSERT_EQ(Field(r->reply, "fragmentReplies"), "[{}]") << r->reply;
        acked[k] = x;
        if (k == 0 && x % 100 == 0) {
          samples.push_back(ReadStoredLog(db_path_, kCompactionScope));
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int k = 0; k < kCompactionWriters; ++k) {
    ASSERT_EQ(acked[k], kMovesPerWriter) << "writer " << k;
  }

  // Bounded all along: the log holds what came after the newest snapshot
  // (plus what was being written with it), never the whole history.
  samples.push_back(ReadStoredLog(db_path_, kCompactionScope));
  int64_t most_rows = 0;
  for (const StoredLog& s : samples) {
    most_rows = std::max(most_rows, s.rows);
    EXPECT_LE(s.rows, 2 * kSnapshotEvery)
        << "head " << s.head_version << " snapshot " << s.snapshot_version;
    EXPECT_GE(s.snapshot_version, s.head_version - 2 * kSnapshotEvery);
  }
  const StoredLog last = samples.back();
  EXPECT_GE(last.head_version, kCompactionWriters * kMovesPerWriter);
  std::printf("%lld versions written; the log held at most %lld commits\n",
              static_cast<long long>(last.head_version),
              static_cast<long long>(most_rows));

  // What the clients see now...
  auto before_client = ConnectWithSession();
  ASSERT_NE(before_client, nullptr);
  absl::StatusOr<Fetched> before = FetchState(*before_client, kCompactionScope);
  ASSERT_OK(before);
  ScopeModel before_model;
  ASSERT_OK(before_model.ApplyState(before->state));

  // ...is what a restart after a SIGKILL recovers from snapshot and log.
  auto after_client = ConnectWithSession();
  ASSERT_NE(after_client, nullptr);
  const int port = sync_service_->port();
  sync_service_->Kill(SIGKILL);
  StartSyncService(port);
  ASSERT_NE(sync_service_, nullptr);
  absl::StatusOr<Fetched> after;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    after = FetchState(*after_client, kCompactionScope);
  } while (!after.ok() && absl::IsNotFound(after.status()) &&
           absl::Now() < deadline);
  ASSERT_OK(after);
  ScopeModel after_model;
  ASSERT_OK(after_model.ApplyState(after->state));
  EXPECT_EQ(after_model.Canonical(), before_model.Canonical());
  std::map<std::string, double> xs = ShapeXs(after->state);
  for (int k = 0; k < kCompactionWriters; ++k) {
    EXPECT_EQ(xs[shapes[k]], kMovesPerWriter) << shapes[k];
  }
}

}  // namespace
}  // namespace jetstream::testing
