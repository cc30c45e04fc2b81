#include "syncservice/sync_server.h"

#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "syncservice/engine/schema_loader.h"
#include "syncservice/scope_config.h"

namespace jetstream {
namespace {

// "host" of "host:port" ("[::1]" stays bracketed).
std::string HostOf(const std::string& listen) {
  size_t colon = listen.rfind(':');
  return colon == std::string::npos ? listen : listen.substr(0, colon);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SyncServer>> SyncServer::Start(
    SyncServerOptions options) {
  absl::StatusOr<std::shared_ptr<const Schema>> schema =
      LoadSchemaFile(options.schema_path);
  if (!schema.ok()) return schema.status();
  absl::StatusOr<ScopeConfig> config = LoadScopeConfigFile(options.scopes_path);
  if (!config.ok()) return config.status();

  std::unique_ptr<SyncServer> server(new SyncServer());
  server->shutdown_grace_ = options.shutdown_grace;
  absl::StatusOr<std::unique_ptr<ScopeRegistry>> registry =
      ScopeRegistry::Create(*std::move(schema), *std::move(config),
                            options.registry);
  if (!registry.ok()) return registry.status();
  server->registry_ = *std::move(registry);
  server->service_ = std::make_unique<SyncServiceImpl>(server->registry_.get(),
                                                       options.service);

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on '", options.listen, "'"));
  }
  server->port_ = port;
  server->address_ = absl::StrCat(HostOf(options.listen), ":", port);
  return server;
}

SyncServer::~SyncServer() { Shutdown(shutdown_grace_); }

void SyncServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr) return;
  // grpc::Server::Shutdown is idempotent and thread-safe; the deadline
  // bounds how long open streams may keep running.
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

int RunSyncServer(const char* argv0, int verbosity, SyncServerOptions options) {
  InitLogging(argv0, verbosity);

  // Every thread gRPC starts inherits this mask, so the signals can only be
  // taken by the sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

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
            << " schema=" << options.schema_path
            << " scopes_file=" << options.scopes_path << " scopes=["
            << absl::StrJoin(scopes, ",") << "] templates=["
            << absl::StrJoin(templates, ",") << "]";
  std::printf("LISTENING %s\n", (*server)->address().c_str());
  std::fflush(stdout);

  int signal_number = 0;
  while (sigwait(&signals, &signal_number) != 0) {
  }
  LOG(INFO) << "syncservice shutting down signal=" << signal_number;
  (*server)->Shutdown(options.shutdown_grace);
  server->reset();
  LOG(INFO) << "syncservice stopped";
  return 0;
}

}  // namespace jetstream
