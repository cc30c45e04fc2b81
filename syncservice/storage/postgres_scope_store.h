// File: syncservice/storage/postgres_scope_store.h
//
// PostgresScopeStore: a ScopeStore in a PostgreSQL database (libpq), shared
// by several sync service replicas.
//
// A writer thread owns one connection and writes each batch of queued writes
// as one transaction, sent in pipeline mode (the statements of a batch go out
// together instead of one round trip each): one WAL flush for many
// changesets, across scopes. Load() and List() use a second connection.
//
// Several processes may use one database. Every scope row carries its head
// version and the id of the store instance that wrote it, and each write is
// one conditional statement, so fencing (scope_store.h) holds across
// processes: of two owners committing the same version, exactly one wins and
// the other gets kAborted; (scope, version) is also the commits table's
// primary key. A batch touches scope rows in name order, so two writers
// never deadlock on each other.
//
// Tables (schema version 1; created on first Open in the connection's
// search_path, which a dedicated schema can isolate, e.g.
// "options=-csearch_path=jetstream"):
//   jetstream_meta(key PRIMARY KEY, value)        -- 'schema_version' = '1'
//   scopes(name PRIMARY KEY, root_model, snapshot_version, head_version,
//          head_writer)                            -- small, hot
//   snapshots(scope PRIMARY KEY, fragments_json)   -- large, cold
//   commits(scope, version, request_json, atomic, applied_json, origin,
//           PRIMARY KEY (scope, version))
// Open() refuses a database whose tables are not ours or are of another
// schema version.
//
// Example:
//   auto store = PostgresScopeStore::Open("host=db dbname=jetstream");
//
// Thread-safety: all methods are thread-safe (see ScopeStore).

#ifndef JETSTREAM_SYNCSERVICE_STORAGE_POSTGRES_SCOPE_STORE_H_
#define JETSTREAM_SYNCSERVICE_STORAGE_POSTGRES_SCOPE_STORE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "syncservice/storage/internal/group_commit_queue.h"
#include "syncservice/storage/internal/history_fence.h"
#include "syncservice/storage/scope_store.h"

namespace jetstream {

namespace postgres_store_internal {
class Connection;
}  // namespace postgres_store_internal

struct PostgresScopeStoreOptions {
  // `relaxed_sync_interval` does not apply: the server's WAL writer bounds
  // the window (see ScopeStoreOptions::synchronous).
  ScopeStoreOptions store;
  // Default connect_timeout, unless the connection string sets one.
  absl::Duration connect_timeout = absl::Seconds(10);
  // How often a batch that hit a deadlock or serialization failure is
  // retried before its writes fail with kAborted.
  int max_retries = 3;
};

class PostgresScopeStore : public ScopeStore {
 public:
  // The schema version this build reads and writes.
  static constexpr int kSchemaVersion = 1;

  // PostgresScopeStore::Open()
  //
  // Connects with the libpq connection string `conninfo` (key=value or
  // postgresql:// URI), creates the tables if the database has none, and
  // checks them otherwise. kUnavailable if the server cannot be reached,
  // kFailedPrecondition for foreign or newer tables. Errors never repeat
  // the connection string (it may hold a password).
  static absl::StatusOr<std::unique_ptr<PostgresScopeStore>> Open(
      const std::string& conninfo, PostgresScopeStoreOptions options = {});

  // Writes what is queued, then disconnects.
  ~PostgresScopeStore() override;

  // ScopeStore
  absl::StatusOr<std::optional<StoredScope>> Load(
      const std::string& scope) override;
  absl::Status Create(const std::string& scope,
                      const StoredSnapshot& snapshot) override;
  void Append(const std::string& scope, StoredCommit commit,
              std::function<void(absl::Status)> done) override;
  absl::Status SaveSnapshot(const std::string& scope,
                            const StoredSnapshot& snapshot) override;
  absl::StatusOr<std::vector<std::string>> List() override;
  ScopeStoreStats Stats() const override;

 private:
  PostgresScopeStore(
      PostgresScopeStoreOptions options,
      std::unique_ptr<postgres_store_internal::Connection> writer,
      std::unique_ptr<postgres_store_internal::Connection> reader);

  // Writer thread only.
  absl::Status WriteBatch(std::vector<storage_internal::WriteOp>& batch);
  absl::Status WriteWithRetries(std::vector<storage_internal::WriteOp>& batch);
  // One attempt; `*retryable` tells whether a failure deserves another.
  absl::Status TryWriteBatch(std::vector<storage_internal::WriteOp>& batch,
                             bool* retryable);

  absl::StatusOr<std::optional<StoredScope>> LoadOnce(const std::string& scope)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(reader_mu_);

  const PostgresScopeStoreOptions options_;
  storage_internal::HistoryFence fence_;
  // Used by the writer thread only (and the destructor, after it ended).
  const std::unique_ptr<postgres_store_internal::Connection> writer_;
  absl::Mutex reader_mu_;
  const std::unique_ptr<postgres_store_internal::Connection> reader_
      ABSL_PT_GUARDED_BY(reader_mu_);
  // Last member: its thread uses the ones above.
  std::unique_ptr<storage_internal::GroupCommitQueue> queue_;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_STORAGE_POSTGRES_SCOPE_STORE_H_
