#include "gateway/session/rate_limit.h"

#include <algorithm>
#include <utility>

namespace jetstream::gateway {

TokenBucket::TokenBucket(double rate, double burst, absl::Time now)
    : rate_(rate), burst_(std::max(burst, 1.0)), tokens_(burst_), last_(now) {}

void TokenBucket::Refill(absl::Time now) {
  if (now <= last_) return;
  tokens_ =
      std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * rate_);
  last_ = now;
}

bool TokenBucket::Take(double n, absl::Time now) {
  if (rate_ <= 0) return true;
  Refill(now);
  if (tokens_ < std::min(n, burst_)) return false;
  tokens_ -= n;
  return true;
}

bool TokenBucket::Full(absl::Time now) {
  if (rate_ <= 0) return true;
  Refill(now);
  return tokens_ >= burst_;
}

bool AddressRateLimiter::Allow(absl::string_view address, absl::Time now) {
  if (options_.rate <= 0) return true;
  auto it = by_address_.find(address);
  if (it == by_address_.end()) {
    if (by_address_.size() >= options_.max_addresses) Evict(now);
    it = by_address_
             .emplace(std::string(address),
                      TokenBucket(options_.rate, options_.burst, now))
             .first;
  }
  return it->second.Take(1, now);
}

void AddressRateLimiter::Evict(absl::Time now) {
  // A full bucket remembers nothing a fresh one would not.
  for (auto it = by_address_.begin(); it != by_address_.end();) {
    if (it->second.Full(now)) {
      by_address_.erase(it++);
    } else {
      ++it;
    }
  }
  if (by_address_.size() < options_.max_addresses) return;
  // Still full of busy addresses: forgetting one only lets it start with a
  // full bucket, so drop half rather than grow without bound.
  for (auto it = by_address_.begin();
       it != by_address_.end() &&
       by_address_.size() >= options_.max_addresses / 2;) {
    by_address_.erase(it++);
  }
}

}  // namespace jetstream::gateway
