// The JSON-lines log format: the line for one message, and every line the
// process logs (through glog) written that way to stderr.

#include "common/logging.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

namespace jetstream {
namespace {

rapidjson::Document ParseLine(const std::string& line) {
  rapidjson::Document d;
  d.Parse(line.c_str());
  EXPECT_FALSE(d.HasParseError()) << line;
  EXPECT_TRUE(d.IsObject()) << line;
  return d;
}

std::string Member(const rapidjson::Document& d, const char* name) {
  if (!d.IsObject() || !d.HasMember(name) || !d[name].IsString()) return "?";
  return d[name].GetString();
}

TEST(JsonLogLineTest, CarriesTheMessageItsFieldsAndWhereItCameFrom) {
  const absl::Time t = absl::FromUnixMicros(1796176984123456);
  rapidjson::Document d = ParseLine(JsonLogLine(
      "INFO", "session.cc", 42, t,
      "session s-1 changeset scope=canvas/a trace_id=4bf9 Bad=1 level=x"));
  EXPECT_EQ(Member(d, "ts"), "2026-12-02T02:03:04.123456Z");
  EXPECT_EQ(Member(d, "level"), "INFO");
  EXPECT_EQ(Member(d, "source"), "session.cc:42");
  EXPECT_EQ(Member(d, "msg"),
            "session s-1 changeset scope=canvas/a trace_id=4bf9 Bad=1 level=x");
  EXPECT_EQ(Member(d, "scope"), "canvas/a");
  EXPECT_EQ(Member(d, "trace_id"), "4bf9");
  EXPECT_FALSE(d.HasMember("Bad"));  // not a field key
}

TEST(JsonLogLineTest, EscapesWhatJsonMust) {
  rapidjson::Document d =
      ParseLine(JsonLogLine("WARNING", "a.cc", 1, absl::UnixEpoch(),
                            "quote \" backslash \\ newline \n tab \t end"));
  EXPECT_EQ(Member(d, "msg"), "quote \" backslash \\ newline \n tab \t end");
}

TEST(ParseLogFormatTest, KnowsTextAndJson) {
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml").ok());
}

// The only test of this binary that initialises glog.
TEST(JsonLoggingTest, EveryLineGoesToStderrAsJson) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmp ? tmp : "/tmp") + "/stderr.txt";
  std::fflush(stderr);
  const int saved = dup(2);
  const int file = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  ASSERT_GE(file, 0);
  ASSERT_GE(dup2(file, 2), 0);
  InitLogging("logging_test", /*verbosity=*/1, LogFormat::kJson);
  LOG(INFO) << "session s-1 created peer=127.0.0.1:5";
  VLOG(1) << "session s-1 fetched scope=canvas/a";
  VLOG(2) << "not at verbosity 1";
  LOG(WARNING) << "hook shapes failed: code=14 trace_id=abc";
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(file);

  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::vector<std::string> lines =
      absl::StrSplit(text.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << text.str();
  rapidjson::Document first = ParseLine(lines[0]);
  EXPECT_EQ(Member(first, "level"), "INFO");
  EXPECT_EQ(Member(first, "peer"), "127.0.0.1:5");
  EXPECT_THAT(Member(first, "source"),
              ::testing::StartsWith("logging_test.cc:"));
  EXPECT_EQ(Member(ParseLine(lines[1]), "scope"), "canvas/a");
  rapidjson::Document last = ParseLine(lines[2]);
  EXPECT_EQ(Member(last, "level"), "WARNING");
  EXPECT_EQ(Member(last, "trace_id"), "abc");
}

}  // namespace
}  // namespace jetstream
