// File: common/metrics/metrics_registry.h
//
// One process's Prometheus metrics (prometheus-cpp, Debian's
// prometheus-cpp-dev): a prometheus::Registry that already holds
// `jetstream_build_info{component,version,commit}` and the `process_*`
// metrics, plus collectors that read live values only when scraped (gauges
// of things counted elsewhere, per-scope series of the busiest scopes).
// Text() is the /metrics body in the Prometheus text format. The metric
// names of both processes are listed in docs/metrics.md.
//
// Example:
//   MetricsRegistry metrics("gateway");
//   prometheus::Counter& opened = prometheus::BuildCounter()
//       .Name("jetstream_gateway_sessions_started_total")
//       .Help("Sessions created.")
//       .Register(metrics.registry()).Add({});
//   opened.Increment();
//   metrics.AddCollector([&] { return std::vector{GaugeFamily(...)}; });
//   std::string body = metrics.Text();
//
// Thread-safety: everything is thread-safe. Collectors run on the thread
// that calls Text(), one scrape at a time.

#ifndef JETSTREAM_COMMON_METRICS_METRICS_REGISTRY_H_
#define JETSTREAM_COMMON_METRICS_METRICS_REGISTRY_H_

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace jetstream {

// Buckets of every latency histogram, in seconds: 0.5 ms to 10 s, roughly
// doubling, so p50/p99 are readable from 1 ms to seconds.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets();
// Buckets of counts per operation (a batch's writes): 1, 2, 4, ... 4096.
const prometheus::Histogram::BucketBoundaries& CountBuckets();

// Registers a family of one unlabelled series in `registry` and returns the
// series (it lives as long as the registry).
prometheus::Counter& NewCounter(prometheus::Registry& registry,
                                const std::string& name,
                                const std::string& help);
prometheus::Histogram& NewHistogram(
    prometheus::Registry& registry, const std::string& name,
    const std::string& help,
    const prometheus::Histogram::BucketBoundaries& buckets);

// One labelled value of a collected family.
struct LabelledValue {
  std::map<std::string, std::string> labels;
  double value = 0;
};
// A gauge family as a collector returns it.
prometheus::MetricFamily GaugeFamily(std::string name, std::string help,
                                     std::vector<LabelledValue> values);
// A single unlabelled gauge.
prometheus::MetricFamily GaugeFamily(std::string name, std::string help,
                                     double value);
// A counter family (a value read from elsewhere that only grows).
prometheus::MetricFamily CounterFamily(std::string name, std::string help,
                                       std::vector<LabelledValue> values);
// A single unlabelled counter.
prometheus::MetricFamily CounterFamily(std::string name, std::string help,
                                       double value);

class MetricsRegistry {
 public:
  // Returns the families to add to one scrape.
  using Collector = std::function<std::vector<prometheus::MetricFamily>()>;

  // `component` ("gateway", "syncservice") labels jetstream_build_info.
  explicit MetricsRegistry(absl::string_view component);
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Where counters, gauges and histograms are registered
  // (prometheus::BuildCounter()...Register(registry())). Metrics live as
  // long as this object: references to them may be kept.
  prometheus::Registry& registry() { return *registry_; }

  // Adds a collector run at every scrape. Whatever it reads must outlive
  // this registry, or the collector must be added by an owner that
  // outlives every scrape (see SyncServer, GatewayServer).
  void AddCollector(Collector collector);

  // The /metrics body (Content-Type "text/plain; version=0.0.4").
  std::string Text() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  mutable absl::Mutex mu_;
  std::vector<Collector> collectors_ ABSL_GUARDED_BY(mu_);
};

// Content-Type of MetricsRegistry::Text().
inline constexpr char kPrometheusTextContentType[] =
    "text/plain; version=0.0.4";

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_METRICS_METRICS_REGISTRY_H_
