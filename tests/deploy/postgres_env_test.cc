// File: tests/deploy/postgres_env_test.cc
//
// How the Kubernetes PostgreSQL overlay (deploy/kubernetes/overlays/postgres)
// hands the sync service its database: --store=postgres: with an empty
// connection string, every parameter in libpq's environment variables
// (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE; from a Secret
// there), so no password is ever on a command line. The real sync service
// and a real PostgreSQL server (tests/testing/postgres_server.h).

#include <postgresql/libpq-fe.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/process.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

class PostgresEnvironmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = PostgresServer::Start();
    ASSERT_OK(server);
    postgres_ = *std::move(server);
    ASSERT_OK(postgres_->CreateDatabase("from_env"));
  }

  void TearDown() override {
    for (const char* name : kVariables) unsetenv(name);
  }

  // The PG* variables as the overlay sets them, for `database`.
  void SetEnvironment(const std::string& database) {
    setenv("PGHOST", "127.0.0.1", 1);
    setenv("PGPORT", std::to_string(postgres_->port()).c_str(), 1);
    setenv("PGDATABASE", database.c_str(), 1);
    setenv("PGUSER", "postgres", 1);
    setenv("PGPASSWORD", "not-on-the-command-line", 1);
    setenv("PGSSLMODE", "disable", 1);
  }

  absl::StatusOr<std::unique_ptr<ChildProcess>> StartSyncService() {
    // The child inherits this process's environment.
    return ChildProcess::StartListening(
        "syncservice/syncservice",
        {"--listen=127.0.0.1:0", "--metrics_listen=",
         "--schema=" + Runfile("syncservice/config/demo_schema.json"),
         "--scopes=" + Runfile("syncservice/config/demo_scopes.json"),
         "--store=postgres:"});
  }

  // The scopes stored in `database`, -1 if it cannot be read.
  int StoredScopes(const std::string& database) {
    PGconn* conn = PQconnectdb(postgres_->ConnectionString(database).c_str());
    int count = -1;
    if (PQstatus(conn) == CONNECTION_OK) {
      PGresult* r = PQexec(conn, "SELECT count(*) FROM scopes");
      if (PQresultStatus(r) == PGRES_TUPLES_OK)
        count = std::atoi(PQgetvalue(r, 0, 0));
      PQclear(r);
    }
    PQfinish(conn);
    return count;
  }

  // Rows of the members table, or -1 if there is none.
  int Members(const std::string& database) {
    PGconn* conn = PQconnectdb(postgres_->ConnectionString(database).c_str());
    int count = -1;
    if (PQstatus(conn) == CONNECTION_OK) {
      PGresult* r = PQexec(conn, "SELECT count(*) FROM jetstream_members");
      if (PQresultStatus(r) == PGRES_TUPLES_OK)
        count = std::atoi(PQgetvalue(r, 0, 0));
      PQclear(r);
    }
    PQfinish(conn);
    return count;
  }

  static constexpr const char* kVariables[] = {
      "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE"};
  std::unique_ptr<PostgresServer> postgres_;
};

TEST_F(PostgresEnvironmentTest,
       AnEmptyConnectionStringTakesTheDatabaseFromTheEnvironment) {
  SetEnvironment("from_env");
  absl::StatusOr<std::unique_ptr<ChildProcess>> sync = StartSyncService();
  ASSERT_OK(sync);
  // The tables, and this replica's membership, in the database the
  // environment named.
  EXPECT_EQ(StoredScopes("from_env"), 0);
  EXPECT_EQ(Members("from_env"), 1);
  EXPECT_TRUE((*sync)->Terminate());
}

TEST_F(PostgresEnvironmentTest,
       ADatabaseTheEnvironmentNamesWronglyStopsTheStart) {
  SetEnvironment("no_such_database");
  absl::StatusOr<std::unique_ptr<ChildProcess>> sync = StartSyncService();
  EXPECT_FALSE(sync.ok()) << "started without its database";
  EXPECT_EQ(StoredScopes("from_env"), -1) << "tables created elsewhere";
}

}  // namespace
}  // namespace jetstream::testing
