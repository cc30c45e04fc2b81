#include "common/file_util.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace jetstream {
namespace {

using ::jetstream::testing::IsOkAndHolds;
using ::jetstream::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

TEST(ReadFileToStringTest, ReadsEveryByte) {
  const std::string path = TempPath("bytes");
  const std::string bytes("a\0b\nc", 5);
  std::ofstream(path, std::ios::binary) << bytes;
  EXPECT_THAT(ReadFileToString(path), IsOkAndHolds(bytes));
}

TEST(ReadFileToStringTest, AMissingFileIsNamedInTheError) {
  const std::string path = TempPath("missing.json");
  EXPECT_THAT(ReadFileToString(path, "schema file"),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("cannot open the schema file"),
                             HasSubstr(path))));
}

TEST(ReadFileToStringTest, AnEmptyFileIsEmpty) {
  const std::string path = TempPath("empty");
  std::ofstream{path};
  EXPECT_THAT(ReadFileToString(path), IsOkAndHolds(""));
}

TEST(ReadFileToStringTest, ADirectoryIsNotAFile) {
  EXPECT_THAT(ReadFileToString(TempPath(""), "scopes file"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("is a directory, not the scopes file")));
}

}  // namespace
}  // namespace jetstream
