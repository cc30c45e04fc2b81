// File: tools/loadgen/runner.h
//
// RunScenario() runs one load scenario against a Jetstream server (or, for
// kEcho, a WebSocket echo server) and returns what it measured:
//
//   kWriters  N closed-loop writers, each on its own scope
//             (default scope "canvas/load-{i}"): changesets/s and reply
//             latency.
//   kShared   N closed-loop writers on one scope ("canvas/shared"):
//             changesets/s, deliveries/s (ScopeSync received by the other
//             writers), reply and delivery latency.
//   kFanout   one writer at `rate` changesets/s and N readers of its scope
//             ("canvas/fanout"): deliveries/s, writer-to-reader latency.
//   kIdle     `sessions` sessions, each with a fetched scope ("Canvas"),
//             doing nothing but Pings: resident memory per session of the
//             processes in `pids` (VmRSS after minus before, divided by the
//             sessions).
//   kStorm    N connections at a time that each set up a new session
//             (SessionCreate + ScopeFetch of "Canvas"), then drop it:
//             sessions/s and setup latency.
//   kEcho     N closed-loop clients of a plain WebSocket echo server
//             (tools/echo_server), frames the size of a one-fragment
//             ScopeSync: the ceiling of what Beast does on this machine.
//   kEchoStorm  kStorm against the echo server: N connections at a time,
//             each dropped once its WebSocket is open (connections/s).
//   kEchoFanout kFanout against the echo server with --broadcast: one
//             writer at `rate` stamped ScopeSync frames/s that the server
//             sends to all N readers (and back to the writer): the
//             ceiling of fan-out on this machine.
//
// In a scope template "{i}" stands for the client's number (0-based).
//
// The run: connect every client (at most `connect_concurrency` setting up
// at once), wait `warmup`, then measure for `duration` (kIdle: wait
// `duration` for memory to settle, then read it). Each of `threads` lanes
// is one io_context on one thread; client i runs on lane i % threads.
//
// Blocks the calling thread for the whole run.

#ifndef JETSTREAM_TOOLS_LOADGEN_RUNNER_H_
#define JETSTREAM_TOOLS_LOADGEN_RUNNER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tools/loadgen/process_stats.h"
#include "tools/loadgen/report.h"

namespace jetstream::loadgen {

enum class Scenario {
  kWriters,
  kShared,
  kFanout,
  kIdle,
  kStorm,
  kEcho,
  kEchoStorm,
  kEchoFanout,
};

// "writers", "shared", "fanout", "idle", "storm", "echo", "echo_storm",
// "echo_fanout"
// (also 1..5 for the five scenarios of the load-testing issue).
absl::StatusOr<Scenario> ParseScenario(absl::string_view name);
absl::string_view ScenarioName(Scenario scenario);

struct LoadOptions {
  std::string url = "ws://127.0.0.1:3000/";
  Scenario scenario = Scenario::kWriters;
  // Writers (kWriters, kShared), readers (kFanout), echo clients (kEcho),
  // or sessions being set up at once (kStorm, kEchoStorm).
  int clients = 20;
  int sessions = 1000;  // kIdle
  std::string scope;    // empty: the scenario's default
  double rate = 100;    // kFanout, kEchoFanout: the writer's frames/s
  absl::Duration warmup = absl::Seconds(1);
  absl::Duration duration = absl::Seconds(10);
  absl::Duration ping_interval = absl::Seconds(5);
  absl::Duration setup_timeout = absl::Seconds(120);
  int threads = 1;
  int connect_concurrency = 256;
  size_t echo_bytes = 0;       // 0: the size of a one-fragment ScopeSync
  std::vector<NamedPid> pids;  // servers to watch (CPU; kIdle: memory)
};

// RunScenario()
//
// kInvalidArgument for bad options, kUnavailable if the URL's host does not
// resolve or no client could connect; otherwise the report (clients that
// failed are counted in it).
absl::StatusOr<Report> RunScenario(const LoadOptions& options);

}  // namespace jetstream::loadgen

#endif  // JETSTREAM_TOOLS_LOADGEN_RUNNER_H_
