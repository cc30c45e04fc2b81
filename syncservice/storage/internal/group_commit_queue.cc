#include "syncservice/storage/internal/group_commit_queue.h"

#include <algorithm>
#include <utility>

#include "absl/synchronization/notification.h"

namespace jetstream::storage_internal {

size_t WriteOp::ByteSize() const {
  return scope.size() + commit.request_json.size() +
         commit.applied_json.size() + commit.origin.size() +
         snapshot.root_model.size() + snapshot.fragments_json.size() + 64;
}

GroupCommitQueue::GroupCommitQueue(Options options, BatchWriter write_batch,
                                   Syncer sync)
    : options_(options),
      write_batch_(std::move(write_batch)),
      sync_(std::move(sync)) {
  // The id is published before Run() can call user code: `thread_` is
  // assigned after construction, so Run() waits for `writer_id_` under mu_.
  absl::MutexLock lock(&mu_);
  thread_ = std::thread([this] { Run(); });
  writer_id_ = thread_.get_id();
}

GroupCommitQueue::~GroupCommitQueue() { Shutdown(); }

void GroupCommitQueue::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool GroupCommitQueue::OnWriterThread() const {
  return std::this_thread::get_id() == writer_id_;
}

void GroupCommitQueue::Enqueue(WriteOp op) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(std::move(op));
      return;
    }
  }
  // Only a caller breaking the lifetime contract (writing into a store that
  // is being destroyed) gets here; there is no writer left to call back on.
  op.done(absl::FailedPreconditionError("scope store is shutting down"));
}

absl::Status GroupCommitQueue::Create(const std::string& scope,
                                      const StoredSnapshot& snapshot) {
  WriteOp op;
  op.kind = WriteOp::Kind::kCreate;
  op.scope = scope;
  op.snapshot = snapshot;
  return RunAndWait(std::move(op));
}

void GroupCommitQueue::Append(const std::string& scope, StoredCommit commit,
                              std::function<void(absl::Status)> done) {
  WriteOp op;
  op.kind = WriteOp::Kind::kAppend;
  op.scope = scope;
  op.commit = std::move(commit);
  op.done = std::move(done);
  Enqueue(std::move(op));
}

absl::Status GroupCommitQueue::SaveSnapshot(const std::string& scope,
                                            const StoredSnapshot& snapshot) {
  WriteOp op;
  op.kind = WriteOp::Kind::kSnapshot;
  op.scope = scope;
  op.snapshot = snapshot;
  return RunAndWait(std::move(op));
}

absl::Status GroupCommitQueue::RunAndWait(WriteOp op) {
  if (OnWriterThread()) {
    return absl::FailedPreconditionError(
        "a blocking scope store write was called from a store callback");
  }
  absl::Status result;
  absl::Notification written;
  op.done = [&](absl::Status status) {
    result = std::move(status);
    written.Notify();
  };
  Enqueue(std::move(op));
  written.WaitForNotification();
  return result;
}

ScopeStoreStats GroupCommitQueue::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

bool GroupCommitQueue::ReadyLocked() const {
  return !queue_.empty() || stopping_;
}

void GroupCommitQueue::Run() {
  { absl::MutexLock wait_for_constructor(&mu_); }
  const bool relaxed = options_.sync_interval != absl::InfiniteDuration();
  // When the last un-synced batch must be synced by (relaxed mode only).
  absl::Time sync_due = absl::InfiniteFuture();
  while (true) {
    std::vector<WriteOp> batch;
    bool sync_now = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(
          absl::Condition(this, &GroupCommitQueue::ReadyLocked), sync_due);
      if (sync_due != absl::InfiniteFuture() && absl::Now() >= sync_due) {
        sync_now = true;
      } else if (queue_.empty()) {
        break;  // stopping, and everything is written
      } else {
        size_t bytes = 0;
        while (!queue_.empty() && batch.size() < options_.max_batch_writes) {
          size_t next = queue_.front().ByteSize();
          if (!batch.empty() && bytes + next > options_.max_batch_bytes) break;
          bytes += next;
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
    }
    if (sync_now) {
      sync_();
      sync_due = absl::InfiniteFuture();
      absl::MutexLock lock(&mu_);
      ++stats_.background_syncs;
      continue;
    }

    const absl::Time started = absl::Now();
    absl::Status txn = write_batch_(batch);
    if (options_.observer != nullptr) {
      options_.observer->OnBatchWritten(batch.size(), absl::Now() - started,
                                        txn.ok());
    }
    if (!txn.ok()) {
      for (WriteOp& op : batch) op.status = txn;
    }
    {
      absl::MutexLock lock(&mu_);
      ++stats_.transactions;
      if (!txn.ok()) ++stats_.failed_transactions;
      stats_.max_batch = std::max<uint64_t>(stats_.max_batch, batch.size());
      for (const WriteOp& op : batch) {
        switch (op.kind) {
          case WriteOp::Kind::kAppend:
            ++stats_.appends;
            break;
          case WriteOp::Kind::kCreate:
            ++stats_.creates;
            break;
          case WriteOp::Kind::kSnapshot:
            ++stats_.snapshots;
            break;
        }
      }
    }
    for (WriteOp& op : batch) op.done(std::move(op.status));
    if (relaxed && sync_due == absl::InfiniteFuture()) {
      sync_due = absl::Now() + options_.sync_interval;
    }
  }
  if (sync_due != absl::InfiniteFuture()) sync_();
}

}  // namespace jetstream::storage_internal
