// File: syncservice/scope_host.h
//
// A ScopeHost is one live scope of the sync service: the engine Scope, the
// epoch of this incarnation, the watchers that receive its commits, and a
// bounded log of recent commits from which a re-opened gateway stream
// catches up (WatchRequest). Every operation on the scope runs under the
// host's lock, so each scope has one total order of commits, and a snapshot
// handed to a watcher is registered atomically with it: the watcher receives
// exactly the commits after the snapshot's version, none missing, none twice.
//
// Committed fragments are encoded to JSON once per commit; every watcher and
// the log share the same bytes (CommitRecord::fragments_json).
//
// Example:
//   ScopeHost host("Canvas", std::move(scope));
//   ScopeSnapshot s = host.Fetch(watcher);   // state at s.version; watcher
//                                            // gets commits s.version+1, ...
//   ChangesetResult r = host.Apply(Changeset{fragments}, "session-1");
//
// Thread-safety: all methods are thread-safe. Methods that take a watcher or
// a callback invoke it with the host's lock held (see ScopeWatcher).

#ifndef JETSTREAM_SYNCSERVICE_SCOPE_HOST_H_
#define JETSTREAM_SYNCSERVICE_SCOPE_HOST_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "common/uuid.h"
#include "syncservice/engine/scope.h"

namespace jetstream {

// ScopeSnapshot
//
// The full state of a scope at `version` of `epoch`: the ScopeState
// fragments as a JSON array (root first as `change`, then every reachable
// object as `add`, spec 7.6). `fragments_json` is immutable and may be
// shared by any number of readers.
struct ScopeSnapshot {
  std::string scope;
  std::string epoch;
  uint64_t version = 0;
  Uuid root_uuid;
  std::shared_ptr<const std::string> fragments_json;
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
};

class ScopeHost {
 public:
  // `scope` must not be null.
  ScopeHost(std::string name, std::unique_ptr<Scope> scope,
            ScopeHostOptions options = {});

  ScopeHost(const ScopeHost&) = delete;
  ScopeHost& operator=(const ScopeHost&) = delete;

  // Immutable; callable without synchronisation.
  const std::string& name() const { return name_; }
  const std::string& epoch() const { return epoch_; }

  // ScopeHost::Fetch()
  //
  // Registers `watcher` (a no-op if it already watches) and calls
  // `on_snapshot` with the current state, both under the scope's lock: no
  // commit can slip between the snapshot and the registration, and whatever
  // `on_snapshot` queues is ordered before the next commit the watcher sees.
  // `on_snapshot` follows the ScopeWatcher contract (must not block, must not
  // call into a ScopeHost) and is called exactly once, before Fetch returns.
  void Fetch(const std::shared_ptr<ScopeWatcher>& watcher,
             absl::FunctionRef<void(const ScopeSnapshot&)> on_snapshot);
  // The same, returning the snapshot.
  ScopeSnapshot Fetch(const std::shared_ptr<ScopeWatcher>& watcher);

  // ScopeHost::Snapshot()
  //
  // The current state, without watching. Snapshots are cached per version:
  // fetches between two commits share one encoding.
  ScopeSnapshot Snapshot();

  // ScopeHost::Apply()
  //
  // Runs `changeset` through the commit pipeline (see ApplyLocked in
  // scope_host.cc) and returns one reply per fragment. If anything was
  // applied, the version grows by one and every watcher's OnCommit() is
  // called with the commit, in order, before Apply returns.
  // `origin_session_id` is the client session that sent it, or empty for
  // server-originated changes.
  //
  // The overload with `on_result` calls it with the result under the scope's
  // lock, before the watchers are told of the commit (same contract as
  // `on_snapshot` above): a stream that queues its ApplyResult there sees it
  // before its own Commit.
  ChangesetResult Apply(Changeset changeset,
                        const std::string& origin_session_id);
  ChangesetResult Apply(
      Changeset changeset, const std::string& origin_session_id,
      absl::FunctionRef<void(const ChangesetResult&)> on_result);

  // ScopeHost::Watch()
  //
  // Registers `watcher` (a no-op if it already watches) for a stream that
  // has seen everything up to `after_version` of `epoch`, and catches it up
  // under the lock: if `epoch` is this scope's epoch and the log still holds
  // every commit after `after_version`, each of them goes to OnCommit() with
  // `replayed` set (none if it is up to date); otherwise OnResync() gets the
  // current state.
  enum class CatchUp { kReplayed, kResynced };
  CatchUp Watch(const std::shared_ptr<ScopeWatcher>& watcher,
                absl::string_view epoch, uint64_t after_version);

  // ScopeHost::Unwatch()
  //
  // Stops calls to `watcher`. Returns false if it was not watching. Once it
  // returns, no call to the watcher is running or will start.
  bool Unwatch(const ScopeWatcher* watcher);

  ScopeHostInfo Info() const;
  uint64_t version() const;

  // The log's oldest replayable version, or 0 if the log is empty. For tests.
  uint64_t OldestLoggedVersionForTest() const;

 private:
  // The commit pipeline; see scope_host.cc.
  ChangesetResult ApplyLocked(
      Changeset changeset, const std::string& origin_session_id,
      absl::FunctionRef<void(const ChangesetResult&)> on_result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishLocked(const ChangesetResult& result,
                     const std::string& origin_session_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const ScopeSnapshot& SnapshotLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RegisterLocked(const std::shared_ptr<ScopeWatcher>& watcher)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string name_;
  const std::string epoch_;
  const size_t log_capacity_;

  mutable absl::Mutex mu_;
  std::unique_ptr<Scope> scope_ ABSL_GUARDED_BY(mu_);
  // Keyed by address; the value keeps the watcher alive while registered.
  absl::flat_hash_map<const ScopeWatcher*, std::shared_ptr<ScopeWatcher>>
      watchers_ ABSL_GUARDED_BY(mu_);
  // The most recent commits, oldest first, versions consecutive.
  std::deque<CommitPtr> log_ ABSL_GUARDED_BY(mu_);
  // The state at the current version, once someone asked for it.
  std::optional<ScopeSnapshot> snapshot_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_SCOPE_HOST_H_
