#include "tools/loadgen/latency_histogram.h"

#include <cmath>

#include "gtest/gtest.h"

namespace jetstream::loadgen {
namespace {

TEST(LatencyHistogramTest, EmptyIsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(0.5), 0.0);
  EXPECT_EQ(h.mean(), 0.0);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.Percentile(0.5), 50.0);
  EXPECT_EQ(h.Percentile(0.99), 99.0);
  EXPECT_EQ(h.Percentile(1.0), 100.0);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(LatencyHistogramTest, LargeValuesWithinOneSixtyFourth) {
  for (uint64_t v : {128ull, 129ull, 1000ull, 4999ull, 123456ull, 987654321ull,
                     1ull << 39}) {
    LatencyHistogram h;
    h.Record(v);
    h.Record(v * 2);  // keeps the clamp to the maximum out of the way
    double p = h.Percentile(0.5);
    EXPECT_LE(std::abs(p - static_cast<double>(v)), v / 64.0) << v;
  }
}

TEST(LatencyHistogramTest, PercentilesOfAUniformSpread) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v);
  EXPECT_NEAR(h.Percentile(0.5), 50000, 50000 / 64.0);
  EXPECT_NEAR(h.Percentile(0.99), 99000, 99000 / 64.0);
  EXPECT_NEAR(h.Percentile(0.999), 99900, 99900 / 64.0);
}

TEST(LatencyHistogramTest, ClampsHugeValues) {
  LatencyHistogram h;
  h.Record(~uint64_t{0});
  EXPECT_EQ(h.max(), LatencyHistogram::kMaxValue);
  const double max = static_cast<double>(LatencyHistogram::kMaxValue);
  EXPECT_LE(h.Percentile(1.0), max);
  EXPECT_NEAR(h.Percentile(1.0), max, max / 64);
}

TEST(LatencyHistogramTest, MergeAddsSamples) {
  LatencyHistogram a, b;
  for (int i = 0; i < 10; ++i) a.Record(10);
  for (int i = 0; i < 90; ++i) b.Record(20);
  a.Merge(b);
  EXPECT_EQ(a.count(), 100u);
  EXPECT_EQ(a.Percentile(0.05), 10.0);
  EXPECT_EQ(a.Percentile(0.5), 20.0);
  EXPECT_EQ(a.max(), 20u);
}

}  // namespace
}  // namespace jetstream::loadgen
