// File: syncservice/scope_registry.h
//
// The scopes this sync service replica holds, by name, and the way a
// request gets to one: Acquire(). Static scopes come from the scopes file;
// a name that matches a template becomes a scope on its first request;
// anything else is "No such scope" (the exact text clients receive as
// ScopeFetchReply.error).
//
// Acquire() answers with the scope's host (serve it here), a redirect (the
// scope is held by, or belongs to, another replica: nothing was done here),
// or an error. A scope that is not held here yet is *loaded* on a worker
// thread, never on the caller's (a gRPC reaction) and never under a lock
// that other scopes need: one load per scope at a time, with every request
// that arrives meanwhile queued behind it, in order; other scopes and
// streams go on.
//
// Loading, with several replicas (ScopeRegistryOptions::cluster): the
// scope's lease is taken first (syncservice/cluster/cluster.h), then the
// scope is loaded from the store, always afresh, never from an earlier
// tenure's copy. A request for a scope that prefers another live replica
// is redirected there; a request for a scope whose lease another live
// replica holds is redirected to the holder, unless the gateway cannot
// reach it (Routing.take_over): that one waits, up to `max_lease_wait`, for
// the lease to be released or to expire. Only a take-over request makes a
// replica take a lease that another live member should hold.
// When the live members change, every scope that now prefers another
// member is handed off: no new work is taken, the queued work finishes,
// the lease is released, and the scope's watchers are told where it went.
// A lease that is lost (not renewed in time) stops the scope's host at
// once. HandOffAll() does the same for every scope (a clean shutdown).
//
// Without a cluster (one replica) every scope is this replica's: static
// scopes are loaded at startup (a stored scope that does not rebuild fails
// the start with an error naming it), template scopes on first request.
//
// A host that stops by itself (a persist failed: fenced out, or the store
// failed; its lease ran out) calls its on_failure, which posts
// OnHostFailed() to the worker pool: that removes the scope's entry, if it
// still holds this host, and (with a cluster) releases the lease. A request
// that comes before then finds the host no longer serving and removes the
// entry itself (Acquire()). Nothing is reloaded eagerly: the next request
// for the scope loads it afresh, as a new host. Hosts the registry stops
// itself (a lost lease, a handoff) leave the entries at the same moment.
//
// Example:
//   auto registry = ScopeRegistry::Create(schema, config, options).value();
//   registry->Acquire("Canvas", {}, [](ScopeLookup found) {
//     if (found.host) found.host->Fetch(...);
//     else if (found.redirect) ... send it to found.redirect->address ...
//     else ... found.status ...
//   });
//
// Thread-safety: all methods are thread-safe. The registry takes a host's
// lock under its own, never the other way round: hosts call back into it
// only through the worker pool.

#ifndef JETSTREAM_SYNCSERVICE_SCOPE_REGISTRY_H_
#define JETSTREAM_SYNCSERVICE_SCOPE_REGISTRY_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "syncservice/cluster/cluster.h"
#include "syncservice/engine/schema.h"
#include "syncservice/scope_config.h"
#include "syncservice/scope_host.h"
#include "syncservice/storage/scope_store.h"
#include "syncservice/sync_metrics.h"
#include "syncservice/worker_pool.h"

namespace jetstream {

// The exact error text for an unknown scope name.
inline constexpr absl::string_view kNoSuchScope = "No such scope";

struct ScopeRegistryOptions {
  ScopeHostOptions host;
  // At most this many scopes exist; further template fetches fail with
  // kResourceExhausted (clients choose template names freely).
  size_t max_scopes = 10000;
  // Longer names are refused with kInvalidArgument.
  size_t max_name_length = 256;
  // Durable scopes: where scopes are loaded from and created in. Not owned;
  // must outlive the registry. Null: scopes live in memory only. The hosts'
  // persister (host.persister) should write to the same store.
  ScopeStore* store = nullptr;
  // Leases and membership. Not owned; must outlive the registry. Null, or
  // standalone: every scope is this replica's.
  Cluster* cluster = nullptr;
  // Threads that take leases and load scopes.
  int loader_threads = 4;
  // Scope load times, leases taken and lost. Not owned; null: none. (The
  // hosts' stage metrics are host.metrics.)
  SyncMetrics* metrics = nullptr;
  // How long a take-over request waits for a lease held
  // elsewhere before it fails with kUnavailable.
  absl::Duration max_lease_wait = absl::Seconds(15);
  // A scope served here although another live member is preferred (it was
  // taken over while that one could not be reached) is handed to it after
  // serving here this long, checked at every heartbeat (Rebalance()).
  absl::Duration rebalance_after = absl::Seconds(10);
};

// How the caller came to ask this replica (proto Routing).
struct RoutingHints {
  bool take_over = false;
  bool rerouted = false;
};

// ScopeLookup
//
// What Acquire() found: `host` (serve the request there), or `redirect`
// (nothing was done: send the request to that member; an empty id means
// "route it anew"), or neither, with `status` saying why not (kNotFound
// with kNoSuchScope, kInvalidArgument, kResourceExhausted, kUnavailable,
// kInternal).
struct ScopeLookup {
  std::shared_ptr<ScopeHost> host;
  std::optional<Member> redirect;
  absl::Status status;
};

class ScopeRegistry : public Cluster::Listener {
 public:
  // ScopeRegistry::Create()
  //
  // Builds one trial instance of every template and (without a cluster)
  // every static scope, so a bad scopes file fails at startup. Errors are
  // kInvalidArgument naming the file and the scope or template, or the
  // store's, naming the scope. The owner passes the cluster's events to
  // OnMembersChanged() and OnLeaseLost().
  static absl::StatusOr<std::unique_ptr<ScopeRegistry>> Create(
      std::shared_ptr<const Schema> schema, ScopeConfig config,
      ScopeRegistryOptions options = {});

  // Stops the workers; requests still waiting get kUnavailable.
  ~ScopeRegistry() override;

  ScopeRegistry(const ScopeRegistry&) = delete;
  ScopeRegistry& operator=(const ScopeRegistry&) = delete;

  using LookupCallback = std::function<void(ScopeLookup)>;

  // ScopeRegistry::Acquire()
  //
  // Finds the scope named `name` for a request (see the file comment).
  // `done` is called exactly once: inline if the scope is served here
  // already, is handed off (a redirect) or the name is refused; otherwise
  // on a worker thread once the scope is loaded (or turned out to be held
  // elsewhere). For one scope, `done` calls come in the order of the
  // Acquire() calls. Never called with a registry or host lock held.
  void Acquire(absl::string_view name, RoutingHints hints, LookupCallback done);

  // Blocking form, for tests: a redirect is kFailedPrecondition naming the
  // member.
  absl::StatusOr<std::shared_ptr<ScopeHost>> Fetch(absl::string_view name);

  // The host of the scope named `name` if it is served here, or nullptr.
  // Never loads one.
  std::shared_ptr<ScopeHost> Find(absl::string_view name) const;

  // Every scope served here, sorted by name.
  std::vector<std::shared_ptr<ScopeHost>> List() const;

  // Names of the static scopes and template patterns, for the startup log.
  const ScopeConfig& config() const { return config_; }

  // ScopeRegistry::HandOffAll()
  //
  // A clean shutdown: marks this replica draining (it drops out of the
  // member views), hands every scope off (to its preferred member among
  // the others, or to whoever asks next), and waits until every lease is
  // released or `timeout` passed. Returns whether all were.
  bool HandOffAll(absl::Duration timeout);

  // ScopeRegistry::Rebalance()
  //
  // Hands off every scope served here for at least `rebalance_after` that
  // prefers another live member in `view`. (OnMembersChanged() hands off at
  // once, whatever the tenure.)
  void Rebalance(const MemberView& view);

  // Cluster::Listener (the cluster's threads).
  void OnMembersChanged(const MemberView& view) override;
  void OnHeartbeat(const MemberView& view) override { Rebalance(view); }
  void OnLeaseLost(const std::string& scope, uint64_t epoch,
                   const absl::Status& why) override;

 private:
  struct Waiter {
    RoutingHints hints;
    LookupCallback done;
  };
  struct Entry {
    enum class State { kLoading, kServing, kLeaving };
    State state = State::kLoading;
    // Unique per entry: completions of an entry that was replaced are
    // ignored.
    uint64_t generation = 0;
    std::shared_ptr<ScopeHost> host;  // kServing, kLeaving
    uint64_t epoch = 0;               // the lease epoch of `host`
    // Requests waiting for the load (kLoading), and those that arrived
    // while the loaded host was being handed to the first ones.
    std::deque<Waiter> waiters;
    bool handing_to_waiters = false;
    // A handoff was asked for while the host was being handed to waiters:
    // the placement is checked again once they have it.
    bool recheck_placement = false;
    // When the first waiter of a lease wait gives up.
    absl::Time wait_deadline = absl::InfiniteFuture();
    Member leaving_to;  // kLeaving: where the scope goes (empty id: anywhere)
    absl::Time serving_since;  // kServing
  };

  ScopeRegistry(std::shared_ptr<const Schema> schema, ScopeConfig config,
                ScopeRegistryOptions options);
  // Hands `name` off if `view` prefers another member for it (or, this
  // replica leaving, nobody).
  void HandOffIfMisplaced(const std::string& name, const MemberView& view)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The object spec and description of a scope name, or null (no such
  // scope).
  const ObjectSpec* SpecFor(absl::string_view name, std::string* what) const;
  // Builds `name` (loading or creating it in the store if there is one).
  absl::StatusOr<std::unique_ptr<Scope>> MakeScope(const std::string& name);
  std::shared_ptr<ScopeHost> NewHost(const std::string& name,
                                     std::unique_ptr<Scope> scope,
                                     uint64_t epoch, uint64_t generation);
  bool standalone() const;

  // Worker pool tasks.
  void Load(const std::string& name, uint64_t generation);
  // Answers (and removes) the waiters `pick` selects (all if null); erases
  // the entry if none is left. Returns whether any is left.
  bool AnswerWaiters(const std::string& name, uint64_t generation,
                     const std::function<bool(const Waiter&)>& pick,
                     const ScopeLookup& answer);
  // Gives the loaded host to its waiters, in order, then serves.
  void Serve(const std::string& name, uint64_t generation,
             std::shared_ptr<ScopeHost> host, uint64_t epoch);
  void OnHostFailed(const std::string& name, uint64_t generation,
                    uint64_t epoch);
  void HandOff(const std::string& name, const Member* to)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands off the scopes that prefer another member of `view`, those served
  // here for at least `min_tenure`.
  void HandOffMisplaced(const MemberView& view, absl::Duration min_tenure)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandedOff(const std::string& name, uint64_t generation);

  const std::shared_ptr<const Schema> schema_;
  const ScopeConfig config_;
  const ScopeRegistryOptions options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Entry>> entries_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // HandOffAll(): scopes not held here are redirected, never loaded.
  bool draining_ ABSL_GUARDED_BY(mu_) = false;

  // Last: its threads use everything above. Shared so that hosts' callbacks
  // can post to it without outliving it (they hold it weakly).
  const std::shared_ptr<WorkerPool> workers_;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_SCOPE_REGISTRY_H_
