// File: syncservice/storage/internal/group_commit_queue.h
//
// The write path shared by the ScopeStore implementations: a queue of writes
// (create, append, snapshot) and one writer thread that takes everything
// queued so far, hands it to the store as one batch (one transaction), then
// runs the callbacks. While a transaction is being written, new writes pile
// up and become the next batch: group commit without any timer, so a lone
// write is never delayed and a burst costs one fsync.
//
// In relaxed durability mode the queue also calls the store's `sync` hook at
// most `sync_interval` after a batch was written, to bound the window of
// committed but un-fsync'd data.
//
// Private to syncservice/storage.

#ifndef JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_GROUP_COMMIT_QUEUE_H_
#define JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_GROUP_COMMIT_QUEUE_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "syncservice/storage/scope_store.h"

namespace jetstream::storage_internal {

// WriteOp
//
// One queued write. The batch writer sets `status`; the queue then calls
// `done(status)`.
struct WriteOp {
  enum class Kind { kCreate, kAppend, kSnapshot };

  Kind kind = Kind::kAppend;
  std::string scope;
  StoredCommit commit;      // kAppend
  StoredSnapshot snapshot;  // kCreate, kSnapshot
  std::function<void(absl::Status)> done;
  absl::Status status;

  // The scope version this write produces or names.
  uint64_t version() const {
    return kind == Kind::kAppend ? commit.version : snapshot.version;
  }
  // Approximate size, for the batch byte limit.
  size_t ByteSize() const;
};

// GroupCommitQueue
//
// Owns the writer thread, which starts in the constructor. Thread-safe.
// `write_batch` and `sync` run on the writer thread only, one at a time.
// Destroying the queue (or Shutdown()) writes what is queued, runs a last
// `sync` if one is pending, and joins the thread.
class GroupCommitQueue {
 public:
  struct Options {
    size_t max_batch_writes = 1000;
    size_t max_batch_bytes = size_t{16} << 20;
    // When set (finite), `sync` runs at most this long after a batch.
    absl::Duration sync_interval = absl::InfiniteDuration();
    // Told of each batch (ScopeStoreOptions::observer); null: none.
    StoreObserver* observer = nullptr;
  };

  // Writes `batch` in one transaction and sets every op's `status`. A
  // non-OK return means the transaction failed as a whole: the queue then
  // sets it as every op's status.
  using BatchWriter = std::function<absl::Status(std::vector<WriteOp>& batch)>;
  // Makes committed transactions durable (relaxed mode).
  using Syncer = std::function<void()>;

  GroupCommitQueue(Options options, BatchWriter write_batch, Syncer sync);
  GroupCommitQueue(const GroupCommitQueue&) = delete;
  GroupCommitQueue& operator=(const GroupCommitQueue&) = delete;
  ~GroupCommitQueue();

  // Queues `op`; its `done` runs later on the writer thread.
  void Enqueue(WriteOp op);

  // Queues `op` and blocks until it was written; returns its status.
  // kFailedPrecondition (without queueing) when called on the writer
  // thread, which would deadlock.
  absl::Status RunAndWait(WriteOp op);

  // The ScopeStore writes, as queued ops: Create and SaveSnapshot block
  // (RunAndWait), Append queues with its callback (Enqueue).
  absl::Status Create(const std::string& scope, const StoredSnapshot& snapshot);
  void Append(const std::string& scope, StoredCommit commit,
              std::function<void(absl::Status)> done);
  absl::Status SaveSnapshot(const std::string& scope,
                            const StoredSnapshot& snapshot);

  // True on the writer thread (inside `write_batch`, `sync` or a callback).
  bool OnWriterThread() const;

  // Drains and joins. Idempotent.
  void Shutdown();

  ScopeStoreStats Stats() const;

 private:
  void Run();
  bool ReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const BatchWriter write_batch_;
  const Syncer sync_;

  mutable absl::Mutex mu_;
  std::deque<WriteOp> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  ScopeStoreStats stats_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;
  std::thread::id writer_id_;  // set before the thread runs any user code
};

}  // namespace jetstream::storage_internal

#endif  // JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_GROUP_COMMIT_QUEUE_H_
