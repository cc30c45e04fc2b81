// File: syncservice/storage/internal/group_commit_store.h
//
// The part every ScopeStore implementation shares: its writes (Create,
// Append, SaveSnapshot) and their statistics go through one
// GroupCommitQueue. A store derives from it, implements the reads (Load,
// List) and the queue's batch writer, creates the queue in its constructor
// and shuts it down first thing in its destructor (while the members the
// writer uses still exist).
//
// Private to syncservice/storage.

#ifndef JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_GROUP_COMMIT_STORE_H_
#define JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_GROUP_COMMIT_STORE_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "syncservice/storage/internal/group_commit_queue.h"
#include "syncservice/storage/scope_store.h"

namespace jetstream::storage_internal {

class GroupCommitStore : public ScopeStore {
 public:
  // ScopeStore: the writes, queued (see group_commit_queue.h).
  absl::Status Create(const std::string& scope,
                      const StoredSnapshot& snapshot) final {
    return queue_->Create(scope, snapshot);
  }
  void Append(const std::string& scope, StoredCommit commit,
              std::function<void(absl::Status)> done) final {
    queue_->Append(scope, std::move(commit), std::move(done));
  }
  absl::Status SaveSnapshot(const std::string& scope,
                            const StoredSnapshot& snapshot) final {
    return queue_->SaveSnapshot(scope, snapshot);
  }
  ScopeStoreStats Stats() const final { return queue_->Stats(); }

 protected:
  // Set by the derived store's constructor, before any write.
  std::unique_ptr<GroupCommitQueue> queue_;
};

}  // namespace jetstream::storage_internal

#endif  // JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_GROUP_COMMIT_STORE_H_
