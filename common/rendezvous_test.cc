#include "common/rendezvous.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jetstream {
namespace {

TEST(RendezvousWeightTest, IsTheSameInEveryProcess) {
  // Gateways and replicas agree on routing only if the weight never
  // changes: these values are part of the contract between versions.
  // (Computed independently from the definition: FNV-1a 64 of
  // "member\0key", then the murmur3 fmix64 finaliser.)
  EXPECT_EQ(RendezvousWeight("sync-0:50051", "Canvas"), 5783848716994031002u);
  EXPECT_EQ(RendezvousWeight("sync-1:50051", "Canvas"), 2248081690499436497u);
  // The separator keeps ("ab", "c") and ("a", "bc") apart.
  EXPECT_NE(RendezvousWeight("ab", "c"), RendezvousWeight("a", "bc"));
}

TEST(RankByRendezvousTest, RanksByWeightWhateverTheOrderOfTheIds) {
  const std::vector<std::string> forward = {"a", "b", "c", "d"};
  const std::vector<std::string> backward = {"d", "c", "b", "a"};
  for (int i = 0; i < 50; ++i) {
    const std::string key = "scope-" + std::to_string(i);
    std::vector<size_t> f = RankByRendezvous(forward, key);
    std::vector<size_t> b = RankByRendezvous(backward, key);
    ASSERT_EQ(f.size(), 4u);
    for (size_t k = 0; k < f.size(); ++k) {
      EXPECT_EQ(forward[f[k]], backward[b[k]]) << key;
      if (k > 0) {
        EXPECT_GE(RendezvousWeight(forward[f[k - 1]], key),
                  RendezvousWeight(forward[f[k]], key));
      }
    }
  }
}

TEST(RankByRendezvousTest, AddingAMemberMovesOnlyTheKeysItWins) {
  const std::vector<std::string> three = {"a", "b", "c"};
  const std::vector<std::string> four = {"a", "b", "c", "d"};
  int moved = 0;
  constexpr int kKeys = 4000;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "scope-" + std::to_string(i);
    const std::string before = three[RankByRendezvous(three, key).front()];
    const std::string after = four[RankByRendezvous(four, key).front()];
    if (before != after) {
      EXPECT_EQ(after, "d") << key;
      ++moved;
    }
  }
  // About a quarter of the keys move, all of them to the new member.
  EXPECT_GT(moved, kKeys / 5);
  EXPECT_LT(moved, kKeys * 3 / 10);
}

TEST(RankByRendezvousTest, EmptyMembersRankNothing) {
  EXPECT_THAT(RankByRendezvous({}, "Canvas"), ::testing::IsEmpty());
}

}  // namespace
}  // namespace jetstream
