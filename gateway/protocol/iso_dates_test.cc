#include "gateway/protocol/iso_dates.h"

#include <string>

#include "gtest/gtest.h"

namespace jetstream::gateway {
namespace {

const DateProperties kChatDates = {"Message.postedAt", "User.lastActive",
                                   "User.seen"};

TEST(ReadsIsoDatesTest, OnlyTheOriginalJavaScriptClient) {
  EXPECT_TRUE(ReadsIsoDates("0.1.0"));
  EXPECT_TRUE(ReadsIsoDates("0.1.7"));
  EXPECT_TRUE(ReadsIsoDates("0.1"));
  EXPECT_FALSE(ReadsIsoDates("0.2.0"));
  EXPECT_FALSE(ReadsIsoDates("0.10.0"));
  EXPECT_FALSE(ReadsIsoDates("1.0"));
  EXPECT_FALSE(ReadsIsoDates(""));
}

TEST(DatesAsIsoStringsTest, WritesTheDatesOfEachFragmentsClass) {
  const std::string in =
      R"([{"type":"add","uuid":"a","clsName":"Message","properties":)"
      R"({"author":"u","postedAt":1450582561.123,"text":"hi"}},)"
      R"({"type":"change","uuid":"u","clsName":"User","properties":)"
      R"({"lastActive":0,"seen":[1,1420113600],"name":"ann"}}])";
  EXPECT_EQ(
      DatesAsIsoStrings(in, kChatDates),
      R"([{"type":"add","uuid":"a","clsName":"Message","properties":)"
      R"({"author":"u","postedAt":"2015-12-20T03:36:01.123Z","text":"hi"}},)"
      R"({"type":"change","uuid":"u","clsName":"User","properties":)"
      R"({"lastActive":"1970-01-01T00:00:00.000Z","seen":)"
      R"(["1970-01-01T00:00:01.000Z","2015-01-01T12:00:00.000Z"],"name":"ann"}}])");
}

TEST(DatesAsIsoStringsTest, KeepsEverythingElseAsWritten) {
  // Numbers keep their text (JavaScript's forms), a property of the same
  // name in another class is no Date, nulls stay null.
  const std::string in =
      R"([{"type":"change","uuid":"r","clsName":"ChatRoom","properties":)"
      R"({"postedAt":5,"n":1e+21,"m":0.1}},)"
      R"({"type":"change","uuid":"a","clsName":"Message","properties":)"
      R"({"postedAt":null}}])";
  EXPECT_EQ(DatesAsIsoStrings(in, kChatDates), in);
}

TEST(DatesAsIsoStringsTest, ADateWithoutAnIsoFormStaysANumber) {
  const std::string in =
      R"([{"type":"change","uuid":"a","clsName":"Message","properties":)"
      R"({"postedAt":1e300}}])";
  EXPECT_EQ(DatesAsIsoStrings(in, kChatDates), in);
}

TEST(DatesAsIsoStringsTest, NoDatesOrNoJsonChangesNothing) {
  const std::string in =
      R"([{"type":"change","uuid":"a","clsName":"Message","properties":)"
      R"({"postedAt":1}}])";
  EXPECT_EQ(DatesAsIsoStrings(in, {}), in);
  EXPECT_EQ(DatesAsIsoStrings("[{", kChatDates), "[{");
}

}  // namespace
}  // namespace jetstream::gateway
