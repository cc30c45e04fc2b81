// SqliteScopeStore: the ScopeStore conformance suite on a fresh file per
// test, plus what only a file can go through: foreign, damaged and newer
// files that Open() must refuse without touching them.

#include "syncservice/storage/sqlite_scope_store.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "syncservice/storage/scope_store_conformance.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

using ::testing::HasSubstr;

// A new path under the test's temporary directory.
std::string TempPath(absl::string_view name) {
  static std::atomic<int> counter{0};
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name, "-", getpid(),
                      "-", counter++, ".db");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// The file's bytes, summarised for before/after comparisons.
struct Fingerprint {
  size_t size;
  size_t hash;
  bool operator==(const Fingerprint& o) const {
    return size == o.size && hash == o.hash;
  }
};
Fingerprint FingerprintOf(const std::string& path) {
  std::string bytes = ReadFile(path);
  return {bytes.size(), std::hash<std::string>()(bytes)};
}

// Runs SQL on the file directly, as another program would.
void RunSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

class SqliteBackend : public ScopeStoreBackend {
 public:
  absl::StatusOr<std::unique_ptr<ScopeStore>> Open(
      const ScopeStoreOptions& options) override {
    SqliteScopeStoreOptions sqlite_options;
    sqlite_options.store = options;
    absl::StatusOr<std::unique_ptr<SqliteScopeStore>> store =
        SqliteScopeStore::Open(path_, sqlite_options);
    if (!store.ok()) return store.status();
    return std::unique_ptr<ScopeStore>(std::move(*store));
  }

 private:
  const std::string path_ = TempPath("conformance");
};

INSTANTIATE_TEST_SUITE_P(Sqlite, ScopeStoreConformanceTest,
                         ::testing::Values(ScopeStoreBackendFactory{
                             "Sqlite",
                             [] { return std::make_unique<SqliteBackend>(); }}),
                         ScopeStoreBackendFactory::Name);

// A real store file with some history, closed.
void WriteRealStore(const std::string& path) {
  auto store = SqliteScopeStore::Open(path);
  ASSERT_OK(store);
  std::string payload(1000, 'x');
  absl::BlockingCounter pending(400);
  for (int s = 0; s < 4; ++s) {
    std::string scope = absl::StrCat("scope-", s);
    ASSERT_OK((*store)->Create(scope, {0, "Canvas", "[]"}));
    for (uint64_t v = 1; v <= 100; ++v) {
      (*store)->Append(scope, {v, payload, false, payload, "o"},
                       [&](absl::Status st) {
                         EXPECT_OK(st);
                         pending.DecrementCount();
                       });
    }
  }
  pending.Wait();
}

// Open() must fail naming the file, and leave it (and the directory) as it
// was: same bytes, no side files.
void ExpectRefused(const std::string& path, absl::StatusCode code,
                   absl::string_view reason) {
  const Fingerprint before = FingerprintOf(path);
  const bool had_wal = Exists(path + "-wal");
  const bool had_shm = Exists(path + "-shm");
  absl::StatusOr<std::unique_ptr<SqliteScopeStore>> store =
      SqliteScopeStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), code) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr(path));
  EXPECT_THAT(store.status().message(), HasSubstr(reason));
  EXPECT_TRUE(FingerprintOf(path) == before) << "the file was modified";
  EXPECT_EQ(Exists(path + "-wal"), had_wal);
  EXPECT_EQ(Exists(path + "-shm"), had_shm);
}

TEST(SqliteScopeStoreTest, OpenCreatesAMissingFile) {
  const std::string path = TempPath("missing");
  ASSERT_FALSE(Exists(path));
  auto store = SqliteScopeStore::Open(path);
  ASSERT_OK(store);
  EXPECT_TRUE(Exists(path));
  EXPECT_EQ((*store)->path(), path);
}

TEST(SqliteScopeStoreTest, OpenAdoptsAnEmptyFile) {
  const std::string path = TempPath("empty");
  WriteFile(path, "");
  auto store = SqliteScopeStore::Open(path);
  ASSERT_OK(store);
  EXPECT_OK((*store)->Create("s", {0, "Canvas", "[]"}));
}

TEST(SqliteScopeStoreTest, OpenUsesWalModeAndTheSchemaVersion) {
  const std::string path = TempPath("wal");
  ASSERT_OK(SqliteScopeStore::Open(path));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  auto text = [&](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string value;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return value;
  };
  EXPECT_EQ(text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(
      text("SELECT value FROM jetstream_meta WHERE key = 'schema_version'"),
      "1");
  EXPECT_EQ(text("PRAGMA application_id"),
            std::to_string(SqliteScopeStore::kApplicationId));
  sqlite3_close(db);
}

TEST(SqliteScopeStoreTest, OpenRefusesRandomBytes) {
  const std::string path = TempPath("random");
  std::mt19937_64 random(42);
  std::string bytes(64 * 1024, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  WriteFile(path, bytes);
  ExpectRefused(path, absl::StatusCode::kDataLoss, "not a SQLite database");
}

TEST(SqliteScopeStoreTest, OpenRefusesATextFile) {
  const std::string path = TempPath("text");
  WriteFile(path, "scopes:\n  - Canvas\n");
  ExpectRefused(path, absl::StatusCode::kDataLoss, "not a SQLite database");
}

TEST(SqliteScopeStoreTest, OpenRefusesATruncatedDatabase) {
  const std::string path = TempPath("truncated");
  WriteRealStore(path);
  ASSERT_FALSE(Exists(path + "-wal"));  // closed cleanly: all in the file
  std::string bytes = ReadFile(path);
  ASSERT_GT(bytes.size(), 100u * 1024);
  WriteFile(path, bytes.substr(0, bytes.size() / 2));
  ExpectRefused(path, absl::StatusCode::kDataLoss, "damaged");
}

TEST(SqliteScopeStoreTest, OpenRefusesACorruptPage) {
  const std::string path = TempPath("corrupt");
  WriteRealStore(path);
  std::string bytes = ReadFile(path);
  // Scribble over a b-tree page in the middle (page size 4096).
  size_t page = (bytes.size() / 4096) / 2;
  for (size_t i = 0; i < 200; ++i) bytes[page * 4096 + i] = '\x5a';
  WriteFile(path, bytes);
  ExpectRefused(path, absl::StatusCode::kDataLoss, "damaged");
}

TEST(SqliteScopeStoreTest, OpenRefusesANewerSchemaVersion) {
  const std::string path = TempPath("newer");
  WriteRealStore(path);
  RunSql(path,
         "UPDATE jetstream_meta SET value = '2' WHERE key = 'schema_version';");
  ExpectRefused(path, absl::StatusCode::kFailedPrecondition,
                "schema version 2 is not supported");
}

TEST(SqliteScopeStoreTest, OpenRefusesAForeignDatabase) {
  const std::string path = TempPath("foreign");
  RunSql(path,
         "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); "
         "INSERT INTO users VALUES (1, 'ann');");
  ExpectRefused(path, absl::StatusCode::kFailedPrecondition,
                "not a Jetstream scope store");
}

TEST(SqliteScopeStoreTest, OpenRefusesAnotherApplicationsEmptyDatabase) {
  const std::string path = TempPath("other-app");
  RunSql(path, "PRAGMA application_id = 1234;");
  ExpectRefused(path, absl::StatusCode::kFailedPrecondition,
                "application_id 1234");
}

TEST(SqliteScopeStoreTest, OpenFailsClearlyWhenTheDirectoryIsMissing) {
  const std::string path = TempPath("no-such-dir") + "/scopes.db";
  auto store = SqliteScopeStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(path));
}

// A process killed with its file open (no checkpoint, WAL and shared memory
// left behind) loses nothing it acknowledged, and the next Open() accepts
// the file.
TEST(SqliteScopeStoreTest, KilledProcessKeepsEveryAcknowledgedCommit) {
  const std::string path = TempPath("killed");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = SqliteScopeStore::Open(path);
    if (!store.ok() || !(*store)->Create("s", {0, "Canvas", "[]"}).ok()) {
      _exit(1);
    }
    absl::BlockingCounter pending(50);
    std::atomic<int> ok{0};
    for (uint64_t v = 1; v <= 50; ++v) {
      (*store)->Append("s", {v, "[]", false, "[]", "o"}, [&](absl::Status st) {
        ok += st.ok();
        pending.DecrementCount();
      });
    }
    pending.Wait();
    if (ok.load() != 50) _exit(2);
    kill(getpid(), SIGKILL);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
      << "child failed with wait status " << wstatus;
  EXPECT_TRUE(Exists(path + "-wal"));

  auto store = SqliteScopeStore::Open(path);
  ASSERT_OK(store);
  auto loaded = (*store)->Load("s");
  ASSERT_OK(loaded);
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->log.size(), 50u);
}

TEST(SqliteScopeStoreTest, ReopeningKeepsEverything) {
  const std::string path = TempPath("reopen");
  WriteRealStore(path);
  auto store = SqliteScopeStore::Open(path);
  ASSERT_OK(store);
  auto names = (*store)->List();
  ASSERT_OK(names);
  EXPECT_EQ(names->size(), 4u);
  auto loaded = (*store)->Load("scope-3");
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->log.size(), 100u);
}

}  // namespace
}  // namespace jetstream::testing
