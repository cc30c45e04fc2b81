// File: common/metrics/process_metrics.h
//
// The standard `process_*` metrics of a Prometheus client, read from
// /proc/self when scraped: process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds.
// MetricsRegistry adds them to every scrape.

#ifndef JETSTREAM_COMMON_METRICS_PROCESS_METRICS_H_
#define JETSTREAM_COMMON_METRICS_PROCESS_METRICS_H_

#include <prometheus/metric_family.h>

#include <vector>

namespace jetstream {

// The families above, read now. A value /proc does not give is left out
// (never reported as 0). Thread-safe.
std::vector<prometheus::MetricFamily> CollectProcessMetrics();

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_METRICS_PROCESS_METRICS_H_
