// File: common/metrics/process_metrics.cc
//
// Reads /proc/self/stat (fields as in proc(5)), /proc/stat (btime),
// /proc/self/fd and RLIMIT_NOFILE.

#include "common/metrics/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/metrics/metrics_registry.h"

namespace jetstream {
namespace {

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Seconds since the epoch at which the machine booted, or -1.
double BootTime() {
  for (absl::string_view line : absl::StrSplit(ReadFile("/proc/stat"), '\n')) {
    double btime = 0;
    if (absl::ConsumePrefix(&line, "btime ") &&
        absl::SimpleAtod(line, &btime)) {
      return btime;
    }
  }
  return -1;
}

int OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the descriptor opendir holds
}

}  // namespace

std::vector<prometheus::MetricFamily> CollectProcessMetrics() {
  std::vector<prometheus::MetricFamily> families;
  // The fields after "(comm)", which may itself hold spaces or ')'.
  const std::string stat = ReadFile("/proc/self/stat");
  const size_t paren = stat.rfind(')');
  if (paren != std::string::npos && paren + 2 < stat.size()) {
    std::vector<absl::string_view> f =
        absl::StrSplit(absl::string_view(stat).substr(paren + 2), ' ');
    // f[0] is field 3 (state): field n is f[n - 3].
    double utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
    if (f.size() > 21 && absl::SimpleAtod(f[11], &utime) &&
        absl::SimpleAtod(f[12], &stime) && absl::SimpleAtod(f[19], &start) &&
        absl::SimpleAtod(f[20], &vsize) && absl::SimpleAtod(f[21], &rss)) {
      const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
      const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
      families.push_back(
          CounterFamily("process_cpu_seconds_total",
                        "Total user and system CPU time spent in seconds.",
                        (utime + stime) / ticks));
      families.push_back(GaugeFamily("process_virtual_memory_bytes",
                                     "Virtual memory size in bytes.", vsize));
      families.push_back(GaugeFamily("process_resident_memory_bytes",
                                     "Resident memory size in bytes.",
                                     rss * page));
      const double boot = BootTime();
      if (boot >= 0) {
        families.push_back(GaugeFamily(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            boot + start / ticks));
      }
    }
  }
  const int fds = OpenFds();
  if (fds >= 0) {
    families.push_back(GaugeFamily("process_open_fds",
                                   "Number of open file descriptors.", fds));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
      limit.rlim_cur != RLIM_INFINITY) {
    families.push_back(GaugeFamily("process_max_fds",
                                   "Maximum number of open file descriptors.",
                                   static_cast<double>(limit.rlim_cur)));
  }
  return families;
}

}  // namespace jetstream
