// File: tools/loadgen/process_stats.h
//
// Reads what the kernel reports about a process on the same machine, so a
// benchmark can relate its figures to the server's resources: resident
// memory (VmRSS of /proc/<pid>/status), CPU time in user space and in the
// kernel (utime, stime of /proc/<pid>/stat) and context switches (summed
// over /proc/<pid>/task/*/status). Linux only.
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

// What a process has used so far.
struct CpuSample {
  double user_seconds = 0;
  double system_seconds = 0;
  // Voluntary plus involuntary, of the threads alive now.
  uint64_t context_switches = 0;
};

// ReadCpuSample()
//
// kNotFound if the process does not exist.
absl::StatusOr<CpuSample> ReadCpuSample(pid_t pid);

// ReadLoadAverage()
//
// The machine's one-minute load average (the first field of /proc/loadavg):
// how many tasks wanted a CPU, on average. Above the number of cores, the
// processes under test were competing with other work.
absl::StatusOr<double> ReadLoadAverage();

// Parsers of the files' contents, for tests. ParseCpuTimes() fills the
// seconds only; ParseContextSwitches() reads one status file.
absl::StatusOr<int64_t> ParseVmRssKb(absl::string_view status_file);
absl::StatusOr<CpuSample> ParseCpuTimes(absl::string_view stat_file,
                                        long ticks_per_second);
absl::StatusOr<uint64_t> ParseContextSwitches(absl::string_view status_file);

}  // namespace jetstream::loadgen

#endif  // JETSTREAM_TOOLS_LOADGEN_PROCESS_STATS_H_
