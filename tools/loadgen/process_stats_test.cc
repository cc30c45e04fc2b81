#include "tools/loadgen/process_stats.h"

#include <unistd.h>

#include "gtest/gtest.h"

namespace jetstream::loadgen {
namespace {

TEST(ProcessStatsTest, ParsesPidLists) {
  auto pids = ParsePidList("gateway:12, syncservice:34,56");
  ASSERT_TRUE(pids.ok()) << pids.status();
  ASSERT_EQ(pids->size(), 3u);
  EXPECT_EQ((*pids)[0].name, "gateway");
  EXPECT_EQ((*pids)[0].pid, 12);
  EXPECT_EQ((*pids)[1].name, "syncservice");
  EXPECT_EQ((*pids)[1].pid, 34);
  EXPECT_EQ((*pids)[2].name, "pid56");
  EXPECT_TRUE(ParsePidList("").ok());
  EXPECT_FALSE(ParsePidList("gateway:x").ok());
  EXPECT_FALSE(ParsePidList("gateway:-1").ok());
}

TEST(ProcessStatsTest, ParsesVmRss) {
  auto kb =
      ParseVmRssKb("Name:\tgateway\nVmPeak:\t  9999 kB\nVmRSS:\t   12345 kB\n");
  ASSERT_TRUE(kb.ok()) << kb.status();
  EXPECT_EQ(*kb, 12345);
  EXPECT_FALSE(ParseVmRssKb("Name:\tx\n").ok());
}

TEST(ProcessStatsTest, ParsesCpuTimes) {
  // Field 2 holds a space and a parenthesis; utime = 250, stime = 50.
  auto s = ParseCpuSeconds(
      "42 (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1",
      100);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(*s, 3.0);
  EXPECT_FALSE(ParseCpuSeconds("42 (x) S 1", 100).ok());
}

TEST(ProcessStatsTest, ReadsItself) {
  auto kb = ReadResidentKb(getpid());
  ASSERT_TRUE(kb.ok()) << kb.status();
  EXPECT_GT(*kb, 0);
  EXPECT_TRUE(ReadCpuSeconds(getpid()).ok());
  EXPECT_FALSE(ReadResidentKb(0x7ffffff0).ok());
}

}  // namespace
}  // namespace jetstream::loadgen
