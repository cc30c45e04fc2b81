// File: common/rendezvous.h
//
// Rendezvous (highest random weight) hashing: which replica a scope belongs
// to. Every process that ranks the same member ids for the same key gets
// the same order, whatever order the ids come in, and adding or removing a
// member moves only the keys that rank it first. The gateways and the sync
// service replicas both rank scopes this way, so they agree on each scope's
// preferred replica without talking to each other.
//
// Example:
//   std::vector<std::string> ids = {"sync-0", "sync-1", "sync-2"};
//   size_t first = RankByRendezvous(ids, "Canvas").front();

#ifndef JETSTREAM_COMMON_RENDEZVOUS_H_
#define JETSTREAM_COMMON_RENDEZVOUS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace jetstream {

// RendezvousWeight()
//
// The weight of `key` on the member named `member`: a stable 64-bit hash
// (FNV-1a, then a 64-bit finaliser), the same in every process and on every
// platform. Pinned by a test: changing it moves every scope.
uint64_t RendezvousWeight(absl::string_view member, absl::string_view key);

// RankByRendezvous()
//
// Indexes into `members`, best first: by descending weight for `key`, ties
// (practically impossible) to the smaller id.
std::vector<size_t> RankByRendezvous(const std::vector<std::string>& members,
                                     absl::string_view key);

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_RENDEZVOUS_H_
