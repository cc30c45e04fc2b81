// SIGINT and SIGTERM taken by a thread of the program's choosing (sigwait),
// so shutdown never runs inside a signal handler.
#ifndef JETSTREAM_COMMON_TERMINATION_SIGNALS_H_
#define JETSTREAM_COMMON_TERMINATION_SIGNALS_H_

#include <signal.h>

namespace jetstream {

// Construct it first thing in main(), before any thread starts: it blocks
// SIGINT and SIGTERM in the calling thread, and every thread started
// afterwards inherits the mask, so the signals wait for Wait().
class TerminationSignals {
 public:
  TerminationSignals();
  TerminationSignals(const TerminationSignals&) = delete;
  TerminationSignals& operator=(const TerminationSignals&) = delete;

  // Blocks until SIGINT or SIGTERM arrives; returns its number. Thread-safe;
  // each signal wakes one caller.
  int Wait() const;

 private:
  sigset_t signals_;
};

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_TERMINATION_SIGNALS_H_
