// File: examples/validator-cpp/main.cc
//
// A downstream ChangesetValidator hook in C++: the demo's rules
// (demo_rules.h) served over gRPC with the callback API. Prints
// "LISTENING <host>:<port>" once serving; stops on SIGINT/SIGTERM.
//
//   bazel run //examples/validator-cpp:demo_validator --
//   --listen=127.0.0.1:50061
//
// Wire it in with a hooks file (examples/demo_hooks.json) and
// `syncservice --hooks=examples/demo_hooks.json`.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "examples/validator-cpp/demo_rules.h"
#include "proto/hooks/v1/hooks.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50061",
          "host:port to serve the hook on; port 0 picks a free one");

namespace {

namespace v1 = jetstream::hooks::v1;

class DemoValidator final : public v1::ChangesetValidator::CallbackService {
  grpc::ServerUnaryReactor* ValidateChangeset(
      grpc::CallbackServerContext* context,
      const v1::ValidateChangesetRequest* request,
      v1::ValidateChangesetResponse* response) override {
    jetstream::examples::ApplyDemoRules(*request, response);
    std::cerr << "validated " << request->fragments_size()
              << " fragments of scope " << request->scope() << " from '"
              << request->principal().identity()
              << "': " << response->rejections_size() << " rejected, "
              << response->modifications_size() << " modified\n";
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::string listen = absl::GetFlag(FLAGS_listen);
  DemoValidator service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "demo_validator: cannot listen on " << listen << "\n";
    return 1;
  }
  std::printf("LISTENING %s:%d\n", listen.substr(0, listen.rfind(':')).c_str(),
              port);
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  server->Shutdown();
  return 0;
}
