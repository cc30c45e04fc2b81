// File: common/metrics/metrics_registry.cc

#include "common/metrics/metrics_registry.h"

#include <prometheus/gauge.h>
#include <prometheus/text_serializer.h>

#include "common/build_info.h"
#include "common/metrics/process_metrics.h"

namespace jetstream {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* const kBuckets =
      new prometheus::Histogram::BucketBoundaries{
          0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return *kBuckets;
}

const prometheus::Histogram::BucketBoundaries& CountBuckets() {
  static const auto* const kBuckets =
      new prometheus::Histogram::BucketBoundaries{
          1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
  return *kBuckets;
}

prometheus::Counter& NewCounter(prometheus::Registry& registry,
                                const std::string& name,
                                const std::string& help) {
  return prometheus::BuildCounter()
      .Name(name)
      .Help(help)
      .Register(registry)
      .Add({});
}

prometheus::Histogram& NewHistogram(
    prometheus::Registry& registry, const std::string& name,
    const std::string& help,
    const prometheus::Histogram::BucketBoundaries& buckets) {
  return prometheus::BuildHistogram()
      .Name(name)
      .Help(help)
      .Register(registry)
      .Add({}, buckets);
}

namespace {

prometheus::MetricFamily Family(std::string name, std::string help,
                                prometheus::MetricType type,
                                std::vector<LabelledValue> values) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  for (LabelledValue& v : values) {
    prometheus::ClientMetric metric;
    for (auto& [label, value] : v.labels)
      metric.label.push_back({label, value});
    if (type == prometheus::MetricType::Counter) {
      metric.counter.value = v.value;
    } else {
      metric.gauge.value = v.value;
    }
    family.metric.push_back(std::move(metric));
  }
  return family;
}

}  // namespace

prometheus::MetricFamily GaugeFamily(std::string name, std::string help,
                                     std::vector<LabelledValue> values) {
  return Family(std::move(name), std::move(help), prometheus::MetricType::Gauge,
                std::move(values));
}

prometheus::MetricFamily GaugeFamily(std::string name, std::string help,
                                     double value) {
  return GaugeFamily(std::move(name), std::move(help), {{{}, value}});
}

prometheus::MetricFamily CounterFamily(std::string name, std::string help,
                                       std::vector<LabelledValue> values) {
  return Family(std::move(name), std::move(help),
                prometheus::MetricType::Counter, std::move(values));
}

prometheus::MetricFamily CounterFamily(std::string name, std::string help,
                                       double value) {
  return CounterFamily(std::move(name), std::move(help), {{{}, value}});
}

MetricsRegistry::MetricsRegistry(absl::string_view component)
    : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::BuildGauge()
      .Name("jetstream_build_info")
      .Help("Always 1: the component, version and commit that are running.")
      .Register(*registry_)
      .Add({{"component", std::string(component)},
            {"version", std::string(BuildVersion())},
            {"commit", std::string(BuildCommit())}})
      .Set(1);
  AddCollector(CollectProcessMetrics);
}

MetricsRegistry::~MetricsRegistry() = default;

void MetricsRegistry::AddCollector(Collector collector) {
  absl::MutexLock lock(&mu_);
  collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::Text() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  {
    absl::MutexLock lock(&mu_);
    for (const Collector& collect : collectors_) {
      for (prometheus::MetricFamily& family : collect()) {
        families.push_back(std::move(family));
      }
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace jetstream
