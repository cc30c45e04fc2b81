// File: tools/loadgen/main.cc
//
// loadgen: a load generator that speaks only the Jetstream protocol, so it
// measures any Jetstream server at a URL; with --scenario=echo it measures a
// plain WebSocket echo server instead (tools/echo_server), the ceiling.
// Prints a table on stdout; --json_out writes the same figures as JSON.
//
//   loadgen --url=ws://127.0.0.1:3000/ --scenario=writers --clients=20
//   loadgen --scenario=idle --sessions=20000 --pids=gateway:$(pidof
//   gateway),syncservice:$(pidof syncservice)
//
// See tools/loadgen/runner.h for the scenarios.

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "tools/loadgen/process_stats.h"
#include "tools/loadgen/report.h"
#include "tools/loadgen/runner.h"

ABSL_FLAG(std::string, url, "ws://127.0.0.1:3000/",
          "WebSocket URL of the server under test.");
ABSL_FLAG(std::string, scenario, "writers",
          "writers (1), shared (2), fanout (3), idle (4), storm (5), echo, "
          "echo_storm or echo_fanout.");
ABSL_FLAG(int, clients, 20,
          "Writers (writers, shared), readers (fanout), echo clients, or "
          "sessions set up at once (storm, echo_storm).");
ABSL_FLAG(int, sessions, 1000, "Idle sessions (idle).");
ABSL_FLAG(std::string, scope, "",
          "Scope to fetch; {i} becomes the client number. Default: "
          "canvas/load-{i} (writers), canvas/shared, canvas/fanout, Canvas "
          "(idle, storm).");
ABSL_FLAG(double, rate, 100,
          "Changesets (echo_fanout: frames) per second of the fanout writer.");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1),
          "Time between all clients running and the measurement window.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10),
          "Measurement window (idle: time to settle before reading memory).");
ABSL_FLAG(absl::Duration, ping_interval, absl::Seconds(5),
          "Interval of the clients' acknowledging Pings.");
ABSL_FLAG(absl::Duration, setup_timeout, absl::Seconds(120),
          "Longest wait for all clients to get running.");
ABSL_FLAG(int, threads, 1, "Event loop threads of the load generator.");
ABSL_FLAG(int, connect_concurrency, 256,
          "Clients setting up at the same time while connecting.");
ABSL_FLAG(uint64_t, echo_bytes, 0,
          "Echo frame size; 0: the size of a one-fragment ScopeSync.");
ABSL_FLAG(std::string, pids, "",
          "Server processes to watch, name:pid,name:pid (CPU; idle: memory).");
ABSL_FLAG(std::string, json_out, "",
          "Also write the report as JSON to this file ('-': stdout).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Jetstream load generator: measures a Jetstream server (or a WebSocket "
      "echo server) at a URL.");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  (void)args;

  jetstream::loadgen::LoadOptions options;
  options.url = absl::GetFlag(FLAGS_url);
  absl::StatusOr<jetstream::loadgen::Scenario> scenario =
      jetstream::loadgen::ParseScenario(absl::GetFlag(FLAGS_scenario));
  if (!scenario.ok()) {
    std::cerr << "loadgen: " << scenario.status().message() << "\n";
    return 2;
  }
  options.scenario = *scenario;
  options.clients = absl::GetFlag(FLAGS_clients);
  options.sessions = absl::GetFlag(FLAGS_sessions);
  options.scope = absl::GetFlag(FLAGS_scope);
  options.rate = absl::GetFlag(FLAGS_rate);
  options.warmup = absl::GetFlag(FLAGS_warmup);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.ping_interval = absl::GetFlag(FLAGS_ping_interval);
  options.setup_timeout = absl::GetFlag(FLAGS_setup_timeout);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.connect_concurrency = absl::GetFlag(FLAGS_connect_concurrency);
  options.echo_bytes = absl::GetFlag(FLAGS_echo_bytes);
  absl::StatusOr<std::vector<jetstream::loadgen::NamedPid>> pids =
      jetstream::loadgen::ParsePidList(absl::GetFlag(FLAGS_pids));
  if (!pids.ok()) {
    std::cerr << "loadgen: " << pids.status().message() << "\n";
    return 2;
  }
  options.pids = *std::move(pids);

  absl::StatusOr<jetstream::loadgen::Report> report =
      jetstream::loadgen::RunScenario(options);
  if (!report.ok()) {
    std::cerr << "loadgen: " << report.status().message() << "\n";
    return 1;
  }
  report->command_line = absl::StrJoin(argv, argv + argc, " ");
  std::cout << jetstream::loadgen::ReportTable(*report) << std::flush;

  const std::string json_out = absl::GetFlag(FLAGS_json_out);
  if (json_out == "-") {
    std::cout << jetstream::loadgen::ReportJson(*report) << std::endl;
  } else if (!json_out.empty()) {
    std::ofstream out(json_out);
    out << jetstream::loadgen::ReportJson(*report) << "\n";
    if (!out) {
      std::cerr << "loadgen: cannot write " << json_out << "\n";
      return 1;
    }
  }
  // Clients that never got running make the run fail, after reporting
  // (storm counts its failures but goes on).
  bool storm = options.scenario == jetstream::loadgen::Scenario::kStorm ||
               options.scenario == jetstream::loadgen::Scenario::kEchoStorm;
  bool setup_failed = report->failed > 0 && !storm;
  return setup_failed ? 3 : 0;
}
