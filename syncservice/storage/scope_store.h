// File: syncservice/storage/scope_store.h
//
// The durable home of scopes: ScopeStore keeps, per scope, one full snapshot
// and the log of changesets committed after it. A scope is recovered by
// rebuilding the snapshot (Scope::FromState) and replaying every logged
// request through Scope::Apply, which is deterministic.
//
// Writes are built for an asynchronous, per-scope ordered commit pipeline:
// Append() only queues the commit and reports durability through a callback,
// and a store-owned writer thread writes everything queued meanwhile in one
// transaction (group commit: one fsync for many changesets, across scopes).
//
// Fencing. Several processes may share one store (PostgreSQL, or one SQLite
// file), but a scope must have one history. Every write carries the scope
// version, and a store refuses, with kAborted, any commit that does not
// extend the history this store instance knows:
//   * the version is taken already: (scope, version) is a primary key;
//   * the previous version was written by someone else since this instance
//     last loaded or wrote the scope (a stale owner whose version v failed
//     cannot commit v+1 on top of the winner's v).
// A fenced owner must stop, Load() again and rebuild.
//
// Example (a scope's pipeline):
//   std::optional<StoredScope> s = store.Load("Canvas").value();
//   if (!s) store.Create("Canvas", initial_snapshot);   // version 0
//   ...
//   store.Append("Canvas", StoredCommit{v, request, atomic, applied, origin},
//                [](absl::Status st) { /* v durable, or fenced/failed */ });
//   ...
//   store.SaveSnapshot("Canvas", snapshot_at_v);  // compaction, any time
//
// Implementations: SqliteScopeStore (one embedded file, the single-machine
// default) and PostgresScopeStore (shared by several replicas).

#ifndef JETSTREAM_SYNCSERVICE_STORAGE_SCOPE_STORE_H_
#define JETSTREAM_SYNCSERVICE_STORAGE_SCOPE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace jetstream {

// OutcomeUnknownError() / IsOutcomeUnknown()
//
// The failure of a write whose outcome the store could not learn (the
// database went away while the COMMIT was on its way, and did not come back
// in time): it may or may not be stored. kUnavailable, marked with a payload
// so the pipeline can tell the writer exactly that.
inline constexpr char kOutcomeUnknownPayload[] =
    "type.jetstream.dev/outcome-unknown";
inline absl::Status OutcomeUnknownError(absl::string_view message) {
  absl::Status status = absl::UnavailableError(message);
  status.SetPayload(kOutcomeUnknownPayload, absl::Cord("1"));
  return status;
}
inline bool IsOutcomeUnknown(const absl::Status& status) {
  return status.GetPayload(kOutcomeUnknownPayload).has_value();
}

// StoredCommit
//
// One committed changeset as stored. `version` is the scope version it
// produced. `request_json` (the request's fragments as a JSON array) and
// `atomic` are what Scope::Apply() is given again on recovery; since Apply is
// deterministic, replaying every commit after the snapshot rebuilds the exact
// state. `applied_json` is the applied fragments JSON array (what watchers
// received), kept so a catch-up can be served without replaying. `origin` is
// the client session that sent it, empty for server-originated changes.
// `lease_epoch`, when not 0, is the epoch of the scope's lease under which
// the commit is made: a store that knows leases (PostgreSQL) commits it only
// while this store instance holds that lease, unexpired, in the same
// transaction (syncservice/cluster/cluster.h); 0 commits without a lease
// (one replica, SQLite).
struct StoredCommit {
  uint64_t version = 0;
  std::string request_json;
  bool atomic = false;
  std::string applied_json;
  std::string origin;
  uint64_t lease_epoch = 0;
};

// StoredSnapshot
//
// The full state of a scope at `version`: the root model's name and the
// ScopeState fragments as a JSON array (root first as `change`, then every
// object as `add`), as Scope::WriteStateFragments() writes them.
struct StoredSnapshot {
  uint64_t version = 0;
  std::string root_model;
  std::string fragments_json;
};

// StoredScope
//
// What Load() returns: the latest snapshot and every commit after it, by
// ascending version, with no gaps (log[i].version == snapshot.version+1+i).
struct StoredScope {
  StoredSnapshot snapshot;
  std::vector<StoredCommit> log;

  // The scope's latest committed version.
  uint64_t head_version() const {
    return log.empty() ? snapshot.version : log.back().version;
  }
};

// ScopeStoreOptions
//
// Per-store settings shared by every implementation.
// StoreObserver
//
// Told of every write transaction the store's writer runs, on the writer
// thread, after the transaction (fsync included in synchronous mode) and
// before its writes' callbacks. Must not block. For metrics.
class StoreObserver {
 public:
  virtual ~StoreObserver() = default;
  // `writes` writes went out in one transaction that took `took`; `ok`
  // false: it failed as a whole.
  virtual void OnBatchWritten(size_t writes, absl::Duration took, bool ok) = 0;
};

struct ScopeStoreOptions {
  // Not owned; null: none. Must outlive the store.
  StoreObserver* observer = nullptr;

  // Durability of Append().
  //
  // true: `done` runs only after the transaction holding the commit is
  // durable (SQLite: WAL fsync'd, PRAGMA synchronous=FULL; PostgreSQL:
  // synchronous_commit=on, the server flushed its WAL).
  //
  // false (relaxed): `done` runs once the transaction is committed, which
  // survives a crash of this process, but not yet necessarily fsync'd: a
  // crash of the machine (SQLite) or of the database server (PostgreSQL) may
  // lose the commits of a bounded window, and never leaves a partial
  // transaction or a gap behind. The window:
  //   * SQLite (synchronous=NORMAL in WAL mode): the writer checkpoints, which
  //     fsyncs the WAL, at most `relaxed_sync_interval` after a commit (and
  //     SQLite itself at every 1000 WAL pages), so roughly that interval plus
  //     one batch.
  //   * PostgreSQL (synchronous_commit=off): the server's WAL writer flushes
  //     within 3 x wal_writer_delay (200 ms by default, so 600 ms).
  bool synchronous = true;

  // SQLite, relaxed mode: the longest a committed transaction stays
  // un-fsync'd while the store is running.
  absl::Duration relaxed_sync_interval = absl::Milliseconds(200);

  // Group commit limits: one transaction carries at most this many queued
  // writes and about this many bytes (a single larger write still goes
  // through, alone).
  size_t max_batch_writes = 1000;
  size_t max_batch_bytes = size_t{16} << 20;
};

// ScopeStoreStats
//
// Counters since the store was opened, for tests and metrics.
struct ScopeStoreStats {
  // Write transactions run by the writer (one per batch), and how many of
  // them failed as a whole (I/O, lost connection, ...).
  uint64_t transactions = 0;
  uint64_t failed_transactions = 0;
  // Writes that went through the writer, by kind, whatever their outcome.
  uint64_t appends = 0;
  uint64_t creates = 0;
  uint64_t snapshots = 0;
  // The most writes one transaction carried.
  uint64_t max_batch = 0;
  // Relaxed mode: background syncs (SQLite checkpoints) run.
  uint64_t background_syncs = 0;
};

// ScopeStore
//
// The interface of every store. All methods are thread-safe.
//
// Ordering: writes (Create, Append, SaveSnapshot) of one store instance are
// applied in the order the calls were made; one scope's writes must come
// from one ordered pipeline.
//
// Lifetime: destroying the store writes every queued write (and runs its
// callback) before returning. No method may be called concurrently with, or
// after, the destructor.
class ScopeStore {
 public:
  virtual ~ScopeStore() = default;

  // ScopeStore::Load()
  //
  // The scope's latest snapshot and the commits after it, read in one
  // consistent transaction; std::nullopt if the scope was never stored.
  // Also makes this store instance know the scope's history up to the
  // loaded head, so a new owner may Append() head+1 next (see Fencing).
  virtual absl::StatusOr<std::optional<StoredScope>> Load(
      const std::string& scope) = 0;

  // ScopeStore::Create()
  //
  // Stores a new scope at `snapshot.version` with an empty log. Fails with
  // kAlreadyExists if the scope exists (another owner created it first;
  // Load() it instead). Blocks until durable (or, in relaxed mode,
  // committed). Runs in order with this instance's queued writes.
  // Must not be called from a `done` callback (returns kFailedPrecondition).
  virtual absl::Status Create(const std::string& scope,
                              const StoredSnapshot& snapshot) = 0;

  // ScopeStore::Append()
  //
  // Queues `commit` for the scope and returns at once. Callback contract:
  // `done` is called exactly once, never inline, on the store's writer
  // thread, after the transaction holding the commit is durable (relaxed
  // mode: committed), with OK; or with the failure:
  //   * kAborted "version conflict": `commit.version` is taken already, or
  //     the previous version is not one this instance wrote or loaded (it was
  //     fenced out); or "lease lost": `commit.lease_epoch` is not a lease
  //     this instance holds any more. Nothing was written.
  //   * kFailedPrecondition: the version leaves a gap (previous missing).
  //   * kNotFound: the scope was never created.
  //   * kInvalidArgument: the database refused this commit's data (e.g.
  //     PostgreSQL, text that is not UTF-8); the rest of its batch is
  //     written regardless.
  //   * kUnavailable / kInternal / kDataLoss: the transaction failed (every
  //     write of the batch fails with it), and nothing of it was written.
  //     A store whose connection broke during COMMIT first finds out
  //     whether the transaction committed (PostgreSQL reads it back once the
  //     server is reachable) and reports that outcome; only if it cannot
  //     tell within its bound does it report OutcomeUnknownError(), and then
  //     the commit may or may not be stored: Load() tells.
  // Callbacks of one batch run in append order. A callback must be quick: it
  // holds up the next batch. It may call Append() and Load(), not Create()
  // or SaveSnapshot().
  //
  // A scope's commits must be appended in version order, starting at the
  // created or loaded head + 1, each before the scope's next one (the
  // previous one need not be durable yet).
  virtual void Append(const std::string& scope, StoredCommit commit,
                      std::function<void(absl::Status)> done) = 0;

  // ScopeStore::SaveSnapshot()
  //
  // Replaces the scope's snapshot by `snapshot`, in order with this
  // instance's queued writes (a snapshot at v may be saved right after
  // Append(v) was called), and compacts: the commits with version <=
  // snapshot.version are deleted, in the same transaction or (SQLite) a few
  // at a time over the next batches; Load() never returns them either way.
  // Returns:
  //   * OK, without any change, if the stored snapshot is as new or newer
  //     (snapshots never move backwards);
  //   * kFailedPrecondition if `snapshot.version` was never committed;
  //   * kAborted if this instance did not write or load that version (a
  //     fenced owner's state must not become the snapshot);
  //   * kNotFound if the scope was never created.
  // Blocks like Create(); must not be called from a `done` callback.
  virtual absl::Status SaveSnapshot(const std::string& scope,
                                    const StoredSnapshot& snapshot) = 0;

  // ScopeStore::List()
  //
  // The names of every stored scope, sorted.
  virtual absl::StatusOr<std::vector<std::string>> List() = 0;

  // ScopeStore::Stats()
  //
  // Counters since the store was opened.
  virtual ScopeStoreStats Stats() const = 0;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_STORAGE_SCOPE_STORE_H_
