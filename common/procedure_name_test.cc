#include "common/procedure_name.h"

#include "gtest/gtest.h"

namespace jetstream {
namespace {

TEST(ProcedureNameTest, TwoNonEmptyNamesJoinedByOneDot) {
  std::optional<ProcedureName> p = ParseProcedureName("Canvas.clear");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->model, "Canvas");
  EXPECT_EQ(p->name, "clear");
  for (const char* bad : {"", "Canvas", "Canvas.", ".clear", "a.b.c", "."}) {
    EXPECT_FALSE(ParseProcedureName(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace jetstream
