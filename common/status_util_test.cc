#include "common/status_util.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace jetstream {
namespace {

TEST(StatusUtilTest, OkMapsToOk) {
  EXPECT_OK(ToGrpcStatus(absl::OkStatus()));
  EXPECT_OK(FromGrpcStatus(grpc::Status::OK));
}

TEST(StatusUtilTest, CodeAndMessageSurviveTheRoundTrip) {
  grpc::Status g = ToGrpcStatus(absl::NotFoundError("No such scope"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(g.error_message(), "No such scope");
  absl::Status back = FromGrpcStatus(g);
  EXPECT_EQ(back, absl::NotFoundError("No such scope"));
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down")),
            absl::UnavailableError("down"));
}

}  // namespace
}  // namespace jetstream
