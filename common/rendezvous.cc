#include "common/rendezvous.h"

#include <algorithm>
#include <numeric>

namespace jetstream {

uint64_t RendezvousWeight(absl::string_view member, absl::string_view key) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a offset basis
  auto mix = [&h](absl::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ull;  // FNV-1a prime
    }
  };
  mix(member);
  mix(absl::string_view("\0", 1));
  mix(key);
  // FNV-1a alone spreads similar names poorly over the top bits; finish
  // with the murmur3 64-bit finaliser.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

std::vector<size_t> RankByRendezvous(const std::vector<std::string>& members,
                                     absl::string_view key) {
  std::vector<uint64_t> weights(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    weights[i] = RendezvousWeight(members[i], key);
  }
  std::vector<size_t> order(members.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (weights[a] != weights[b]) return weights[a] > weights[b];
    return members[a] < members[b];
  });
  return order;
}

}  // namespace jetstream
