// File: tools/echo_server/main.cc
//
// echo_server: a minimal Boost.Beast WebSocket echo server, the ceiling the
// load generator's figures are compared with (tools/loadgen, --scenario=
// echo; with --broadcast, the ceiling of fan-out, --scenario=echo_fanout).
// Prints "LISTENING <host>:<port>" on stdout once serving; SIGINT or SIGTERM
// stops it.
//
//   bazel-bin/tools/echo_server/echo_server --port=0 --threads=1

#include <cstdio>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/termination_signals.h"
#include "tools/echo_server/echo_server.h"

ABSL_FLAG(std::string, listen_address, "127.0.0.1", "Address to listen on.");
ABSL_FLAG(uint16_t, port, 3100, "Port; 0 picks a free one.");
ABSL_FLAG(int, threads, 1, "Event loop threads.");
ABSL_FLAG(bool, broadcast, false,
          "Send every message to every open connection (the ceiling of "
          "fan-out, loadgen --scenario=echo_fanout) instead of back to its "
          "sender.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Minimal Beast WebSocket echo server: the load generator's ceiling.");
  absl::ParseCommandLine(argc, argv);

  // Signals go to a dedicated thread so Stop() runs outside a handler.
  const jetstream::TerminationSignals signals;

  jetstream::echo::EchoServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen_address);
  options.port = absl::GetFlag(FLAGS_port);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.broadcast = absl::GetFlag(FLAGS_broadcast);
  jetstream::echo::EchoServer server(options);
  absl::StatusOr<uint16_t> port = server.Start();
  if (!port.ok()) {
    std::cerr << "echo_server: " << port.status().message() << "\n";
    return 1;
  }
  std::printf("LISTENING %s:%u\n", options.listen_address.c_str(), *port);
  std::fflush(stdout);

  std::thread signal_thread([&server, &signals] {
    signals.Wait();
    server.Stop();
  });
  signal_thread.detach();
  server.Wait();
  return 0;
}
