#include "syncservice/storage/postgres_scope_store.h"

#include <postgresql/libpq-fe.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "syncservice/storage/internal/status_macros.h"

namespace jetstream {
namespace postgres_store_internal {

// Result
//
// Owns one PGresult.
class Result {
 public:
  explicit Result(PGresult* result) : result_(result) {}
  Result(Result&& other) : result_(std::exchange(other.result_, nullptr)) {}
  Result& operator=(Result&& other) {
    if (this != &other) {
      PQclear(result_);
      result_ = std::exchange(other.result_, nullptr);
    }
    return *this;
  }
  ~Result() { PQclear(result_); }

  PGresult* get() const { return result_; }
  int rows() const { return PQntuples(result_); }
  bool IsNull(int row, int column) const {
    return PQgetisnull(result_, row, column) != 0;
  }
  std::string Text(int row, int column) const {
    return std::string(PQgetvalue(result_, row, column),
                       static_cast<size_t>(PQgetlength(result_, row, column)));
  }
  int64_t Int(int row, int column) const {
    int64_t value = 0;
    absl::SimpleAtoi(PQgetvalue(result_, row, column), &value);
    return value;
  }
  bool Bool(int row, int column) const {
    return PQgetvalue(result_, row, column)[0] == 't';
  }

 private:
  PGresult* result_;
};

// The status for a failed statement (or, with a null result, connection).
absl::Status PgError(PGconn* conn, const PGresult* result,
                     absl::string_view what) {
  std::string message = std::string(absl::StripTrailingAsciiWhitespace(
      result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn)));
  if (message.empty()) message = PQerrorMessage(conn);
  std::string text = absl::StrCat("postgres: ", what, ": ", message);
  if (PQstatus(conn) == CONNECTION_BAD) return absl::UnavailableError(text);
  const char* state =
      result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
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
  const char* state =
      result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  if (state == nullptr) return false;
  absl::string_view s = state;
  return s == "40001" || s == "40P01";
}

// Connection
//
// One PGconn. `setup` runs after every (re)connect. Not thread-safe.
class Connection {
 public:
  using Setup = std::function<absl::Status(Connection&)>;

  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& conninfo, absl::Duration connect_timeout,
      Setup setup) {
    // Our defaults come first: the connection string overrides them.
    std::string timeout =
        std::to_string(std::max<int64_t>(1, absl::ToInt64Seconds(connect_timeout)));
    const char* keys[] = {"connect_timeout", "fallback_application_name",
                          "dbname", nullptr};
    const char* values[] = {timeout.c_str(), "jetstream-syncservice",
                            conninfo.c_str(), nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    if (conn == nullptr) {
      return absl::ResourceExhaustedError("postgres: out of memory");
    }
    auto connection = std::unique_ptr<Connection>(
        new Connection(conn, std::move(setup)));
    if (PQstatus(conn) != CONNECTION_OK) {
      return absl::UnavailableError(absl::StrCat(
          "postgres: cannot connect: ",
          absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn))));
    }
    STORAGE_RETURN_IF_ERROR(connection->setup_(*connection));
    return connection;
  }

  ~Connection() { PQfinish(conn_); }

  PGconn* get() { return conn_; }
  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }

  // Reconnects (same parameters) and runs the setup again.
  absl::Status Reset() {
    PQreset(conn_);
    if (!ok()) {
      return absl::UnavailableError(absl::StrCat(
          "postgres: cannot reconnect: ",
          absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn_))));
    }
    return setup_(*this);
  }

  // Runs `sql` with text parameters (null pointers are SQL NULL) and
  // returns its result; an error unless it succeeded.
  absl::StatusOr<Result> Query(const char* sql,
                               std::vector<const char*> params = {}) {
    Result result(PQexecParams(conn_, sql, static_cast<int>(params.size()),
                               nullptr, params.data(), nullptr, nullptr, 0));
    ExecStatusType status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return PgError(conn_, result.get(), sql);
    }
    return result;
  }

  // Runs `sql`, which may hold several statements (simple protocol).
  absl::Status Exec(const char* sql) {
    Result result(PQexec(conn_, sql));
    ExecStatusType status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return PgError(conn_, result.get(), sql);
    }
    return absl::OkStatus();
  }

  absl::Status Prepare(const char* name, const char* sql,
                       std::vector<Oid> types) {
    Result result(PQprepare(conn_, name, sql, static_cast<int>(types.size()),
                            types.data()));
    if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
      return PgError(conn_, result.get(), name);
    }
    return absl::OkStatus();
  }

 private:
  Connection(PGconn* conn, Setup setup) : conn_(conn), setup_(std::move(setup)) {}

  PGconn* const conn_;
  const Setup setup_;
};

}  // namespace postgres_store_internal

namespace {

using postgres_store_internal::Connection;
using postgres_store_internal::IsRetryable;
using postgres_store_internal::PgError;
using postgres_store_internal::Result;
using storage_internal::CheckAppend;
using storage_internal::CheckSnapshot;
using storage_internal::GroupCommitQueue;
using storage_internal::ScopeHead;
using storage_internal::SnapshotAction;
using storage_internal::WriteOp;

// Type OIDs of the prepared statements' parameters (pg_type.h).
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;

// Serialises schema creation between processes opening one database.
constexpr const char* kLockSchema =
    "SELECT pg_advisory_xact_lock(4923857203948572)";

constexpr const char* kSelectTables =
    "SELECT to_regclass('jetstream_meta') IS NOT NULL, "
    "to_regclass('scopes') IS NOT NULL, to_regclass('snapshots') IS NOT NULL, "
    "to_regclass('commits') IS NOT NULL";

// scopes rows are small and hot (every append moves the head); the
// snapshot, which may be megabytes, has its own table.
constexpr const char* kCreateTables = R"sql(
CREATE TABLE jetstream_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE scopes (
  name             TEXT PRIMARY KEY,
  root_model       TEXT NOT NULL,
  snapshot_version BIGINT NOT NULL,
  head_version     BIGINT NOT NULL,
  head_writer      TEXT NOT NULL
);
CREATE TABLE snapshots (
  scope          TEXT PRIMARY KEY,
  fragments_json TEXT NOT NULL
);
CREATE TABLE commits (
  scope        TEXT NOT NULL,
  version      BIGINT NOT NULL,
  request_json TEXT NOT NULL,
  atomic       BOOLEAN NOT NULL,
  applied_json TEXT NOT NULL,
  origin       TEXT NOT NULL,
  PRIMARY KEY (scope, version)
);
)sql";

constexpr const char* kSelectSchemaVersion =
    "SELECT value FROM jetstream_meta WHERE key = 'schema_version'";

// $1 name, $2 root_model, $3 version, $4 snapshot_json, $5 writer.
// One row iff the scope was created.
constexpr const char* kCreateName = "jetstream_create";
constexpr const char* kCreateSql = R"sql(
WITH c AS (
  INSERT INTO scopes (name, root_model, snapshot_version, head_version,
                      head_writer)
  VALUES ($1, $2, $3, $3, $5)
  ON CONFLICT (name) DO NOTHING
  RETURNING name
), p AS (
  INSERT INTO snapshots (scope, fragments_json) SELECT name, $4 FROM c
)
SELECT 1 FROM c
)sql";

// $1 scope, $2 version, $3 request_json, $4 atomic, $5 applied_json,
// $6 origin, $7 writer, $8 known version (-1: none).
// Moves the head from $2-1 to $2 iff this writer may extend it, and inserts
// the commit iff the head moved. Returns whether it did, and the head as it
// was before the statement (NULLs: no such scope) for the diagnosis.
constexpr const char* kAppendName = "jetstream_append";
constexpr const char* kAppendSql = R"sql(
WITH s AS (
  SELECT snapshot_version, head_version, head_writer FROM scopes
  WHERE name = $1
), h AS (
  UPDATE scopes SET head_version = $2, head_writer = $7
  WHERE name = $1 AND head_version = $2 - 1
    AND (head_writer = $7 OR head_version <= $8)
  RETURNING 1
), i AS (
  INSERT INTO commits (scope, version, request_json, atomic, applied_json,
                       origin)
  SELECT $1, $2, $3, $4, $5, $6 FROM h
  RETURNING 1
)
SELECT (SELECT count(*) FROM i), s.snapshot_version, s.head_version,
       s.head_writer
FROM (SELECT 1) AS one LEFT JOIN s ON true
)sql";

// $1 scope, $2 version, $3 root_model, $4 snapshot_json, $5 writer,
// $6 known version (-1: none).
// Replaces the snapshot and deletes the commits it covers iff the rules of
// CheckSnapshot() allow; returns whether it did and the head before.
constexpr const char* kSnapshotName = "jetstream_snapshot";
constexpr const char* kSnapshotSql = R"sql(
WITH s AS (
  SELECT snapshot_version, head_version, head_writer FROM scopes
  WHERE name = $1 FOR UPDATE
), u AS (
  UPDATE scopes SET root_model = $3, snapshot_version = $2
  FROM s
  WHERE scopes.name = $1 AND $2 > s.snapshot_version
    AND $2 <= s.head_version AND (s.head_writer = $5 OR $2 <= $6)
  RETURNING 1
), p AS (
  UPDATE snapshots SET fragments_json = $4
  WHERE scope = $1 AND EXISTS (SELECT 1 FROM u)
), d AS (
  DELETE FROM commits
  WHERE scope = $1 AND version <= $2 AND EXISTS (SELECT 1 FROM u)
)
SELECT (SELECT count(*) FROM u), s.snapshot_version, s.head_version,
       s.head_writer
FROM (SELECT 1) AS one LEFT JOIN s ON true
)sql";

constexpr const char* kSelectSnapshot =
    "SELECT s.root_model, s.snapshot_version, p.fragments_json "
    "FROM scopes AS s JOIN snapshots AS p ON p.scope = s.name "
    "WHERE s.name = $1";
constexpr const char* kSelectLog =
    "SELECT version, request_json, atomic, applied_json, origin FROM commits "
    "WHERE scope = $1 AND version > $2 ORDER BY version";
constexpr const char* kSelectNames =
    "SELECT name FROM scopes ORDER BY name COLLATE \"C\"";

// Statements a pipeline chunk carries before it syncs and reads the results.
// The results of a chunk (about 100 bytes each) must fit the socket buffers,
// since libpq writes the whole chunk before reading anything.
constexpr size_t kPipelineChunk = 64;

absl::Status CreateOrCheckSchema(Connection& c) {
  STORAGE_RETURN_IF_ERROR(c.Exec("BEGIN"));
  absl::Status status = [&]() -> absl::Status {
    STORAGE_RETURN_IF_ERROR(c.Exec(kLockSchema));
    STORAGE_ASSIGN_OR_RETURN(Result tables, c.Query(kSelectTables));
    bool has_meta = tables.Bool(0, 0);
    bool has_scopes = tables.Bool(0, 1);
    bool has_snapshots = tables.Bool(0, 2);
    bool has_commits = tables.Bool(0, 3);
    if (!has_meta) {
      if (has_scopes || has_snapshots || has_commits) {
        return absl::FailedPreconditionError(
            "postgres: the database has tables named scopes/snapshots/commits "
            "that are "
            "not a Jetstream scope store (no jetstream_meta table); use "
            "another database or schema (search_path)");
      }
      STORAGE_RETURN_IF_ERROR(c.Exec(kCreateTables));
      std::string version = std::to_string(PostgresScopeStore::kSchemaVersion);
      return c.Query("INSERT INTO jetstream_meta (key, value) "
                     "VALUES ('schema_version', $1)",
                     {version.c_str()})
          .status();
    }
    STORAGE_ASSIGN_OR_RETURN(Result version, c.Query(kSelectSchemaVersion));
    if (version.rows() != 1) {
      return absl::FailedPreconditionError(
          "postgres: jetstream_meta has no schema_version: not a Jetstream "
          "scope store");
    }
    if (version.Text(0, 0) !=
        std::to_string(PostgresScopeStore::kSchemaVersion)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "postgres: scope store schema version ", version.Text(0, 0),
          " is not supported by this build (it reads version ",
          PostgresScopeStore::kSchemaVersion,
          "); was it written by a newer Jetstream?"));
    }
    if (!has_scopes || !has_snapshots || !has_commits) {
      return absl::FailedPreconditionError(
          "postgres: jetstream_meta exists but the scopes, snapshots or "
          "commits table is missing");
    }
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    c.Exec("ROLLBACK").IgnoreError();
    return status;
  }
  return c.Exec("COMMIT");
}

std::optional<ScopeHead> HeadFromRow(const Result& r) {
  if (r.IsNull(0, 2)) return std::nullopt;
  ScopeHead head;
  head.snapshot_version = static_cast<uint64_t>(r.Int(0, 1));
  head.head_version = static_cast<uint64_t>(r.Int(0, 2));
  head.head_writer = r.Text(0, 3);
  return head;
}

// One statement of a batch on the wire.
struct Sent {
  enum class What { kBegin, kCommit, kOp } what;
  size_t op = 0;  // kOp: index into the batch
};

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresScopeStore>> PostgresScopeStore::Open(
    const std::string& conninfo, PostgresScopeStoreOptions options) {
  const bool synchronous = options.store.synchronous;
  STORAGE_ASSIGN_OR_RETURN(
      std::unique_ptr<Connection> writer,
      Connection::Open(conninfo, options.connect_timeout,
                       [synchronous](Connection& c) -> absl::Status {
                         STORAGE_RETURN_IF_ERROR(c.Exec(
                             synchronous ? "SET synchronous_commit = on"
                                         : "SET synchronous_commit = off"));
                         STORAGE_RETURN_IF_ERROR(CreateOrCheckSchema(c));
                         STORAGE_RETURN_IF_ERROR(c.Prepare(
                             kCreateName, kCreateSql,
                             {kTextOid, kTextOid, kInt8Oid, kTextOid, kTextOid}));
                         STORAGE_RETURN_IF_ERROR(c.Prepare(
                             kAppendName, kAppendSql,
                             {kTextOid, kInt8Oid, kTextOid, kBoolOid, kTextOid,
                              kTextOid, kTextOid, kInt8Oid}));
                         return c.Prepare(kSnapshotName, kSnapshotSql,
                                          {kTextOid, kInt8Oid, kTextOid,
                                           kTextOid, kTextOid, kInt8Oid});
                       }));
  STORAGE_ASSIGN_OR_RETURN(
      std::unique_ptr<Connection> reader,
      Connection::Open(conninfo, options.connect_timeout,
                       [](Connection&) { return absl::OkStatus(); }));
  return std::unique_ptr<PostgresScopeStore>(new PostgresScopeStore(
      std::move(options), std::move(writer), std::move(reader)));
}

PostgresScopeStore::PostgresScopeStore(PostgresScopeStoreOptions options,
                                       std::unique_ptr<Connection> writer,
                                       std::unique_ptr<Connection> reader)
    : options_(std::move(options)),
      writer_(std::move(writer)),
      reader_(std::move(reader)) {
  GroupCommitQueue::Options queue_options;
  queue_options.max_batch_writes = options_.store.max_batch_writes;
  queue_options.max_batch_bytes = options_.store.max_batch_bytes;
  queue_ = std::make_unique<GroupCommitQueue>(
      queue_options,
      [this](std::vector<WriteOp>& batch) { return WriteBatch(batch); },
      [] {});
}

PostgresScopeStore::~PostgresScopeStore() { queue_->Shutdown(); }

absl::StatusOr<std::optional<StoredScope>> PostgresScopeStore::Load(
    const std::string& scope) {
  absl::MutexLock lock(&reader_mu_);
  if (!reader_->ok()) STORAGE_RETURN_IF_ERROR(reader_->Reset());
  absl::StatusOr<std::optional<StoredScope>> result = LoadOnce(scope);
  if (!result.ok() && !reader_->ok()) {
    // The connection dropped (server restart, say): one fresh try.
    STORAGE_RETURN_IF_ERROR(reader_->Reset());
    result = LoadOnce(scope);
  }
  if (result.ok() && result->has_value()) {
    fence_.Advance(scope, (*result)->head_version());
  }
  return result;
}

absl::StatusOr<std::optional<StoredScope>> PostgresScopeStore::LoadOnce(
    const std::string& scope) {
  Connection& c = *reader_;
  STORAGE_RETURN_IF_ERROR(
      c.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  absl::StatusOr<std::optional<StoredScope>> result =
      [&]() -> absl::StatusOr<std::optional<StoredScope>> {
    StoredScope stored;
    STORAGE_ASSIGN_OR_RETURN(Result snapshot,
                             c.Query(kSelectSnapshot, {scope.c_str()}));
    if (snapshot.rows() == 0) return std::optional<StoredScope>();
    stored.snapshot.root_model = snapshot.Text(0, 0);
    stored.snapshot.version = static_cast<uint64_t>(snapshot.Int(0, 1));
    stored.snapshot.fragments_json = snapshot.Text(0, 2);
    std::string after = std::to_string(stored.snapshot.version);
    STORAGE_ASSIGN_OR_RETURN(Result log,
                             c.Query(kSelectLog, {scope.c_str(), after.c_str()}));
    stored.log.reserve(static_cast<size_t>(log.rows()));
    for (int row = 0; row < log.rows(); ++row) {
      StoredCommit& commit = stored.log.emplace_back();
      commit.version = static_cast<uint64_t>(log.Int(row, 0));
      commit.request_json = log.Text(row, 1);
      commit.atomic = log.Bool(row, 2);
      commit.applied_json = log.Text(row, 3);
      commit.origin = log.Text(row, 4);
    }
    return std::optional<StoredScope>(std::move(stored));
  }();
  absl::Status end = c.Exec(result.ok() ? "COMMIT" : "ROLLBACK");
  if (!result.ok()) return result.status();
  STORAGE_RETURN_IF_ERROR(end);
  return result;
}

absl::StatusOr<std::vector<std::string>> PostgresScopeStore::List() {
  absl::MutexLock lock(&reader_mu_);
  if (!reader_->ok()) STORAGE_RETURN_IF_ERROR(reader_->Reset());
  absl::StatusOr<Result> names = reader_->Query(kSelectNames);
  if (!names.ok() && !reader_->ok()) {
    STORAGE_RETURN_IF_ERROR(reader_->Reset());
    names = reader_->Query(kSelectNames);
  }
  if (!names.ok()) return names.status();
  std::vector<std::string> list;
  list.reserve(static_cast<size_t>(names->rows()));
  for (int row = 0; row < names->rows(); ++row) {
    list.push_back(names->Text(row, 0));
  }
  return list;
}

absl::Status PostgresScopeStore::Create(const std::string& scope,
                                       const StoredSnapshot& snapshot) {
  return queue_->Create(scope, snapshot);
}

void PostgresScopeStore::Append(const std::string& scope, StoredCommit commit,
                               std::function<void(absl::Status)> done) {
  queue_->Append(scope, std::move(commit), std::move(done));
}

absl::Status PostgresScopeStore::SaveSnapshot(const std::string& scope,
                                             const StoredSnapshot& snapshot) {
  return queue_->SaveSnapshot(scope, snapshot);
}

ScopeStoreStats PostgresScopeStore::Stats() const { return queue_->Stats(); }

absl::Status PostgresScopeStore::WriteBatch(std::vector<WriteOp>& batch) {
  absl::Status status = WriteWithRetries(batch);
  if (status.ok() || !absl::IsInvalidArgument(status) || batch.size() < 2) {
    return status;
  }
  // The server refused one write's data (bad encoding, too large): that
  // write alone must fail, not the whole batch. Write each on its own.
  for (WriteOp& op : batch) {
    std::vector<WriteOp> single;
    single.push_back(std::move(op));
    absl::Status alone = WriteWithRetries(single);
    op = std::move(single.front());
    if (!alone.ok()) op.status = alone;
  }
  return absl::OkStatus();
}

absl::Status PostgresScopeStore::WriteWithRetries(std::vector<WriteOp>& batch) {
  absl::Status status;
  for (int attempt = 0; attempt <= options_.max_retries; ++attempt) {
    for (WriteOp& op : batch) op.status = absl::OkStatus();
    bool retryable = false;
    status = TryWriteBatch(batch, &retryable);
    // Deadlocks, serialization failures and a connection lost before the
    // COMMIT went out (nothing was committed) are worth another try.
    if (status.ok() || !retryable) break;
  }
  return status;
}

absl::Status PostgresScopeStore::TryWriteBatch(std::vector<WriteOp>& batch,
                                               bool* retryable) {
  Connection& c = *writer_;
  if (!c.ok()) STORAGE_RETURN_IF_ERROR(c.Reset());
  PGconn* conn = c.get();
  *retryable = false;

  // Scope rows are locked in name order, the same in every writer; within a
  // scope the order of the calls is kept.
  std::vector<size_t> order(batch.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return batch[a].scope < batch[b].scope;
  });
  std::vector<Sent> statements;
  statements.reserve(batch.size() + 2);
  statements.push_back({Sent::What::kBegin});
  for (size_t i : order) statements.push_back({Sent::What::kOp, i});
  statements.push_back({Sent::What::kCommit});

  // Parameters are kept alive until their statement was sent.
  const std::string& writer_id = fence_.writer_id();
  auto send = [&](const Sent& s) -> bool {
    if (s.what == Sent::What::kBegin) {
      return PQsendQueryParams(conn, "BEGIN", 0, nullptr, nullptr, nullptr,
                               nullptr, 0) == 1;
    }
    if (s.what == Sent::What::kCommit) {
      return PQsendQueryParams(conn, "COMMIT", 0, nullptr, nullptr, nullptr,
                               nullptr, 0) == 1;
    }
    const WriteOp& op = batch[s.op];
    std::string version = std::to_string(op.version());
    std::string known = std::to_string(fence_.Known(op.scope));
    switch (op.kind) {
      case WriteOp::Kind::kCreate: {
        const char* params[] = {op.scope.c_str(),
                                op.snapshot.root_model.c_str(), version.c_str(),
                                op.snapshot.fragments_json.c_str(),
                                writer_id.c_str()};
        return PQsendQueryPrepared(conn, kCreateName, 5, params, nullptr,
                                   nullptr, 0) == 1;
      }
      case WriteOp::Kind::kAppend: {
        const char* params[] = {op.scope.c_str(),
                                version.c_str(),
                                op.commit.request_json.c_str(),
                                op.commit.atomic ? "t" : "f",
                                op.commit.applied_json.c_str(),
                                op.commit.origin.c_str(),
                                writer_id.c_str(),
                                known.c_str()};
        return PQsendQueryPrepared(conn, kAppendName, 8, params, nullptr,
                                   nullptr, 0) == 1;
      }
      case WriteOp::Kind::kSnapshot: {
        const char* params[] = {op.scope.c_str(),
                                version.c_str(),
                                op.snapshot.root_model.c_str(),
                                op.snapshot.fragments_json.c_str(),
                                writer_id.c_str(),
                                known.c_str()};
        return PQsendQueryPrepared(conn, kSnapshotName, 6, params, nullptr,
                                   nullptr, 0) == 1;
      }
    }
    return false;
  };

  // Sets the op's status from its statement's result row.
  auto interpret = [&](const Sent& s, const Result& r) {
    if (s.what != Sent::What::kOp) return;
    WriteOp& op = batch[s.op];
    switch (op.kind) {
      case WriteOp::Kind::kCreate:
        if (r.rows() == 0) {
          op.status = absl::AlreadyExistsError(
              absl::StrCat("scope ", op.scope, " exists already"));
        }
        return;
      case WriteOp::Kind::kAppend: {
        if (r.Int(0, 0) == 1) return;
        op.status = CheckAppend(op.scope, HeadFromRow(r), op.version(),
                                writer_id, fence_.Known(op.scope));
        if (op.status.ok()) {
          // The head moved between the statement's snapshot and its update.
          op.status = absl::AbortedError(
              absl::StrCat("version conflict: scope ", op.scope,
                           " was committed concurrently by another writer"));
        }
        return;
      }
      case WriteOp::Kind::kSnapshot: {
        if (r.Int(0, 0) == 1) return;
        SnapshotAction action;
        op.status = CheckSnapshot(op.scope, HeadFromRow(r), op.version(),
                                  writer_id, fence_.Known(op.scope), &action);
        if (op.status.ok() && action == SnapshotAction::kWrite) {
          op.status = absl::AbortedError(
              absl::StrCat("version conflict: scope ", op.scope,
                           " was committed concurrently by another writer"));
        }
        return;
      }
    }
  };

  if (PQenterPipelineMode(conn) != 1) {
    return PgError(conn, nullptr, "cannot enter pipeline mode");
  }
  absl::Status failure;
  bool commit_sent = false;
  for (size_t begin = 0; begin < statements.size() && failure.ok();
       begin += kPipelineChunk) {
    size_t end = std::min(statements.size(), begin + kPipelineChunk);
    for (size_t k = begin; k < end; ++k) {
      if (!send(statements[k])) {
        failure = PgError(conn, nullptr, "cannot send");
        break;
      }
      commit_sent |= statements[k].what == Sent::What::kCommit;
    }
    if (!failure.ok() || PQpipelineSync(conn) != 1) {
      if (failure.ok()) failure = PgError(conn, nullptr, "cannot sync");
      break;
    }
    // Read one result (then the null that ends it) per statement, then the
    // sync point. After an error the rest of the chunk comes back aborted.
    for (size_t k = begin; k < end; ++k) {
      Result r(PQgetResult(conn));
      if (r.get() == nullptr) {
        failure = PgError(conn, nullptr, "lost the connection");
        break;
      }
      ExecStatusType st = PQresultStatus(r.get());
      if (st == PGRES_FATAL_ERROR) {
        if (failure.ok()) {
          failure = PgError(conn, r.get(), "batch transaction");
          *retryable = IsRetryable(r.get());
        }
      } else if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        interpret(statements[k], r);
      }
      while (PGresult* extra = PQgetResult(conn)) PQclear(extra);
    }
    if (PQstatus(conn) == CONNECTION_BAD) {
      if (failure.ok()) failure = PgError(conn, nullptr, "lost the connection");
      break;
    }
    Result sync(PQgetResult(conn));
    if (sync.get() == nullptr || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) {
      if (failure.ok()) failure = PgError(conn, sync.get(), "pipeline sync");
      break;
    }
  }
  if (PQstatus(conn) == CONNECTION_BAD) {
    *retryable = !commit_sent;
    if (commit_sent) {
      return absl::UnavailableError(absl::StrCat(
          "postgres: connection lost while committing; the outcome of the "
          "batch is unknown (",
          failure.message(), ")"));
    }
    return failure.ok() ? PgError(conn, nullptr, "lost the connection")
                        : failure;
  }
  if (PQexitPipelineMode(conn) != 1) {
    // Results still pending after a failure: start over on a new session,
    // which also drops the open transaction.
    c.Reset().IgnoreError();
    *retryable = !commit_sent;
    return failure.ok() ? PgError(conn, nullptr, "cannot leave pipeline mode")
                        : failure;
  }
  if (!failure.ok()) {
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
      c.Exec("ROLLBACK").IgnoreError();
    }
    return failure;
  }
  for (const WriteOp& op : batch) {
    if (op.status.ok() && op.kind != WriteOp::Kind::kSnapshot) {
      fence_.Advance(op.scope, op.version());
    }
  }
  return absl::OkStatus();
}

}  // namespace jetstream
