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
// Leases. A commit with a lease epoch (StoredCommit::lease_epoch) is
// written only while this instance (its writer id) holds the scope's lease
// at that epoch, unexpired, checked in the commit's own statement; the
// lease row is locked so that a replica taking the lease over waits for the
// transaction and then sees it (syncservice/cluster/postgres_cluster.h).
//
// A connection lost while the COMMIT was on its way leaves the outcome
// unknown. Every batch transaction also writes its writer's sequence
// number (jetstream_batches), so the writer reconnects and reads it back:
// committed, the batch succeeds; not committed, it is written again. Only
// if the server stays unreachable for `unknown_outcome_timeout` do the
// batch's writes fail with kUnavailable "outcome unknown".
//
// Tables (schema version 2; created on first Open in the connection's
// search_path, which a dedicated schema can isolate, e.g.
// "options=-csearch_path=jetstream"; a version 1 store is upgraded in
// place):
//   jetstream_meta(key PRIMARY KEY, value)        -- 'schema_version' = '2'
//   scopes(name PRIMARY KEY, root_model, snapshot_version, head_version,
//          head_writer)                            -- small, hot
//   snapshots(scope PRIMARY KEY, fragments_json)   -- large, cold
//   commits(scope, version, request_json, atomic, applied_json, origin,
//           writer, lease_epoch, PRIMARY KEY (scope, version))
//   jetstream_members(member_id PRIMARY KEY, incarnation, address,
//                     heartbeat_at, draining)      -- the cluster's
//   jetstream_leases(scope PRIMARY KEY, owner, epoch, expires_at)
//   jetstream_batches(writer PRIMARY KEY, seq)
// Open() refuses a database whose tables are not ours or are of a newer
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
#include "syncservice/storage/internal/group_commit_store.h"
#include "syncservice/storage/internal/history_fence.h"
#include "syncservice/storage/scope_store.h"

namespace jetstream {

namespace pg_internal {
class Connection;
}  // namespace pg_internal

struct PostgresScopeStoreOptions {
  // `relaxed_sync_interval` does not apply: the server's WAL writer bounds
  // the window (see ScopeStoreOptions::synchronous).
  ScopeStoreOptions store;
  // This store instance's id (HistoryFence, the commits' writer, the lease
  // owner); empty: a fresh random one. A replica passes its incarnation id
  // (the same as its cluster's).
  std::string writer_id;
  // Default connect_timeout, unless the connection string sets one.
  absl::Duration connect_timeout = absl::Seconds(10);
  // What the server shows for the store's connections (pg_stat_activity),
  // unless the connection string sets one.
  std::string application_name = "jetstream-syncservice";
  // How often a batch that hit a deadlock or serialization failure is
  // retried before its writes fail with kAborted.
  int max_retries = 3;
  // How long the writer keeps trying to learn the outcome of a batch whose
  // connection broke during COMMIT.
  absl::Duration unknown_outcome_timeout = absl::Seconds(10);
  // The writer's transactions are ended by the server if its client stops
  // (a paused process) for this long mid-transaction, so their locks never
  // hold up a replica taking a lease over; zero: the server's default.
  absl::Duration idle_in_transaction_timeout = absl::Seconds(2);
};

class PostgresScopeStore : public storage_internal::GroupCommitStore {
 public:
  // The schema version this build reads and writes.
  static constexpr int kSchemaVersion = 2;

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
  absl::StatusOr<std::vector<std::string>> List() override;
  // Create, Append, SaveSnapshot and Stats: GroupCommitStore's.

  // The id commits are written (and leases held) under.
  const std::string& writer_id() const { return fence_.writer_id(); }

 private:
  PostgresScopeStore(PostgresScopeStoreOptions options,
                     std::unique_ptr<pg_internal::Connection> writer,
                     std::unique_ptr<pg_internal::Connection> reader);

  // Writer thread only.
  absl::Status WriteBatch(std::vector<storage_internal::WriteOp>& batch);
  absl::Status WriteWithRetries(std::vector<storage_internal::WriteOp>& batch);
  // One attempt; `*retryable` tells whether a failure deserves another.
  absl::Status TryWriteBatch(std::vector<storage_internal::WriteOp>& batch,
                             bool* retryable);
  // After the connection broke during the COMMIT of batch `seq`: whether
  // it committed (true), did not (false), or cannot be told in time. The
  // answer is read only once the transaction of the session that sent the
  // COMMIT (backend `old_backend_pid`, 0 if unknown) is over, so it cannot
  // land later.
  absl::StatusOr<bool> BatchCommitted(uint64_t seq, int old_backend_pid);

  absl::StatusOr<std::optional<StoredScope>> LoadOnce(const std::string& scope)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(reader_mu_);

  const PostgresScopeStoreOptions options_;
  storage_internal::HistoryFence fence_;
  // Used by the writer thread only (and the destructor, after it ended).
  const std::unique_ptr<pg_internal::Connection> writer_;
  // Sequence number of the writer's latest batch transaction (writer thread).
  uint64_t batch_seq_ = 0;
  absl::Mutex reader_mu_;
  const std::unique_ptr<pg_internal::Connection> reader_
      ABSL_PT_GUARDED_BY(reader_mu_);
  // Last member: its thread uses the ones above.
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_STORAGE_POSTGRES_SCOPE_STORE_H_
