#include "common/termination_signals.h"

#include <signal.h>

#include <thread>

#include "gtest/gtest.h"

namespace jetstream {
namespace {

TEST(TerminationSignalsTest, ASignalSentToTheProcessWakesTheWaiter) {
  TerminationSignals signals;
  int got = 0;
  std::thread waiter([&] { got = signals.Wait(); });
  // Blocked in every thread, so it stays pending until sigwait takes it.
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  waiter.join();
  EXPECT_EQ(got, SIGTERM);
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  EXPECT_EQ(signals.Wait(), SIGINT);
}

}  // namespace
}  // namespace jetstream
