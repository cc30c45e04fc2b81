// File: syncservice/store_persister.h
//
// Durable scopes: the commit pipeline's persist stage over a ScopeStore, and
// loading a scope back from it.
//
// StorePersister turns every PendingCommit into ScopeStore::Append() (the
// store calls back on its writer thread, never inline), and saves the
// snapshot a commit carries (ScopeHostOptions::snapshot_every) on a thread
// of its own: SaveSnapshot() blocks until durable and must not run under a
// host's lock or from a store callback. It is always called after the
// Append() of its version, so the store orders it after that commit.
//
// LoadOrCreateScope() is how a scope comes to life with a store: the stored
// snapshot rebuilt with Scope::FromState(), then every logged commit replayed
// through Scope::Apply() (each must reproduce its version exactly); or, if
// the store has no such scope, the scope built from configuration and stored
// as version 0 (Create(); kAlreadyExists means another owner created it
// meanwhile, so it is loaded instead).
//
// Example:
//   StorePersister persister(store.get());
//   options.host.persister = &persister;
//   auto scope = LoadOrCreateScope(*store, schema, "Canvas",
//                                  [&] { return BuildScope(...); });

#ifndef JETSTREAM_SYNCSERVICE_STORE_PERSISTER_H_
#define JETSTREAM_SYNCSERVICE_STORE_PERSISTER_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "syncservice/core/commit_stages.h"
#include "syncservice/engine/schema.h"
#include "syncservice/engine/scope.h"
#include "syncservice/storage/scope_store.h"

namespace jetstream {

class StorePersister : public CommitPersister {
 public:
  // `store` is not owned and must outlive the persister.
  explicit StorePersister(ScopeStore* store);
  // Saves the snapshots still queued, then returns.
  ~StorePersister() override;

  StorePersister(const StorePersister&) = delete;
  StorePersister& operator=(const StorePersister&) = delete;

  void Persist(PendingCommit commit,
               std::function<void(absl::Status)> done) override;

  // Blocks until every snapshot queued so far is saved. For tests.
  void FlushSnapshotsForTest();

 private:
  struct SnapshotJob {
    std::string scope;
    StoredSnapshot snapshot;
  };
  void SnapshotLoop();

  ScopeStore* const store_;
  absl::Mutex mu_;
  std::deque<SnapshotJob> snapshots_ ABSL_GUARDED_BY(mu_);
  bool saving_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The full snapshot of `scope` (every object, Scope::WriteSnapshotFragments).
StoredSnapshot SnapshotOf(const Scope& scope);

// LoadOrCreateScope()
//
// The scope `name` as stored in `store` (snapshot + replayed log), or, if
// the store does not have it, `build()` stored as a new scope. Errors name
// the scope: kDataLoss if the stored data does not rebuild (a snapshot that
// does not apply, a replayed commit that does not reproduce its version),
// or the store's error.
absl::StatusOr<std::unique_ptr<Scope>> LoadOrCreateScope(
    ScopeStore& store, std::shared_ptr<const Schema> schema,
    const std::string& name,
    const std::function<absl::StatusOr<std::unique_ptr<Scope>>()>& build);

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_STORE_PERSISTER_H_
