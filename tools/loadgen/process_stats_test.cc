#include "tools/loadgen/process_stats.h"

#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::loadgen {
namespace {

TEST(ProcessStatsTest, ParsesPidLists) {
  auto pids = ParsePidList("gateway:12, syncservice:34,56");
  ASSERT_OK(pids);
  ASSERT_EQ(pids->size(), 3u);
  EXPECT_EQ((*pids)[0].name, "gateway");
  EXPECT_EQ((*pids)[0].pid, 12);
  EXPECT_EQ((*pids)[1].name, "syncservice");
  EXPECT_EQ((*pids)[1].pid, 34);
  EXPECT_EQ((*pids)[2].name, "pid56");
  EXPECT_OK(ParsePidList(""));
  EXPECT_FALSE(ParsePidList("gateway:x").ok());
  EXPECT_FALSE(ParsePidList("gateway:-1").ok());
}

TEST(ProcessStatsTest, ParsesVmRss) {
  auto kb =
      ParseVmRssKb("Name:\tgateway\nVmPeak:\t  9999 kB\nVmRSS:\t   12345 kB\n");
  ASSERT_OK(kb);
  EXPECT_EQ(*kb, 12345);
  EXPECT_FALSE(ParseVmRssKb("Name:\tx\n").ok());
}

TEST(ProcessStatsTest, ParsesCpuTimes) {
  // Field 2 holds a space and a parenthesis; utime = 250, stime = 50.
  auto s = ParseCpuTimes(
      "42 (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1",
      100);
  ASSERT_OK(s);
  EXPECT_DOUBLE_EQ(s->user_seconds, 2.5);
  EXPECT_DOUBLE_EQ(s->system_seconds, 0.5);
  EXPECT_FALSE(ParseCpuTimes("42 (x) S 1", 100).ok());
}

TEST(ProcessStatsTest, ParsesContextSwitches) {
  auto n = ParseContextSwitches(
      "Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:"
      "\t3\n");
  ASSERT_OK(n);
  EXPECT_EQ(*n, 15u);
  EXPECT_FALSE(ParseContextSwitches("Name:\tx\n").ok());
}

TEST(ProcessStatsTest, ReadsItself) {
  auto kb = ReadResidentKb(getpid());
  ASSERT_OK(kb);
  EXPECT_GT(*kb, 0);
  auto cpu = ReadCpuSample(getpid());
  ASSERT_OK(cpu);
  EXPECT_GT(cpu->context_switches, 0u);
  EXPECT_FALSE(ReadResidentKb(0x7ffffff0).ok());
  auto load = ReadLoadAverage();
  ASSERT_OK(load);
  EXPECT_GE(*load, 0);
}

}  // namespace
}  // namespace jetstream::loadgen
