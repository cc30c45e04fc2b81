// The two-client transcript of docs/protocol.md#transcript, message by
// message, against
// the real gateway and sync service binaries.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/system_fixture.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

using ::testing::MatchesRegex;

constexpr char kS1[] = "6b1e0c3a-2f4d-4b8e-8c9a-1e2d3f4a5b6c";
constexpr char kS2[] = "a4d1c2b3-0000-4000-8000-00000000000a";

class TranscriptTest : public SystemFixture {};

TEST_F(TranscriptTest, AppendixA) {
  // A: handshake.
  auto a = Connect();
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(
      a->SendText(
           R"({"type":"SessionCreate","index":0,"version":"0.2.0","params":{}})")
          .ok());
  auto frame = a->ReceiveFrame();
  ASSERT_OK(frame);
  EXPECT_THAT(
      *frame,
      MatchesRegex(
          R"(\[\{"type":"SessionCreateReply","index":0,"sessionToken":"[0-9A-Za-z]{60,88}"\}\])"));

  // A fetches Canvas: reply and state in one frame.
  ASSERT_TRUE(
      a->SendText(
           R"({"type":"ScopeFetch","index":1,"name":"Canvas","params":{}})")
          .ok());
  frame = a->ReceiveFrame();
  ASSERT_OK(frame);
  JsonDocument doc = ParseOrDie(*frame);
  ASSERT_TRUE(doc.IsArray());
  ASSERT_EQ(doc.Size(), 2u) << *frame;
  EXPECT_EQ(std::string(doc[0]["type"].GetString()), "ScopeFetchReply");
  EXPECT_EQ(doc[0]["index"].GetUint64(), 1u);
  EXPECT_EQ(doc[0]["replyTo"].GetUint64(), 1u);
  EXPECT_EQ(doc[0]["scopeIndex"].GetUint64(), 0u);
  EXPECT_EQ(std::string(doc[1]["type"].GetString()), "ScopeState");
  EXPECT_EQ(doc[1]["index"].GetUint64(), 2u);
  EXPECT_EQ(doc[1]["scopeIndex"].GetUint64(), 0u);
  std::string root = doc[1]["rootUUID"].GetString();
  const JsonValue& state = doc[1]["fragments"];
  ASSERT_GE(state.Size(), 1u);
  EXPECT_EQ(std::string(state[0]["type"].GetString()), "change");
  EXPECT_EQ(std::string(state[0]["uuid"].GetString()), root);
  EXPECT_EQ(std::string(state[0]["clsName"].GetString()), "Canvas");
  EXPECT_EQ(std::string(state[0]["properties"]["name"].GetString()),
            "Shapes Demo");

  // B: its own counters.
  auto b = ConnectWithSession();
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(
      b->SendText(
           R"({"type":"ScopeFetch","index":1,"name":"Canvas","params":{}})")
          .ok());
  auto b_reply = b->WaitFor("ScopeFetchReply");
  ASSERT_OK(b_reply);
  EXPECT_EQ(Field(*b_reply, "index"), "1");
  EXPECT_EQ(Field(*b_reply, "scopeIndex"), "0");
  ASSERT_OK(b->WaitFor("ScopeState"));

  // A adds s2 and puts it on the canvas (no shapes before).
  std::string add = absl::StrCat(
      R"([{"type":"add","uuid":")", kS2,
      R"(","clsName":"Shape","properties":{"x":50,"y":50,"width":100,"height":100,"color":4279308287}},)",
      R"({"type":"change","uuid":")", root,
      R"(","clsName":"Canvas","properties":{"shapes":[")", kS2, R"("]}}])");
  ASSERT_TRUE(
      a
          ->SendText(absl::StrCat(
              R"({"type":"ScopeSync","index":2,"scopeIndex":0,"fragments":)",
              add, "}"))
          .ok());
  frame = a->ReceiveFrame();
  ASSERT_OK(frame);
  EXPECT_EQ(
      *frame,
      R"([{"type":"ScopeSyncReply","index":3,"replyTo":2,"fragmentReplies":[{},{}]}])");
  frame = b->ReceiveFrame();
  ASSERT_OK(frame);
  EXPECT_EQ(*frame,
            absl::StrCat(
                R"([{"type":"ScopeSync","index":3,"scopeIndex":0,"fragments":)",
                add, "}]"));

  // A: one bad fragment, one good one.
  std::string s1_add =
      absl::StrCat(R"([{"type":"add","uuid":")", kS1,
                   R"(","clsName":"Shape","properties":{"x":10,"y":10}},)",
                   R"({"type":"change","uuid":")", root,
                   R"(","clsName":"Canvas","properties":{"shapes":[")", kS1,
                   R"(",")", kS2, R"("]}}])");
  ASSERT_TRUE(
      a
          ->SendText(absl::StrCat(
              R"({"type":"ScopeSync","index":3,"scopeIndex":0,"fragments":)",
              s1_add, "}"))
          .ok());
  ASSERT_OK(a->ReceiveFrame());
  ASSERT_OK(b->ReceiveFrame());

  ASSERT_TRUE(
      a
          ->SendText(absl::StrCat(
              R"({"type":"ScopeSync","index":4,"scopeIndex":0,"fragments":[)",
              R"({"type":"change","uuid":")", kS2,
              R"(","clsName":"Shape","properties":{"x":"left"}},)",
              R"({"type":"change","uuid":")", kS1,
              R"(","clsName":"Shape","properties":{"x":20}}]})"))
          .ok());
  frame = a->ReceiveFrame();
  ASSERT_OK(frame);
  EXPECT_EQ(
      *frame,
      R"([{"type":"ScopeSyncReply","index":5,"replyTo":4,"fragmentReplies":[{"error":{"message":"Not valid type at 'x', should be Number"}},{}]}])");
  frame = b->ReceiveFrame();
  ASSERT_OK(frame);
  EXPECT_EQ(
      *frame,
      absl::StrCat(
          R"([{"type":"ScopeSync","index":5,"scopeIndex":0,"fragments":[{"type":"change","uuid":")",
          kS1, R"(","clsName":"Shape","properties":{"x":20}}]}])"));

  // A removes s1 from the canvas: it leaves the scope.
  std::string remove = absl::StrCat(
      R"([{"type":"change","uuid":")", root,
      R"(","clsName":"Canvas","properties":{"shapes":[")", kS2, R"("]}}])");
  ASSERT_TRUE(
      a
          ->SendText(absl::StrCat(
              R"({"type":"ScopeSync","index":5,"scopeIndex":0,"fragments":)",
              remove, "}"))
          .ok());
  frame = a->ReceiveFrame();
  ASSERT_OK(frame);
  EXPECT_EQ(
      *frame,
      R"([{"type":"ScopeSyncReply","index":6,"replyTo":5,"fragmentReplies":[{}]}])");
  frame = b->ReceiveFrame();
  ASSERT_OK(frame);
  EXPECT_EQ(*frame,
            absl::StrCat(
                R"([{"type":"ScopeSync","index":6,"scopeIndex":0,"fragments":)",
                remove, "}]"));

  // A client ping without resendMissing gets no answer; the next reply is
  // the first thing A receives afterwards.
  ASSERT_TRUE(
      a->SendText(R"({"type":"Ping","index":0,"ack":6,"resendMissing":false})")
          .ok());
  ASSERT_TRUE(
      a->SendText(
           R"({"type":"ScopeFetch","index":6,"name":"Canvas","params":{}})")
          .ok());
  frame = a->ReceiveFrame();
  ASSERT_OK(frame);
  doc = ParseOrDie(*frame);
  EXPECT_EQ(std::string(doc[0]["type"].GetString()), "ScopeFetchReply");
  // docs/protocol.md#d11-fetch-twice: the same scope keeps its scopeIndex
  // and gets a fresh state; s1 is gone.
  EXPECT_EQ(doc[0]["scopeIndex"].GetUint64(), 0u);
  EXPECT_EQ(std::string(doc[1]["type"].GetString()), "ScopeState");
  EXPECT_EQ(doc[1]["fragments"].Size(), 2u) << *frame;

  // B reconnects with its token after missing a change.
  // (Resume is covered in depth by resume_test.)
}

}  // namespace
}  // namespace jetstream::testing
