// File: tests/durability/replica_cluster.h
//
// The pieces of the replica fault tests: a cluster of real processes (a
// PostgreSQL server, sync service replicas, gateways) on loopback, a write
// load from WebSocket clients on every gateway, and a history checker.
//
// ReplicaCluster starts replicas as `sync-<k>` (each on a free port, so a
// restarted replica comes back at a new address under the same member id,
// as a Kubernetes pod does) with a short lease TTL, and gateways seeded with
// one replica's address each: the members are discovered, never listed.
//
// Workload runs writers and readers on a set of scopes. A writer owns one
// shape and moves it to x = 1, 2, 3, ... one changeset at a time, each
// after the previous one's reply; a reader only listens. Both keep a model
// of the scope from what they receive and record every violation: a shape's
// x going backwards (a state older than one the client already had), a
// received changeset that is not in the stored history. A client whose
// gateway dies connects to another one and starts a new session.
//
// CheckHistory() then asserts, against the commits in PostgreSQL:
//   * no acknowledged changeset is lost: every acknowledged move is a
//     stored commit;
//   * one history: versions are consecutive, each version one commit, their
//     lease epochs never decrease, and every changeset a client received is
//     one of them;
//   * every client converges to the stored state (each shape's last stored
//     x) and no client saw a shape move backwards.
// It prints the recovery time after a fault (fault to the next
// acknowledged move); it does not assert it.

#ifndef JETSTREAM_TESTS_DURABILITY_REPLICA_CLUSTER_H_
#define JETSTREAM_TESTS_DURABILITY_REPLICA_CLUSTER_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/process.h"

namespace jetstream::testing {

class ReplicaCluster {
 public:
  struct Options {
    absl::Duration lease_ttl = absl::Milliseconds(1500);
    // How long a gateway waits for the sync service per request.
    absl::Duration sync_request_timeout = absl::Seconds(5);
  };

  // Starts PostgreSQL with an empty database.
  static absl::StatusOr<std::unique_ptr<ReplicaCluster>> Start(Options options);
  static absl::StatusOr<std::unique_ptr<ReplicaCluster>> Start() {
    return Start(Options());
  }

  PostgresServer& postgres() { return *postgres_; }
  const std::string& conninfo() const { return conninfo_; }

  // Starts replica `k` (member id "sync-<k>"), again if it ran before.
  absl::Status StartReplica(int k, std::vector<std::string> extra_flags = {});
  // The replica's process, or null if it is not running.
  ChildProcess* replica(int k);
  // SIGKILL, or SIGTERM and wait for a clean exit.
  void KillReplica(int k);
  bool StopReplica(int k);

  // Starts gateway `g` seeded with `seeds` (addresses).
  absl::Status StartGateway(int g, const std::vector<std::string>& seeds);
  ChildProcess* gateway(int g);
  void KillGateway(int g);
  // Ports of the running gateways.
  std::vector<int> GatewayPorts();
  // Their metrics ports ("METRICS" lines), in the same order.
  std::vector<int> GatewayMetricsPorts();
  // Waits until every running gateway has its stream up to `replicas`
  // live members (its /metrics gauges). False on timeout.
  bool WaitForGatewaysToSee(int replicas,
                            absl::Duration timeout = absl::Seconds(60));

  // The member id holding `scope`'s lease now, or "" (none, or expired).
  std::string LeaseHolder(const std::string& scope);
  // The replica index of member "sync-<k>", or -1.
  static int IndexOf(const std::string& member_id);
  // Waits until `scope`'s lease is held by a replica other than `not_by`
  // (any if empty); returns the holder or "" on timeout.
  std::string WaitForLeaseHolder(const std::string& scope,
                                 const std::string& not_by,
                                 absl::Duration timeout = absl::Seconds(60));
  // The member ids in the members table that are live (database clock).
  std::set<std::string> LiveMembers();
  // The incarnation registered for `member_id`.
  std::string IncarnationOf(const std::string& member_id);

  const Options& options() const { return options_; }

 private:
  explicit ReplicaCluster(Options options) : options_(options) {}

  Options options_;
  std::unique_ptr<PostgresServer> postgres_;
  std::string conninfo_;
  absl::Mutex mu_;
  std::map<int, std::unique_ptr<ChildProcess>> replicas_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::unique_ptr<ChildProcess>> gateways_ ABSL_GUARDED_BY(mu_);
};

// One stored commit, as the checker reads it.
struct StoredChange {
  uint64_t version = 0;
  std::string writer;
  uint64_t lease_epoch = 0;
  std::string applied_json;
};

class Workload {
 public:
  struct Options {
    std::vector<std::string> scopes = {"canvas/faults"};
    // Per scope and gateway.
    int writers = 2;
    int readers = 1;
  };

  Workload(ReplicaCluster& cluster, Options options);
  ~Workload();

  // Creates every scope's shapes (through the first gateway) and starts the
  // clients, each on gateway (its number modulo the gateways running).
  absl::Status Start();
  // Waits until `n` more moves (from now) are acknowledged. False on timeout.
  bool WaitForAcks(int n, absl::Duration timeout = absl::Seconds(90));
  // Waits until `n` more moves (from now) are refused or go unanswered.
  bool WaitForFailures(int n, absl::Duration timeout = absl::Seconds(90));
  // The time of the first acknowledgement after `t`, if any yet.
  std::optional<absl::Time> FirstAckAfter(absl::Time t);
  // Stops the clients, lets each catch up with everything sent to it, and
  // checks the history (gtest assertions). Prints a summary.
  void StopAndCheck(const std::string& scenario,
                    std::optional<absl::Time> fault = std::nullopt);

  int acks() const { return acks_.load(); }

 private:
  struct Client;
  void Run(Client* client);
  bool Connect(Client& client);
  // Applies one server message to the client's model and checks it.
  void Observe(Client& client, const std::string& message);
  void Violation(Client& client, std::string what);
  void NoteFailure();

  ReplicaCluster& cluster_;
  const Options options_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int> acks_{0};
  absl::Mutex mu_;
  std::vector<absl::Time> ack_times_ ABSL_GUARDED_BY(mu_);
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  // Per scope: the shapes written and the setup's root.
  std::map<std::string, std::vector<std::string>> shapes_;
};

// The commits of `scope` in version order.
absl::StatusOr<std::vector<StoredChange>> ReadHistory(
    const std::string& conninfo, const std::string& scope);

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_DURABILITY_REPLICA_CLUSTER_H_
