#include "tests/testing/status_matchers.h"

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jetstream::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(StatusMatchersTest, IsOkTellsOkFromErrors) {
  EXPECT_THAT(absl::OkStatus(), IsOk());
  EXPECT_THAT(absl::StatusOr<int>(3), IsOk());
  EXPECT_THAT(absl::NotFoundError("x"), Not(IsOk()));
  EXPECT_THAT(absl::StatusOr<int>(absl::InternalError("x")), Not(IsOk()));
}

TEST(StatusMatchersTest, StatusIsComparesCodeAndMessage) {
  const absl::Status status = absl::InvalidArgumentError("bad postedAt");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr("postedAt")));
  EXPECT_THAT(status, Not(StatusIs(absl::StatusCode::kNotFound)));
  EXPECT_THAT(status, Not(StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("author"))));
  EXPECT_THAT(absl::StatusOr<int>(status),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(StatusMatchersTest, IsOkAndHoldsMatchesTheValue) {
  EXPECT_THAT(absl::StatusOr<int>(7), IsOkAndHolds(7));
  EXPECT_THAT(absl::StatusOr<int>(7), Not(IsOkAndHolds(8)));
  EXPECT_THAT(absl::StatusOr<std::string>("abc"), IsOkAndHolds(HasSubstr("b")));
  EXPECT_THAT(absl::StatusOr<int>(absl::UnknownError("x")),
              Not(IsOkAndHolds(7)));
}

TEST(StatusMatchersTest, ExplainsTheStatusOnFailure) {
  ::testing::StringMatchResultListener listener;
  const auto matcher = ::testing::Matcher<absl::Status>(IsOk());
  EXPECT_FALSE(
      matcher.MatchAndExplain(absl::DataLossError("torn page"), &listener));
  EXPECT_THAT(listener.str(), HasSubstr("torn page"));
}

TEST(StatusMatchersTest, AssertOkAndAssignMovesTheValue) {
  ASSERT_OK_AND_ASSIGN(const std::string value,
                       absl::StatusOr<std::string>("moved"));
  EXPECT_EQ(value, "moved");
  ASSERT_OK(absl::OkStatus());
  EXPECT_OK(absl::StatusOr<int>(1));
}

}  // namespace
}  // namespace jetstream::testing
