#include "gateway/protocol/client_message.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::gateway {
namespace {

constexpr char kSync[] =
    R"([{"type":"ScopeSync","index":2,"scopeIndex":0,"fragments":[)"
    R"({"type":"change","uuid":"3b0a5e1c-29c4-4d6b-8a53-1b9f2a0c7e11",)"
    R"("clsName":"Shape","properties":{"x":12.5,"name":"caf\u00e9"}}]}])";

absl::StatusOr<std::vector<ClientMessage>> Insitu(std::string text,
                                                  bool utf8_validated) {
  return ParseClientFrameInsitu(text.data(), text.size(), utf8_validated);
}

TEST(ClientMessageTest, InsituParsesAsParseClientFrame) {
  auto a = ParseClientFrame(kSync);
  auto b = Insitu(kSync, /*utf8_validated=*/true);
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*b)[0].type, ClientMessageType::kScopeSync);
  EXPECT_EQ((*b)[0].index, 2u);
  ASSERT_EQ((*b)[0].fragments.size(), 1u);
  EXPECT_EQ((*b)[0].fragments[0], (*a)[0].fragments[0]);
}

TEST(ClientMessageTest, InvalidUtf8IsRefusedUnlessAlreadyValidated) {
  std::string bad = R"({"type":"ScopeFetch","index":1,"name":"a)";
  bad += "\xff\xfe";
  bad += R"("})";
  auto checked = Insitu(bad, /*utf8_validated=*/false);
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.status().message(),
            "Could not parse message input, input was not JSON");
  EXPECT_FALSE(ParseClientFrame(bad).ok());
}

TEST(ClientMessageTest, ParsesAfterLargeAndBadFramesAlike) {
  // A frame larger than the parser's inline buffers, then a bad one, then a
  // small one: each parse starts afresh.
  std::string big = R"([)";
  for (int i = 1; i <= 300; ++i) {
    if (i > 1) big += ",";
    big += absl::StrCat(R"({"type":"Ping","index":)", i,
                        R"(,"ack":0,"resendMissing":false})");
  }
  big += "]";
  auto many = Insitu(big, true);
  ASSERT_OK(many);
  EXPECT_EQ(many->size(), 300u);
  EXPECT_FALSE(Insitu("[{", true).ok());
  EXPECT_FALSE(Insitu("", true).ok());
  auto one = Insitu(R"({"type":"Ping","index":7,"ack":3})", true);
  ASSERT_OK(one);
  EXPECT_EQ((*one)[0].ack, 3u);
}

TEST(ClientMessageTest, TextAfterANulIsIgnoredAsBefore) {
  std::string text = R"({"type":"Ping","index":1,"ack":0})";
  text.push_back('\0');
  text += "garbage";
  EXPECT_EQ(ParseClientFrame(text).ok(), Insitu(text, true).ok());
}

}  // namespace
}  // namespace jetstream::gateway
