// File: tests/testing/postgres_server.h
//
// A real, throw-away PostgreSQL server for tests: initdb into a fresh
// directory under /tmp, the postmaster listening on 127.0.0.1 at a free port
// (and a Unix socket in the same directory), trust authentication for the
// "postgres" user. Uses Debian's server binaries
// (/usr/lib/postgresql/<major>/bin, package `postgresql`).
//
// PostgreSQL refuses to run as root, and tests run as root here: the server
// processes then run as the `postgres` system user (the child switches user
// with setgid/setuid before exec), and the directory is chown'ed to it. Run
// as any other user, the server runs as that user. Either way the test
// target needs tags = ["no-sandbox"] (a sandbox cannot switch users and
// hides /tmp), and the postmaster gets SIGQUIT if the test process dies.
//
// Example:
//   auto server = PostgresServer::Start();
//   ASSERT_TRUE(server.ok()) << server.status();
//   ASSERT_TRUE((*server)->CreateDatabase("t1").ok());
//   PGconn* c = PQconnectdb((*server)->ConnectionString("t1").c_str());
//
// For crash tests: Kill(SIGKILL) takes the server down without a shutdown
// (the postmaster's whole process group), and Restart() brings it back on
// the same data and port once the old backends, which are group leaders of
// their own and exit on their own, have let go of its shared memory.
//
// Thread-safety: none; use from the test's main thread.

#ifndef JETSTREAM_TESTS_TESTING_POSTGRES_SERVER_H_
#define JETSTREAM_TESTS_TESTING_POSTGRES_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace jetstream::testing {

class PostgresServer {
 public:
  struct Options {
    // Where initdb and postgres live; empty: the newest
    // /usr/lib/postgresql/*/bin.
    std::string bin_dir;
    // Extra `-c name=value` server settings, e.g. "fsync=off".
    std::vector<std::string> settings;
    // How long to wait for the server to accept connections.
    absl::Duration start_timeout = absl::Seconds(60);
  };

  // Creates the cluster and starts the server; returns when it accepts
  // connections. Errors carry the tail of the server's log.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start(Options options);
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start() {
    return Start(Options());
  }

  // Stops the server (fast shutdown) and deletes its directory.
  ~PostgresServer();

  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  // The postmaster's pid, or -1 while it is down.
  pid_t pid() const { return pid_; }

  // A libpq connection string for `database` over TCP.
  std::string ConnectionString(const std::string& database) const;

  // CREATE DATABASE `database` (UTF8, template0).
  absl::Status CreateDatabase(const std::string& database);

  // A new, empty schema in the "postgres" database; returns a connection
  // string whose search_path is that schema, so a store's tables land
  // there. Much cheaper than a database per test (CREATE DATABASE copies
  // and WAL-logs a template).
  absl::StatusOr<std::string> NewSchema();

  // Fast shutdown (SIGINT), waiting up to `timeout` before SIGKILL.
  absl::Status Stop(absl::Duration timeout = absl::Seconds(30));
  // Sends `signal` to the server's process group and reaps the postmaster.
  absl::Status Kill(int signal);
  // Starts the server again on the same data directory and port, after
  // waiting (up to 30 s) for the old backends to leave.
  absl::Status Restart();

  // The last lines of the server's log.
  std::string LogTail() const;

 private:
  explicit PostgresServer(Options options) : options_(std::move(options)) {}

  absl::Status Init();
  absl::Status Launch();
  // Waits until no process is attached to the shared memory segment the
  // last postmaster.pid names.
  absl::Status WaitForOldBackends();
  absl::Status WaitUntilReady();

  Options options_;
  std::string dir_;
  std::string bin_dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  // The user the server runs as (-1: this process's).
  uid_t uid_ = static_cast<uid_t>(-1);
  gid_t gid_ = static_cast<gid_t>(-1);
};

// Runs `sql` (one or more statements) on a new connection to `conninfo`.
absl::Status ExecSql(const std::string& conninfo, const std::string& sql);

// Runs the query `sql` and returns its rows as text (NULL as "").
absl::StatusOr<std::vector<std::vector<std::string>>> QuerySql(
    const std::string& conninfo, const std::string& sql);

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_TESTING_POSTGRES_SERVER_H_
