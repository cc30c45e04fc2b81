// File: gateway/core/clock.h
//
// What time it is, for the gateway's decisions that compare times: rate
// limits, the tarpit, session expiry. Production uses Clock::Real(); unit
// tests pass a clock they move by hand, so such decisions need no waiting.
// (Timers still run on the event loop's steady clock.)
//
// Thread-safety: Now() may be called from any thread.

#ifndef JETSTREAM_GATEWAY_CORE_CLOCK_H_
#define JETSTREAM_GATEWAY_CORE_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace jetstream::gateway {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // absl::Now(); lives for the whole program.
  static const Clock& Real();
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_CORE_CLOCK_H_
