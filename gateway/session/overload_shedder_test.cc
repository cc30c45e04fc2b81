#include "gateway/session/overload_shedder.h"

#include "gtest/gtest.h"

namespace jetstream::gateway {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1700000000);

TEST(OverloadShedderTest, ACommitWithinTheBoundShedsNothing) {
  OverloadShedder shedder(absl::Seconds(2));
  EXPECT_EQ(shedder.SessionsToShed(kStart, kStart + absl::Seconds(2), 100), 0u);
}

TEST(OverloadShedderTest, ALateCommitShedsATenthOfTheSessions) {
  OverloadShedder shedder(absl::Seconds(2));
  EXPECT_EQ(shedder.SessionsToShed(kStart, kStart + absl::Seconds(3), 1000),
            100u);
}

TEST(OverloadShedderTest, AtLeastOneSessionIsShedAndNoneWithout) {
  OverloadShedder shedder(absl::Seconds(2));
  EXPECT_EQ(shedder.SessionsToShed(kStart, kStart + absl::Seconds(3), 5), 1u);
  OverloadShedder idle(absl::Seconds(2));
  EXPECT_EQ(idle.SessionsToShed(kStart, kStart + absl::Seconds(3), 0), 0u);
}

TEST(OverloadShedderTest, TheBacklogQueuedBeforeAShedDoesNotShedAgain) {
  OverloadShedder shedder(absl::Seconds(2));
  const absl::Time shed_at = kStart + absl::Seconds(3);
  ASSERT_EQ(shedder.SessionsToShed(kStart, shed_at, 100), 10u);
  // Commits received before the shed, fanned out after it: still late, but
  // queued before the shed took effect.
  EXPECT_EQ(shedder.SessionsToShed(kStart + absl::Seconds(1),
                                   shed_at + absl::Seconds(1), 90),
            0u);
  EXPECT_EQ(shedder.SessionsToShed(shed_at, shed_at + absl::Seconds(3), 90),
            0u);
  // One received after it that is late again sheds again.
  EXPECT_EQ(shedder.SessionsToShed(shed_at + absl::Milliseconds(1),
                                   shed_at + absl::Seconds(4), 90),
            9u);
}

TEST(OverloadShedderTest, AZeroBoundNeverSheds) {
  OverloadShedder shedder(absl::ZeroDuration());
  EXPECT_EQ(shedder.SessionsToShed(kStart, kStart + absl::Hours(1), 100), 0u);
}

}  // namespace
}  // namespace jetstream::gateway
