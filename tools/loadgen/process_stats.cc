#include "tools/loadgen/process_stats.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace jetstream::loadgen {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

}  // namespace

absl::StatusOr<std::vector<NamedPid>> ParsePidList(absl::string_view list) {
  std::vector<NamedPid> out;
  for (absl::string_view item : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    item = absl::StripAsciiWhitespace(item);
    NamedPid p;
    absl::string_view number = item;
    if (size_t colon = item.rfind(':'); colon != absl::string_view::npos) {
      p.name = std::string(item.substr(0, colon));
      number = item.substr(colon + 1);
    }
    int pid = 0;
    if (!absl::SimpleAtoi(number, &pid) || pid <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad pid '", item, "' (want name:pid)"));
    }
    p.pid = pid;
    if (p.name.empty()) p.name = absl::StrCat("pid", pid);
    out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<int64_t> ParseVmRssKb(absl::string_view status_file) {
  for (absl::string_view line : absl::StrSplit(status_file, '\n')) {
    if (!absl::ConsumePrefix(&line, "VmRSS:")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, "kB");
    int64_t kb = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kb)) break;
    return kb;
  }
  return absl::InvalidArgumentError("no VmRSS line");
}

absl::StatusOr<CpuSample> ParseCpuTimes(absl::string_view stat_file,
                                        long ticks_per_second) {
  // The command name (field 2) is in parentheses and may hold spaces; the
  // fields after its closing parenthesis start with field 3 (state).
  size_t close = stat_file.rfind(')');
  if (close == absl::string_view::npos || ticks_per_second <= 0) {
    return absl::InvalidArgumentError("malformed stat");
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(stat_file.substr(close + 1), ' ', absl::SkipWhitespace());
  // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state.
  constexpr size_t kUtime = 14 - 3, kStime = 15 - 3;
  uint64_t utime = 0, stime = 0;
  if (fields.size() <= kStime || !absl::SimpleAtoi(fields[kUtime], &utime) ||
      !absl::SimpleAtoi(fields[kStime], &stime)) {
    return absl::InvalidArgumentError("malformed stat");
  }
  CpuSample sample;
  sample.user_seconds = static_cast<double>(utime) / ticks_per_second;
  sample.system_seconds = static_cast<double>(stime) / ticks_per_second;
  return sample;
}

absl::StatusOr<uint64_t> ParseContextSwitches(absl::string_view status_file) {
  uint64_t total = 0;
  int found = 0;
  for (absl::string_view line : absl::StrSplit(status_file, '\n')) {
    if (!absl::ConsumePrefix(&line, "voluntary_ctxt_switches:") &&
        !absl::ConsumePrefix(&line, "nonvoluntary_ctxt_switches:")) {
      continue;
    }
    uint64_t n = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &n)) break;
    total += n;
    ++found;
  }
  if (found != 2) return absl::InvalidArgumentError("no ctxt_switches lines");
  return total;
}

absl::StatusOr<int64_t> ReadResidentKb(pid_t pid) {
  absl::StatusOr<std::string> file =
      ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!file.ok()) return file.status();
  return ParseVmRssKb(*file);
}

absl::StatusOr<double> ReadLoadAverage() {
  absl::StatusOr<std::string> file = ReadFile("/proc/loadavg");
  if (!file.ok()) return file.status();
  double load = 0;
  std::vector<absl::string_view> fields =
      absl::StrSplit(*file, ' ', absl::SkipWhitespace());
  if (fields.empty() || !absl::SimpleAtod(fields[0], &load)) {
    return absl::InvalidArgumentError("malformed /proc/loadavg");
  }
  return load;
}

absl::StatusOr<CpuSample> ReadCpuSample(pid_t pid) {
  absl::StatusOr<std::string> file =
      ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!file.ok()) return file.status();
  absl::StatusOr<CpuSample> sample = ParseCpuTimes(*file, sysconf(_SC_CLK_TCK));
  if (!sample.ok()) return sample.status();
  const std::string tasks = absl::StrCat("/proc/", pid, "/task");
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    absl::StatusOr<std::string> status =
        ReadFile((task.path() / "status").string());
    if (!status.ok()) continue;  // the thread just ended
    absl::StatusOr<uint64_t> switches = ParseContextSwitches(*status);
    if (switches.ok()) sample->context_switches += *switches;
  }
  return sample;
}

}  // namespace jetstream::loadgen
