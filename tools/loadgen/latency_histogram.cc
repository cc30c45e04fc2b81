#include "tools/loadgen/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace jetstream::loadgen {

// Bucket layout: [0, 2^7) one bucket per value; then for every octave
// [2^e, 2^(e+1)), e >= 7, 64 buckets of width 2^(e-6).
int LatencyHistogram::BucketOf(uint64_t value) {
  if (value < (uint64_t{1} << kLinearBits)) return static_cast<int>(value);
  int msb = 63 - __builtin_clzll(value);
  int shift = msb - (kLinearBits - 1);
  uint64_t top = value >> shift;  // in [kSubBuckets, 2 * kSubBuckets)
  return (1 << kLinearBits) + (shift - 1) * kSubBuckets +
         static_cast<int>(top - kSubBuckets);
}

uint64_t LatencyHistogram::BucketLow(int bucket) {
  if (bucket < (1 << kLinearBits)) return static_cast<uint64_t>(bucket);
  int rest = bucket - (1 << kLinearBits);
  int shift = rest / kSubBuckets + 1;
  uint64_t top = kSubBuckets + rest % kSubBuckets;
  return top << shift;
}

uint64_t LatencyHistogram::BucketHigh(int bucket) {
  if (bucket + 1 == kBucketCount) return kMaxValue;
  return BucketLow(bucket + 1) - 1;
}

void LatencyHistogram::Record(uint64_t micros) {
  micros = std::min(micros, kMaxValue);
  ++buckets_[BucketOf(micros)];
  ++count_;
  sum_ += micros;
  max_ = std::max(max_, micros);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBucketCount; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

double LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  uint64_t rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (int i = 0; i < kBucketCount; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      double middle = (static_cast<double>(BucketLow(i)) +
                       static_cast<double>(BucketHigh(i))) /
                      2.0;
      return std::min(middle, static_cast<double>(max_));
    }
  }
  return static_cast<double>(max_);
}

}  // namespace jetstream::loadgen
