// File: syncservice/storage/sqlite_scope_store.h
//
// SqliteScopeStore: a ScopeStore in one SQLite file (Debian's libsqlite3),
// the embedded default for a single machine.
//
// The file is in WAL mode. A writer thread writes each batch of queued
// writes as one BEGIN IMMEDIATE ... COMMIT (group commit); Load() and List()
// read through a second connection and never wait for the writer. WAL
// checkpoints (copying the log's pages into the database file) run on a
// third connection in a thread of their own, so a commit does not wait for
// one: measured under 20 writers, an inline checkpoint every 1000 WAL pages
// was what set the p99 reply latency (16 ms against 7 ms without). Several
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
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "syncservice/storage/internal/group_commit_queue.h"
#include "syncservice/storage/internal/group_commit_store.h"
#include "syncservice/storage/internal/history_fence.h"
#include "syncservice/storage/scope_store.h"

struct sqlite3;

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

class SqliteScopeStore : public storage_internal::GroupCommitStore {
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
  absl::StatusOr<std::vector<std::string>> List() override;
  // Create, Append, SaveSnapshot and Stats: GroupCommitStore's.

 private:
  SqliteScopeStore(
      std::string path, SqliteScopeStoreOptions options,
      std::unique_ptr<sqlite_store_internal::Connection> writer,
      std::unique_ptr<sqlite_store_internal::Connection> reader,
      std::unique_ptr<sqlite_store_internal::Connection> checkpointer);

  // A scope's head as the batch being written sees it; `dirty` if the
  // batch moved it (written back once, before COMMIT).
  struct BatchHead {
    std::optional<storage_internal::ScopeHead> head;
    bool dirty = false;
    // A snapshot at this version was saved: its log behind is owed.
    uint64_t compact_up_to = 0;
  };
  using BatchHeads = absl::flat_hash_map<std::string, BatchHead>;

  // Writer thread only.
  absl::Status WriteBatch(std::vector<storage_internal::WriteOp>& batch);
  absl::Status WriteOne(storage_internal::WriteOp& op, BatchHeads& heads);
  // Deletes at most `limit` owed commits of one scope, inside the batch's
  // transaction; sets `finished` to the scope if none are left.
  absl::Status CompactSome(int64_t limit, std::string* finished);
  void Checkpoint();
  // sqlite3_wal_hook on the writer: after each commit, with the WAL's size.
  static int OnWalCommit(void* store, sqlite3* db, const char* name,
                         int wal_pages);
  // The checkpoint thread: a PASSIVE checkpoint each time one is wanted.
  void CheckpointLoop();

  const std::string path_;
  const SqliteScopeStoreOptions options_;
  storage_internal::HistoryFence fence_;
  // Used by the writer thread only (and the destructor, after it ended).
  const std::unique_ptr<sqlite_store_internal::Connection> writer_;
  // Compaction is spread over batches rather than done with the snapshot:
  // deleting a thousand log rows at once held up every commit in that
  // batch. Scope -> delete its commits up to this version. Load() never
  // reads commits at or below the snapshot, so owed ones are invisible.
  // Writer thread only.
  absl::flat_hash_map<std::string, uint64_t> compactions_;
  absl::Mutex reader_mu_;
  const std::unique_ptr<sqlite_store_internal::Connection> reader_
      ABSL_PT_GUARDED_BY(reader_mu_);
  // WAL size at which OnWalCommit() next wants a checkpoint. Writer thread.
  int next_checkpoint_at_ = 1000;
  // Used by checkpoint_thread_ only.
  const std::unique_ptr<sqlite_store_internal::Connection> checkpointer_;
  absl::Mutex checkpoint_mu_;
  bool checkpoint_wanted_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  bool checkpoint_stopping_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  std::thread checkpoint_thread_;
  // Last member: its thread uses the ones above.
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_STORAGE_SQLITE_SCOPE_STORE_H_
