// File: syncservice/storage/internal/pg_connection.h
//
// Thin RAII wrappers over libpq shared by the PostgreSQL scope store and
// the PostgreSQL cluster (membership and leases): one PGresult, one PGconn
// with reconnect, and the mapping of PostgreSQL errors to absl::Status.
//
// Private to syncservice/storage and syncservice/cluster.

#ifndef JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_PG_CONNECTION_H_
#define JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_PG_CONNECTION_H_

#include <postgresql/libpq-fe.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace jetstream::pg_internal {

// Result
//
// Owns one PGresult (which may be null).
class Result {
 public:
  explicit Result(PGresult* result) : result_(result) {}
  Result(Result&& other) : result_(std::exchange(other.result_, nullptr)) {}
  Result& operator=(Result&& other);
  ~Result() { PQclear(result_); }

  PGresult* get() const { return result_; }
  int rows() const { return PQntuples(result_); }
  bool IsNull(int row, int column) const {
    return PQgetisnull(result_, row, column) != 0;
  }
  std::string Text(int row, int column) const;
  int64_t Int(int row, int column) const;
  double Double(int row, int column) const;
  bool Bool(int row, int column) const {
    return PQgetvalue(result_, row, column)[0] == 't';
  }

 private:
  PGresult* result_;
};

// The status for a failed statement (or, with a null result, connection):
// kUnavailable when the connection is gone or the server is shutting down,
// kAborted for serialization failures, deadlocks and unique violations,
// kInvalidArgument when the data is refused, kResourceExhausted,
// kFailedPrecondition for schema errors, kInternal otherwise.
absl::Status PgError(PGconn* conn, const PGresult* result,
                     absl::string_view what);

// True for a deadlock or serialization failure (worth another try).
bool IsRetryable(const PGresult* result);

struct ConnectOptions {
  // Default connect_timeout, unless the connection string sets one.
  absl::Duration connect_timeout = absl::Seconds(10);
  // Default tcp_user_timeout (how long sent data may stay unacknowledged
  // before the connection counts as broken), unless the string sets one;
  // zero leaves the system default.
  absl::Duration tcp_user_timeout = absl::ZeroDuration();
  // Reported to the server (pg_stat_activity), unless the string sets one.
  std::string application_name = "jetstream-syncservice";
};

// Connection
//
// One PGconn. `setup` runs after every (re)connect (session settings,
// prepared statements). Not thread-safe. Errors never repeat the connection
// string, which may hold a password; an empty string uses libpq's
// environment variables (PGHOST, PGUSER, PGPASSWORD, ...).
class Connection {
 public:
  using Setup = std::function<absl::Status(Connection&)>;

  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& conninfo, const ConnectOptions& options, Setup setup);

  ~Connection() { PQfinish(conn_); }

  PGconn* get() { return conn_; }
  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }

  // Reconnects (same parameters) and runs the setup again.
  absl::Status Reset();

  // Runs `sql` with text parameters (null pointers are SQL NULL) and
  // returns its result; an error unless it succeeded.
  absl::StatusOr<Result> Query(const char* sql,
                               std::vector<const char*> params = {});
  // Runs a prepared statement like Query().
  absl::StatusOr<Result> QueryPrepared(const char* name,
                                       std::vector<const char*> params);

  // Runs `sql`, which may hold several statements (simple protocol).
  absl::Status Exec(const char* sql);

  absl::Status Prepare(const char* name, const char* sql,
                       std::vector<Oid> types);

 private:
  Connection(PGconn* conn, Setup setup)
      : conn_(conn), setup_(std::move(setup)) {}

  PGconn* const conn_;
  const Setup setup_;
};

// Type OIDs of prepared statements' parameters (pg_type.h).
inline constexpr Oid kBoolOid = 16;
inline constexpr Oid kInt8Oid = 20;
inline constexpr Oid kTextOid = 25;
inline constexpr Oid kTextArrayOid = 1009;

}  // namespace jetstream::pg_internal

#endif  // JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_PG_CONNECTION_H_
