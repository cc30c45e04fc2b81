// PostgresScopeStore against a real PostgreSQL server started by the test
// (tests/testing/postgres_server.h): the ScopeStore conformance suite on a
// fresh database per test, plus schema checks, reconnection after a server
// restart, and no acknowledged commit lost when the server is killed.

#include "syncservice/storage/postgres_scope_store.h"

#include <postgresql/libpq-fe.h>
#include <signal.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "syncservice/storage/scope_store_conformance.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tcp_proxy.h"

namespace jetstream::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// One server for the whole binary; each test gets its own database.
PostgresServer* g_server = nullptr;

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<PostgresServer>> server =
        PostgresServer::Start();
    ASSERT_OK(server);
    server_ = std::move(*server);
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

void RunSql(const std::string& conninfo, const std::string& sql);

// A new, empty schema in the server's "postgres" database; returns a
// connection string whose search_path is that schema, so the store's tables
// land there. Much cheaper than a database per test (CREATE DATABASE copies
// and WAL-logs a template).
std::string NewDatabase(PostgresServer& server) {
  static std::atomic<int> counter{0};
  std::string schema = absl::StrCat("store_", counter++);
  RunSql(server.ConnectionString("postgres"),
         absl::StrCat("CREATE SCHEMA ", schema));
  return absl::StrCat(server.ConnectionString("postgres"),
                      " options=-csearch_path=", schema);
}

void RunSql(const std::string& conninfo, const std::string& sql) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  PGresult* result = PQexec(conn, sql.c_str());
  EXPECT_EQ(PQresultStatus(result), PGRES_COMMAND_OK)
      << PQresultErrorMessage(result);
  PQclear(result);
  PQfinish(conn);
}

absl::StatusOr<std::unique_ptr<PostgresScopeStore>> OpenStore(
    const std::string& conninfo, ScopeStoreOptions options = {}) {
  PostgresScopeStoreOptions postgres_options;
  postgres_options.store = options;
  return PostgresScopeStore::Open(conninfo, postgres_options);
}

class PostgresBackend : public ScopeStoreBackend {
 public:
  absl::StatusOr<std::unique_ptr<ScopeStore>> Open(
      const ScopeStoreOptions& options) override {
    if (g_server == nullptr) {
      return absl::UnavailableError("the test PostgreSQL server is not up");
    }
    if (conninfo_.empty()) conninfo_ = NewDatabase(*g_server);
    absl::StatusOr<std::unique_ptr<PostgresScopeStore>> store =
        OpenStore(conninfo_, options);
    if (!store.ok()) return store.status();
    return std::unique_ptr<ScopeStore>(std::move(*store));
  }

 private:
  std::string conninfo_;
};

INSTANTIATE_TEST_SUITE_P(
    Postgres, ScopeStoreConformanceTest,
    ::testing::Values(ScopeStoreBackendFactory{
        "Postgres", [] { return std::make_unique<PostgresBackend>(); }}),
    ScopeStoreBackendFactory::Name);

absl::Status AppendAndWait(ScopeStore& store, const std::string& scope,
                           uint64_t version) {
  absl::Notification written;
  absl::Status result;
  store.Append(scope, StoredCommit{version, "[]", false, "[]", "o"},
               [&](absl::Status status) {
                 result = std::move(status);
                 written.Notify();
               });
  written.WaitForNotification();
  return result;
}

class PostgresScopeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(g_server, nullptr); }
};

TEST_F(PostgresScopeStoreTest, OpenFailsClearlyWhenTheServerIsUnreachable) {
  // A port nobody listens on: the test server's, plus a password that must
  // not leak into the error.
  auto store = OpenStore(absl::StrCat(
      "host=127.0.0.1 port=1 user=postgres password=topsecret dbname=x "
      "connect_timeout=2"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable)
      << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("cannot connect"));
  EXPECT_THAT(store.status().message(), Not(HasSubstr("topsecret")));
}

TEST_F(PostgresScopeStoreTest, OpenRefusesForeignTables) {
  std::string conninfo = NewDatabase(*g_server);
  RunSql(conninfo, "CREATE TABLE scopes (id INTEGER PRIMARY KEY)");
  auto store = OpenStore(conninfo);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition)
      << store.status();
  EXPECT_THAT(store.status().message(),
              HasSubstr("not a Jetstream scope store"));
}

TEST_F(PostgresScopeStoreTest, OpenRefusesANewerSchemaVersion) {
  std::string conninfo = NewDatabase(*g_server);
  ASSERT_OK(OpenStore(conninfo));
  RunSql(conninfo,
         "UPDATE jetstream_meta SET value = '3' WHERE key = 'schema_version'");
  auto store = OpenStore(conninfo);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(),
              HasSubstr("schema version 3 is not supported"));
}

// A store written by a build of schema version 1 (before replicas had
// leases) is upgraded in place on open, and keeps its scopes.
TEST_F(PostgresScopeStoreTest, OpenUpgradesAVersion1Store) {
  std::string conninfo = NewDatabase(*g_server);
  RunSql(conninfo, R"sql(
    CREATE TABLE jetstream_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE scopes (name TEXT PRIMARY KEY, root_model TEXT NOT NULL,
      snapshot_version BIGINT NOT NULL, head_version BIGINT NOT NULL,
      head_writer TEXT NOT NULL);
    CREATE TABLE snapshots (scope TEXT PRIMARY KEY,
      fragments_json TEXT NOT NULL);
    CREATE TABLE commits (scope TEXT NOT NULL, version BIGINT NOT NULL,
      request_json TEXT NOT NULL, atomic BOOLEAN NOT NULL,
      applied_json TEXT NOT NULL, origin TEXT NOT NULL,
      PRIMARY KEY (scope, version));
    INSERT INTO jetstream_meta VALUES ('schema_version', '1');
    INSERT INTO scopes VALUES ('Canvas', 'Canvas', 0, 1, 'old');
    INSERT INTO snapshots VALUES ('Canvas', '[]');
    INSERT INTO commits VALUES ('Canvas', 1, '[]', false, '[]', 'o');
  )sql");
  auto store = OpenStore(conninfo);
  ASSERT_OK(store);
  auto loaded = (*store)->Load("Canvas");
  ASSERT_OK(loaded);
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->head_version(), 1u);
  EXPECT_OK(AppendAndWait(**store, "Canvas", 2));
  // Opening again finds version 2 and changes nothing.
  EXPECT_OK(OpenStore(conninfo));
}

TEST_F(PostgresScopeStoreTest, ConcurrentFirstOpensCreateTheSchemaOnce) {
  std::string conninfo = NewDatabase(*g_server);
  std::vector<absl::Status> results(6);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = OpenStore(conninfo).status(); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& status : results) EXPECT_TRUE(status.ok()) << status;
}

// A write the server refuses (text that is not UTF-8) fails alone, not
// the other writes of its batch.
TEST_F(PostgresScopeStoreTest, ARefusedWriteFailsAloneInItsBatch) {
  auto store = OpenStore(NewDatabase(*g_server));
  ASSERT_OK(store);
  for (const char* scope : {"a", "b", "c"}) {
    ASSERT_OK((*store)->Create(scope, {0, "Canvas", "[]"}));
  }
  absl::Status a1, b1, a2;
  absl::BlockingCounter pending(3);
  // Writes queued from a callback all wait for the same next batch.
  (*store)->Append("c", {1, "[]", false, "[]", "o"}, [&](absl::Status) {
    (*store)->Append("a", {1, "[]", false, "[]", "o"}, [&](absl::Status s) {
      a1 = s;
      pending.DecrementCount();
    });
    (*store)->Append("b", {1, "[\"\xff\xfe\"]", false, "[]", "o"},
                     [&](absl::Status s) {
                       b1 = s;
                       pending.DecrementCount();
                     });
    (*store)->Append("a", {2, "[]", false, "[]", "o"}, [&](absl::Status s) {
      a2 = s;
      pending.DecrementCount();
    });
  });
  pending.Wait();
  EXPECT_OK(a1);
  EXPECT_EQ(b1.code(), absl::StatusCode::kInvalidArgument) << b1;
  EXPECT_OK(a2);
  EXPECT_GE((*store)->Stats().max_batch, 3u);  // they did share a batch
  auto a = (*store)->Load("a");
  auto b = (*store)->Load("b");
  ASSERT_TRUE(a.ok() && a->has_value() && b.ok() && b->has_value());
  EXPECT_EQ((*a)->head_version(), 2u);
  EXPECT_EQ((*b)->head_version(), 0u);
}

// The remaining tests restart or kill a server: each gets its own.
// The store reaches the server through a proxy that loses the answer to a
// COMMIT at will: the outcome of a batch is learnt, never guessed.
class LostCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proxy_ = std::make_unique<TcpProxy>(g_server->port());
    direct_ = NewDatabase(*g_server);
    // The last port= wins: everything of the store goes through the proxy.
    through_proxy_ = absl::StrCat(direct_, " port=", proxy_->port());
  }

  absl::StatusOr<std::unique_ptr<PostgresScopeStore>> OpenThroughProxy(
      absl::Duration unknown_outcome_timeout = absl::Seconds(10)) {
    PostgresScopeStoreOptions options;
    options.unknown_outcome_timeout = unknown_outcome_timeout;
    return PostgresScopeStore::Open(through_proxy_, options);
  }

  std::string Versions() {
    auto rows = QuerySql(direct_,
                         "SELECT string_agg(version::text, ',' "
                         "ORDER BY version) FROM commits");
    EXPECT_OK(rows);
    return rows.ok() ? (*rows)[0][0] : "";
  }

  std::unique_ptr<TcpProxy> proxy_;
  std::string direct_;
  std::string through_proxy_;
};

TEST_F(LostCommitTest, ACommitWhoseAnswerIsLostIsReadBackAsCommitted) {
  auto store = OpenThroughProxy();
  ASSERT_OK(store);
  ASSERT_OK((*store)->Create("s", {0, "Canvas", "[]"}));
  ASSERT_OK(AppendAndWait(**store, "s", 1));
  // The server gets the COMMIT and commits; its answer never arrives.
  proxy_->CutWhenClientSends("COMMIT", TcpProxy::Cut::kAfterForwarding);
  absl::Status status = AppendAndWait(**store, "s", 2);
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_OK(status);
  EXPECT_EQ(Versions(), "1,2");
  EXPECT_OK(AppendAndWait(**store, "s", 3));
  EXPECT_EQ(Versions(), "1,2,3");
}

TEST_F(LostCommitTest, ABatchWhoseCommitNeverArrivedIsWrittenAgain) {
  auto store = OpenThroughProxy();
  ASSERT_OK(store);
  ASSERT_OK((*store)->Create("s", {0, "Canvas", "[]"}));
  proxy_->CutWhenClientSends("COMMIT", TcpProxy::Cut::kInsteadOfForwarding);
  absl::Status status = AppendAndWait(**store, "s", 1);
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_OK(status);
  EXPECT_EQ(Versions(), "1");
}

TEST_F(LostCommitTest, AnOutcomeThatCannotBeLearntIsReportedUnknown) {
  auto store = OpenThroughProxy(absl::Milliseconds(300));
  ASSERT_OK(store);
  ASSERT_OK((*store)->Create("s", {0, "Canvas", "[]"}));
  // The COMMIT arrives, then the server cannot be reached any more.
  proxy_->CutWhenClientSends("COMMIT", TcpProxy::Cut::kAfterForwarding,
                             /*then_refuse=*/true);
  absl::Status status = AppendAndWait(**store, "s", 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("outcome of the batch is unknown"));
  EXPECT_TRUE(IsOutcomeUnknown(status));
  // It did commit, as Load() tells once the server is back.
  proxy_->SetRefusing(false);
  EXPECT_EQ(Versions(), "1");
  auto loaded = (*store)->Load("s");
  ASSERT_OK(loaded);
  EXPECT_EQ((*loaded)->head_version(), 1u);
}

class PostgresServerRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<PostgresServer>> server =
        PostgresServer::Start();
    ASSERT_OK(server);
    server_ = std::move(*server);
    conninfo_ = NewDatabase(*server_);
  }

  std::unique_ptr<PostgresServer> server_;
  std::string conninfo_;
};

TEST_F(PostgresServerRestartTest, StoreReconnectsAfterAServerRestart) {
  auto store = OpenStore(conninfo_);
  ASSERT_OK(store);
  ASSERT_OK((*store)->Create("s", {0, "Canvas", "[]"}));
  ASSERT_OK(AppendAndWait(**store, "s", 1));

  ASSERT_OK(server_->Stop());
  // While the server is down, writes fail as unavailable, nothing hangs.
  absl::Status down = AppendAndWait(**store, "s", 2);
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;
  ASSERT_TRUE(server_->Restart().ok()) << server_->LogTail();

  // Both connections come back by themselves. Version 2 was not written.
  absl::Status up = AppendAndWait(**store, "s", 2);
  EXPECT_OK(up);
  auto loaded = (*store)->Load("s");
  ASSERT_OK(loaded);
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->head_version(), 2u);
  EXPECT_EQ((*loaded)->log.size(), 2u);
}

// Connections killed under the writer, over and over (some during COMMIT):
// every append reports what really happened. An append reported failed is
// not stored (so the same version can be appended again); one reported OK
// is. Before the writer read its batch back after a lost COMMIT, some
// committed appends were reported failed.
TEST_F(PostgresServerRestartTest,
       AppendsReportTheirTrueOutcomeWhenConnectionsDie) {
  auto store = OpenStore(conninfo_);
  ASSERT_OK(store);
  ASSERT_OK((*store)->Create("s", {0, "Canvas", "[]"}));
  std::atomic<bool> stop{false};
  std::atomic<int> kills{0};
  std::thread killer([&] {
    while (!stop.load()) {
      auto killed = QuerySql(
          conninfo_,
          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
          "WHERE application_name = 'jetstream-syncservice' AND "
          "pid <> pg_backend_pid()");
      if (killed.ok() && !killed->empty()) kills += std::stoi((*killed)[0][0]);
      absl::SleepFor(absl::Milliseconds(3));  // pacing of the fault, not a sync
    }
  });
  int failures = 0;
  constexpr uint64_t kVersions = 200;
  for (uint64_t v = 1; v <= kVersions; ++v) {
    absl::Status status = AppendAndWait(**store, "s", v);
    for (int attempt = 0; !status.ok() && attempt < 50; ++attempt) {
      ++failures;
      // A failure must mean "not written": the same version goes through.
      ASSERT_FALSE(absl::StrContains(status.message(), "version conflict"))
          << "version " << v
          << " was reported failed but is stored: " << status;
      ASSERT_FALSE(absl::StrContains(status.message(), "outcome"))
          << "the server was reachable, so the outcome is known: " << status;
      status = AppendAndWait(**store, "s", v);
    }
    ASSERT_TRUE(status.ok()) << "version " << v << ": " << status;
  }
  stop = true;
  killer.join();
  std::printf("connections killed: %d, append attempts that failed: %d\n",
              kills.load(), failures);
  EXPECT_GT(kills.load(), 0);
  auto rows = QuerySql(conninfo_, "SELECT count(*), max(version) FROM commits");
  ASSERT_OK(rows);
  EXPECT_EQ((*rows)[0][0], std::to_string(kVersions));
  EXPECT_EQ((*rows)[0][1], std::to_string(kVersions));
}

TEST_F(PostgresServerRestartTest, KilledServerKeepsEveryAcknowledgedCommit) {
  auto store = OpenStore(conninfo_);
  ASSERT_OK(store);
  for (int s = 0; s < 10; ++s) {
    ASSERT_TRUE(
        (*store)->Create(absl::StrCat("s", s), {0, "Canvas", "[]"}).ok());
  }
  absl::BlockingCounter pending(300);
  std::atomic<int> ok{0};
  for (uint64_t v = 1; v <= 30; ++v) {
    for (int s = 0; s < 10; ++s) {
      (*store)->Append(absl::StrCat("s", s), {v, "[]", false, "[]", "o"},
                       [&](absl::Status status) {
                         ok += status.ok();
                         pending.DecrementCount();
                       });
    }
  }
  pending.Wait();
  ASSERT_EQ(ok.load(), 300);

  // No shutdown checkpoint: recovery must replay the WAL.
  ASSERT_OK(server_->Kill(SIGKILL));
  store->reset();
  ASSERT_TRUE(server_->Restart().ok()) << server_->LogTail();
  auto reopened = OpenStore(conninfo_);
  ASSERT_OK(reopened);
  for (int s = 0; s < 10; ++s) {
    auto loaded = (*reopened)->Load(absl::StrCat("s", s));
    ASSERT_OK(loaded);
    ASSERT_TRUE(loaded->has_value());
    EXPECT_EQ((*loaded)->log.size(), 30u) << s;
  }
}

}  // namespace
}  // namespace jetstream::testing
