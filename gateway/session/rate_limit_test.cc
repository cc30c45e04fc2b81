#include "gateway/session/rate_limit.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace jetstream::gateway {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1000);

TEST(TokenBucketTest, StartsFullAndRefusesPastTheBurst) {
  TokenBucket bucket(/*rate=*/10, /*burst=*/3, kStart);
  EXPECT_TRUE(bucket.Take(1, kStart));
  EXPECT_TRUE(bucket.Take(1, kStart));
  EXPECT_TRUE(bucket.Take(1, kStart));
  EXPECT_FALSE(bucket.Take(1, kStart));
  EXPECT_FALSE(bucket.Take(1, kStart));
}

TEST(TokenBucketTest, RefillsAtTheRateUpToTheBurst) {
  TokenBucket bucket(/*rate=*/10, /*burst=*/3, kStart);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(bucket.Take(1, kStart));
  // 100 ms at 10 a second: one token.
  absl::Time t = kStart + absl::Milliseconds(100);
  EXPECT_TRUE(bucket.Take(1, t));
  EXPECT_FALSE(bucket.Take(1, t));
  // A long pause refills to the burst, not beyond.
  t += absl::Hours(1);
  EXPECT_TRUE(bucket.Full(t));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.Take(1, t));
  EXPECT_FALSE(bucket.Take(1, t));
}

TEST(TokenBucketTest, ARefusedTakeTakesNothing) {
  TokenBucket bucket(/*rate=*/100, /*burst=*/100, kStart);
  ASSERT_TRUE(bucket.Take(60, kStart));
  EXPECT_FALSE(bucket.Take(60, kStart));
  EXPECT_TRUE(bucket.Take(40, kStart));
  EXPECT_FALSE(bucket.Take(1, kStart));
}

TEST(TokenBucketTest, AnItemOverTheBurstPassesAFullBucketAndLeavesADebt) {
  TokenBucket bucket(/*rate=*/100, /*burst=*/100, kStart);
  EXPECT_TRUE(bucket.Take(300, kStart));  // 200 in debt
  absl::Time t = kStart + absl::Seconds(2);
  EXPECT_FALSE(bucket.Take(1, t));  // back to 0
  t += absl::Milliseconds(500);
  EXPECT_TRUE(bucket.Take(50, t));
  EXPECT_FALSE(bucket.Take(300, t));  // only a full bucket lets it by
  t += absl::Seconds(1);
  EXPECT_TRUE(bucket.Take(300, t));
}

TEST(TokenBucketTest, ZeroRateMeansNoLimit) {
  TokenBucket bucket(/*rate=*/0, /*burst=*/1, kStart);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(bucket.Take(1e9, kStart));
}

TEST(TokenBucketTest, TimeGoingBackwardsAddsNothing) {
  TokenBucket bucket(/*rate=*/10, /*burst=*/1, kStart);
  ASSERT_TRUE(bucket.Take(1, kStart));
  EXPECT_FALSE(bucket.Take(1, kStart - absl::Hours(1)));
  EXPECT_FALSE(bucket.Take(1, kStart));
}

TEST(AddressRateLimiterTest, EachAddressHasItsOwnBucket) {
  AddressRateLimiter limiter({/*rate=*/1, /*burst=*/2, /*max_addresses=*/10});
  EXPECT_TRUE(limiter.Allow("10.0.0.1", kStart));
  EXPECT_TRUE(limiter.Allow("10.0.0.1", kStart));
  EXPECT_FALSE(limiter.Allow("10.0.0.1", kStart));
  EXPECT_TRUE(limiter.Allow("10.0.0.2", kStart));
  EXPECT_TRUE(limiter.Allow("10.0.0.1", kStart + absl::Seconds(1)));
  EXPECT_FALSE(limiter.Allow("10.0.0.1", kStart + absl::Seconds(1)));
}

TEST(AddressRateLimiterTest, ZeroRateAllowsEverythingAndRemembersNothing) {
  AddressRateLimiter limiter({/*rate=*/0, /*burst=*/1, /*max_addresses=*/10});
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(limiter.Allow("10.0.0.1", kStart));
  EXPECT_EQ(limiter.addresses(), 0u);
}

TEST(AddressRateLimiterTest, MemoryStaysBounded) {
  AddressRateLimiter limiter({/*rate=*/1, /*burst=*/1, /*max_addresses=*/100});
  for (int i = 0; i < 10000; ++i) {
    limiter.Allow(absl::StrCat("10.1.", i / 256, ".", i % 256), kStart);
    ASSERT_LE(limiter.addresses(), 100u);
  }
}

TEST(AddressRateLimiterTest, AddressesThatRefilledAreForgottenFirst) {
  AddressRateLimiter limiter({/*rate=*/1, /*burst=*/1, /*max_addresses=*/100});
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(limiter.Allow(absl::StrCat("10.0.0.", i), kStart));
    ASSERT_TRUE(limiter.Allow(absl::StrCat("10.9.0.", i), kStart));
  }
  // Ten seconds on, the 10.9 addresses are busy again; the 10.0 ones are
  // idle (their buckets refilled).
  const absl::Time later = kStart + absl::Seconds(10);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(limiter.Allow(absl::StrCat("10.9.0.", i), later));
  }
  ASSERT_EQ(limiter.addresses(), 100u);
  ASSERT_TRUE(limiter.Allow("10.5.0.1", later));  // makes room
  EXPECT_EQ(limiter.addresses(), 51u);
  // The busy addresses were kept: still refused.
  for (int i = 0; i < 50; ++i) {
    EXPECT_FALSE(limiter.Allow(absl::StrCat("10.9.0.", i), later)) << i;
  }
}

}  // namespace
}  // namespace jetstream::gateway
