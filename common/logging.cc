// File: common/logging.cc

#include "common/logging.h"

#include <cstdio>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace jetstream {
namespace {

bool IsFieldKey(absl::string_view key) {
  if (key.empty() || !(absl::ascii_islower(key[0]) || key[0] == '_')) {
    return false;
  }
  for (char c : key) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_') {
      return false;
    }
  }
  return true;
}

// Writes every log line to stderr as JSON; glog's own output is off.
class JsonLogSink : public google::LogSink {
 public:
  void send(google::LogSeverity severity, const char* /*full_filename*/,
            const char* base_filename, int line,
            const google::LogMessageTime& time, const char* message,
            size_t message_len) override {
    const absl::Time when = absl::FromUnixSeconds(time.timestamp()) +
                            absl::Microseconds(time.usec());
    std::string out =
        JsonLogLine(google::GetLogSeverityName(severity), base_filename, line,
                    when, absl::string_view(message, message_len));
    out.push_back('\n');
    std::lock_guard<std::mutex> lock(mu_);
    std::fwrite(out.data(), 1, out.size(), stderr);
    std::fflush(stderr);
  }

 private:
  std::mutex mu_;
};

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("log format '", name, "': want text or json"));
}

std::string JsonLogLine(absl::string_view level, absl::string_view file,
                        int line, absl::Time time, absl::string_view message) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto string = [&w](absl::string_view s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  string("ts");
  string(absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone()));
  string("level");
  string(level);
  string("source");
  string(absl::StrCat(file, ":", line));
  string("msg");
  string(message);
  std::vector<absl::string_view> seen = {"ts", "level", "source", "msg"};
  for (absl::string_view token :
       absl::StrSplit(message, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
    const size_t eq = token.find('=');
    if (eq == absl::string_view::npos) continue;
    const absl::string_view key = token.substr(0, eq);
    if (!IsFieldKey(key)) continue;
    bool taken = false;
    for (absl::string_view s : seen) taken = taken || s == key;
    if (taken) continue;
    seen.push_back(key);
    string(key);
    string(token.substr(eq + 1));
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

void InitLogging(const char* program, int verbosity, LogFormat format) {
  FLAGS_v = verbosity;
  if (format == LogFormat::kText) {
    FLAGS_logtostderr = true;
    google::InitGoogleLogging(program);
    return;
  }
  // glog writes nothing itself (no stderr text, no log files); the sink
  // writes every line.
  FLAGS_logtostderr = false;
  FLAGS_alsologtostderr = false;
  FLAGS_stderrthreshold = google::NUM_SEVERITIES;
  google::InitGoogleLogging(program);
  for (int s = 0; s < google::NUM_SEVERITIES; ++s) {
    google::SetLogDestination(s, "");
  }
  static JsonLogSink* const sink = new JsonLogSink();
  google::AddLogSink(sink);
}

}  // namespace jetstream
