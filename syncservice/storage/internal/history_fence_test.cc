// The fencing rules on their own, case by case; the stores' conformance
// suite checks that both implementations apply them.

#include "syncservice/storage/internal/history_fence.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::storage_internal {
namespace {

ScopeHead Head(uint64_t snapshot, uint64_t head, const std::string& writer) {
  return ScopeHead{snapshot, head, writer};
}

TEST(CheckAppendTest, NextVersionByTheLastWriterIsAccepted) {
  EXPECT_OK(CheckAppend("s", Head(0, 4, "me"), 5, "me", -1));
}

TEST(CheckAppendTest, NextVersionAfterALoadedHeadIsAccepted) {
  EXPECT_OK(CheckAppend("s", Head(0, 4, "other"), 5, "me", 4));
}

TEST(CheckAppendTest, HeadMovedByAnotherWriterSinceTheLoadIsAborted) {
  absl::Status s = CheckAppend("s", Head(0, 4, "other"), 5, "me", 3);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  s = CheckAppend("s", Head(0, 4, "other"), 5, "me", -1);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
}

TEST(CheckAppendTest, TakenVersionIsAVersionConflict) {
  for (uint64_t v : {1u, 3u, 4u}) {
    absl::Status s = CheckAppend("s", Head(2, 4, "me"), v, "me", 4);
    EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << v;
    EXPECT_NE(s.message().find("version conflict"), std::string::npos);
  }
}

TEST(CheckAppendTest, GapAndMissingScope) {
  EXPECT_EQ(CheckAppend("s", Head(0, 4, "me"), 6, "me", 4).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckAppend("s", std::nullopt, 1, "me", -1).code(),
            absl::StatusCode::kNotFound);
}

TEST(CheckSnapshotTest, Outcomes) {
  SnapshotAction action;
  EXPECT_OK(CheckSnapshot("s", Head(2, 6, "me"), 5, "me", -1, &action));
  EXPECT_EQ(action, SnapshotAction::kWrite);
  EXPECT_TRUE(
      CheckSnapshot("s", Head(2, 6, "other"), 5, "me", 5, &action).ok());
  EXPECT_EQ(action, SnapshotAction::kWrite);
  EXPECT_TRUE(
      CheckSnapshot("s", Head(5, 6, "other"), 4, "me", -1, &action).ok());
  EXPECT_EQ(action, SnapshotAction::kKeepNewer);
  EXPECT_TRUE(
      CheckSnapshot("s", Head(5, 6, "other"), 5, "me", -1, &action).ok());
  EXPECT_EQ(action, SnapshotAction::kKeepNewer);
  EXPECT_EQ(CheckSnapshot("s", Head(2, 6, "me"), 7, "me", 6, &action).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckSnapshot("s", Head(2, 6, "other"), 6, "me", 5, &action).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(CheckSnapshot("s", std::nullopt, 1, "me", -1, &action).code(),
            absl::StatusCode::kNotFound);
}

TEST(HistoryFenceTest, KnownOnlyGrows) {
  HistoryFence fence;
  EXPECT_EQ(fence.Known("s"), -1);
  fence.Advance("s", 7);
  fence.Advance("s", 3);
  EXPECT_EQ(fence.Known("s"), 7);
  EXPECT_EQ(fence.Known("t"), -1);
  EXPECT_NE(HistoryFence().writer_id(), fence.writer_id());
}

}  // namespace
}  // namespace jetstream::storage_internal
