#include "syncservice/worker_pool.h"

#include <algorithm>

namespace jetstream {

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    threads_.emplace_back([this] { Run(); });
  }
}

WorkerPool::~WorkerPool() { Shutdown(); }

void WorkerPool::PostAfter(absl::Duration delay, std::function<void()> task) {
  const Clock::time_point due =
      Clock::now() +
      std::chrono::duration_cast<Clock::duration>(
          absl::ToChronoNanoseconds(std::max(delay, absl::ZeroDuration())));
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  tasks_.emplace(std::make_pair(due, posted_++), std::move(task));
}

void WorkerPool::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    tasks_.clear();
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkerPool::Run() {
  for (;;) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      for (;;) {
        if (stopping_) return;
        const Clock::time_point now = Clock::now();
        if (!tasks_.empty() && tasks_.begin()->first.first <= now) break;
        // Wait for the next due task, a new one, or the stop.
        const size_t count = tasks_.size();
        const auto first = tasks_.empty() ? Clock::time_point::max()
                                          : tasks_.begin()->first.first;
        auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || tasks_.size() != count ||
                 (!tasks_.empty() && tasks_.begin()->first.first != first);
        };
        absl::Duration wait = first == Clock::time_point::max()
                                  ? absl::Seconds(60)
                                  : absl::FromChrono(first - now);
        mu_.AwaitWithTimeout(absl::Condition(&changed), wait);
      }
      auto it = tasks_.begin();
      task = std::move(it->second);
      tasks_.erase(it);
    }
    task();
  }
}

}  // namespace jetstream
