// File: syncservice/scope_host.h
//
// A ScopeHost is one live scope of the sync service: the engine Scope, the
// epoch of this incarnation, the watchers that receive its commits, a
// bounded log of recent commits from which a re-opened gateway stream
// catches up (WatchRequest), and the scope's commit pipeline:
//
//   queue -> validate (async, one changeset at a time) -> apply (engine)
//         -> persist (async, overlapping) -> release in order
//
// Everything a client can observe leaves through one ordered release queue:
// replies, commits, fetched snapshots and catch-ups. An entry is released
// once it and every entry before it are ready (a commit is ready when it is
// durable). So each scope has one total order; a snapshot handed to a watcher
// is registered with it at its place in that order (the watcher receives
// exactly the commits after the snapshot's version, none missing, none
// twice); and nobody sees a change before it is durable.
//
// Committed fragments are encoded to JSON once per commit; every watcher and
// the log share the same bytes (CommitRecord::fragments_json).
//
// Example:
//   auto host = std::make_shared<ScopeHost>("Canvas", std::move(scope));
//   host->Fetch(watcher, [](const ScopeSnapshot& s) { ... });
//   host->Apply(Changeset{fragments}, context,
//               [](const ChangesetResult& r) { ... });
//
// Leases (several replicas, syncservice/cluster/cluster.h): a host serves
// its scope under one lease epoch. Every commit carries the epoch (the store
// refuses it once the lease is lost), and before it answers any read (a
// fetched snapshot, a catch-up) or applies a changeset the host checks that
// the lease is still valid; if not, it stops. Stopping (Stop(), or a persist
// that fails) answers every queued changeset with an error, lets the ones
// being persisted finish with their true outcome, and tells the watchers
// (OnLost), who must watch the scope again elsewhere. Close() is the gentle
// form for a handoff: no new work, the queued work finishes, then the owner
// is called back to release the lease and Stop() the host.
//
// Thread-safety: all methods are thread-safe. Callbacks and watcher calls run
// with the host's lock held (see ScopeWatcher), on whichever thread released
// them: the caller's, or a validator's or persister's completion thread.
// A ScopeHost must be owned by a std::shared_ptr.

#ifndef JETSTREAM_SYNCSERVICE_SCOPE_HOST_H_
#define JETSTREAM_SYNCSERVICE_SCOPE_HOST_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/uuid.h"
#include "syncservice/cluster/cluster.h"
#include "syncservice/core/commit_stages.h"
#include "syncservice/engine/scope.h"
#include "syncservice/sync_metrics.h"

namespace jetstream {

// ScopeSnapshot
//
// The full state of a scope at `version` of `epoch`: the ScopeState
// fragments as a JSON array (root first as `change`, then every reachable
// object as `add`, docs/protocol.md#scope-state). `fragments_json` is immutable
// and may be shared by any number of readers.
struct ScopeSnapshot {
  std::string scope;
  std::string epoch;
  uint64_t version = 0;
  Uuid root_uuid;
  std::shared_ptr<const std::string> fragments_json;
  // The schema's Date properties, "Model.property" (DateProperties()).
  std::shared_ptr<const std::vector<std::string>> date_properties;
};

// CommitRecord
//
// One committed changeset: the scope version it produced, the client session
// that sent it (empty for server-originated changes) and the applied
// fragments as a JSON array. Immutable; shared by the log and every watcher.
struct CommitRecord {
  std::string scope;
  std::string epoch;
  uint64_t version = 0;
  std::string origin_session_id;
  std::shared_ptr<const std::string> fragments_json;
  // When it was applied (delivery lag at the gateways).
  absl::Time committed_at;
};

using CommitPtr = std::shared_ptr<const CommitRecord>;

// ScopeWatcher
//
// Receives the commits of the scopes it watches, in commit order.
//
// Contract for implementations:
//   * Calls come with the scope's lock held, so per scope they are
//     serialised and in version order; calls for different scopes may come
//     concurrently from different threads.
//   * A call must not block and must not call back into any ScopeHost (that
//     would deadlock or invert lock order). Queue the event and return.
//   * The host keeps the watcher alive (shared_ptr) until Unwatch() returns;
//     after Unwatch() returns, the host never calls it again.
class ScopeWatcher {
 public:
  virtual ~ScopeWatcher() = default;

  // A changeset was committed: `commit->version` is the previous one plus 1.
  // `replayed` is false for a live commit and true when the commit is
  // re-sent from the log by Watch(): the originator's reply was lost with
  // the stream that watched before, so a replayed commit is for every
  // session of the scope, the originator included (Commit.replayed).
  virtual void OnCommit(const CommitPtr& commit, bool replayed) = 0;

  // The watcher asked to catch up (ScopeHost::Watch()) but the commits it
  // missed cannot be replayed: this is the current state instead, and
  // commits after `snapshot.version` follow.
  virtual void OnResync(const ScopeSnapshot& snapshot) = 0;

  // The host stopped: its lease moved to another replica (`moved_to`, when
  // known), ran out, or its commits could not be made durable (another
  // replica committed the scope's next version first, or the store failed).
  // The last call this watcher gets from the host; the scope must be
  // watched again, on a host loaded afresh, to see later commits.
  virtual void OnLost(const std::string& scope, const absl::Status& why,
                      const Member* moved_to) {
    (void)scope;
    (void)why;
    (void)moved_to;
  }
};

// Counters for ListScopes.
struct ScopeHostInfo {
  std::string scope;
  std::string root_model;
  uint64_t version = 0;
  uint64_t object_count = 0;
  uint64_t watchers = 0;
};

struct ScopeHostOptions {
  // How many recent commits are kept for Watch() replay.
  size_t log_capacity = 1024;
  // The epoch of this incarnation; empty means a fresh random one.
  std::string epoch;
  // Pipeline stages; null skips the stage. Not owned; must outlive the host.
  ChangesetValidator* validator = nullptr;
  CommitPersister* persister = nullptr;
  // Stage latencies and changeset outcomes. Not owned; null: none.
  SyncMetrics* metrics = nullptr;
  // Called at most once, with the host's lock held, on whichever thread
  // noticed, when the host stops by itself: a persist failed (its memory is
  // then ahead of storage) or its lease ran out. Stop() never calls it. By
  // then the host refuses all further work. Must not call into the host or
  // block: hand the work to another thread. ScopeRegistry::NewHost sets it
  // to post ScopeRegistry::OnHostFailed() to the registry's worker pool,
  // which removes the registry's entry (if it still holds this host) and,
  // with replicas, releases the lease; nothing is reloaded until the next
  // request. Null: nobody is told.
  std::function<void(const std::string& scope, const absl::Status&)> on_failure;
  // The lease the host serves under (0: no lease, one replica), carried by
  // every commit, and whether it still holds. Null: always valid.
  uint64_t lease_epoch = 0;
  std::function<bool()> lease_valid;
  // With a persister: every this many versions (version % snapshot_every ==
  // 0) the commit carries the full scope (PendingCommit::snapshot_json),
  // written under the lock right after the commit. 0: never.
  uint64_t snapshot_every = 0;
};

class ScopeHost : public std::enable_shared_from_this<ScopeHost> {
 public:
  // `scope` must not be null.
  ScopeHost(std::string name, std::unique_ptr<Scope> scope,
            ScopeHostOptions options = {});
  ~ScopeHost();

  ScopeHost(const ScopeHost&) = delete;
  ScopeHost& operator=(const ScopeHost&) = delete;

  // Immutable; callable without synchronisation.
  const std::string& name() const { return name_; }
  const std::string& epoch() const { return epoch_; }

  using SnapshotCallback = std::function<void(const ScopeSnapshot&)>;
  using ResultCallback = std::function<void(const ChangesetResult&)>;

  // ScopeHost::Fetch()
  //
  // The current state for a new watcher. `on_snapshot` is called exactly
  // once, at the snapshot's place in the release order (at once unless
  // commits are still being persisted), and `watcher` (if not null) is
  // registered at that same moment: it receives exactly the commits after
  // the snapshot. `on_snapshot` follows the ScopeWatcher contract. If the
  // host has stopped or is closing, `on_snapshot` is never called and false
  // is returned. If it stops while the snapshot waits in the release queue,
  // `on_lost` (if set) is called instead, once, under the host's lock, with
  // why.
  using LostCallback = std::function<void(const absl::Status&)>;
  bool Fetch(std::shared_ptr<ScopeWatcher> watcher,
             SnapshotCallback on_snapshot, LostCallback on_lost = nullptr);
  // Blocking forms, for backends and tests: return once released. If the
  // host fails first, the snapshot has no fragments_json (null).
  ScopeSnapshot Fetch(const std::shared_ptr<ScopeWatcher>& watcher);
  ScopeSnapshot Snapshot();

  // ScopeHost::Apply()
  //
  // Queues `changeset` into the pipeline and returns true; `done` is then
  // called exactly once with one reply per fragment, under the host's lock,
  // right before the watchers are told of the commit (so a stream that
  // queues its reply there sees it before its own Commit). If anything was
  // applied the version grew by one. Follow-up fragments of a procedure
  // commit right after as a server-side change. If the host has stopped or
  // is closing, returns false at once, applies nothing and never calls
  // `done`: ask the owner for the scope again.
  bool Apply(Changeset changeset, ChangesetContext context,
             ResultCallback done);
  // Blocking forms, for tests. A stopped host answers every fragment with
  // "the scope is unavailable".
  ChangesetResult Apply(Changeset changeset,
                        const std::string& origin_session_id);
  ChangesetResult Apply(
      Changeset changeset, const std::string& origin_session_id,
      absl::FunctionRef<void(const ChangesetResult&)> on_result);

  // ScopeHost::Watch()
  //
  // Registers `watcher` for a stream that has seen everything up to
  // `after_version` of `epoch`, and catches it up at its place in the release
  // order: if `epoch` is this scope's epoch and the log still holds every
  // commit after `after_version`, each goes to OnCommit() with `replayed`
  // set; otherwise OnResync() gets the state. A watcher registered already
  // gets no live commit until then, so it sees one ordered history. Returns
  // which it will be, or kRefused (nothing registered) if the host has
  // stopped or is closing.
  enum class CatchUp { kReplayed, kResynced, kRefused };
  CatchUp Watch(const std::shared_ptr<ScopeWatcher>& watcher,
                absl::string_view epoch, uint64_t after_version);

  // ScopeHost::Unwatch()
  //
  // Stops calls to `watcher`, including registrations still waiting in the
  // release queue. Returns false if it was neither watching nor waiting.
  // Once it returns, no call to the watcher is running or will start.
  bool Unwatch(const ScopeWatcher* watcher);

  // ScopeHost::Close()
  //
  // Stops taking new work (Fetch, Apply and Watch refuse), lets the queued
  // work finish, then calls `when_idle` once (under the host's lock, from
  // whichever thread finished last, possibly this one: it must not block or
  // call into the host). The host keeps serving its watchers until Stop().
  void Close(std::function<void()> when_idle);

  // ScopeHost::Stop()
  //
  // Stops the host for good (see the file comment); `moved_to`, if not
  // null, tells the watchers where the scope went. Idempotent. Does not
  // call on_failure.
  void Stop(const absl::Status& why, const Member* moved_to = nullptr);

  ScopeHostInfo Info() const;
  // The version of the newest released commit.
  uint64_t version() const;
  // True once stopped (by itself or by Stop()).
  bool failed() const;
  // True while it takes new work (not stopped, not closing).
  bool serving() const;
  uint64_t lease_epoch() const { return lease_epoch_; }

  // The log's oldest replayable version, or 0 if the log is empty. For tests.
  uint64_t OldestLoggedVersionForTest() const;

 private:
  struct Job {
    Changeset changeset;
    ChangesetContext context;
    ResultCallback done;
  };
  // One entry of the release queue.
  struct Release {
    enum class Kind { kResult, kSnapshot, kCatchUp };
    Kind kind = Kind::kResult;
    bool ready = true;
    // kResult: when it was queued, then (once persisted) when it became
    // ready; the persist and release stages are timed from it.
    absl::Time ready_at;
    // kResult: the reply, and the commit if anything was applied.
    ChangesetResult result;
    ResultCallback done;
    CommitPtr commit;
    // kSnapshot / kCatchUp.
    std::shared_ptr<ScopeWatcher> watcher;
    ScopeSnapshot snapshot;
    SnapshotCallback on_snapshot;
    LostCallback on_lost;  // kSnapshot: the host failed before its release
    std::string epoch;     // kCatchUp: what the stream has seen
    uint64_t after_version = 0;
  };

  // Runs queued jobs through validation and apply until the queue is empty
  // or a validation is outstanding. Called without the lock.
  void Pump();
  std::vector<ObjectSnapshot> CurrentObjectsLocked(
      const Changeset& changeset) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies a validated job and queues its release entries.
  void CommitLocked(Job job, ValidationOutcome outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CommitLocked(), or, if the host stopped meanwhile, answers the job.
  void CommitOrRefuseLocked(Job job, ValidationOutcome outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `request_json`, if not null, receives the changeset as applied.
  ChangesetResult ApplyOutcomeLocked(Changeset changeset,
                                     const ValidationOutcome& outcome,
                                     std::string* request_json)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the release of one applied changeset, persisting it first.
  void QueueResultLocked(ChangesetResult result,
                         const std::string& request_json, bool atomic,
                         const std::string& origin, ResultCallback done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnPersisted(Release* entry, absl::Status status);
  void ReleaseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops the host (see Stop()); `notify_owner` calls on_failure.
  void FailLocked(const absl::Status& status, const Member* moved_to,
                  bool notify_owner) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // False (and the host stopped) if the lease no longer holds.
  bool LeaseHoldsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Calls the Close() callback if everything queued has finished.
  void MaybeIdleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ScopeSnapshot& SnapshotLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RegisterLocked(const std::shared_ptr<ScopeWatcher>& watcher)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CanReplayLocked(absl::string_view epoch, uint64_t after_version,
                       uint64_t up_to) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string name_;
  const std::string epoch_;
  const size_t log_capacity_;
  ChangesetValidator* const validator_;
  CommitPersister* const persister_;
  SyncMetrics* const metrics_;
  const uint64_t snapshot_every_;
  const std::function<void(const std::string&, const absl::Status&)>
      on_failure_;
  const uint64_t lease_epoch_;
  const std::function<bool()> lease_valid_;

  mutable absl::Mutex mu_;
  std::unique_ptr<Scope> scope_ ABSL_GUARDED_BY(mu_);
  // The schema's Date properties, shared by every snapshot. Immutable.
  const std::shared_ptr<const std::vector<std::string>> date_properties_;
  // Keyed by address; the value keeps the watcher alive while registered.
  absl::flat_hash_map<const ScopeWatcher*, std::shared_ptr<ScopeWatcher>>
      watchers_ ABSL_GUARDED_BY(mu_);
  // The most recent released commits, oldest first, versions consecutive.
  std::deque<CommitPtr> log_ ABSL_GUARDED_BY(mu_);
  // The state at the scope's current (in-memory) version, once asked for.
  std::optional<ScopeSnapshot> snapshot_ ABSL_GUARDED_BY(mu_);
  // Changesets waiting for the validate stage, and whether one is in it.
  std::deque<Job> jobs_ ABSL_GUARDED_BY(mu_);
  bool pumping_ ABSL_GUARDED_BY(mu_) = false;
  // The release queue. std::list keeps entry addresses stable for the
  // persister's completion.
  std::list<Release> releases_ ABSL_GUARDED_BY(mu_);
  // Version of the newest released commit.
  uint64_t released_version_ ABSL_GUARDED_BY(mu_) = 0;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  // Why it stopped, for the replies of commits still being persisted.
  std::string failure_reason_ ABSL_GUARDED_BY(mu_);
  // Close(): no new work; called once the queued work is done.
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> when_idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_SCOPE_HOST_H_
