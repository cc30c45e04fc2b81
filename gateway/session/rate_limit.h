// File: gateway/session/rate_limit.h
//
// Token buckets for the gateway's rate limits (docs/protocol.md#limits):
// messages and bytes per second per session, new connections per second per
// source address.
//
// Thread-safety: none; the session manager and its sessions use them on the
// hub strand. Time is passed in, so tests need no clock.

#ifndef JETSTREAM_GATEWAY_SESSION_RATE_LIMIT_H_
#define JETSTREAM_GATEWAY_SESSION_RATE_LIMIT_H_

#include <cstddef>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace jetstream::gateway {

// The gateway's buckets hold this many seconds' worth of their rate: a
// client may send that much at once after a quiet spell.
inline constexpr double kRateLimitBurst = 2.0;

// `rate` tokens a second, holding at most `burst`; it starts full. A zero
// or negative rate means no limit: every Take() succeeds.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst, absl::Time now);

  // TokenBucket::Take()
  //
  // Takes `n` tokens at `now` and returns true, or takes nothing and
  // returns false. It succeeds while the bucket holds `n` tokens, or, for
  // an `n` larger than the burst, while it is full: such a take leaves the
  // bucket in debt, so one oversized item costs its full size in time.
  bool Take(double n, absl::Time now);

  // True when the bucket has refilled to its burst at `now`.
  bool Full(absl::Time now);

 private:
  void Refill(absl::Time now);

  const double rate_;
  const double burst_;
  double tokens_;
  absl::Time last_;
};

// One token bucket per source address, for new connections per second.
// Addresses whose bucket has refilled are forgotten when the table grows
// past `max_addresses`, so its memory stays bounded.
class AddressRateLimiter {
 public:
  struct Options {
    double rate = 0;   // per second; 0: no limit
    double burst = 1;  // connections at once
    size_t max_addresses = 100000;
  };

  explicit AddressRateLimiter(Options options) : options_(options) {}

  // AddressRateLimiter::Allow()
  //
  // Counts one new connection from `address` (an IP address, no port) at
  // `now`; false when the address is over its rate.
  bool Allow(absl::string_view address, absl::Time now);

  // Addresses currently remembered.
  size_t addresses() const { return by_address_.size(); }

 private:
  void Evict(absl::Time now);

  const Options options_;
  absl::flat_hash_map<std::string, TokenBucket> by_address_;
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SESSION_RATE_LIMIT_H_
