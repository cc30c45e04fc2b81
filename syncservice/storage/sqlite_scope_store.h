// File: syncservice/storage/sqlite_scope_store.h
//
// SqliteScopeStore: a ScopeStore in one SQLite file (Debian's libsqlite3),
// the embedded default for a single machine.
//
// The file is in WAL mode. A writer thread writes each batch of queued
// writes as one BEGIN IMMEDIATE ... COMMIT (group commit); Load() and List()
// read through a second connection and never wait for the writer. Several
// store instances, in this process or others, may open the same file: each
// write transaction holds SQLite's write lock, and fencing (scope_store.h)
// keeps every scope's history linear.
//
// Open() refuses, without modifying it, a file that is not a SQLite
// database, a damaged one (PRAGMA quick_check), or a database of another
// application or of a newer schema version; the error names the file.
//
// Tables (schema version 1):
//   jetstream_meta(key PRIMARY KEY, value)        -- 'schema_version' = '1'
//   scopes(name PRIMARY KEY, root_model, snapshot_version, head_version,
//          head_writer)                            -- small, hot
//   snapshots(scope PRIMARY KEY, fragments_json)   -- large, cold
//   commits(scope, version, request_json, atomic, applied_json, origin,
//           PRIMARY KEY(scope, version))
//
// Example:
//   auto store = SqliteScopeStore::Open("/var/lib/jetstream/scopes.db");
//   if (!store.ok()) { LOG(ERROR) << store.status(); return 1; }
//
// Thread-safety: all methods are thread-safe (see ScopeStore).

#ifndef JETSTREAM_SYNCSERVICE_STORAGE_SQLITE_SCOPE_STORE_H_
#define JETSTREAM_SYNCSERVICE_STORAGE_SQLITE_SCOPE_STORE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "syncservice/storage/internal/group_commit_queue.h"
#include "syncservice/storage/internal/history_fence.h"
#include "syncservice/storage/scope_store.h"

namespace jetstream {

namespace sqlite_store_internal {
class Connection;
}  // namespace sqlite_store_internal

struct SqliteScopeStoreOptions {
  ScopeStoreOptions store;
  // How long a write transaction waits for another connection (another
  // process, say) holding the file's write lock.
  absl::Duration busy_timeout = absl::Seconds(10);
  // Run PRAGMA quick_check on an existing file before using it. It reads
  // the whole file: about a second per GB.
  bool verify_on_open = true;
};

class SqliteScopeStore : public ScopeStore {
 public:
  // The schema version this build reads and writes.
  static constexpr int kSchemaVersion = 1;
  // PRAGMA application_id of our files: "JSST".
  static constexpr int kApplicationId = 0x4A535354;

  // SqliteScopeStore::Open()
  //
  // Opens the store at `path`, creating the file (and the tables) if it
  // does not exist or is empty. Fails with kFailedPrecondition (foreign or
  // newer file) or kDataLoss (not a database, damaged) naming `path`; the
  // file is then left byte for byte as it was.
  static absl::StatusOr<std::unique_ptr<SqliteScopeStore>> Open(
      const std::string& path, SqliteScopeStoreOptions options = {});

  // Writes what is queued, then closes the file.
  ~SqliteScopeStore() override;

  const std::string& path() const { return path_; }

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
  SqliteScopeStore(
      std::string path, SqliteScopeStoreOptions options,
      std::unique_ptr<sqlite_store_internal::Connection> writer,
      std::unique_ptr<sqlite_store_internal::Connection> reader);

  // A scope's head as the batch being written sees it; `dirty` if the
  // batch moved it (written back once, before COMMIT).
  struct BatchHead {
    std::optional<storage_internal::ScopeHead> head;
    bool dirty = false;
  };
  using BatchHeads = absl::flat_hash_map<std::string, BatchHead>;

  // Writer thread only.
  absl::Status WriteBatch(std::vector<storage_internal::WriteOp>& batch);
  absl::Status WriteOne(storage_internal::WriteOp& op, BatchHeads& heads);
  void Checkpoint();

  const std::string path_;
  const SqliteScopeStoreOptions options_;
  storage_internal::HistoryFence fence_;
  // Used by the writer thread only (and the destructor, after it ended).
  const std::unique_ptr<sqlite_store_internal::Connection> writer_;
  absl::Mutex reader_mu_;
  const std::unique_ptr<sqlite_store_internal::Connection> reader_
      ABSL_PT_GUARDED_BY(reader_mu_);
  // Last member: its thread uses the ones above.
  std::unique_ptr<storage_internal::GroupCommitQueue> queue_;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_STORAGE_SQLITE_SCOPE_STORE_H_
