// File: syncservice/storage/internal/history_fence.h
//
// The fencing rules shared by the ScopeStore implementations (see "Fencing"
// in scope_store.h), as pure functions over a scope's stored head, plus the
// per-instance memory they need.
//
// Each stored scope row carries `head_version` (its latest committed
// version) and `head_writer` (the id of the store instance that committed
// it). A store instance may extend the history at head h with h+1 iff
//   * head_writer is this instance (it wrote h itself), or
//   * h is a version this instance loaded or wrote before (HistoryFence).
// Otherwise somebody else moved the scope since this instance last looked,
// and its in-memory state is stale.
//
// Private to syncservice/storage.

#ifndef JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_HISTORY_FENCE_H_
#define JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_HISTORY_FENCE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace jetstream::storage_internal {

// The stored head of one scope.
struct ScopeHead {
  uint64_t snapshot_version = 0;
  uint64_t head_version = 0;
  std::string head_writer;
};

// HistoryFence
//
// This store instance's identity and, per scope, the highest version it
// loaded or wrote. Thread-safe.
class HistoryFence {
 public:
  // `writer_id` identifies this store instance; empty: a fresh random one.
  explicit HistoryFence(std::string writer_id = "");

  const std::string& writer_id() const { return writer_id_; }

  // The highest version of `scope` this instance loaded or wrote, or -1.
  int64_t Known(const std::string& scope) const;

  // Records that this instance loaded or wrote `scope` up to `version`.
  // Never lowers the known version.
  void Advance(const std::string& scope, uint64_t version);

 private:
  const std::string writer_id_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, uint64_t> known_ ABSL_GUARDED_BY(mu_);
};

// May this instance (`writer_id`, knowing `scope` up to `known`) append
// `version` to a scope whose stored head is `head` (nullopt: no such scope)?
// OK, or the error Append() reports (see ScopeStore::Append()).
absl::Status CheckAppend(const std::string& scope,
                         const std::optional<ScopeHead>& head, uint64_t version,
                         const std::string& writer_id, int64_t known);

// What SaveSnapshot(version) does to a scope whose stored head is `head`.
enum class SnapshotAction { kWrite, kKeepNewer };
// kWrite / kKeepNewer, or the error SaveSnapshot() reports.
absl::Status CheckSnapshot(const std::string& scope,
                           const std::optional<ScopeHead>& head,
                           uint64_t version, const std::string& writer_id,
                           int64_t known, SnapshotAction* action);

}  // namespace jetstream::storage_internal

#endif  // JETSTREAM_SYNCSERVICE_STORAGE_INTERNAL_HISTORY_FENCE_H_
