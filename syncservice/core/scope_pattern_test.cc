#include "syncservice/core/scope_pattern.h"

#include "gtest/gtest.h"

namespace jetstream {
namespace {

TEST(ScopePatternTest, StarMatchesAnyRunOfCharacters) {
  EXPECT_TRUE(MatchPattern("canvas/*", "canvas/"));
  EXPECT_TRUE(MatchPattern("canvas/*", "canvas/a/b"));
  EXPECT_FALSE(MatchPattern("canvas/*", "canvas"));
  EXPECT_FALSE(MatchPattern("canvas/*", "xcanvas/a"));
  EXPECT_TRUE(MatchPattern("*", ""));
  EXPECT_TRUE(MatchPattern("a*b*c", "aXXbYYc"));
  EXPECT_TRUE(MatchPattern("a*b*c", "abbbc"));
  EXPECT_FALSE(MatchPattern("a*b*c", "aXXbYY"));
  EXPECT_TRUE(MatchPattern("*-room", "big-room"));
  EXPECT_FALSE(MatchPattern("*-room", "big-rooms"));
  EXPECT_TRUE(MatchPattern("exact", "exact"));
  EXPECT_FALSE(MatchPattern("exact", "exactly"));
}

}  // namespace
}  // namespace jetstream
