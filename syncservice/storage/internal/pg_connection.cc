#include "syncservice/storage/internal/pg_connection.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace jetstream::pg_internal {

Result& Result::operator=(Result&& other) {
  if (this != &other) {
    PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

std::string Result::Text(int row, int column) const {
  return std::string(PQgetvalue(result_, row, column),
                     static_cast<size_t>(PQgetlength(result_, row, column)));
}

int64_t Result::Int(int row, int column) const {
  int64_t value = 0;
  absl::SimpleAtoi(PQgetvalue(result_, row, column), &value);
  return value;
}

double Result::Double(int row, int column) const {
  double value = 0;
  absl::SimpleAtod(PQgetvalue(result_, row, column), &value);
  return value;
}

absl::Status PgError(PGconn* conn, const PGresult* result,
                     absl::string_view what) {
  std::string message = std::string(absl::StripTrailingAsciiWhitespace(
      result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn)));
  if (message.empty()) message = PQerrorMessage(conn);
  std::string text = absl::StrCat("postgres: ", what, ": ", message);
  if (PQstatus(conn) == CONNECTION_BAD) return absl::UnavailableError(text);
  const char* state = result != nullptr
                          ? PQresultErrorField(result, PG_DIAG_SQLSTATE)
                          : nullptr;
  absl::string_view sqlstate = state != nullptr ? state : "";
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "23505") {
    return absl::AbortedError(text);
  }
  if (absl::StartsWith(sqlstate, "22") || absl::StartsWith(sqlstate, "54")) {
    // Data exception, program limit: this statement's data is refused.
    return absl::InvalidArgumentError(text);
  }
  if (absl::StartsWith(sqlstate, "53")) {
    return absl::ResourceExhaustedError(text);
  }
  if (absl::StartsWith(sqlstate, "08") || absl::StartsWith(sqlstate, "57P")) {
    return absl::UnavailableError(text);
  }
  if (absl::StartsWith(sqlstate, "42")) {
    return absl::FailedPreconditionError(text);
  }
  return absl::InternalError(text);
}

bool IsRetryable(const PGresult* result) {
  const char* state = result != nullptr
                          ? PQresultErrorField(result, PG_DIAG_SQLSTATE)
                          : nullptr;
  if (state == nullptr) return false;
  absl::string_view s = state;
  return s == "40001" || s == "40P01";
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(
    const std::string& conninfo, const ConnectOptions& options, Setup setup) {
  // Our defaults come first: the connection string overrides them.
  std::string timeout = std::to_string(
      std::max<int64_t>(1, absl::ToInt64Seconds(options.connect_timeout)));
  std::string user_timeout =
      std::to_string(absl::ToInt64Milliseconds(options.tcp_user_timeout));
  std::vector<const char*> keys = {"connect_timeout",
                                   "fallback_application_name"};
  std::vector<const char*> values = {timeout.c_str(),
                                     options.application_name.c_str()};
  if (options.tcp_user_timeout > absl::ZeroDuration()) {
    keys.push_back("tcp_user_timeout");
    values.push_back(user_timeout.c_str());
  }
  keys.push_back("dbname");
  values.push_back(conninfo.c_str());
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn =
      PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) {
    return absl::ResourceExhaustedError("postgres: out of memory");
  }
  auto connection =
      std::unique_ptr<Connection>(new Connection(conn, std::move(setup)));
  if (PQstatus(conn) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("postgres: cannot connect: ",
                     absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn))));
  }
  absl::Status set_up = connection->setup_(*connection);
  if (!set_up.ok()) return set_up;
  return connection;
}

absl::Status Connection::Reset() {
  PQreset(conn_);
  if (!ok()) {
    return absl::UnavailableError(absl::StrCat(
        "postgres: cannot reconnect: ",
        absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn_))));
  }
  return setup_(*this);
}

absl::StatusOr<Result> Connection::Query(const char* sql,
                                         std::vector<const char*> params) {
  Result result(PQexecParams(conn_, sql, static_cast<int>(params.size()),
                             nullptr, params.data(), nullptr, nullptr, 0));
  ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return PgError(conn_, result.get(), sql);
  }
  return result;
}

absl::StatusOr<Result> Connection::QueryPrepared(
    const char* name, std::vector<const char*> params) {
  Result result(PQexecPrepared(conn_, name, static_cast<int>(params.size()),
                               params.data(), nullptr, nullptr, 0));
  ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return PgError(conn_, result.get(), name);
  }
  return result;
}

absl::Status Connection::Exec(const char* sql) {
  Result result(PQexec(conn_, sql));
  ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return PgError(conn_, result.get(), sql);
  }
  return absl::OkStatus();
}

absl::Status Connection::Prepare(const char* name, const char* sql,
                                 std::vector<Oid> types) {
  Result result(PQprepare(conn_, name, sql, static_cast<int>(types.size()),
                          types.data()));
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    return PgError(conn_, result.get(), name);
  }
  return absl::OkStatus();
}

}  // namespace jetstream::pg_internal
