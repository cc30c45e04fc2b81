#include "syncservice/storage/internal/history_fence.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/uuid.h"

namespace jetstream::storage_internal {

HistoryFence::HistoryFence(std::string writer_id)
    : writer_id_(writer_id.empty() ? Uuid::Random().ToString()
                                   : std::move(writer_id)) {}

int64_t HistoryFence::Known(const std::string& scope) const {
  absl::MutexLock lock(&mu_);
  auto it = known_.find(scope);
  return it == known_.end() ? -1 : static_cast<int64_t>(it->second);
}

void HistoryFence::Advance(const std::string& scope, uint64_t version) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = known_.try_emplace(scope, version);
  if (!inserted) it->second = std::max(it->second, version);
}

namespace {

bool Extends(const ScopeHead& head, uint64_t version,
             const std::string& writer_id, int64_t known) {
  return head.head_writer == writer_id ||
         (known >= 0 && version <= static_cast<uint64_t>(known));
}

}  // namespace

absl::Status CheckAppend(const std::string& scope,
                         const std::optional<ScopeHead>& head, uint64_t version,
                         const std::string& writer_id, int64_t known) {
  if (!head.has_value()) {
    return absl::NotFoundError(absl::StrCat("scope ", scope, " is not stored"));
  }
  if (version <= head->head_version) {
    return absl::AbortedError(
        absl::StrCat("version conflict: scope ", scope, " is at version ",
                     head->head_version, ", cannot commit version ", version));
  }
  if (version > head->head_version + 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("version gap: scope ", scope, " is at version ",
                     head->head_version, ", cannot commit version ", version));
  }
  if (!Extends(*head, head->head_version, writer_id, known)) {
    return absl::AbortedError(absl::StrCat(
        "version conflict: version ", head->head_version, " of scope ", scope,
        " was committed by another writer since this store last loaded it"));
  }
  return absl::OkStatus();
}

absl::Status CheckSnapshot(const std::string& scope,
                           const std::optional<ScopeHead>& head,
                           uint64_t version, const std::string& writer_id,
                           int64_t known, SnapshotAction* action) {
  if (!head.has_value()) {
    return absl::NotFoundError(absl::StrCat("scope ", scope, " is not stored"));
  }
  if (version <= head->snapshot_version) {
    *action = SnapshotAction::kKeepNewer;
    return absl::OkStatus();
  }
  if (version > head->head_version) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot of scope ", scope, " at version ", version,
                     " is ahead of its last commit ", head->head_version));
  }
  if (!Extends(*head, version, writer_id, known)) {
    return absl::AbortedError(
        absl::StrCat("version conflict: version ", version, " of scope ", scope,
                     " was not committed or loaded by this store"));
  }
  *action = SnapshotAction::kWrite;
  return absl::OkStatus();
}

}  // namespace jetstream::storage_internal
