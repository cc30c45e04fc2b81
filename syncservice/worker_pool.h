// File: syncservice/worker_pool.h
//
// WorkerPool: a few threads that run blocking work (database round trips,
// loading a scope) off gRPC's threads, now or after a delay.
//
// Example:
//   WorkerPool pool(4);
//   pool.Post([] { LoadScope("Canvas"); });
//   pool.PostAfter(absl::Milliseconds(100), [] { TryTheLeaseAgain(); });
//
// Thread-safety: thread-safe. Tasks run on the pool's threads, several at
// once; a task may post more. Shutdown() (or the destructor) waits for the
// running tasks and drops those not started yet.

#ifndef JETSTREAM_SYNCSERVICE_WORKER_POOL_H_
#define JETSTREAM_SYNCSERVICE_WORKER_POOL_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace jetstream {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `task` as soon as a thread is free (tasks posted earlier first).
  void Post(std::function<void()> task) {
    PostAfter(absl::ZeroDuration(), std::move(task));
  }
  // Runs `task` no sooner than `delay` from now.
  void PostAfter(absl::Duration delay, std::function<void()> task);

  // Stops: waits for running tasks, drops the rest. Idempotent.
  void Shutdown();

 private:
  using Clock = std::chrono::steady_clock;
  void Run();

  absl::Mutex mu_;
  // Due time and order of posting -> task.
  std::map<std::pair<Clock::time_point, uint64_t>, std::function<void()>> tasks_
      ABSL_GUARDED_BY(mu_);
  uint64_t posted_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_WORKER_POOL_H_
