#include "syncservice/storage/sqlite_scope_store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "syncservice/storage/internal/status_macros.h"

namespace jetstream {
namespace sqlite_store_internal {

using storage_internal::ScopeHead;
using storage_internal::WriteOp;

// The status for SQLite result code `rc` on the file at `path`.
absl::Status SqliteError(int rc, absl::string_view message,
                         absl::string_view path, absl::string_view what) {
  std::string text = absl::StrCat(path, ": ", what, ": ", message);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(text);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(text);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(text);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::FailedPreconditionError(text);
    default:
      return absl::InternalError(text);
  }
}

class Connection;

// Statement
//
// A cached prepared statement in use; reset (and unbound) when it goes out
// of scope, which ends the read it may hold.
class Statement {
 public:
  Statement(Connection* connection, sqlite3_stmt* stmt)
      : connection_(connection), stmt_(stmt) {}
  Statement(Statement&& other)
      : connection_(other.connection_),
        stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  // Parameters are 1-based. Text must outlive the statement's use.
  void Bind(int index, absl::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                      SQLITE_STATIC);
  }
  void Bind(int index, int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
  }
  void Bind(int index, uint64_t value) {
    Bind(index, static_cast<int64_t>(value));
  }

  // true: a row is ready; false: done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows.
  absl::Status Run() {
    absl::StatusOr<bool> row = Step();
    return row.status();
  }
  // The raw result code of the last Step() that failed.
  int last_error() const { return last_error_; }

  int64_t Int(int column) { return sqlite3_column_int64(stmt_, column); }
  std::string Text(int column) {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    int size = sqlite3_column_bytes(stmt_, column);
    return text == nullptr ? std::string()
                           : std::string(reinterpret_cast<const char*>(text),
                                         static_cast<size_t>(size));
  }

 private:
  Connection* connection_;
  sqlite3_stmt* stmt_;
  int last_error_ = SQLITE_OK;
};

// Connection
//
// One sqlite3 handle and its cache of prepared statements. Not thread-safe.
class Connection {
 public:
  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& path, int flags) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
      std::string message =
          db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      return SqliteError(rc, message, path, "cannot open");
    }
    sqlite3_extended_result_codes(db, 1);
    return std::unique_ptr<Connection>(new Connection(path, db));
  }

  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  sqlite3* db() { return db_; }
  const std::string& path() const { return path_; }

  absl::Status Error(int rc, absl::string_view what) {
    return SqliteError(rc, sqlite3_errmsg(db_), path_, what);
  }

  // Runs `sql` (one or more statements, no results wanted).
  absl::Status Exec(const char* sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
    if (rc == SQLITE_OK) return absl::OkStatus();
    std::string message = error != nullptr ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    return SqliteError(rc, message, path_, sql);
  }

  // The cached statement for `sql` (a string literal: the cache is keyed by
  // its address), prepared on first use.
  absl::StatusOr<Statement> Prepare(const char* sql) {
    sqlite3_stmt*& stmt = cache_[sql];
    if (stmt == nullptr) {
      int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                  &stmt, nullptr);
      if (rc != SQLITE_OK) {
        absl::Status status = Error(rc, sql);
        sqlite3_finalize(stmt);
        cache_.erase(sql);
        return status;
      }
    }
    return Statement(this, stmt);
  }

 private:
  friend class Statement;
  Connection(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

  const std::string path_;
  sqlite3* const db_;
  absl::flat_hash_map<const char*, sqlite3_stmt*> cache_;
};

absl::StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  last_error_ = rc;
  return connection_->Error(rc, sqlite3_sql(stmt_));
}

}  // namespace sqlite_store_internal

namespace {

using sqlite_store_internal::Connection;
using sqlite_store_internal::Statement;
using storage_internal::CheckAppend;
using storage_internal::CheckSnapshot;
using storage_internal::GroupCommitQueue;
using storage_internal::ScopeHead;
using storage_internal::SnapshotAction;
using storage_internal::WriteOp;

// scopes rows are small and hot (the head moves with every batch); the
// snapshot, which may be megabytes, has its own table so moving the head
// never rewrites it. commits keeps its rowid (rows are appended in rowid
// order, and are too large to live well in a WITHOUT ROWID b-tree).
constexpr const char* kCreateTables = R"sql(
CREATE TABLE jetstream_meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE scopes (
  name             TEXT PRIMARY KEY NOT NULL,
  root_model       TEXT NOT NULL,
  snapshot_version INTEGER NOT NULL,
  head_version     INTEGER NOT NULL,
  head_writer      TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE snapshots (
  scope          TEXT PRIMARY KEY NOT NULL,
  fragments_json TEXT NOT NULL
);
CREATE TABLE commits (
  scope        TEXT NOT NULL,
  version      INTEGER NOT NULL,
  request_json TEXT NOT NULL,
  atomic       INTEGER NOT NULL,
  applied_json TEXT NOT NULL,
  origin       TEXT NOT NULL,
  PRIMARY KEY (scope, version)
);
)sql";

constexpr const char* kSelectSchemaVersion =
    "SELECT value FROM jetstream_meta WHERE key = 'schema_version'";
constexpr const char* kSelectTables =
    "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') "
    "ORDER BY name";
constexpr const char* kSelectHead =
    "SELECT snapshot_version, head_version, head_writer FROM scopes "
    "WHERE name = ?1";
constexpr const char* kInsertScope =
    "INSERT INTO scopes (name, root_model, snapshot_version, head_version, "
    "head_writer) VALUES (?1, ?2, ?3, ?3, ?4)";
constexpr const char* kInsertSnapshot =
    "INSERT INTO snapshots (scope, fragments_json) VALUES (?1, ?2)";
constexpr const char* kInsertCommit =
    "INSERT INTO commits (scope, version, request_json, atomic, applied_json, "
    "origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kUpdateHead =
    "UPDATE scopes SET head_version = ?2, head_writer = ?3 WHERE name = ?1";
constexpr const char* kUpdateSnapshotVersion =
    "UPDATE scopes SET root_model = ?2, snapshot_version = ?3 WHERE name = ?1";
constexpr const char* kUpdateSnapshot =
    "UPDATE snapshots SET fragments_json = ?2 WHERE scope = ?1";
// One step of a compaction: the oldest ?3 commits, none above ?2.
constexpr const char* kDeleteOldestCommits =
    "DELETE FROM commits WHERE scope = ?1 AND version <= ?2 AND version < "
    "(SELECT MIN(version) FROM commits WHERE scope = ?1) + ?3";
// WAL size (pages) at which the checkpoint thread starts a checkpoint, and
// at which the writer checkpoints inline because that thread fell behind
// (it only copies what the thread has not, and lets the WAL restart).
constexpr int kCheckpointPages = 1000;
constexpr int kInlineCheckpointPages = 8 * kCheckpointPages;

// Log rows a batch deletes, at most: this many, or twice the batch's own
// writes if more, so compaction always outpaces the log's growth while no
// batch pays for a whole snapshot interval at once.
constexpr int64_t kCompactionChunk = 32;
constexpr const char* kSelectSnapshot =
    "SELECT s.root_model, s.snapshot_version, p.fragments_json "
    "FROM scopes AS s JOIN snapshots AS p ON p.scope = s.name "
    "WHERE s.name = ?1";
constexpr const char* kSelectLog =
    "SELECT version, request_json, atomic, applied_json, origin FROM commits "
    "WHERE scope = ?1 AND version > ?2 ORDER BY version";
constexpr const char* kSelectNames = "SELECT name FROM scopes ORDER BY name";

// A single-row, single-column query's text, or nullopt without a row.
absl::StatusOr<std::optional<std::string>> QueryText(Connection& c,
                                                     const char* sql) {
  STORAGE_ASSIGN_OR_RETURN(Statement stmt, c.Prepare(sql));
  STORAGE_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(stmt.Text(0));
}

absl::StatusOr<std::vector<std::string>> QueryColumn(Connection& c,
                                                     const char* sql) {
  STORAGE_ASSIGN_OR_RETURN(Statement stmt, c.Prepare(sql));
  std::vector<std::string> values;
  while (true) {
    STORAGE_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    values.push_back(stmt.Text(0));
  }
  return values;
}

// What an existing database file holds, as far as the schema goes.
enum class Contents { kEmpty, kOurs };

// Checks the schema of an open database: ours at kSchemaVersion, or no
// tables at all. Errors name the file.
absl::StatusOr<Contents> CheckSchema(Connection& c) {
  const std::string& path = c.path();
  STORAGE_ASSIGN_OR_RETURN(std::vector<std::string> tables,
                           QueryColumn(c, kSelectTables));
  STORAGE_ASSIGN_OR_RETURN(std::optional<std::string> app_id,
                           QueryText(c, "PRAGMA application_id"));
  int64_t application_id = app_id ? std::stoll(*app_id) : 0;
  if (application_id != 0 &&
      application_id != SqliteScopeStore::kApplicationId) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": not a Jetstream scope store (SQLite application_id ",
        application_id, ")"));
  }
  if (tables.empty()) return Contents::kEmpty;
  bool has_meta = false;
  for (const std::string& t : tables) has_meta |= t == "jetstream_meta";
  if (!has_meta) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": not a Jetstream scope store (no jetstream_meta table; it has ",
        absl::StrJoin(tables, ", "), ")"));
  }
  STORAGE_ASSIGN_OR_RETURN(std::optional<std::string> version,
                           QueryText(c, kSelectSchemaVersion));
  if (!version.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     ": not a Jetstream scope store (jetstream_meta has no "
                     "schema_version)"));
  }
  if (*version != std::to_string(SqliteScopeStore::kSchemaVersion)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": scope store schema version ", *version,
                     " is not supported by this build (it reads version ",
                     SqliteScopeStore::kSchemaVersion,
                     "); was it written by a newer Jetstream?"));
  }
  return Contents::kOurs;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Checks an existing, non-empty file through a read-only connection, so a
// file we refuse is never written to.
absl::Status ValidateExisting(const std::string& path, bool quick_check) {
  STORAGE_ASSIGN_OR_RETURN(std::unique_ptr<Connection> c,
                           Connection::Open(path, SQLITE_OPEN_READONLY));
  // The schema query is the first read of the file: a foreign file fails
  // it with SQLITE_NOTADB, a truncated one often with SQLITE_CORRUPT.
  absl::StatusOr<std::vector<std::string>> tables =
      QueryColumn(*c, kSelectTables);
  if (!tables.ok()) {
    if (absl::IsDataLoss(tables.status())) {
      return absl::DataLossError(
          absl::StrCat(path, ": not a SQLite database, or a damaged one (",
                       tables.status().message(), ")"));
    }
    return tables.status();
  }
  if (quick_check) {
    absl::StatusOr<std::vector<std::string>> problems =
        QueryColumn(*c, "PRAGMA quick_check(20)");
    if (!problems.ok()) {
      return absl::DataLossError(
          absl::StrCat(path, ": damaged SQLite database (",
                       problems.status().message(), ")"));
    }
    if (problems->size() != 1 || (*problems)[0] != "ok") {
      return absl::DataLossError(
          absl::StrCat(path, ": damaged SQLite database (quick_check: ",
                       absl::StrJoin(*problems, "; "), ")"));
    }
  }
  return CheckSchema(*c).status();
}

// Creates the tables of a new file, or re-checks an existing one, in one
// write transaction (another process may be initialising it concurrently).
absl::Status InitSchema(Connection& c) {
  STORAGE_RETURN_IF_ERROR(c.Exec("BEGIN IMMEDIATE"));
  absl::StatusOr<Contents> contents = CheckSchema(c);
  absl::Status status = contents.status();
  if (status.ok() && *contents == Contents::kEmpty) {
    status = c.Exec(kCreateTables);
    if (status.ok()) {
      status =
          c.Exec(absl::StrCat("INSERT INTO jetstream_meta (key, value) VALUES "
                              "('schema_version', '",
                              SqliteScopeStore::kSchemaVersion,
                              "'); PRAGMA application_id = ",
                              SqliteScopeStore::kApplicationId, ";")
                     .c_str());
    }
  }
  if (!status.ok()) {
    c.Exec("ROLLBACK").IgnoreError();
    return status;
  }
  return c.Exec("COMMIT");
}

absl::Status Configure(Connection& c, const SqliteScopeStoreOptions& options) {
  sqlite3_busy_timeout(
      c.db(),
      static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout)));
  STORAGE_ASSIGN_OR_RETURN(std::optional<std::string> mode,
                           QueryText(c, "PRAGMA journal_mode = WAL"));
  if (!mode.has_value() || *mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat(c.path(), ": cannot switch to WAL mode (journal_mode is ",
                     mode.value_or("?"), ")"));
  }
  // 32 MiB of page cache: a batch touches many index and table pages.
  STORAGE_RETURN_IF_ERROR(c.Exec("PRAGMA cache_size = -32768"));
  return c.Exec(options.store.synchronous ? "PRAGMA synchronous = FULL"
                                          : "PRAGMA synchronous = NORMAL");
}

absl::StatusOr<std::optional<ScopeHead>> ReadHead(Connection& c,
                                                  const std::string& scope) {
  STORAGE_ASSIGN_OR_RETURN(Statement stmt, c.Prepare(kSelectHead));
  stmt.Bind(1, scope);
  STORAGE_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<ScopeHead>();
  ScopeHead head;
  head.snapshot_version = static_cast<uint64_t>(stmt.Int(0));
  head.head_version = static_cast<uint64_t>(stmt.Int(1));
  head.head_writer = stmt.Text(2);
  return std::optional<ScopeHead>(std::move(head));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteScopeStore>> SqliteScopeStore::Open(
    const std::string& path, SqliteScopeStoreOptions options) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && st.st_size > 0) {
    // Validation opens the file read-only, which may still create the WAL
    // side files next to it; a refused file is left as we found it.
    const std::string wal = path + "-wal";
    const std::string shm = path + "-shm";
    const bool had_wal = FileExists(wal);
    const bool had_shm = FileExists(shm);
    absl::Status valid = ValidateExisting(path, options.verify_on_open);
    if (!valid.ok()) {
      struct stat wal_st;
      if (!had_wal && stat(wal.c_str(), &wal_st) == 0 && wal_st.st_size == 0) {
        unlink(wal.c_str());
      }
      if (!had_shm) unlink(shm.c_str());
      return valid;
    }
  }

  STORAGE_ASSIGN_OR_RETURN(
      std::unique_ptr<Connection> writer,
      Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  STORAGE_RETURN_IF_ERROR(Configure(*writer, options));
  STORAGE_RETURN_IF_ERROR(InitSchema(*writer));
  STORAGE_ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                           Connection::Open(path, SQLITE_OPEN_READWRITE));
  sqlite3_busy_timeout(
      reader->db(),
      static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout)));
  STORAGE_RETURN_IF_ERROR(reader->Exec("PRAGMA query_only = 1"));
  STORAGE_ASSIGN_OR_RETURN(std::unique_ptr<Connection> checkpointer,
                           Connection::Open(path, SQLITE_OPEN_READWRITE));
  // The same durability as the writer: FULL syncs the database file after
  // copying pages into it.
  STORAGE_RETURN_IF_ERROR(checkpointer->Exec(
      options.store.synchronous ? "PRAGMA synchronous = FULL"
                                : "PRAGMA synchronous = NORMAL"));
  return std::unique_ptr<SqliteScopeStore>(
      new SqliteScopeStore(path, std::move(options), std::move(writer),
                           std::move(reader), std::move(checkpointer)));
}

SqliteScopeStore::SqliteScopeStore(std::string path,
                                   SqliteScopeStoreOptions options,
                                   std::unique_ptr<Connection> writer,
                                   std::unique_ptr<Connection> reader,
                                   std::unique_ptr<Connection> checkpointer)
    : path_(std::move(path)),
      options_(std::move(options)),
      writer_(std::move(writer)),
      reader_(std::move(reader)),
      checkpointer_(std::move(checkpointer)) {
  // Replaces SQLite's automatic checkpoint on the writer.
  sqlite3_wal_hook(writer_->db(), &SqliteScopeStore::OnWalCommit, this);
  checkpoint_thread_ = std::thread([this] { CheckpointLoop(); });
  GroupCommitQueue::Options queue_options;
  queue_options.max_batch_writes = options_.store.max_batch_writes;
  queue_options.max_batch_bytes = options_.store.max_batch_bytes;
  queue_options.observer = options_.store.observer;
  if (!options_.store.synchronous) {
    queue_options.sync_interval = options_.store.relaxed_sync_interval;
  }
  queue_ = std::make_unique<GroupCommitQueue>(
      queue_options,
      [this](std::vector<WriteOp>& batch) { return WriteBatch(batch); },
      [this] { Checkpoint(); });
}

SqliteScopeStore::~SqliteScopeStore() {
  queue_->Shutdown();  // no more commits, hence no more wanted checkpoints
  {
    absl::MutexLock lock(&checkpoint_mu_);
    checkpoint_stopping_ = true;
  }
  checkpoint_thread_.join();
}

int SqliteScopeStore::OnWalCommit(void* arg, sqlite3* db, const char* name,
                                  int wal_pages) {
  auto* store = static_cast<SqliteScopeStore*>(arg);
  // The WAL restarted (a checkpoint had copied all of it): count afresh.
  if (wal_pages < store->next_checkpoint_at_ - kCheckpointPages) {
    store->next_checkpoint_at_ = kCheckpointPages;
  }
  if (wal_pages >= kInlineCheckpointPages) {
    // PASSIVE: gives up at once (SQLITE_BUSY) while the thread is at it.
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                              nullptr);
  } else if (wal_pages >= store->next_checkpoint_at_) {
    // One checkpoint per kCheckpointPages of new log, not one per commit.
    store->next_checkpoint_at_ = wal_pages + kCheckpointPages;
    absl::MutexLock lock(&store->checkpoint_mu_);
    store->checkpoint_wanted_ = true;
  }
  return SQLITE_OK;
}

void SqliteScopeStore::CheckpointLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&checkpoint_mu_);
      checkpoint_mu_.Await(absl::Condition(
          +[](SqliteScopeStore* s)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->checkpoint_mu_) {
                 return s->checkpoint_wanted_ || s->checkpoint_stopping_;
               },
          this));
      if (checkpoint_stopping_) return;
      checkpoint_wanted_ = false;
    }
    // PASSIVE: copies what it can without waiting for the writer or
    // readers; the writer restarts the WAL once all of it was copied.
    sqlite3_wal_checkpoint_v2(checkpointer_->db(), nullptr,
                              SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
}

absl::StatusOr<std::optional<StoredScope>> SqliteScopeStore::Load(
    const std::string& scope) {
  absl::MutexLock lock(&reader_mu_);
  Connection& c = *reader_;
  // One read transaction: the snapshot and the log are consistent.
  STORAGE_RETURN_IF_ERROR(c.Exec("BEGIN"));
  absl::StatusOr<std::optional<StoredScope>> result =
      [&]() -> absl::StatusOr<std::optional<StoredScope>> {
    StoredScope stored;
    {
      STORAGE_ASSIGN_OR_RETURN(Statement stmt, c.Prepare(kSelectSnapshot));
      stmt.Bind(1, scope);
      STORAGE_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return std::optional<StoredScope>();
      stored.snapshot.root_model = stmt.Text(0);
      stored.snapshot.version = static_cast<uint64_t>(stmt.Int(1));
      stored.snapshot.fragments_json = stmt.Text(2);
    }
    STORAGE_ASSIGN_OR_RETURN(Statement stmt, c.Prepare(kSelectLog));
    stmt.Bind(1, scope);
    stmt.Bind(2, stored.snapshot.version);
    while (true) {
      STORAGE_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      StoredCommit& commit = stored.log.emplace_back();
      commit.version = static_cast<uint64_t>(stmt.Int(0));
      commit.request_json = stmt.Text(1);
      commit.atomic = stmt.Int(2) != 0;
      commit.applied_json = stmt.Text(3);
      commit.origin = stmt.Text(4);
    }
    return std::optional<StoredScope>(std::move(stored));
  }();
  absl::Status end = c.Exec("COMMIT");
  if (!result.ok()) return result.status();
  STORAGE_RETURN_IF_ERROR(end);
  if (result->has_value()) fence_.Advance(scope, (*result)->head_version());
  return result;
}

absl::StatusOr<std::vector<std::string>> SqliteScopeStore::List() {
  absl::MutexLock lock(&reader_mu_);
  return QueryColumn(*reader_, kSelectNames);
}

absl::Status SqliteScopeStore::WriteBatch(std::vector<WriteOp>& batch) {
  Connection& c = *writer_;
  STORAGE_RETURN_IF_ERROR(c.Exec("BEGIN IMMEDIATE"));
  BatchHeads heads;
  std::string compacted;
  absl::Status status = CompactSome(
      std::max(kCompactionChunk, 2 * static_cast<int64_t>(batch.size())),
      &compacted);
  for (WriteOp& op : batch) {
    if (!status.ok()) break;
    status = WriteOne(op, heads);
    if (!status.ok()) break;
  }
  // Each scope's head is written once per batch, however many commits it
  // got.
  for (auto it = heads.begin(); status.ok() && it != heads.end(); ++it) {
    const BatchHead& head = it->second;
    if (!head.dirty) continue;
    absl::StatusOr<Statement> update = c.Prepare(kUpdateHead);
    status = update.status();
    if (!status.ok()) break;
    update->Bind(1, it->first);
    update->Bind(2, head.head->head_version);
    update->Bind(3, head.head->head_writer);
    status = update->Run();
  }
  if (status.ok()) status = c.Exec("COMMIT");
  if (!status.ok()) {
    c.Exec("ROLLBACK").IgnoreError();
    return status;
  }
  for (const WriteOp& op : batch) {
    if (op.status.ok() && op.kind != WriteOp::Kind::kSnapshot) {
      fence_.Advance(op.scope, op.version());
    }
  }
  if (!compacted.empty()) compactions_.erase(compacted);
  for (const auto& [scope, head] : heads) {
    if (head.compact_up_to == 0) continue;
    uint64_t& up_to = compactions_[scope];
    up_to = std::max(up_to, head.compact_up_to);
  }
  return absl::OkStatus();
}

absl::Status SqliteScopeStore::CompactSome(int64_t limit,
                                           std::string* finished) {
  if (compactions_.empty()) return absl::OkStatus();
  const auto& [scope, up_to] = *compactions_.begin();
  Connection& c = *writer_;
  STORAGE_ASSIGN_OR_RETURN(Statement compact, c.Prepare(kDeleteOldestCommits));
  compact.Bind(1, scope);
  compact.Bind(2, up_to);
  compact.Bind(3, limit);
  STORAGE_RETURN_IF_ERROR(compact.Run());
  if (sqlite3_changes(c.db()) < limit) *finished = scope;
  return absl::OkStatus();
}

// Sets op.status to the write's outcome; returns an error only if the
// transaction itself failed.
absl::Status SqliteScopeStore::WriteOne(WriteOp& op, BatchHeads& heads) {
  Connection& c = *writer_;
  auto cached = heads.find(op.scope);
  if (cached == heads.end()) {
    STORAGE_ASSIGN_OR_RETURN(std::optional<ScopeHead> stored,
                             ReadHead(c, op.scope));
    cached = heads.emplace(op.scope, BatchHead{std::move(stored), false}).first;
  }
  std::optional<ScopeHead>& head = cached->second.head;
  switch (op.kind) {
    case WriteOp::Kind::kCreate: {
      if (head.has_value()) {
        op.status = absl::AlreadyExistsError(
            absl::StrCat("scope ", op.scope, " exists already"));
        return absl::OkStatus();
      }
      {
        STORAGE_ASSIGN_OR_RETURN(Statement insert, c.Prepare(kInsertScope));
        insert.Bind(1, op.scope);
        insert.Bind(2, op.snapshot.root_model);
        insert.Bind(3, op.snapshot.version);
        insert.Bind(4, fence_.writer_id());
        STORAGE_RETURN_IF_ERROR(insert.Run());
      }
      STORAGE_ASSIGN_OR_RETURN(Statement insert, c.Prepare(kInsertSnapshot));
      insert.Bind(1, op.scope);
      insert.Bind(2, op.snapshot.fragments_json);
      STORAGE_RETURN_IF_ERROR(insert.Run());
      head = ScopeHead{op.snapshot.version, op.snapshot.version,
                       fence_.writer_id()};
      return absl::OkStatus();
    }
    case WriteOp::Kind::kAppend: {
      op.status = CheckAppend(op.scope, head, op.commit.version,
                              fence_.writer_id(), fence_.Known(op.scope));
      if (!op.status.ok()) return absl::OkStatus();
      STORAGE_ASSIGN_OR_RETURN(Statement insert, c.Prepare(kInsertCommit));
      insert.Bind(1, op.scope);
      insert.Bind(2, op.commit.version);
      insert.Bind(3, op.commit.request_json);
      insert.Bind(4, int64_t{op.commit.atomic ? 1 : 0});
      insert.Bind(5, op.commit.applied_json);
      insert.Bind(6, op.commit.origin);
      absl::Status inserted = insert.Run();
      if ((insert.last_error() & 0xff) == SQLITE_CONSTRAINT) {
        // The primary key fence; the head check above makes this
        // unreachable unless the file was edited by hand. SQLite undid the
        // statement only, the transaction goes on.
        op.status = absl::AbortedError(
            absl::StrCat("version conflict: ", inserted.message()));
        return absl::OkStatus();
      }
      STORAGE_RETURN_IF_ERROR(inserted);
      head->head_version = op.commit.version;
      head->head_writer = fence_.writer_id();
      cached->second.dirty = true;
      return absl::OkStatus();
    }
    case WriteOp::Kind::kSnapshot: {
      SnapshotAction action;
      op.status =
          CheckSnapshot(op.scope, head, op.snapshot.version, fence_.writer_id(),
                        fence_.Known(op.scope), &action);
      if (!op.status.ok() || action == SnapshotAction::kKeepNewer) {
        return absl::OkStatus();
      }
      {
        STORAGE_ASSIGN_OR_RETURN(Statement update,
                                 c.Prepare(kUpdateSnapshotVersion));
        update.Bind(1, op.scope);
        update.Bind(2, op.snapshot.root_model);
        update.Bind(3, op.snapshot.version);
        STORAGE_RETURN_IF_ERROR(update.Run());
      }
      {
        STORAGE_ASSIGN_OR_RETURN(Statement update, c.Prepare(kUpdateSnapshot));
        update.Bind(1, op.scope);
        update.Bind(2, op.snapshot.fragments_json);
        STORAGE_RETURN_IF_ERROR(update.Run());
      }
      head->snapshot_version = op.snapshot.version;
      cached->second.compact_up_to = op.snapshot.version;
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

void SqliteScopeStore::Checkpoint() {
  // A checkpoint starts by fsyncing the WAL, which makes every committed
  // transaction durable; PASSIVE never waits for readers.
  sqlite3_wal_checkpoint_v2(writer_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                            nullptr, nullptr);
}

}  // namespace jetstream
