#include "syncservice/scope_host.h"

#include <utility>

#include "common/fragment_json.h"
#include "common/json.h"

namespace jetstream {

ScopeHost::ScopeHost(std::string name, std::unique_ptr<Scope> scope,
                     ScopeHostOptions options)
    : name_(std::move(name)),
      epoch_(options.epoch.empty() ? Uuid::Random().ToString()
                                   : std::move(options.epoch)),
      log_capacity_(options.log_capacity),
      scope_(std::move(scope)) {}

void ScopeHost::RegisterLocked(const std::shared_ptr<ScopeWatcher>& watcher) {
  watchers_.try_emplace(watcher.get(), watcher);
}

const ScopeSnapshot& ScopeHost::SnapshotLocked() {
  if (!snapshot_.has_value()) {
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    scope_->WriteStateFragments(writer);
    snapshot_ =
        ScopeSnapshot{name_, epoch_, scope_->version(), scope_->root().uuid(),
                      std::make_shared<const std::string>(buffer.GetString(),
                                                          buffer.GetSize())};
  }
  return *snapshot_;
}

void ScopeHost::Fetch(
    const std::shared_ptr<ScopeWatcher>& watcher,
    absl::FunctionRef<void(const ScopeSnapshot&)> on_snapshot) {
  absl::MutexLock lock(&mu_);
  RegisterLocked(watcher);
  on_snapshot(SnapshotLocked());
}

ScopeSnapshot ScopeHost::Fetch(const std::shared_ptr<ScopeWatcher>& watcher) {
  ScopeSnapshot out;
  Fetch(watcher, [&out](const ScopeSnapshot& s) { out = s; });
  return out;
}

ScopeSnapshot ScopeHost::Snapshot() {
  absl::MutexLock lock(&mu_);
  return SnapshotLocked();
}

ChangesetResult ScopeHost::Apply(Changeset changeset,
                                 const std::string& origin_session_id) {
  return Apply(std::move(changeset), origin_session_id,
               [](const ChangesetResult&) {});
}

ChangesetResult ScopeHost::Apply(
    Changeset changeset, const std::string& origin_session_id,
    absl::FunctionRef<void(const ChangesetResult&)> on_result) {
  absl::MutexLock lock(&mu_);
  return ApplyLocked(std::move(changeset), origin_session_id, on_result);
}

// The commit pipeline of a scope. Every step runs in the scope's order:
//
//   1. (next) Downstream hooks: validators and procedures may reject the
//      changeset (Scope::RejectAll) or modify it (D3). They will be
//      asynchronous, so this step is where Apply becomes a queue per scope
//      whose head waits for its hooks while other scopes proceed.
//   2. Scope::Apply: schema and graph validation, apply in place (atomic when
//      asked), version bump.
//   3. (next) Persistence: the reply waits for durability.
//   4. Publish: encode once, log, tell the watchers.
ChangesetResult ScopeHost::ApplyLocked(
    Changeset changeset, const std::string& origin_session_id,
    absl::FunctionRef<void(const ChangesetResult&)> on_result) {
  ChangesetResult result = scope_->Apply(std::move(changeset));
  on_result(result);
  if (result.changed()) PublishLocked(result, origin_session_id);
  return result;
}

void ScopeHost::PublishLocked(const ChangesetResult& result,
                              const std::string& origin_session_id) {
  snapshot_.reset();
  auto commit = std::make_shared<CommitRecord>();
  commit->scope = name_;
  commit->epoch = epoch_;
  commit->version = result.version;
  commit->origin_session_id = origin_session_id;
  commit->fragments_json =
      std::make_shared<const std::string>(EncodeFragments(result.applied));
  CommitPtr shared = std::move(commit);
  if (log_capacity_ > 0) {
    if (log_.size() == log_capacity_) log_.pop_front();
    log_.push_back(shared);
  }
  for (const auto& [unused, watcher] : watchers_) watcher->OnCommit(shared, /*replayed=*/false);
}

ScopeHost::CatchUp ScopeHost::Watch(
    const std::shared_ptr<ScopeWatcher>& watcher, absl::string_view epoch,
    uint64_t after_version) {
  absl::MutexLock lock(&mu_);
  RegisterLocked(watcher);
  const uint64_t version = scope_->version();
  // Replayable iff the stream knows this incarnation, is not ahead of it,
  // and the log reaches back to the first commit it missed.
  bool replayable = epoch == epoch_ && after_version <= version;
  if (replayable && after_version < version) {
    replayable = !log_.empty() && log_.front()->version <= after_version + 1;
  }
  if (!replayable) {
    watcher->OnResync(SnapshotLocked());
    return CatchUp::kResynced;
  }
  if (after_version < version) {
    // Versions in the log are consecutive: skip straight to the first one.
    size_t first =
        static_cast<size_t>(after_version + 1 - log_.front()->version);
    for (size_t i = first; i < log_.size(); ++i) watcher->OnCommit(log_[i], /*replayed=*/true);
  }
  return CatchUp::kReplayed;
}

bool ScopeHost::Unwatch(const ScopeWatcher* watcher) {
  std::shared_ptr<ScopeWatcher> released;  // destroyed outside the lock
  absl::MutexLock lock(&mu_);
  auto it = watchers_.find(watcher);
  if (it == watchers_.end()) return false;
  released = std::move(it->second);
  watchers_.erase(it);
  return true;
}

ScopeHostInfo ScopeHost::Info() const {
  absl::MutexLock lock(&mu_);
  return ScopeHostInfo{name_, scope_->root().type().name(), scope_->version(),
                       scope_->size(), watchers_.size()};
}

uint64_t ScopeHost::version() const {
  absl::MutexLock lock(&mu_);
  return scope_->version();
}

uint64_t ScopeHost::OldestLoggedVersionForTest() const {
  absl::MutexLock lock(&mu_);
  return log_.empty() ? 0 : log_.front()->version;
}

}  // namespace jetstream
