// File: syncservice/main.cc
//
// The syncservice binary: flags into SyncServerOptions, then
// RunSyncServer() (syncservice/sync_server.h), which serves until SIGINT or
// SIGTERM. Prints "LISTENING <host>:<port>" on stdout once serving.
//
//   bazel-bin/syncservice/syncservice --listen=127.0.0.1:0 --v=1

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "syncservice/sync_server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port to serve gRPC on; port 0 picks a free one");
ABSL_FLAG(std::string, schema, "syncservice/config/demo_schema.json",
          "the schema file (models and enumerations)");
ABSL_FLAG(std::string, scopes, "syncservice/config/demo_scopes.json",
          "the scopes file (static scopes and templates)");
ABSL_FLAG(std::string, hooks, "",
          "the hooks file (downstream validators, authorizers, procedures); "
          "empty: no hooks, everything accepted");
ABSL_FLAG(std::string, auth_tokens_file, "",
          "file of bearer tokens (one per line) that callers of the "
          "SyncService API must present; empty: no token required");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain for TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for TLS");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA that client certificates must be signed by (mTLS)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:0",
          "ip:port serving Prometheus /metrics (and /healthz) over HTTP; "
          "the default, a free loopback port, is printed as "
          "\"METRICS ip:port\" and logged; give a fixed one "
          "(0.0.0.0:9464) for a scraper; empty: none");
ABSL_FLAG(std::string, log_format, "text",
          "text: one line per event with key=value fields; json: one JSON "
          "object per line, the fields as members.");
ABSL_FLAG(int, metrics_top_scopes, 10,
          "Per-scope metrics (jetstream_sync_scope_version, _watchers) for "
          "this many scopes, those with the most watchers; 0: none.");
ABSL_FLAG(std::string, store, "sqlite:jetstream-data/jetstream.db",
          "where scopes are kept: memory (nothing survives a restart), "
          "sqlite:<path> (created with its folder if missing; relative to "
          "the working directory) or postgres:<libpq conninfo>");
ABSL_FLAG(bool, store_sync, true,
          "acknowledge a commit only once it is fsync'd; false: once it is "
          "committed (survives a crash of this process, a machine crash may "
          "lose a short window)");
ABSL_FLAG(uint64_t, snapshot_every, 1000,
          "save a full snapshot of a scope (compacting its log) every this "
          "many versions; 0: never");
ABSL_FLAG(std::string, member_id, "",
          "replicas (postgres store): this replica's stable name, which "
          "scopes are ranked by (a StatefulSet pod's name); empty: the "
          "advertised address");
ABSL_FLAG(std::string, advertise_address, "",
          "replicas: host:port gateways reach this replica at; empty: the "
          "listening address (a wildcard host becomes the hostname)");
ABSL_FLAG(absl::Duration, lease_ttl, absl::Seconds(5),
          "replicas: how long a heartbeat keeps a replica live and a "
          "renewal keeps a scope's lease; bounds a failover");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "on SIGTERM: time to finish queued commits, hand scopes off and "
          "let calls end");
ABSL_FLAG(int, v, 0, "verbosity of VLOG logging (1: every request)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Jetstream sync service: holds scopes and serves the SyncService gRPC "
      "API to gateways and backends.");
  absl::ParseCommandLine(argc, argv);

  jetstream::SyncServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.schema_path = absl::GetFlag(FLAGS_schema);
  options.scopes_path = absl::GetFlag(FLAGS_scopes);
  options.hooks_path = absl::GetFlag(FLAGS_hooks);
  options.auth_tokens_path = absl::GetFlag(FLAGS_auth_tokens_file);
  options.tls_cert_path = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_path = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_path = absl::GetFlag(FLAGS_tls_client_ca);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.metrics_top_scopes = absl::GetFlag(FLAGS_metrics_top_scopes);
  options.store = absl::GetFlag(FLAGS_store);
  options.store_sync = absl::GetFlag(FLAGS_store_sync);
  options.snapshot_every = absl::GetFlag(FLAGS_snapshot_every);
  options.member_id = absl::GetFlag(FLAGS_member_id);
  options.advertise_address = absl::GetFlag(FLAGS_advertise_address);
  options.lease_ttl = absl::GetFlag(FLAGS_lease_ttl);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  absl::StatusOr<jetstream::LogFormat> log_format =
      jetstream::ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.ok()) {
    std::fprintf(stderr, "syncservice: --log_format: %s\n",
                 std::string(log_format.status().message()).c_str());
    return 2;
  }
  return jetstream::RunSyncServer(argv[0], absl::GetFlag(FLAGS_v), *log_format,
                                  std::move(options));
}
