// File: tools/loadgen/report.h
//
// The result of one load generator run, and its two renderings: JSON for
// scripts (tools/bench_system.sh reads it with jq) and a table for people.
// Latencies are in milliseconds, rates per second of the measurement
// window.

#ifndef JETSTREAM_TOOLS_LOADGEN_REPORT_H_
#define JETSTREAM_TOOLS_LOADGEN_REPORT_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tools/loadgen/latency_histogram.h"

namespace jetstream::loadgen {

struct LatencySummary {
  uint64_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0;
  double max_ms = 0, mean_ms = 0;
};

LatencySummary Summarize(const LatencyHistogram& histogram);

// The load generator itself, or a server process named on the command line
// (--pids).
struct ProcessFigures {
  std::string name;
  pid_t pid = 0;
  // Over the window: CPU as a share of one core (all threads; -1 if
  // unknown), the part of it spent in the kernel, and context switches.
  double cpu_percent = -1;
  double cpu_system_percent = -1;
  double context_switches_per_s = -1;
  // Idle scenario: VmRSS before the sessions connected and once they all
  // had; -1 if unknown.
  int64_t rss_before_kb = -1;
  int64_t rss_after_kb = -1;
};

struct Report {
  std::string scenario;
  std::string url;
  std::string scope;       // the scope template, empty for echo
  std::string reply_unit;  // "changesets" or "echoes"
  int clients = 0;         // connections the scenario asked for
  int threads = 0;
  double rate = 0;  // fanout: the writer's changesets/s

  int ready = 0;              // connections that got running
  int failed = 0;             // connections that never did
  double setup_seconds = 0;   // until every connection was running
  double window_seconds = 0;  // the measurement window
  // The machine's one-minute load average as the window opened and closed
  // (ReadLoadAverage()); -1 if unknown.
  double load_start = -1;
  double load_end = -1;

  uint64_t replies = 0;
  double replies_per_s = 0;
  LatencySummary reply_latency;
  uint64_t deliveries = 0;
  double deliveries_per_s = 0;
  LatencySummary delivery_latency;
  // delivery_latency over the first and the second half of the window.
  LatencySummary delivery_latency_first_half;
  LatencySummary delivery_latency_second_half;
  uint64_t sessions = 0;  // storm: sessions set up in the window
  double sessions_per_s = 0;
  LatencySummary setup_latency;

  uint64_t fragment_errors = 0;
  uint64_t protocol_errors = 0;
  uint64_t disconnects = 0;

  ProcessFigures loadgen;
  std::vector<ProcessFigures> processes;  // --pids
  // Idle: resident bytes per session of all --pids together; -1 if unknown.
  double bytes_per_session = -1;

  std::string command_line;
};

// One JSON object, no trailing newline.
std::string ReportJson(const Report& report);

// A few aligned lines, ending with a newline.
std::string ReportTable(const Report& report);

}  // namespace jetstream::loadgen

#endif  // JETSTREAM_TOOLS_LOADGEN_REPORT_H_
