#include "syncservice/sync_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/build_info.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/termination_signals.h"
#include "common/uuid.h"
#include "syncservice/cluster/postgres_cluster.h"
#include "syncservice/engine/schema_loader.h"
#include "syncservice/scope_config.h"
#include "syncservice/storage/postgres_scope_store.h"
#include "syncservice/storage/sqlite_scope_store.h"
#include "syncservice/store_persister.h"

namespace jetstream {
namespace {

// "host" of "host:port" ("[::1]" stays bracketed).
std::string HostOf(const std::string& listen) {
  size_t colon = listen.rfind(':');
  return colon == std::string::npos ? listen : listen.substr(0, colon);
}

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  return ReadFileToString(path, "PEM file");
}

// Plaintext, TLS, or mTLS, as configured.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
    const SyncServerOptions& options) {
  if (options.tls_cert_path.empty() && options.tls_key_path.empty()) {
    if (!options.tls_client_ca_path.empty()) {
      return absl::InvalidArgumentError(
          "a client CA needs a server certificate and key");
    }
    return grpc::InsecureServerCredentials();
  }
  absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_path);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(options.tls_key_path);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!options.tls_client_ca_path.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(options.tls_client_ca_path);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// The address gateways reach a server bound at `bound` ("host:port") at: a
// wildcard host is replaced by this machine's hostname.
std::string AdvertisedAddress(const std::string& bound, int port) {
  std::string host = HostOf(bound);
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
    char name[256] = {};
    if (gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0') {
      host = name;
    } else {
      host = "localhost";
    }
  }
  return absl::StrCat(host, ":", port);
}

// Passes the cluster's events to the registry (handoffs, lost leases), the
// service (membership for the gateways) and the server (health).
class ClusterEvents : public Cluster::Listener {
 public:
  ClusterEvents(ScopeRegistry* registry, SyncServiceImpl* service,
                std::function<void(bool)> on_reachable)
      : registry_(registry),
        service_(service),
        on_reachable_(std::move(on_reachable)) {}
  void OnMembersChanged(const MemberView& view) override {
    registry_->OnMembersChanged(view);
    service_->OnMembersChanged(view);
  }
  void OnLeaseLost(const std::string& scope, uint64_t epoch,
                   const absl::Status& why) override {
    registry_->OnLeaseLost(scope, epoch, why);
  }
  void OnDatabaseReachable(bool reachable) override {
    on_reachable_(reachable);
  }
  void OnHeartbeat(const MemberView& view) override {
    registry_->Rebalance(view);
  }

 private:
  ScopeRegistry* const registry_;
  SyncServiceImpl* const service_;
  const std::function<void(bool)> on_reachable_;
};

// The store named by `spec` ("memory"/"": none). `writer_id` is the id a
// PostgreSQL store writes (and holds leases) under.
absl::StatusOr<std::unique_ptr<ScopeStore>> OpenStore(
    const std::string& spec, bool synchronous, const std::string& writer_id,
    const std::string& application_name, StoreObserver* observer) {
  if (spec.empty() || spec == "memory") return std::unique_ptr<ScopeStore>();
  ScopeStoreOptions store_options;
  store_options.synchronous = synchronous;
  store_options.observer = observer;
  if (absl::StartsWith(spec, "sqlite:")) {
    std::string path = spec.substr(7);
    if (path.empty()) {
      return absl::InvalidArgumentError("--store=sqlite:<path> needs a path");
    }
    std::error_code ec;
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot create the folder of '", path, "': ", ec.message()));
    }
    SqliteScopeStoreOptions options;
    options.store = store_options;
    absl::StatusOr<std::unique_ptr<SqliteScopeStore>> store =
        SqliteScopeStore::Open(path, options);
    if (!store.ok()) return store.status();
    return std::unique_ptr<ScopeStore>(*std::move(store));
  }
  if (absl::StartsWith(spec, "postgres:")) {
    PostgresScopeStoreOptions options;
    options.store = store_options;
    options.writer_id = writer_id;
    options.application_name = application_name;
    absl::StatusOr<std::unique_ptr<PostgresScopeStore>> store =
        PostgresScopeStore::Open(spec.substr(9), options);
    if (!store.ok()) return store.status();
    return std::unique_ptr<ScopeStore>(*std::move(store));
  }
  return absl::InvalidArgumentError(
      "--store must be memory, sqlite:<path> or postgres:<conninfo>");
}

}  // namespace

absl::StatusOr<std::unique_ptr<SyncServer>> SyncServer::Start(
    SyncServerOptions options) {
  absl::StatusOr<std::shared_ptr<const Schema>> schema =
      LoadSchemaFile(options.schema_path);
  if (!schema.ok()) return schema.status();
  absl::StatusOr<ScopeConfig> config = LoadScopeConfigFile(options.scopes_path);
  if (!config.ok()) return config.status();

  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      Credentials(options);
  if (!credentials.ok()) return credentials.status();

  std::unique_ptr<SyncServer> server(new SyncServer());
  server->shutdown_grace_ = options.shutdown_grace;
  server->schema_ = *schema;
  AuthOptions auth;
  if (!options.auth_tokens_path.empty()) {
    absl::StatusOr<std::set<std::string>> tokens =
        LoadTokensFile(options.auth_tokens_path);
    if (!tokens.ok()) return tokens.status();
    auth.tokens = *std::move(tokens);
  }
  if (!auth.tokens.empty() && options.tls_cert_path.empty()) {
    // gRPC runs an AuthMetadataProcessor only on secure credentials, and
    // a bearer token must not cross the network in clear.
    return absl::InvalidArgumentError(
        "--auth_tokens_file needs TLS (--tls_cert and --tls_key)");
  }
  server->authenticator_ = std::make_shared<CallAuthenticator>(std::move(auth));
  if (!options.tls_cert_path.empty()) {
    // Every call on the port, of every method, passes it before dispatch.
    (*credentials)->SetAuthMetadataProcessor(server->authenticator_);
  }
  server->metrics_ = std::make_unique<MetricsRegistry>("syncservice");
  prometheus::Registry& metrics = server->metrics_->registry();
  server->grpc_metrics_ =
      std::make_unique<GrpcMetrics>(metrics, GrpcMetrics::kServer);
  server->hook_metrics_ = std::make_unique<hooks::HookCallMetrics>(metrics);
  server->sync_metrics_ = std::make_unique<SyncMetrics>(metrics);
  // Hooks are always there: without a file they accept everything and know
  // no procedure.
  absl::StatusOr<std::unique_ptr<hooks::Hooks>> hooks = hooks::Hooks::Create(
      options.hooks_path, server->schema_.get(), server->hook_metrics_.get());
  if (!hooks.ok()) return hooks.status();
  server->hooks_ = *std::move(hooks);
  // This process: the store's writer id and the lease owner.
  const std::string incarnation = Uuid::Random().ToString();
  // The database shows which replica a connection is from.
  const std::string application_name =
      options.member_id.empty()
          ? std::string("jetstream-syncservice")
          : absl::StrCat("jetstream-syncservice ", options.member_id);
  absl::StatusOr<std::unique_ptr<ScopeStore>> store =
      OpenStore(options.store, options.store_sync, incarnation,
                application_name, server->sync_metrics_.get());
  if (!store.ok()) return store.status();
  server->store_ = *std::move(store);
  PostgresCluster* postgres_cluster = nullptr;
  if (absl::StartsWith(options.store, "postgres:")) {
    // Several replicas share the database: membership and leases. The
    // replica joins once it can be reached (below).
    PostgresClusterOptions cluster_options;
    cluster_options.incarnation = incarnation;
    cluster_options.lease_ttl = options.lease_ttl;
    cluster_options.application_name = application_name + "/cluster";
    absl::StatusOr<std::unique_ptr<PostgresCluster>> cluster =
        PostgresCluster::Open(options.store.substr(9), cluster_options);
    if (!cluster.ok()) return cluster.status();
    postgres_cluster = cluster->get();
    server->cluster_ = *std::move(cluster);
  }
  ScopeRegistryOptions registry_options = options.registry;
  registry_options.cluster = server->cluster_.get();
  registry_options.metrics = server->sync_metrics_.get();
  registry_options.host.metrics = server->sync_metrics_.get();
  // A scope taken over while its preferred replica was unreachable goes
  // back a little after that one is reachable again.
  registry_options.rebalance_after = options.lease_ttl * 2;
  if (server->store_ != nullptr) {
    server->persister_ = std::make_unique<StorePersister>(server->store_.get());
    registry_options.store = server->store_.get();
    registry_options.host.persister = server->persister_.get();
    registry_options.host.snapshot_every = options.snapshot_every;
  }
  if (registry_options.host.validator == nullptr) {
    registry_options.host.validator = server->hooks_->validator();
  }
  absl::StatusOr<std::unique_ptr<ScopeRegistry>> registry =
      ScopeRegistry::Create(*std::move(schema), *std::move(config),
                            std::move(registry_options));
  if (!registry.ok()) return registry.status();
  server->registry_ = *std::move(registry);
  SyncServiceOptions service_options = options.service;
  if (service_options.access == nullptr) {
    service_options.access = server->hooks_->access();
    service_options.procedures_enabled = true;
  }
  service_options.cluster = server->cluster_.get();
  service_options.self.id = options.member_id;
  server->service_ = std::make_unique<SyncServiceImpl>(server->registry_.get(),
                                                       service_options);
  if (server->cluster_ != nullptr) {
    SyncServer* self = server.get();
    server->cluster_events_ = std::make_unique<ClusterEvents>(
        server->registry_.get(), server->service_.get(),
        [self](bool reachable) { self->SetDatabaseReachable(reachable); });
    server->cluster_->SetListener(server->cluster_events_.get());
  }

  // grpc.health.v1 (Kubernetes' gRPC probes) and server reflection
  // (grpcurl), both from Debian's gRPC.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, *credentials, &port);
  ConfigureSyncServiceServer(options.keepalive, builder);
  builder.RegisterService(server->service_.get());
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(std::make_unique<GrpcServerMetricsInterceptorFactory>(
      server->grpc_metrics_.get()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on '", options.listen, "'"));
  }
  server->port_ = port;
  server->address_ = absl::StrCat(HostOf(options.listen), ":", port);
  server->self_.address = options.advertise_address.empty()
                              ? AdvertisedAddress(options.listen, port)
                              : options.advertise_address;
  server->self_.id =
      options.member_id.empty() ? server->self_.address : options.member_id;
  // Alive from here on; ready once it has joined its cluster.
  server->UpdateHealth();
  if (postgres_cluster != nullptr) {
    // Reachable now: become a member (other replicas may hand scopes over
    // from here on).
    absl::Status joined = postgres_cluster->Join(server->self_);
    if (!joined.ok()) return joined;
  }
  {
    absl::MutexLock lock(&server->health_mu_);
    server->started_ = true;
  }
  server->UpdateHealth();
  {
    SyncServer* self = server.get();
    const int top = std::max(0, options.metrics_top_scopes);
    server->metrics_->AddCollector([self, top] { return self->Collect(top); });
  }
  if (!options.metrics_listen.empty()) {
    SyncServer* self = server.get();
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
        MetricsHttpServer::Start(options.metrics_listen,
                                 [self] { return self->MetricsText(); });
    if (!http.ok()) return http.status();
    server->metrics_http_ = *std::move(http);
  }
  return server;
}

std::string SyncServer::metrics_address() const {
  return metrics_http_ == nullptr ? std::string() : metrics_http_->address();
}

std::string SyncServer::MetricsText() const { return metrics_->Text(); }

std::vector<prometheus::MetricFamily> SyncServer::Collect(size_t top) const {
  std::vector<ScopeHostInfo> scopes;
  uint64_t watchers = 0;
  for (const std::shared_ptr<ScopeHost>& host : registry_->List()) {
    scopes.push_back(host->Info());
    watchers += scopes.back().watchers;
  }
  std::vector<prometheus::MetricFamily> out;
  out.push_back(GaugeFamily("jetstream_sync_scopes_loaded", "Scopes held live.",
                            static_cast<double>(scopes.size())));
  out.push_back(GaugeFamily("jetstream_sync_watchers",
                            "Gateway streams watching scopes.",
                            static_cast<double>(watchers)));
  const bool clustered = cluster_ != nullptr && !cluster_->standalone();
  out.push_back(GaugeFamily(
      "jetstream_sync_leases_held", "Scope leases this replica holds.",
      clustered ? static_cast<double>(scopes.size()) : 0.0));
  out.push_back(GaugeFamily(
      "jetstream_sync_cluster_members",
      "Live replicas this replica sees (1 when standalone).",
      clustered ? static_cast<double>(cluster_->members().members.size())
                : 1.0));
  out.push_back(
      CounterFamily("jetstream_sync_auth_refused_total",
                    "Calls refused for a missing or unknown bearer token.",
                    static_cast<double>(authenticator_->refused())));
  // The busiest scopes only, so the number of series stays bounded.
  top = std::min(top, scopes.size());
  std::partial_sort(scopes.begin(), scopes.begin() + top, scopes.end(),
                    [](const ScopeHostInfo& a, const ScopeHostInfo& b) {
                      return std::tie(b.watchers, b.version, a.scope) <
                             std::tie(a.watchers, a.version, b.scope);
                    });
  std::vector<LabelledValue> versions, scope_watchers;
  for (size_t i = 0; i < top; ++i) {
    versions.push_back(
        {{{"scope", scopes[i].scope}}, static_cast<double>(scopes[i].version)});
    scope_watchers.push_back({{{"scope", scopes[i].scope}},
                              static_cast<double>(scopes[i].watchers)});
  }
  out.push_back(GaugeFamily("jetstream_sync_scope_version",
                            "The version of each of the busiest scopes.",
                            std::move(versions)));
  out.push_back(GaugeFamily("jetstream_sync_scope_watchers",
                            "The watchers of each of the busiest scopes.",
                            std::move(scope_watchers)));
  return out;
}

SyncServer::~SyncServer() {
  metrics_http_.reset();
  Shutdown(shutdown_grace_);
  server_.reset();
  // No more cluster events for the registry and the service that go next.
  if (cluster_ != nullptr) cluster_->SetListener(nullptr);
}

Member SyncServer::self() const { return self_; }

void SyncServer::SetDatabaseReachable(bool reachable) {
  {
    absl::MutexLock lock(&health_mu_);
    database_reachable_ = reachable;
  }
  UpdateHealth();
}

void SyncServer::UpdateHealth() {
  if (server_ == nullptr) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  bool ready = false;
  {
    absl::MutexLock lock(&health_mu_);
    ready = started_ && !draining_ && database_reachable_;
  }
  // "" and the service's own name: ready for traffic. kLivenessService:
  // the process answers.
  health->SetServingStatus("", ready);
  health->SetServingStatus("jetstream.sync.v1.SyncService", ready);
  health->SetServingStatus(std::string(kLivenessService), true);
}

void SyncServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr) return;
  {
    absl::MutexLock lock(&health_mu_);
    draining_ = true;
  }
  UpdateHealth();
  const absl::Time deadline = absl::Now() + grace;
  if (cluster_ != nullptr && registry_ != nullptr) {
    // Queued commits finish and every lease is released while the streams
    // are still open, so each gateway hears where its scopes went.
    if (!registry_->HandOffAll(grace * 0.8)) {
      LOG(WARNING) << "syncservice: not every scope was handed off in time; "
                      "their leases expire instead";
    }
  }
  // grpc::Server::Shutdown is idempotent and thread-safe; the deadline
  // bounds how long open streams may keep running.
  server_->Shutdown(absl::ToChronoTime(deadline));
}

int RunSyncServer(const char* argv0, int verbosity, LogFormat log_format,
                  SyncServerOptions options) {
  InitLogging(argv0, verbosity, log_format);
  // Debian's Abseil checks every lock for deadlock cycles, gRPC's included;
  // that costs ~10% of the CPU under load (docs/profiling.md).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Every thread gRPC starts inherits this mask, so the signals can only be
  // taken by the sigwait below.
  const TerminationSignals signals;

  absl::StatusOr<std::unique_ptr<SyncServer>> server =
      SyncServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "syncservice: %s\n",
                 std::string(server.status().message()).c_str());
    return 1;
  }

  const ScopeConfig& config = (*server)->registry().config();
  std::vector<std::string> scopes, templates;
  for (const ScopeSpec& s : config.scopes) scopes.push_back(s.name);
  for (const TemplateSpec& t : config.templates) templates.push_back(t.pattern);
  LOG(INFO) << "syncservice listening address=" << (*server)->address()
            << " version=" << BuildVersion() << " commit=" << BuildCommit()
            << " schema=" << options.schema_path
            << " scopes_file=" << options.scopes_path << " hooks_file="
            << (options.hooks_path.empty() ? "-" : options.hooks_path)
            << " auth="
            << (options.auth_tokens_path.empty() ? "none" : "bearer")
            << (options.tls_client_ca_path.empty()
                    ? (options.tls_cert_path.empty() ? "" : "+tls")
                    : "+mtls")
            << " store="
            << (absl::StartsWith(options.store, "postgres:")
                    ? std::string("postgres")
                    : options.store)
            << " scopes=[" << absl::StrJoin(scopes, ",") << "] templates=["
            << absl::StrJoin(templates, ",") << "]";
  if (!(*server)->metrics_address().empty()) {
    LOG(INFO) << "syncservice metrics address=http://"
              << (*server)->metrics_address() << "/metrics";
    std::printf("METRICS %s\n", (*server)->metrics_address().c_str());
  }
  std::printf("LISTENING %s\n", (*server)->address().c_str());
  std::fflush(stdout);

  const int signal_number = signals.Wait();
  LOG(INFO) << "syncservice shutting down signal=" << signal_number;
  (*server)->Shutdown(options.shutdown_grace);
  server->reset();
  LOG(INFO) << "syncservice stopped";
  return 0;
}

}  // namespace jetstream
