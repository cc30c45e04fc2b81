#include "common/json_number.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace jetstream {
namespace {

// Expected strings are what Node.js prints for String(x).
TEST(JsonNumberTest, MatchesJavaScriptNumberToString) {
  EXPECT_EQ(FormatJsonNumber(0), "0");
  EXPECT_EQ(FormatJsonNumber(-0.0), "0");
  EXPECT_EQ(FormatJsonNumber(10), "10");
  EXPECT_EQ(FormatJsonNumber(-42), "-42");
  EXPECT_EQ(FormatJsonNumber(4279308287), "4279308287");
  EXPECT_EQ(FormatJsonNumber(1450582561.123), "1450582561.123");
  EXPECT_EQ(FormatJsonNumber(0.1), "0.1");
  EXPECT_EQ(FormatJsonNumber(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatJsonNumber(1e21), "1e+21");
  EXPECT_EQ(FormatJsonNumber(1e20), "100000000000000000000");
  EXPECT_EQ(FormatJsonNumber(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(FormatJsonNumber(1e-7), "1e-7");
  EXPECT_EQ(FormatJsonNumber(0.000001), "0.000001");
  EXPECT_EQ(FormatJsonNumber(1.5e-10), "1.5e-10");
  EXPECT_EQ(FormatJsonNumber(-2.5e300), "-2.5e+300");
  EXPECT_EQ(FormatJsonNumber(9007199254740993.0), "9007199254740992");
  EXPECT_EQ(FormatJsonNumber(5e-324), "5e-324");
  EXPECT_EQ(FormatJsonNumber(std::numeric_limits<double>::max()),
            "1.7976931348623157e+308");
}

TEST(JsonNumberTest, NonFiniteBecomesNull) {
  EXPECT_EQ(FormatJsonNumber(std::nan("")), "null");
  EXPECT_EQ(FormatJsonNumber(std::numeric_limits<double>::infinity()), "null");
}

}  // namespace
}  // namespace jetstream
