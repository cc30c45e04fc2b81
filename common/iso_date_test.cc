#include "common/iso_date.h"

#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jetstream {
namespace {

using ::testing::DoubleEq;
using ::testing::Eq;
using ::testing::Optional;

TEST(ParseIsoDateTest, ReadsWhatJavaScriptWrites) {
  // new Date(Date.UTC(2015, 0, 1, 12)).toISOString()
  EXPECT_THAT(ParseIsoDate("2015-01-01T12:00:00.000Z"),
              Optional(DoubleEq(1420113600)));
  EXPECT_THAT(ParseIsoDate("1970-01-01T00:00:00.000Z"), Optional(DoubleEq(0)));
  EXPECT_THAT(ParseIsoDate("2015-12-20T03:36:01.123Z"),
              Optional(DoubleEq(1450582561.123)));
}

TEST(ParseIsoDateTest, FractionsSecondsAndZonesAreOptionalParts) {
  EXPECT_THAT(ParseIsoDate("2015-01-01T12:00:00Z"),
              Optional(DoubleEq(1420113600)));
  EXPECT_THAT(ParseIsoDate("2015-01-01T12:00Z"),
              Optional(DoubleEq(1420113600)));
  EXPECT_THAT(ParseIsoDate("2015-01-01T12:00:00.5Z"),
              Optional(DoubleEq(1420113600.5)));
  EXPECT_THAT(ParseIsoDate("2015-01-01T12:00:00.123456789Z"),
              Optional(DoubleEq(1420113600.123456789)));
  // Offsets: the same instant written in other zones.
  EXPECT_THAT(ParseIsoDate("2015-01-01T13:00:00+01:00"),
              Optional(DoubleEq(1420113600)));
  EXPECT_THAT(ParseIsoDate("2015-01-01T06:30:00-0530"),
              Optional(DoubleEq(1420113600)));
  EXPECT_THAT(ParseIsoDate("2015-01-01T14:00:00+02"),
              Optional(DoubleEq(1420113600)));
  EXPECT_THAT(ParseIsoDate("2015-01-01t12:00:00z"),
              Optional(DoubleEq(1420113600)));
  // A date alone is midnight UTC, as in JavaScript.
  EXPECT_THAT(ParseIsoDate("2015-01-01"), Optional(DoubleEq(1420070400)));
}

TEST(ParseIsoDateTest, HandlesTheCalendar) {
  EXPECT_THAT(ParseIsoDate("2016-02-29T00:00:00Z"),
              Optional(DoubleEq(1456704000)));
  EXPECT_THAT(ParseIsoDate("2000-02-29T00:00:00Z"),
              Optional(DoubleEq(951782400)));
  EXPECT_THAT(ParseIsoDate("1969-12-31T23:59:59Z"), Optional(DoubleEq(-1)));
  EXPECT_THAT(ParseIsoDate("+275760-09-13T00:00:00.000Z"),
              Optional(DoubleEq(8.64e12)));
  EXPECT_THAT(ParseIsoDate("-000001-01-01T00:00:00Z"),
              Optional(DoubleEq(-62198755200)));
}

TEST(ParseIsoDateTest, RefusesEverythingElse) {
  for (const char* bad : {"",
                          "2015",
                          "2015-01",
                          "2015-1-01",
                          "2015-01-01T",
                          "2015-01-01T12",
                          "2015-01-01T12:00:00",
                          "2015-01-01 12:00:00Z",
                          "2015-13-01T00:00:00Z",
                          "2015-02-29T00:00:00Z",
                          "1900-02-29T00:00:00Z",
                          "2015-04-31T00:00Z",
                          "2015-01-00T00:00Z",
                          "2015-01-01T24:00:00Z",
                          "2015-01-01T12:60:00Z",
                          "2015-01-01T12:00:60Z",
                          "2015-01-01T12:00:00.Z",
                          "2015-01-01T12:00:00Zjunk",
                          "2015-01-01T12:00:00+2400",
                          "2015-01-01T12:00:00+01:0",
                          "-000000-01-01T00:00:00Z",
                          "+275760-09-13T00:00:00.001Z",
                          "next tuesday",
                          "1450582561"}) {
    EXPECT_EQ(ParseIsoDate(bad), std::nullopt) << bad;
  }
}

TEST(FormatIsoDateTest, WritesWhatToIsoStringWrites) {
  EXPECT_THAT(FormatIsoDate(1420113600),
              Optional(Eq("2015-01-01T12:00:00.000Z")));
  EXPECT_THAT(FormatIsoDate(1450582561.123),
              Optional(Eq("2015-12-20T03:36:01.123Z")));
  EXPECT_THAT(FormatIsoDate(0), Optional(Eq("1970-01-01T00:00:00.000Z")));
  EXPECT_THAT(FormatIsoDate(-0.001), Optional(Eq("1969-12-31T23:59:59.999Z")));
  // Milliseconds, rounded.
  EXPECT_THAT(FormatIsoDate(1.0006), Optional(Eq("1970-01-01T00:00:01.001Z")));
  EXPECT_THAT(FormatIsoDate(8.64e12),
              Optional(Eq("+275760-09-13T00:00:00.000Z")));
  EXPECT_THAT(FormatIsoDate(-62198755200),
              Optional(Eq("-000001-01-01T00:00:00.000Z")));
  EXPECT_EQ(FormatIsoDate(8.64e12 + 1), std::nullopt);
  EXPECT_EQ(FormatIsoDate(std::nan("")), std::nullopt);
}

TEST(IsoDateTest, FormatThenParseIsTheSameMillisecond) {
  for (double s : {0.0, 1.5, 1420113600.25, 951782399.999, -86400.5, 4e9}) {
    std::optional<std::string> text = FormatIsoDate(s);
    ASSERT_TRUE(text.has_value()) << s;
    EXPECT_THAT(ParseIsoDate(*text), Optional(DoubleEq(s))) << *text;
  }
}

}  // namespace
}  // namespace jetstream
