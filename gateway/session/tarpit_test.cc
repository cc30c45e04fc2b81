#include "gateway/session/tarpit.h"

#include "gtest/gtest.h"

namespace jetstream::gateway {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1000);

Tarpit::Options Fast() {
  Tarpit::Options o;
  o.first_delay = absl::Milliseconds(100);
  o.max_delay = absl::Seconds(1);
  o.forget_after = absl::Seconds(60);
  return o;
}

TEST(TarpitTest, TheHoldDoublesPerRefusalUpToTheMaximum) {
  Tarpit tarpit(Fast());
  absl::Time now = kStart;
  EXPECT_EQ(tarpit.Refused("10.0.0.1", now), absl::Milliseconds(100));
  EXPECT_EQ(tarpit.Refused("10.0.0.1", now), absl::Milliseconds(200));
  EXPECT_EQ(tarpit.Refused("10.0.0.1", now), absl::Milliseconds(400));
  EXPECT_EQ(tarpit.Refused("10.0.0.1", now), absl::Milliseconds(800));
  EXPECT_EQ(tarpit.Refused("10.0.0.1", now), absl::Seconds(1));
  for (int i = 0; i < 100; ++i) tarpit.Refused("10.0.0.1", now);
  EXPECT_EQ(tarpit.Refused("10.0.0.1", now), absl::Seconds(1));
}

TEST(TarpitTest, AddressesAreHeldApart) {
  Tarpit tarpit(Fast());
  tarpit.Refused("10.0.0.1", kStart);
  tarpit.Refused("10.0.0.1", kStart);
  EXPECT_EQ(tarpit.Refused("10.0.0.2", kStart), absl::Milliseconds(100));
  EXPECT_EQ(tarpit.Refused("10.0.0.1", kStart), absl::Milliseconds(400));
}

TEST(TarpitTest, AnAddressQuietForLongEnoughStartsAfresh) {
  Tarpit tarpit(Fast());
  for (int i = 0; i < 5; ++i) tarpit.Refused("10.0.0.1", kStart);
  // Refusals keep it remembered: the window counts from the last one.
  EXPECT_EQ(tarpit.Refused("10.0.0.1", kStart + absl::Seconds(59)),
            absl::Seconds(1));
  EXPECT_EQ(tarpit.Refused("10.0.0.1", kStart + absl::Seconds(119)),
            absl::Milliseconds(100));
}

TEST(TarpitTest, AZeroMaximumHoldsNothing) {
  Tarpit::Options o = Fast();
  o.max_delay = absl::ZeroDuration();
  Tarpit tarpit(o);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(tarpit.Refused("10.0.0.1", kStart), absl::ZeroDuration());
  }
  EXPECT_EQ(tarpit.addresses(), 0u);
}

TEST(TarpitTest, MemoryIsBoundedByForgettingTheLongestIdle) {
  Tarpit::Options o = Fast();
  o.max_addresses = 10;
  Tarpit tarpit(o);
  for (int i = 0; i < 10; ++i) {
    tarpit.Refused("10.0.0." + std::to_string(i), kStart + absl::Seconds(i));
  }
  EXPECT_EQ(tarpit.addresses(), 10u);
  // The eleventh pushes out the older half, the most recent ones stay.
  tarpit.Refused("10.0.1.1", kStart + absl::Seconds(20));
  EXPECT_LE(tarpit.addresses(), 10u);
  EXPECT_EQ(tarpit.Refused("10.0.0.9", kStart + absl::Seconds(21)),
            absl::Milliseconds(200));
  EXPECT_EQ(tarpit.Refused("10.0.0.0", kStart + absl::Seconds(21)),
            absl::Milliseconds(100));
}

}  // namespace
}  // namespace jetstream::gateway
