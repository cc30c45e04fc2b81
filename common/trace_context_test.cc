// W3C traceparent values: made, validated, and continued by children.

#include "common/trace_context.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jetstream {
namespace {

using ::testing::MatchesRegex;

TEST(TraceContextTest, NewTracesAreValidAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string t = NewTraceparent();
    EXPECT_THAT(t, MatchesRegex("00-[0-9a-f]{32}-[0-9a-f]{16}-01"));
    EXPECT_TRUE(IsValidTraceparent(t)) << t;
    seen.insert(std::string(TraceIdOf(t)));
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(TraceContextTest, ChildKeepsTheTraceAndFlagsWithANewSpan) {
  const std::string parent =
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ASSERT_TRUE(IsValidTraceparent(parent));
  const std::string child = ChildTraceparent(parent);
  EXPECT_TRUE(IsValidTraceparent(child)) << child;
  EXPECT_EQ(TraceIdOf(child), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_NE(child.substr(36, 16), "00f067aa0ba902b7");
  EXPECT_EQ(child.substr(52), "-01");
}

TEST(TraceContextTest, InvalidValuesAreRefusedAndReplaced) {
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
           "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736x00f067aa0ba902b7-01",
       }) {
    EXPECT_FALSE(IsValidTraceparent(bad)) << bad;
    EXPECT_EQ(TraceIdOf(bad), "") << bad;
    EXPECT_TRUE(IsValidTraceparent(ChildTraceparent(bad))) << bad;
  }
}

}  // namespace
}  // namespace jetstream
