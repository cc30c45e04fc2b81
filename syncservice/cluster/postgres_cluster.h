// File: syncservice/cluster/postgres_cluster.h
//
// PostgresCluster: membership and scope leases in the PostgreSQL database
// the replicas share (the tables jetstream_members and jetstream_leases,
// created by PostgresScopeStore::Open, which must run first).
//
// Membership. Each replica registers its member id, incarnation (a random
// id per process, also its store's writer id) and advertised address, and
// heartbeats every `heartbeat_interval`. A member is live while its
// heartbeat is younger than `lease_ttl` (the database's clock) and it is
// not draining. The view is read again after every heartbeat; a change is
// told to the listener. A process that finds its member id registered by
// another incarnation stops renewing and acquiring (it was superseded).
//
// Leases. Acquire() takes a scope's lease when it is free (no row,
// released, or expired by the database's clock) with the next epoch, inside
// a transaction that locks the lease row FOR UPDATE: it waits for any
// commit still running under the previous lease (which holds the row FOR
// KEY SHARE), so the new holder loads everything the old one committed.
// Every heartbeat also renews the leases held here; a lease counts as held
// (Valid()) until `lease_ttl` minus a safety margin after the renewal was
// *sent*, which is never later than its expiry in the database. A watchdog
// thread tells the listener the moment a lease runs out locally, whether or
// not the database can be reached; a renewal that no longer finds a lease
// tells it too.
//
// Threads: one for heartbeats, renewals and member views; one watchdog.
// Acquire() and Release() use a connection of their own, one call at a
// time. Listener calls come from these two threads, one at a time.
//
// Example:
//   PostgresClusterOptions options;
//   options.self = {"sync-0", "10.0.0.7:50051"};
//   options.incarnation = store->writer_id();
//   auto cluster = PostgresCluster::Start(conninfo, options).value();

#ifndef JETSTREAM_SYNCSERVICE_CLUSTER_POSTGRES_CLUSTER_H_
#define JETSTREAM_SYNCSERVICE_CLUSTER_POSTGRES_CLUSTER_H_

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "syncservice/cluster/cluster.h"

namespace jetstream {

namespace pg_internal {
class Connection;
}  // namespace pg_internal

struct PostgresClusterOptions {
  // This replica; Join() may give it later.
  Member self;
  // This process's id: the lease owner, the same as its store's writer id.
  std::string incarnation;
  // How long a heartbeat keeps a member live and a renewal keeps a lease.
  absl::Duration lease_ttl = absl::Seconds(5);
  // Zero: lease_ttl / 3.
  absl::Duration heartbeat_interval = absl::ZeroDuration();
  absl::Duration connect_timeout = absl::Seconds(2);
  // What the server shows for the cluster's connections.
  std::string application_name = "jetstream-syncservice/cluster";
};

class PostgresCluster : public Cluster {
 public:
  // PostgresCluster::Open()
  //
  // Connects (two connections); kUnavailable if the database cannot be
  // reached. Until Join() the replica is not a member: Acquire() fails with
  // kUnavailable and members() is empty.
  static absl::StatusOr<std::unique_ptr<PostgresCluster>> Open(
      const std::string& conninfo, PostgresClusterOptions options);

  // PostgresCluster::Join()
  //
  // Registers this member as `self` (replacing the row of an earlier
  // incarnation with the same id), reads the first view (told to the
  // listener) and starts the threads. Call once, when the replica can be
  // reached at `self.address`. kFailedPrecondition if the tables are
  // missing.
  absl::Status Join(const Member& self);

  // Open() and Join(options.self).
  static absl::StatusOr<std::unique_ptr<PostgresCluster>> Start(
      const std::string& conninfo, PostgresClusterOptions options);

  // Stops the threads and removes this member's row (its leases expire or
  // were released).
  ~PostgresCluster() override;

  // Cluster
  void SetListener(Listener* listener) override;
  Member self() const override;
  bool standalone() const override { return false; }
  MemberView members() const override;
  absl::StatusOr<LeaseOutcome> Acquire(const std::string& scope) override;
  void Release(const std::string& scope, uint64_t epoch) override;
  bool Valid(const std::string& scope, uint64_t epoch) const override;
  void Drain() override;

  // The leases held here, for tests and metrics.
  size_t leases_held() const;
  // Whether the last heartbeat reached the database.
  bool database_reachable() const;
  bool superseded() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Held {
    uint64_t epoch = 0;
    // Valid() until then (this process's clock).
    Clock::time_point valid_until;
    // When the statement that granted it was sent: a renewal sent earlier
    // may not have seen it.
    Clock::time_point granted_at;
  };

  PostgresCluster(PostgresClusterOptions options,
                  std::unique_ptr<pg_internal::Connection> control,
                  std::unique_ptr<pg_internal::Connection> leases);

  // Heartbeat thread.
  void HeartbeatLoop();
  // One round: heartbeat, renew, read the view. Returns whether the
  // database answered (and tells the listener when that changes).
  bool Beat();
  bool BeatOnce();
  absl::Status Heartbeat();
  absl::Status Renew();
  absl::Status ReadView();
  // Watchdog thread.
  void WatchdogLoop();

  absl::StatusOr<LeaseOutcome> TryAcquire(const std::string& scope)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(leases_mu_);

  Clock::duration ValidFor() const;
  void TellLost(const std::string& scope, uint64_t epoch,
                const absl::Status& why);

  const PostgresClusterOptions options_;
  const std::string ttl_millis_;

  // The heartbeat thread's connection.
  const std::unique_ptr<pg_internal::Connection> control_;
  // Acquire() and Release(), one at a time.
  absl::Mutex leases_mu_;
  const std::unique_ptr<pg_internal::Connection> leases_
      ABSL_PT_GUARDED_BY(leases_mu_);

  // Serialises listener calls between the two threads.
  absl::Mutex listener_mu_;
  Listener* listener_ ABSL_GUARDED_BY(listener_mu_) = nullptr;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Held> held_ ABSL_GUARDED_BY(mu_);
  MemberView view_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool superseded_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Member self_ ABSL_GUARDED_BY(mu_);
  bool joined_ ABSL_GUARDED_BY(mu_) = false;
  bool reachable_ ABSL_GUARDED_BY(mu_) = true;
  // Bumped whenever held_ changes, to wake the watchdog.
  uint64_t held_changes_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread heartbeat_thread_;
  std::thread watchdog_thread_;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_CLUSTER_POSTGRES_CLUSTER_H_
