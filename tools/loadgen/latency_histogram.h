// File: tools/loadgen/latency_histogram.h
//
// LatencyHistogram records latencies in microseconds into log-linear buckets
// (the HdrHistogram layout): values below 128 us are exact, larger ones fall
// into 64 buckets per power of two, so every reported percentile is within
// 1/64 (1.6%) of a recorded value. Recording is O(1) and allocation-free;
// the whole histogram is ~18 KB whatever the number of samples, so the load
// generator keeps one per event loop and merges them at the end.
//
// Example:
//   LatencyHistogram h;
//   h.Record(850);                   // 850 us
//   double p99 = h.Percentile(0.99);  // microseconds
//
// Not thread-safe: one thread records; Merge() after that thread stopped.

#ifndef JETSTREAM_TOOLS_LOADGEN_LATENCY_HISTOGRAM_H_
#define JETSTREAM_TOOLS_LOADGEN_LATENCY_HISTOGRAM_H_

#include <array>
#include <cstdint>

namespace jetstream::loadgen {

class LatencyHistogram {
 public:
  // Values at or above this (about 12.7 days) are clamped to it.
  static constexpr uint64_t kMaxValue = (uint64_t{1} << 40) - 1;

  // LatencyHistogram::Record()
  //
  // Adds one sample of `micros` microseconds.
  void Record(uint64_t micros);

  // LatencyHistogram::Merge()
  //
  // Adds every sample of `other` to this histogram.
  void Merge(const LatencyHistogram& other);

  // LatencyHistogram::Percentile()
  //
  // The value (microseconds) below or at which a fraction `q` in [0, 1] of
  // the samples lie: the middle of the bucket holding the sample of rank
  // ceil(q * count), never above the largest sample. 0 when empty.
  double Percentile(double q) const;

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const {
    return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_;
  }

 private:
  static constexpr int kLinearBits = 7;                       // exact below 2^7
  static constexpr int kSubBuckets = 1 << (kLinearBits - 1);  // per octave
  static constexpr int kBucketCount =
      (1 << kLinearBits) + (40 - kLinearBits) * kSubBuckets;

  static int BucketOf(uint64_t value);
  // Smallest and largest value that fall into `bucket`.
  static uint64_t BucketLow(int bucket);
  static uint64_t BucketHigh(int bucket);

  std::array<uint64_t, kBucketCount> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace jetstream::loadgen

#endif  // JETSTREAM_TOOLS_LOADGEN_LATENCY_HISTOGRAM_H_
