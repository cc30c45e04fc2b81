// File: tests/testing/manual_clock.h
//
// A gateway Clock (gateway/core/clock.h) that stands still until the test
// moves it, so decisions that compare times (rate limits, the tarpit,
// expiry, request deadlines) are taken exactly when the test says.
//
// Thread-safety: Now() and Advance() from any thread.

#ifndef JETSTREAM_TESTS_TESTING_MANUAL_CLOCK_H_
#define JETSTREAM_TESTS_TESTING_MANUAL_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/core/clock.h"

namespace jetstream::testing {

class ManualClock : public gateway::Clock {
 public:
  explicit ManualClock(absl::Time start = absl::FromUnixSeconds(1700000000))
      : now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_TESTING_MANUAL_CLOCK_H_
