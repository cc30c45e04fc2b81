// File: gateway/session/flush_scheduler.h
//
// Batches session flushes per hub turn: every session scheduled before the
// posted handler runs is flushed by it, so a fan-out to N sessions costs one
// posted handler, not N, and each session writes one frame for all that the
// turn queued for it.
//
// Thread-safety: hub executor only. Ownership: holds the scheduled sessions
// until their flush.

#ifndef JETSTREAM_GATEWAY_SESSION_FLUSH_SCHEDULER_H_
#define JETSTREAM_GATEWAY_SESSION_FLUSH_SCHEDULER_H_

#include <memory>
#include <utility>
#include <vector>

#include "gateway/core/hub_executor.h"

namespace jetstream::gateway {

class Session;

class FlushScheduler {
 public:
  explicit FlushScheduler(HubExecutor hub) : hub_(std::move(hub)) {}
  // The posted handler refers to this: destroy only after the hub's
  // io_context stopped running.
  FlushScheduler(const FlushScheduler&) = delete;
  FlushScheduler& operator=(const FlushScheduler&) = delete;

  // Flushes `session` in a later hub turn, with every other session
  // scheduled before that turn. A session scheduled twice is flushed twice
  // (the second finds nothing to send).
  void Schedule(std::shared_ptr<Session> session);

 private:
  void FlushAll();

  HubExecutor hub_;
  // Swapped on each run, so a flush may schedule again (into the next turn)
  // and both vectors keep their capacity: a steady fan-out allocates
  // nothing here.
  std::vector<std::shared_ptr<Session>> scheduled_;
  std::vector<std::shared_ptr<Session>> flushing_;
  bool posted_ = false;
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SESSION_FLUSH_SCHEDULER_H_
