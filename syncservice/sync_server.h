// File: syncservice/sync_server.h
//
// The sync service process, assembled: schema and scopes file loaded, the
// ScopeRegistry, the SyncService and a gRPC server listening on one
// address. main.cc only turns flags into SyncServerOptions and calls
// RunSyncServer(); tests start a SyncServer in process on 127.0.0.1:0.
//
// (main.cc cannot hold this code itself: glog's headers declare a global
// FLAGS_v, which collides with ABSL_FLAG(int, v, ...) in one translation
// unit. This header therefore includes neither glog nor flags.)
//
// Example:
//   SyncServerOptions options;
//   options.listen = "127.0.0.1:0";
//   options.schema_path = "syncservice/config/demo_schema.json";
//   options.scopes_path = "syncservice/config/demo_scopes.json";
//   auto server = SyncServer::Start(options).value();
//   auto channel = grpc::CreateChannel(server->address(),
//                                      grpc::InsecureChannelCredentials());
//   ...
//   server->Shutdown(absl::Seconds(5));

#ifndef JETSTREAM_SYNCSERVICE_SYNC_SERVER_H_
#define JETSTREAM_SYNCSERVICE_SYNC_SERVER_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/grpc_link.h"
#include "common/log_format.h"
#include "common/metrics/grpc_metrics.h"
#include "common/metrics/metrics_registry.h"
#include "syncservice/cluster/cluster.h"
#include "syncservice/engine/schema.h"
#include "syncservice/hooks/hooks.h"
#include "syncservice/metrics_http_server.h"
#include "syncservice/rpc/interceptors.h"
#include "syncservice/scope_registry.h"
#include "syncservice/storage/scope_store.h"
#include "syncservice/sync_metrics.h"
#include "syncservice/sync_service_impl.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace jetstream {

// The health service name that answers SERVING while the process runs
// (Kubernetes liveness); "" answers SERVING only while the replica takes
// traffic: started, joined, not draining, its database reachable.
inline constexpr char kLivenessService[] = "liveness";

struct SyncServerOptions {
  // host:port; port 0 picks a free port (see SyncServer::address()).
  std::string listen = "127.0.0.1:50051";
  std::string schema_path = "syncservice/config/demo_schema.json";
  std::string scopes_path = "syncservice/config/demo_scopes.json";
  // The hooks file (syncservice/hooks/hook_config.h); empty: no hooks,
  // everything accepted.
  std::string hooks_path;
  // A file of accepted bearer tokens, one per line; empty: callers are not
  // asked for one. Needs TLS (tls_cert_path, tls_key_path): Start() fails
  // without it.
  std::string auth_tokens_path;
  // TLS for the gRPC port: certificate chain and private key (PEM files).
  // With `tls_client_ca` as well, callers must present a client certificate
  // signed by it (mTLS). All empty: plaintext.
  std::string tls_cert_path;
  std::string tls_key_path;
  std::string tls_client_ca_path;
  // Where to serve /metrics (Prometheus text) and /healthz over HTTP,
  // "ip:port"; port 0 picks a free one (see metrics_address()). Empty: no
  // HTTP endpoint.
  std::string metrics_listen;
  // Per-scope series (jetstream_sync_scope_version, _watchers) for this
  // many scopes, those with the most watchers; 0: none.
  int metrics_top_scopes = 10;
  // Durable scopes (see README "Durability"): "memory" or empty (nothing
  // stored; scopes start from configuration at every start),
  // "sqlite:<path>" (the file and its folder are created if missing) or
  // "postgres:<libpq conninfo>". A store that cannot be opened (a damaged
  // or foreign SQLite file, say) fails Start() with its error, which names
  // the file; the file is left untouched.
  std::string store = "memory";
  // false: relaxed durability (ScopeStoreOptions::synchronous).
  bool store_sync = true;
  // A full snapshot (compaction of the log) every this many versions of a
  // scope; 0: never.
  uint64_t snapshot_every = 1000;
  // Replicas (with a postgres store): this replica's stable name, and the
  // address gateways reach it at. Empty: the advertised address, and the
  // bound address (a wildcard host becomes this machine's hostname).
  std::string member_id;
  std::string advertise_address;
  // How long a heartbeat keeps a member live and a renewal keeps a lease:
  // the bound of a failover.
  absl::Duration lease_ttl = absl::Seconds(5);
  // Keepalive agreed with the gateways (common/grpc_link.h).
  LinkKeepalive keepalive;
  ScopeRegistryOptions registry;
  SyncServiceOptions service;
  // How long a shutdown lets the scopes' queued commits finish and their
  // leases be handed off, then open calls finish, before cancelling them.
  absl::Duration shutdown_grace = absl::Seconds(5);
};

// SyncServer
//
// Owns everything of one running sync service. Thread-safe: Shutdown() may
// be called from any thread, more than once.
class SyncServer {
 public:
  // SyncServer::Start()
  //
  // Loads the schema and the scopes file, builds every static scope, and
  // starts serving. Fails with the loader's error (naming the file and the
  // scope or model) or kUnavailable if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<SyncServer>> Start(
      SyncServerOptions options);

  // Shuts down with the configured grace if still running.
  ~SyncServer();

  SyncServer(const SyncServer&) = delete;
  SyncServer& operator=(const SyncServer&) = delete;

  // The address actually bound, "host:port" with the chosen port.
  const std::string& address() const { return address_; }
  int port() const { return port_; }

  // The metrics endpoint's "ip:port", or empty if there is none.
  std::string metrics_address() const;
  // The /metrics text (docs/metrics.md).
  std::string MetricsText() const;

  ScopeRegistry& registry() { return *registry_; }
  SyncServiceImpl& service() { return *service_; }
  // Everything /metrics shows.
  MetricsRegistry& metrics() { return *metrics_; }

  // grpc.health.v1 (see kLivenessService): SERVING once started (and
  // joined), NOT_SERVING while draining or while the database is
  // unreachable.

  // This replica as gateways see it (id and advertised address).
  Member self() const;
  // The cluster (standalone: none).
  Cluster* cluster() { return cluster_.get(); }

  // SyncServer::Shutdown()
  //
  // With replicas, first hands every scope off (queued commits finish,
  // leases are released, the gateways are told where each scope went),
  // then stops accepting calls, lets open ones finish, and cancels the rest
  // (gateway streams are long-lived: they are cancelled), all within
  // `grace`. Returns once every call is done.
  void Shutdown(absl::Duration grace);

 private:
  SyncServer() = default;
  // grpc.health.v1 statuses from the state below.
  void UpdateHealth();
  void SetDatabaseReachable(bool reachable);
  // The live gauges of one scrape, with per-scope series for `top` scopes.
  std::vector<prometheus::MetricFamily> Collect(size_t top) const;

  std::string address_;
  int port_ = 0;
  absl::Duration shutdown_grace_;
  // Destroyed in reverse order: the server before the service before the
  // registry its calls use, before the hooks and metrics the scopes use.
  std::unique_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<GrpcMetrics> grpc_metrics_;
  std::unique_ptr<hooks::HookCallMetrics> hook_metrics_;
  std::unique_ptr<SyncMetrics> sync_metrics_;
  std::shared_ptr<const Schema> schema_;
  // Shared with the server's credentials (its AuthMetadataProcessor).
  std::shared_ptr<CallAuthenticator> authenticator_;
  std::unique_ptr<hooks::Hooks> hooks_;
  // The store outlives the persister (whose snapshot thread uses it), which
  // outlives the registry's hosts.
  std::unique_ptr<ScopeStore> store_;
  std::unique_ptr<CommitPersister> persister_;
  // Replicas: membership and leases (null: standalone). Its events go to
  // the registry and the service through `cluster_events_`.
  std::unique_ptr<Cluster::Listener> cluster_events_;
  std::unique_ptr<Cluster> cluster_;
  Member self_;
  std::unique_ptr<ScopeRegistry> registry_;
  std::unique_ptr<SyncServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  // Stopped first: its requests read the metrics and the registry (the
  // collector added in Start()).
  std::unique_ptr<MetricsHttpServer> metrics_http_;

  absl::Mutex health_mu_;
  bool started_ ABSL_GUARDED_BY(health_mu_) = false;
  bool draining_ ABSL_GUARDED_BY(health_mu_) = false;
  bool database_reachable_ ABSL_GUARDED_BY(health_mu_) = true;
};

// RunSyncServer()
//
// The whole program: initialises logging (stderr, VLOG level `verbosity`),
// starts a SyncServer, logs one startup line, prints "METRICS <ip>:<port>"
// (when serving metrics) and then "LISTENING <host>:<port>" on stdout
// (flushed) for scripts to parse, and
// serves until SIGINT or SIGTERM, then shuts down cleanly. Returns the exit
// code: 0 after a clean shutdown, 1 (with a message on stderr) if the
// configuration is bad or the address cannot be bound. Must be called from
// main() before any other thread exists (it blocks the signals for every
// thread it starts).
int RunSyncServer(const char* argv0, int verbosity, LogFormat log_format,
                  SyncServerOptions options);

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_SYNC_SERVER_H_
