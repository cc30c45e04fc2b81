#include "common/uuid.h"

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace jetstream {
namespace {

TEST(UuidTest, ParsesEitherCaseAndPrintsLowerCase) {
  std::optional<Uuid> id = Uuid::Parse("0F3C2A8E-5B1D-4C7E-9A11-3D2F6B7C8E90");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->ToString(), "0f3c2a8e-5b1d-4c7e-9a11-3d2f6b7c8e90");
  EXPECT_EQ(*id, *Uuid::Parse("0f3c2a8e-5b1d-4c7e-9a11-3d2f6b7c8e90"));
}

TEST(UuidTest, RejectsNonCanonicalText) {
  EXPECT_FALSE(Uuid::Parse(""));
  EXPECT_FALSE(Uuid::Parse("hello"));
  EXPECT_FALSE(Uuid::Parse("0f3c2a8e5b1d4c7e9a113d2f6b7c8e90"));
  EXPECT_FALSE(Uuid::Parse("0f3c2a8e-5b1d-4c7e-9a11-3d2f6b7c8e9g"));
  EXPECT_FALSE(Uuid::Parse("0f3c2a8e-5b1d-4c7e-9a11_3d2f6b7c8e90"));
  EXPECT_FALSE(Uuid::Parse("{0f3c2a8e-5b1d-4c7e-9a11-3d2f6b7c8e9}"));
}

TEST(UuidTest, RandomIsVersion4AndDistinct) {
  absl::flat_hash_set<Uuid> seen;
  for (int i = 0; i < 1000; ++i) {
    Uuid id = Uuid::Random();
    std::string text = id.ToString();
    EXPECT_EQ(text[14], '4');
    EXPECT_TRUE(text[19] == '8' || text[19] == '9' || text[19] == 'a' ||
                text[19] == 'b');
    EXPECT_EQ(*Uuid::Parse(text), id);
    EXPECT_TRUE(seen.insert(id).second);
  }
}

}  // namespace
}  // namespace jetstream
