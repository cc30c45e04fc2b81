// MetricsRegistry: build info, process metrics read from /proc, collectors
// run at each scrape, and the text format of what is registered.

#include "common/metrics/metrics_registry.h"

#include <fcntl.h>
#include <prometheus/counter.h>
#include <unistd.h>

#include <ctime>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jetstream {
namespace {

using ::testing::HasSubstr;

// The value of the sample printed as `name` (labels included), or -1.
double Sample(const std::string& text, absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, name) && absl::ConsumePrefix(&line, " ")) {
      double v = 0;
      if (absl::SimpleAtod(line, &v)) return v;
    }
  }
  return -1;
}

TEST(MetricsRegistryTest, BuildInfoNamesTheComponent) {
  MetricsRegistry metrics("gateway");
  const std::string text = metrics.Text();
  EXPECT_THAT(text, HasSubstr("# TYPE jetstream_build_info gauge"));
  EXPECT_THAT(text, HasSubstr("component=\"gateway\""));
  EXPECT_THAT(text, HasSubstr("version=\"0.9.0\""));
}

TEST(MetricsRegistryTest, ProcessMetricsFollowTheProcess) {
  MetricsRegistry metrics("syncservice");
  const std::string before = metrics.Text();
  const double fds = Sample(before, "process_open_fds");
  ASSERT_GT(fds, 0) << before;
  const int extra = open("/dev/null", O_RDONLY);
  ASSERT_GE(extra, 0);
  EXPECT_EQ(Sample(metrics.Text(), "process_open_fds"), fds + 1);
  close(extra);
  EXPECT_GT(Sample(before, "process_resident_memory_bytes"), 0);
  EXPECT_GE(Sample(before, "process_virtual_memory_bytes"),
            Sample(before, "process_resident_memory_bytes"));
  EXPECT_GE(Sample(before, "process_cpu_seconds_total"), 0);
  EXPECT_GT(Sample(before, "process_max_fds"), fds);
  const double start = Sample(before, "process_start_time_seconds");
  EXPECT_LE(start, static_cast<double>(std::time(nullptr)) + 1);
  EXPECT_GT(start, static_cast<double>(std::time(nullptr)) - 86400);
}

TEST(MetricsRegistryTest, CollectorsRunAtEveryScrape) {
  MetricsRegistry metrics("gateway");
  int scrapes = 0;
  metrics.AddCollector([&scrapes] {
    ++scrapes;
    return std::vector<prometheus::MetricFamily>{
        GaugeFamily("test_scrapes", "Scrapes so far.", scrapes),
        GaugeFamily("test_by_scope", "Per scope.",
                    {{{{"scope", "a"}}, 1}, {{{"scope", "b"}}, 2}})};
  });
  EXPECT_EQ(Sample(metrics.Text(), "test_scrapes"), 1);
  const std::string text = metrics.Text();
  EXPECT_EQ(Sample(text, "test_scrapes"), 2);
  EXPECT_EQ(Sample(text, "test_by_scope{scope=\"b\"}"), 2);
}

TEST(MetricsRegistryTest, HistogramsUseTheSharedBuckets) {
  MetricsRegistry metrics("gateway");
  auto& latency = prometheus::BuildHistogram()
                      .Name("test_latency_seconds")
                      .Help("A latency.")
                      .Register(metrics.registry())
                      .Add({}, LatencyBuckets());
  latency.Observe(0.003);
  latency.Observe(20);
  const std::string text = metrics.Text();
  EXPECT_EQ(Sample(text, "test_latency_seconds_count"), 2);
  EXPECT_EQ(Sample(text, "test_latency_seconds_bucket{le=\"0.0025\"}"), 0);
  EXPECT_EQ(Sample(text, "test_latency_seconds_bucket{le=\"0.005\"}"), 1);
  EXPECT_EQ(Sample(text, "test_latency_seconds_bucket{le=\"10\"}"), 1);
  EXPECT_EQ(Sample(text, "test_latency_seconds_bucket{le=\"+Inf\"}"), 2);
}

}  // namespace
}  // namespace jetstream
