// File: tools/loadgen/process_stats.h
//
// Reads what the kernel reports about a process on the same machine, so a
// benchmark can relate its figures to the server's resources: resident
// memory (VmRSS of /proc/<pid>/status) and CPU time (utime + stime of
// /proc/<pid>/stat). Linux only.
//
// Example:
//   absl::StatusOr<std::vector<NamedPid>> pids =
//       ParsePidList("gateway:1234,syncservice:1240");
//   absl::StatusOr<int64_t> kb = ReadResidentKb((*pids)[0].pid);

#ifndef JETSTREAM_TOOLS_LOADGEN_PROCESS_STATS_H_
#define JETSTREAM_TOOLS_LOADGEN_PROCESS_STATS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jetstream::loadgen {

struct NamedPid {
  std::string name;
  pid_t pid = 0;
};

// ParsePidList()
//
// Parses "name:pid,name:pid" (a bare "pid" is named "pid<pid>"). An empty
// list is valid.
absl::StatusOr<std::vector<NamedPid>> ParsePidList(absl::string_view list);

// ReadResidentKb()
//
// VmRSS of `pid` in KiB; kNotFound if the process does not exist.
absl::StatusOr<int64_t> ReadResidentKb(pid_t pid);

// ReadCpuSeconds()
//
// User plus system CPU time `pid` has used so far, in seconds.
absl::StatusOr<double> ReadCpuSeconds(pid_t pid);

// Parsers of the two files' contents, for tests.
absl::StatusOr<int64_t> ParseVmRssKb(absl::string_view status_file);
absl::StatusOr<double> ParseCpuSeconds(absl::string_view stat_file,
                                       long ticks_per_second);

}  // namespace jetstream::loadgen

#endif  // JETSTREAM_TOOLS_LOADGEN_PROCESS_STATS_H_
