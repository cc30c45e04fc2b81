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
#include "common/logging.h"
#include "syncservice/storage/internal/pg_connection.h"
#include "syncservice/storage/internal/status_macros.h"

namespace jetstream {

namespace {

using pg_internal::Connection;
using pg_internal::IsRetryable;
using pg_internal::PgError;
using pg_internal::Result;
using storage_internal::CheckAppend;
using storage_internal::CheckSnapshot;
using storage_internal::GroupCommitQueue;
using storage_internal::ScopeHead;
using storage_internal::SnapshotAction;
using storage_internal::WriteOp;

using pg_internal::kBoolOid;
using pg_internal::kInt8Oid;
using pg_internal::kTextOid;

// Serialises schema creation and upgrades between processes opening one
// database.
constexpr const char* kLockSchema =
    "SELECT pg_advisory_xact_lock(4923857203948572)";

constexpr const char* kSelectTables =
    "SELECT to_regclass('jetstream_meta') IS NOT NULL, "
    "to_regclass('scopes') IS NOT NULL, to_regclass('snapshots') IS NOT NULL, "
    "to_regclass('commits') IS NOT NULL";

// Schema version 1: scopes rows are small and hot (every append moves the
// head); the snapshot, which may be megabytes, has its own table.
constexpr const char* kCreateTablesV1 = R"sql(
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

// Version 1 -> 2: replicas (syncservice/cluster/postgres_cluster.h). Each
// commit records the store instance and lease epoch that wrote it; members
// heartbeat; a scope is served by the holder of its lease; every batch
// transaction bumps its writer's sequence number, so after a connection
// lost during COMMIT the writer can tell whether the batch committed.
constexpr const char* kUpgradeToV2 = R"sql(
ALTER TABLE commits
  ADD COLUMN writer TEXT NOT NULL DEFAULT '',
  ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
CREATE TABLE jetstream_members (
  member_id    TEXT PRIMARY KEY,
  incarnation  TEXT NOT NULL,
  address      TEXT NOT NULL,
  heartbeat_at TIMESTAMPTZ NOT NULL,
  draining     BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE jetstream_leases (
  scope      TEXT PRIMARY KEY,
  owner      TEXT NOT NULL,
  epoch      BIGINT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE jetstream_batches (
  writer TEXT PRIMARY KEY,
  seq    BIGINT NOT NULL
);
UPDATE jetstream_meta SET value = '2' WHERE key = 'schema_version';
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
// $6 origin, $7 writer, $8 known version (-1: none), $9 lease epoch (0: not
// leased).
// Moves the head from $2-1 to $2 iff this writer may extend it and (when
// leased) still holds the scope's lease at that epoch, unexpired; inserts
// the commit iff the head moved. The lease row is locked FOR KEY SHARE, so
// a replica taking the lease over (SELECT ... FOR UPDATE) waits for this
// transaction to end and then loads everything it committed. Returns
// whether the head moved, the head as it was before the statement (NULLs:
// no such scope) and whether the lease held, for the diagnosis.
constexpr const char* kAppendName = "jetstream_append";
constexpr const char* kAppendSql = R"sql(
WITH l AS (
  SELECT 1 FROM jetstream_leases
  WHERE scope = $1 AND owner = $7 AND epoch = $9
    AND expires_at > clock_timestamp()
  FOR KEY SHARE
), s AS (
  SELECT snapshot_version, head_version, head_writer FROM scopes
  WHERE name = $1
), h AS (
  UPDATE scopes SET head_version = $2, head_writer = $7
  WHERE name = $1 AND head_version = $2 - 1
    AND (head_writer = $7 OR head_version <= $8)
    AND ($9 = 0 OR EXISTS (SELECT 1 FROM l))
  RETURNING 1
), i AS (
  INSERT INTO commits (scope, version, request_json, atomic, applied_json,
                       origin, writer, lease_epoch)
  SELECT $1, $2, $3, $4, $5, $6, $7, $9 FROM h
  RETURNING 1
)
SELECT (SELECT count(*) FROM i), s.snapshot_version, s.head_version,
       s.head_writer, ($9 = 0 OR EXISTS (SELECT 1 FROM l))
FROM (SELECT 1) AS one LEFT JOIN s ON true
)sql";

// $1 writer, $2 sequence number of this batch transaction.
constexpr const char* kBatchMarkName = "jetstream_batch_mark";
constexpr const char* kBatchMarkSql = R"sql(
INSERT INTO jetstream_batches (writer, seq) VALUES ($1, $2)
ON CONFLICT (writer) DO UPDATE SET seq = EXCLUDED.seq
)sql";

// $1 writer, $2 the backend that was sent the COMMIT whose answer was lost
// (0: unknown). The batch mark once that transaction is over: the backend
// is told to end (a COMMIT it is running completes or not, as one step;
// a transaction still open rolls back), and the upsert waits on the row
// lock (or, for a writer's first batch, the unique index entry) that the
// transaction holds, so the answer is final. A missing row becomes seq 0:
// no batch of this writer committed.
constexpr const char* kSettleBatchMark = R"(
WITH ended AS (
  SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
  WHERE pid = $2::int)
INSERT INTO jetstream_batches (writer, seq) SELECT $1, 0 FROM ended
ON CONFLICT (writer) DO UPDATE SET seq = jetstream_batches.seq
RETURNING seq
)";

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
      STORAGE_RETURN_IF_ERROR(c.Exec(kCreateTablesV1));
      STORAGE_RETURN_IF_ERROR(
          c.Exec("INSERT INTO jetstream_meta (key, value) "
                 "VALUES ('schema_version', '1')"));
      return c.Exec(kUpgradeToV2);
    }
    STORAGE_ASSIGN_OR_RETURN(Result version, c.Query(kSelectSchemaVersion));
    if (version.rows() != 1) {
      return absl::FailedPreconditionError(
          "postgres: jetstream_meta has no schema_version: not a Jetstream "
          "scope store");
    }
    const std::string found = version.Text(0, 0);
    if (found != "1" &&
        found != std::to_string(PostgresScopeStore::kSchemaVersion)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "postgres: scope store schema version ", found,
          " is not supported by this build (it reads versions 1 and ",
          PostgresScopeStore::kSchemaVersion,
          "); was it written by a newer Jetstream?"));
    }
    if (!has_scopes || !has_snapshots || !has_commits) {
      return absl::FailedPreconditionError(
          "postgres: jetstream_meta exists but the scopes, snapshots or "
          "commits table is missing");
    }
    // Stores of version 1 are upgraded in place, under the lock.
    if (found == "1") return c.Exec(kUpgradeToV2);
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
  enum class What { kBegin, kMark, kCommit, kOp } what;
  size_t op = 0;  // kOp: index into the batch
};

// True for an error that ends the session (severity FATAL or PANIC, e.g.
// the backend was terminated): what the statement did is then unknown.
bool EndsTheSession(const PGresult* result) {
  const char* severity =
      PQresultErrorField(result, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (severity == nullptr) return true;
  absl::string_view s = severity;
  return s == "FATAL" || s == "PANIC";
}

// After a batch that committed lost its results: the status of `op`, read
// from the database (a commit row of this writer at that version; a scope
// row this writer created). Snapshots report OK either way: nothing depends
// on them beyond compaction.
absl::Status LookUpCommitted(Connection& c, const WriteOp& op,
                             const std::string& writer_id) {
  std::string version = std::to_string(op.version());
  switch (op.kind) {
    case WriteOp::Kind::kAppend: {
      absl::StatusOr<Result> r = c.Query(
          "SELECT 1 FROM commits WHERE scope = $1 AND version = $2 AND "
          "writer = $3",
          {op.scope.c_str(), version.c_str(), writer_id.c_str()});
      if (!r.ok()) return r.status();
      if (r->rows() == 1) return absl::OkStatus();
      return absl::AbortedError(
          absl::StrCat("version conflict: scope ", op.scope, " version ",
                       op.version(), " was not written by this replica"));
    }
    case WriteOp::Kind::kCreate: {
      absl::StatusOr<Result> r = c.Query(
          "SELECT head_writer FROM scopes WHERE name = $1", {op.scope.c_str()});
      if (!r.ok()) return r.status();
      if (r->rows() == 1 && r->Text(0, 0) == writer_id) return absl::OkStatus();
      return absl::AlreadyExistsError(
          absl::StrCat("scope ", op.scope, " exists already"));
    }
    case WriteOp::Kind::kSnapshot:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresScopeStore>> PostgresScopeStore::Open(
    const std::string& conninfo, PostgresScopeStoreOptions options) {
  const bool synchronous = options.store.synchronous;
  const int64_t idle_ms =
      absl::ToInt64Milliseconds(options.idle_in_transaction_timeout);
  pg_internal::ConnectOptions connect;
  connect.connect_timeout = options.connect_timeout;
  connect.application_name = options.application_name;
  STORAGE_ASSIGN_OR_RETURN(
      std::unique_ptr<Connection> writer,
      Connection::Open(
          conninfo, connect,
          [synchronous, idle_ms](Connection& c) -> absl::Status {
            STORAGE_RETURN_IF_ERROR(
                c.Exec(synchronous ? "SET synchronous_commit = on"
                                   : "SET synchronous_commit = off"));
            if (idle_ms > 0) {
              std::string set = absl::StrCat(
                  "SET idle_in_transaction_session_timeout = ", idle_ms);
              STORAGE_RETURN_IF_ERROR(c.Exec(set.c_str()));
            }
            STORAGE_RETURN_IF_ERROR(CreateOrCheckSchema(c));
            STORAGE_RETURN_IF_ERROR(
                c.Prepare(kCreateName, kCreateSql,
                          {kTextOid, kTextOid, kInt8Oid, kTextOid, kTextOid}));
            STORAGE_RETURN_IF_ERROR(
                c.Prepare(kAppendName, kAppendSql,
                          {kTextOid, kInt8Oid, kTextOid, kBoolOid, kTextOid,
                           kTextOid, kTextOid, kInt8Oid, kInt8Oid}));
            STORAGE_RETURN_IF_ERROR(
                c.Prepare(kBatchMarkName, kBatchMarkSql, {kTextOid, kInt8Oid}));
            return c.Prepare(
                kSnapshotName, kSnapshotSql,
                {kTextOid, kInt8Oid, kTextOid, kTextOid, kTextOid, kInt8Oid});
          }));
  STORAGE_ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                           Connection::Open(conninfo, connect, [](Connection&) {
                             return absl::OkStatus();
                           }));
  return std::unique_ptr<PostgresScopeStore>(new PostgresScopeStore(
      std::move(options), std::move(writer), std::move(reader)));
}

PostgresScopeStore::PostgresScopeStore(PostgresScopeStoreOptions options,
                                       std::unique_ptr<Connection> writer,
                                       std::unique_ptr<Connection> reader)
    : options_(std::move(options)),
      fence_(options_.writer_id),
      writer_(std::move(writer)),
      reader_(std::move(reader)) {
  GroupCommitQueue::Options queue_options;
  queue_options.max_batch_writes = options_.store.max_batch_writes;
  queue_options.max_batch_bytes = options_.store.max_batch_bytes;
  queue_options.observer = options_.store.observer;
  queue_ = std::make_unique<GroupCommitQueue>(
      queue_options,
      [this](std::vector<WriteOp>& batch) { return WriteBatch(batch); }, [] {});
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
    STORAGE_ASSIGN_OR_RETURN(
        Result log, c.Query(kSelectLog, {scope.c_str(), after.c_str()}));
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
  // Taken now: libpq forgets it once the connection is lost.
  const int backend_pid = PQbackendPID(conn);
  *retryable = false;

  // Scope rows are locked in name order, the same in every writer; within a
  // scope the order of the calls is kept.
  std::vector<size_t> order(batch.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return batch[a].scope < batch[b].scope;
  });
  std::vector<Sent> statements;
  statements.reserve(batch.size() + 3);
  statements.push_back({Sent::What::kBegin});
  statements.push_back({Sent::What::kMark});
  for (size_t i : order) statements.push_back({Sent::What::kOp, i});
  statements.push_back({Sent::What::kCommit});
  // Which ops' results were read (after a lost connection, the others are
  // looked up).
  std::vector<bool> interpreted(batch.size(), false);
  const uint64_t seq = ++batch_seq_;
  const std::string seq_text = std::to_string(seq);

  // Parameters are kept alive until their statement was sent.
  const std::string& writer_id = fence_.writer_id();
  auto send = [&](const Sent& s) -> bool {
    if (s.what == Sent::What::kBegin) {
      return PQsendQueryParams(conn, "BEGIN", 0, nullptr, nullptr, nullptr,
                               nullptr, 0) == 1;
    }
    if (s.what == Sent::What::kMark) {
      const char* params[] = {writer_id.c_str(), seq_text.c_str()};
      return PQsendQueryPrepared(conn, kBatchMarkName, 2, params, nullptr,
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
        const char* params[] = {
            op.scope.c_str(), op.snapshot.root_model.c_str(), version.c_str(),
            op.snapshot.fragments_json.c_str(), writer_id.c_str()};
        return PQsendQueryPrepared(conn, kCreateName, 5, params, nullptr,
                                   nullptr, 0) == 1;
      }
      case WriteOp::Kind::kAppend: {
        std::string epoch = std::to_string(op.commit.lease_epoch);
        const char* params[] = {op.scope.c_str(),
                                version.c_str(),
                                op.commit.request_json.c_str(),
                                op.commit.atomic ? "t" : "f",
                                op.commit.applied_json.c_str(),
                                op.commit.origin.c_str(),
                                writer_id.c_str(),
                                known.c_str(),
                                epoch.c_str()};
        return PQsendQueryPrepared(conn, kAppendName, 9, params, nullptr,
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
    interpreted[s.op] = true;
    switch (op.kind) {
      case WriteOp::Kind::kCreate:
        if (r.rows() == 0) {
          op.status = absl::AlreadyExistsError(
              absl::StrCat("scope ", op.scope, " exists already"));
        }
        return;
      case WriteOp::Kind::kAppend: {
        if (r.Int(0, 0) == 1) return;
        if (!r.Bool(0, 4)) {
          op.status = absl::AbortedError(
              absl::StrCat("lease lost: scope ", op.scope,
                           " is no longer leased to this replica at epoch ",
                           op.commit.lease_epoch));
          return;
        }
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
  // What became of the COMMIT: only a result read for it tells; a session
  // that ended around it (lost connection, FATAL) leaves it unknown.
  enum class Commit { kNotSent, kUnknown, kCommitted, kRolledBack };
  Commit commit = Commit::kNotSent;
  // A result said the session is over (FATAL, or the connection lost).
  bool session_ended = false;
  absl::Status failure;
  for (size_t begin = 0; begin < statements.size() && failure.ok();
       begin += kPipelineChunk) {
    size_t end = std::min(statements.size(), begin + kPipelineChunk);
    for (size_t k = begin; k < end; ++k) {
      if (!send(statements[k])) {
        failure = PgError(conn, nullptr, "cannot send");
        break;
      }
      if (statements[k].what == Sent::What::kCommit) commit = Commit::kUnknown;
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
      if (st == PGRES_FATAL_ERROR && EndsTheSession(r.get())) {
        session_ended = true;
      }
      if (statements[k].what == Sent::What::kCommit) {
        // An aborted COMMIT is a rollback only when the server aborted the
        // pipeline (an error that left the session alive). When libpq
        // aborts it because the connection was lost, the server may have
        // read the COMMIT and committed: the outcome stays unknown.
        if (st == PGRES_COMMAND_OK) {
          commit = Commit::kCommitted;
        } else if ((st == PGRES_PIPELINE_ABORTED && !session_ended) ||
                   (st == PGRES_FATAL_ERROR && !EndsTheSession(r.get()))) {
          commit = Commit::kRolledBack;
        }
      }
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
    if (sync.get() == nullptr ||
        PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) {
      if (failure.ok()) failure = PgError(conn, sync.get(), "pipeline sync");
      break;
    }
  }
  // Leaves pipeline mode, or drops a session that cannot (results still
  // pending after a failure; the server rolls back what is open).
  const bool session_usable =
      PQstatus(conn) != CONNECTION_BAD && PQexitPipelineMode(conn) == 1;
  auto advance_fences = [&] {
    for (const WriteOp& op : batch) {
      if (op.status.ok() && op.kind != WriteOp::Kind::kSnapshot) {
        fence_.Advance(op.scope, op.version());
      }
    }
  };
  if (commit == Commit::kCommitted) {
    // Every statement before it was read too: the ops' statuses are final.
    if (!session_usable) c.Reset().IgnoreError();
    advance_fences();
    return absl::OkStatus();
  }
  if (commit == Commit::kUnknown) {
    // The COMMIT may or may not have taken effect: ask the server, once the
    // session that sent it is over.
    absl::StatusOr<bool> committed = BatchCommitted(seq, backend_pid);
    if (!committed.ok()) {
      return OutcomeUnknownError(absl::StrCat(
          "postgres: connection lost while committing; the outcome of the "
          "batch is unknown (",
          failure.message(), "; ", committed.status().message(), ")"));
    }
    if (!*committed) {
      *retryable = true;  // nothing of it was written
      return absl::UnavailableError(absl::StrCat(
          "postgres: the batch did not commit (", failure.message(), ")"));
    }
    // Committed: the ops whose results were lost are looked up.
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!interpreted[i]) {
        batch[i].status = LookUpCommitted(*writer_, batch[i], writer_id);
      }
    }
    advance_fences();
    LOG(WARNING) << "postgres: the session ended while committing batch " << seq
                 << "; read back after reconnecting: it committed";
    return absl::OkStatus();
  }
  // Not committed.
  if (!session_usable) {
    c.Reset().IgnoreError();
    *retryable = true;  // nothing of it was written
    return failure.ok() ? PgError(conn, nullptr, "lost the connection")
                        : failure;
  }
  if (!failure.ok()) {
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
      c.Exec("ROLLBACK").IgnoreError();
    }
    return failure;
  }
  // Only reached if the loop ended without reading the COMMIT's result on a
  // usable session, which the protocol does not allow.
  return absl::InternalError("postgres: the batch's COMMIT was not answered");
}

absl::StatusOr<bool> PostgresScopeStore::BatchCommitted(uint64_t seq,
                                                        int old_backend_pid) {
  const absl::Time deadline = absl::Now() + options_.unknown_outcome_timeout;
  const std::string& writer_id = fence_.writer_id();
  const std::string old_pid = std::to_string(std::max(old_backend_pid, 0));
  absl::Duration backoff = absl::Milliseconds(20);
  absl::Status last;
  // The session that sent the COMMIT is over; later tries reconnect only if
  // the new one broke too.
  bool reconnect = true;
  for (;;) {
    last = reconnect || !writer_->ok() ? writer_->Reset() : absl::OkStatus();
    reconnect = false;
    if (last.ok()) {
      absl::StatusOr<Result> r = writer_->Query(
          kSettleBatchMark, {writer_id.c_str(), old_pid.c_str()});
      if (r.ok()) {
        // Sequence numbers only grow: the row holds this batch's number iff
        // it committed.
        return r->rows() == 1 && static_cast<uint64_t>(r->Int(0, 0)) == seq;
      }
      last = r.status();
    }
    if (absl::Now() + backoff > deadline) break;
    // The server is restarting (or unreachable): try again shortly.
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(100));
  }
  return absl::UnavailableError(
      absl::StrCat("could not reach the database for ",
                   absl::FormatDuration(options_.unknown_outcome_timeout), ": ",
                   last.message()));
}

}  // namespace jetstream
