#include "gateway/session/tarpit.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace jetstream::gateway {

absl::Duration Tarpit::Refused(absl::string_view address, absl::Time now) {
  if (options_.max_delay <= absl::ZeroDuration()) return absl::ZeroDuration();
  auto it = by_address_.find(address);
  if (it == by_address_.end()) {
    if (by_address_.size() >= options_.max_addresses) Evict(now);
    it = by_address_.emplace(std::string(address), Record{}).first;
  } else if (now - it->second.last >= options_.forget_after) {
    it->second.refusals = 0;
  }
  Record& record = it->second;
  record.last = now;
  ++record.refusals;
  absl::Duration delay = options_.first_delay;
  for (uint32_t i = 1; i < record.refusals && delay < options_.max_delay; ++i) {
    delay *= 2;
  }
  return std::min(delay, options_.max_delay);
}

void Tarpit::Evict(absl::Time now) {
  for (auto it = by_address_.begin(); it != by_address_.end();) {
    if (now - it->second.last >= options_.forget_after) {
      by_address_.erase(it++);
    } else {
      ++it;
    }
  }
  if (by_address_.size() < options_.max_addresses) return;
  // Still full of recent addresses: the older half goes.
  std::vector<std::pair<absl::Time, std::string>> by_age;
  by_age.reserve(by_address_.size());
  for (const auto& [address, record] : by_address_) {
    by_age.emplace_back(record.last, address);
  }
  const size_t drop = by_age.size() / 2 + 1;
  std::nth_element(by_age.begin(), by_age.begin() + (drop - 1), by_age.end());
  for (size_t i = 0; i < drop; ++i) by_address_.erase(by_age[i].second);
}

}  // namespace jetstream::gateway
