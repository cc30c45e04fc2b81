#include "syncservice/store_persister.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/fragment_json.h"
#include "common/json.h"
#include "common/logging.h"

namespace jetstream {

StorePersister::StorePersister(ScopeStore* store)
    : store_(store), thread_([this] { SnapshotLoop(); }) {}

StorePersister::~StorePersister() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void StorePersister::Persist(PendingCommit commit,
                             std::function<void(absl::Status)> done) {
  std::shared_ptr<const std::string> snapshot_json =
      std::move(commit.snapshot_json);
  std::string scope = commit.scope;
  const uint64_t version = commit.version;
  std::string root_model = std::move(commit.root_model);
  StoredCommit stored{commit.version, std::move(commit.request_json),
                      commit.atomic, std::move(commit.applied_json),
                      std::move(commit.origin_session_id)};
  stored.lease_epoch = commit.lease_epoch;
  store_->Append(commit.scope, std::move(stored), std::move(done));
  if (snapshot_json != nullptr) {
    absl::MutexLock lock(&mu_);
    snapshots_.push_back(SnapshotJob{
        std::move(scope),
        StoredSnapshot{version, std::move(root_model), *snapshot_json}});
  }
}

void StorePersister::SnapshotLoop() {
  for (;;) {
    SnapshotJob job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](StorePersister* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
            return p->stopping_ || !p->snapshots_.empty();
          },
          this));
      if (snapshots_.empty()) return;  // stopping, nothing left
      job = std::move(snapshots_.front());
      snapshots_.pop_front();
      saving_ = true;
    }
    absl::Status status = store_->SaveSnapshot(job.scope, job.snapshot);
    if (!status.ok()) {
      // The log still holds every commit: nothing is lost, recovery just
      // replays more. kAborted: this process was fenced out of the scope.
      LOG(WARNING) << "scope " << job.scope << ": snapshot at version "
                   << job.snapshot.version << " not saved: " << status;
    } else {
      VLOG(1) << "scope " << job.scope << ": snapshot saved at version "
              << job.snapshot.version;
    }
    absl::MutexLock lock(&mu_);
    saving_ = false;
  }
}

void StorePersister::FlushSnapshotsForTest() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](StorePersister* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
        return p->snapshots_.empty() && !p->saving_;
      },
      this));
}

StoredSnapshot SnapshotOf(const Scope& scope) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  scope.WriteSnapshotFragments(writer);
  return StoredSnapshot{scope.version(), scope.root().type().name(),
                        std::string(buffer.GetString(), buffer.GetSize())};
}

namespace {

absl::StatusOr<std::unique_ptr<Scope>> Rebuild(
    const std::shared_ptr<const Schema>& schema, const std::string& name,
    const StoredScope& stored) {
  const std::string where = absl::StrCat("stored scope '", name, "'");
  absl::StatusOr<std::vector<SyncFragment>> fragments =
      ParseFragmentsJson(stored.snapshot.fragments_json);
  if (!fragments.ok()) {
    return absl::DataLossError(
        absl::StrCat(where, ": snapshot at version ", stored.snapshot.version,
                     " does not parse: ", fragments.status().message()));
  }
  absl::StatusOr<std::unique_ptr<Scope>> scope =
      Scope::FromState(schema, *std::move(fragments), stored.snapshot.version);
  if (!scope.ok()) {
    return absl::DataLossError(
        absl::StrCat(where, ": snapshot at version ", stored.snapshot.version,
                     " does not rebuild: ", scope.status().message()));
  }
  for (const StoredCommit& commit : stored.log) {
    absl::StatusOr<std::vector<SyncFragment>> request =
        ParseFragmentsJson(commit.request_json);
    if (!request.ok()) {
      return absl::DataLossError(
          absl::StrCat(where, ": commit ", commit.version,
                       " does not parse: ", request.status().message()));
    }
    ChangesetResult result =
        (*scope)->Apply(Changeset{*std::move(request), commit.atomic});
    if (result.version != commit.version) {
      return absl::DataLossError(
          absl::StrCat(where, ": replaying commit ", commit.version,
                       " produced version ", result.version,
                       " (the stored log does not match this schema or "
                       "engine)"));
    }
  }
  return scope;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Scope>> LoadOrCreateScope(
    ScopeStore& store, std::shared_ptr<const Schema> schema,
    const std::string& name,
    const std::function<absl::StatusOr<std::unique_ptr<Scope>>()>& build) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<std::optional<StoredScope>> stored = store.Load(name);
    if (!stored.ok()) {
      return absl::Status(stored.status().code(),
                          absl::StrCat("loading scope '", name,
                                       "': ", stored.status().message()));
    }
    if (stored->has_value()) return Rebuild(schema, name, **stored);
    absl::StatusOr<std::unique_ptr<Scope>> scope = build();
    if (!scope.ok()) return scope.status();
    absl::Status created = store.Create(name, SnapshotOf(**scope));
    if (created.ok()) return scope;
    if (!absl::IsAlreadyExists(created)) {
      return absl::Status(
          created.code(),
          absl::StrCat("storing new scope '", name, "': ", created.message()));
    }
    // Another owner created it meanwhile: load theirs.
  }
  return absl::AbortedError(
      absl::StrCat("scope '", name, "' could not be loaded or created"));
}

}  // namespace jetstream
