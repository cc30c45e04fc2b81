// File: syncservice/cluster/cluster.h
//
// A sync service replica's place among its peers: which replicas are live,
// and which scopes this one may serve. A replica serves a scope only while
// it holds the scope's *lease*: an owner, an epoch and an expiry kept in the
// shared database. Every commit is conditional on the lease's epoch in the
// commit's own transaction (ScopeStore, StoredCommit::lease_epoch), so a
// replica that was paused or cut off past its lease can never commit after
// losing it; and a replica stops serving reads before the database can
// hand the lease to anyone else (Valid() runs on its own clock and ends
// before the lease's expiry in the database).
//
// Which replica should hold a scope: the *preferred* member, by rendezvous
// hashing of the scope's name over the live members' ids (common/
// rendezvous.h), so scopes spread evenly and move minimally. Gateways rank
// the same way, and a replica redirects requests for scopes it does not
// hold.
//
// Implementations: StandaloneCluster (one replica, no database: it holds
// every scope, always, with epoch 0) and PostgresCluster (membership and
// leases in PostgreSQL).
//
// Example (what the scope registry does):
//   absl::StatusOr<LeaseOutcome> lease = cluster.Acquire("Canvas");
//   if (lease.ok() && lease->granted) {
//     ... load the scope from the store, serve it, commit with
//         lease->epoch, check cluster.Valid("Canvas", lease->epoch) before
//         every read it answers ...
//     cluster.Release("Canvas", lease->epoch);  // when handing it off
//   }

#ifndef JETSTREAM_SYNCSERVICE_CLUSTER_CLUSTER_H_
#define JETSTREAM_SYNCSERVICE_CLUSTER_CLUSTER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace jetstream {

// One replica: its stable id (what scopes are ranked by) and the address
// gateways reach it at.
struct Member {
  std::string id;
  std::string address;

  bool operator==(const Member& other) const {
    return id == other.id && address == other.address;
  }
  bool operator!=(const Member& other) const { return !(*this == other); }
};

// MemberView
//
// The live members (heartbeating, not draining), sorted by id, as read at
// `as_of_micros` of the database's clock.
struct MemberView {
  std::vector<Member> members;
  int64_t as_of_micros = 0;

  // The member ranked first for `scope`, if there is any.
  std::optional<Member> Preferred(absl::string_view scope) const;
  // Whether the member with `id` is live.
  bool Contains(absl::string_view id) const;
  bool SameMembers(const MemberView& other) const {
    return members == other.members;
  }
};

// What Cluster::Acquire() found.
struct LeaseOutcome {
  // True: the lease is this replica's now, at `epoch`. False: somebody else
  // holds it, unexpired.
  bool granted = false;
  uint64_t epoch = 0;
  // When not granted: the holder (an empty id if the holder is not a
  // registered member any more), whether it is live, and how long its lease
  // has left by the database's clock.
  Member holder;
  bool holder_live = false;
  absl::Duration expires_in = absl::ZeroDuration();
};

// Cluster
//
// Thread-safety: all methods are thread-safe. Acquire(), Release() and
// Drain() block on the database: call them from worker threads, never from
// a gRPC reaction or under a lock. Valid(), members() and self() are cheap.
class Cluster {
 public:
  // Listener
  //
  // Calls come from the cluster's own threads, never from inside a Cluster
  // method the caller made, and never concurrently with each other.
  class Listener {
   public:
    virtual ~Listener() = default;
    // The set of live members changed.
    virtual void OnMembersChanged(const MemberView& view) = 0;
    // A lease this replica held is gone: it was not renewed in time (the
    // database was unreachable, the process was paused) or the database no
    // longer has it. Valid() is already false for it.
    virtual void OnLeaseLost(const std::string& scope, uint64_t epoch,
                             const absl::Status& why) = 0;
    // Whether the shared database answers (heartbeats succeed): while it
    // does not, this replica cannot take or keep leases.
    virtual void OnDatabaseReachable(bool reachable) { (void)reachable; }
    // After every heartbeat, with the view as read (changed or not).
    virtual void OnHeartbeat(const MemberView& view) { (void)view; }
  };

  virtual ~Cluster() = default;

  // Sets who hears of changes. Call once, before the first Acquire().
  virtual void SetListener(Listener* listener) = 0;

  // This replica (its address is empty until it has joined).
  virtual Member self() const = 0;
  // True for a replica without peers: every scope is its own, always, at
  // epoch 0, and no lease is ever lost.
  virtual bool standalone() const = 0;
  // The live members as last read (standalone: only self).
  virtual MemberView members() const = 0;

  // Cluster::Acquire()
  //
  // Takes the scope's lease if it is free (never held, released, or
  // expired): a new epoch, greater than every earlier one of the scope.
  // If another replica holds it, unexpired, says who. Errors: kUnavailable
  // (the database cannot be reached), kFailedPrecondition (this replica was
  // superseded by another process with its member id).
  virtual absl::StatusOr<LeaseOutcome> Acquire(const std::string& scope) = 0;

  // Cluster::Release()
  //
  // Gives the lease up: Valid() is false from the call on, and the
  // database lets anyone take it at once. Best effort (an unreachable
  // database lets it expire instead).
  virtual void Release(const std::string& scope, uint64_t epoch) = 0;

  // Cluster::Valid()
  //
  // Whether this replica still holds `scope`'s lease at `epoch`, by its own
  // monotonic clock, which ends every lease before the database's expiry.
  virtual bool Valid(const std::string& scope, uint64_t epoch) const = 0;

  // Cluster::Drain()
  //
  // Marks this replica as leaving: it drops out of every member view (its
  // own, members(), at once), so the scopes it holds now prefer other
  // members. The listener is not called from inside Drain().
  virtual void Drain() = 0;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_CLUSTER_CLUSTER_H_
