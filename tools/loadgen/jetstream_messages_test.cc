#include "tools/loadgen/jetstream_messages.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::loadgen {
namespace {

constexpr char kRoot[] = "0f3c2a8e-5b1d-4c7e-9a11-3d2f6b7c8e90";

std::vector<ServerMessage> ParseAll(absl::string_view frame) {
  std::vector<ServerMessage> out;
  absl::Status s = ParseServerFrame(
      frame, [&](const ServerMessage& m) { out.push_back(m); });
  EXPECT_OK(s);
  return out;
}

TEST(JetstreamMessagesTest, BuildsClientMessages) {
  EXPECT_EQ(
      SessionCreateMessage(),
      R"({"type":"SessionCreate","index":0,"version":"0.2.0","params":{}})");
  EXPECT_EQ(
      ScopeFetchMessage(1, "canvas/load-3"),
      R"({"type":"ScopeFetch","index":1,"name":"canvas/load-3","params":{}})");
  EXPECT_EQ(PingMessage(17),
            R"({"type":"Ping","index":0,"ack":17,"resendMissing":false})");
  EXPECT_EQ(ScopeSyncMessage(2, 0, kRoot, "Canvas", 123456),
            absl::StrCat(
                R"({"type":"ScopeSync","index":2,"scopeIndex":0,)",
                R"("fragments":[{"type":"change","uuid":")", kRoot,
                R"(","clsName":"Canvas","properties":{"name":"t123456"}}]})"));
}

TEST(JetstreamMessagesTest, EscapesScopeNames) {
  EXPECT_EQ(ScopeFetchMessage(4, "a\"b"),
            R"({"type":"ScopeFetch","index":4,"name":"a\"b","params":{}})");
}

TEST(JetstreamMessagesTest, ReadsTheHandshake) {
  auto m = ParseAll(
      R"([{"type":"SessionCreateReply","index":0,"sessionToken":"abc"}])");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].type, ServerMessageType::kSessionCreateReply);
  EXPECT_FALSE(m[0].error);

  m = ParseAll(
      R"([{"type":"SessionCreateReply","index":0,"error":{"message":"Session creation denied"}}])");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_TRUE(m[0].error);
}

TEST(JetstreamMessagesTest, ReadsFetchReplyAndState) {
  auto m = ParseAll(absl::StrCat(
      R"([{"type":"ScopeFetchReply","index":1,"replyTo":1,"scopeIndex":0},)",
      R"({"type":"ScopeState","index":2,"scopeIndex":0,"rootUUID":")", kRoot,
      R"(","fragments":[{"type":"change","uuid":")", kRoot,
      R"(","clsName":"Canvas","properties":{"name":"Shapes Demo","shapes":[]}}]}])"));
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].type, ServerMessageType::kScopeFetchReply);
  EXPECT_EQ(m[0].index, 1u);
  EXPECT_EQ(m[0].reply_to, 1u);
  EXPECT_FALSE(m[0].error);
  EXPECT_EQ(m[1].type, ServerMessageType::kScopeState);
  EXPECT_EQ(m[1].index, 2u);
  EXPECT_EQ(m[1].root_uuid, kRoot);
  EXPECT_EQ(m[1].root_class, "Canvas");
  EXPECT_EQ(m[1].fragment_count, 1u);
  EXPECT_EQ(m[1].stamp_us, -1);

  m = ParseAll(
      R"([{"type":"ScopeFetchReply","index":1,"replyTo":1,"error":{"message":"No such scope"}}])");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_TRUE(m[0].error);
}

TEST(JetstreamMessagesTest, ReadsSyncRepliesAndStamps) {
  auto m = ParseAll(
      R"([{"type":"ScopeSyncReply","index":3,"replyTo":2,"fragmentReplies":[{}]},)"
      R"({"type":"ScopeSync","index":4,"scopeIndex":1,"fragments":[)"
      R"({"type":"change","uuid":"u","clsName":"Canvas","properties":{"name":"t987"}}]},)"
      R"({"type":"Ping","index":0,"ack":2,"resendMissing":false}])");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].type, ServerMessageType::kScopeSyncReply);
  EXPECT_EQ(m[0].reply_to, 2u);
  EXPECT_FALSE(m[0].error);
  EXPECT_EQ(m[1].type, ServerMessageType::kScopeSync);
  EXPECT_EQ(m[1].scope_index, 1u);
  EXPECT_EQ(m[1].stamp_us, 987);
  EXPECT_EQ(m[1].fragment_count, 1u);
  EXPECT_EQ(m[2].type, ServerMessageType::kPing);
  EXPECT_EQ(m[2].index, 0u);

  m = ParseAll(
      R"({"type":"ScopeSyncReply","index":5,"replyTo":4,"fragmentReplies":[{},{"error":{"message":"x"}}]})");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_TRUE(m[0].error);
}

// The fast path (canonical single-message frames) and the full parse
// (the same message with its keys in another order) agree.
TEST(JetstreamMessagesTest, FastPathAgreesWithTheFullParse) {
  const std::string fragments = absl::StrCat(
      R"([{"type":"add","uuid":"a","clsName":"Shape","properties":{"x":1}},)",
      R"({"type":"change","uuid":")", kRoot,
      R"(","clsName":"Canvas","properties":{"name":"t42","shapes":["a"]}}])");
  auto fast = ParseAll(absl::StrCat(
      R"([{"type":"ScopeSync","index":7,"scopeIndex":2,"fragments":)",
      fragments, "}]"));
  auto full = ParseAll(absl::StrCat(
      R"([{"index":7,"type":"ScopeSync","scopeIndex":2,"fragments":)",
      fragments, "}]"));
  ASSERT_EQ(fast.size(), 1u);
  ASSERT_EQ(full.size(), 1u);
  for (const ServerMessage& m : {fast[0], full[0]}) {
    EXPECT_EQ(m.type, ServerMessageType::kScopeSync);
    EXPECT_EQ(m.index, 7u);
    EXPECT_EQ(m.scope_index, 2u);
    EXPECT_EQ(m.fragment_count, 2u);
    EXPECT_EQ(m.stamp_us, 42);
  }

  fast = ParseAll(
      R"([{"type":"ScopeSyncReply","index":9,"replyTo":4,"fragmentReplies":[{},{}]}])");
  full = ParseAll(
      R"([{"replyTo":4,"type":"ScopeSyncReply","index":9,"fragmentReplies":[{},{}]}])");
  for (const ServerMessage& m : {fast[0], full[0]}) {
    EXPECT_EQ(m.type, ServerMessageType::kScopeSyncReply);
    EXPECT_EQ(m.index, 9u);
    EXPECT_EQ(m.reply_to, 4u);
    EXPECT_FALSE(m.error);
  }
}

// Coalesced ScopeSyncs, scanned, read as the full parse reads the same
// frame with its keys reordered (which the scan does not take).
TEST(JetstreamMessagesTest, CoalescedScopeSyncsAgreeWithTheFullParse) {
  auto sync = [](bool canonical, int index, absl::string_view fragments) {
    return absl::StrCat(
        canonical ? R"({"type":"ScopeSync","index":)" : R"({"index":)", index,
        canonical ? "" : R"(,"type":"ScopeSync")",
        R"(,"scopeIndex":1,"fragments":[)", fragments, "]}");
  };
  const std::string stamped = absl::StrCat(
      R"({"type":"add","uuid":"a","clsName":"Shape","properties":{"x":[1]}},)",
      R"({"type":"change","uuid":")", kRoot,
      R"(","clsName":"Canvas","properties":{"name":"t77"}})");
  // A string holding what looks like a message start, escaped as JSON has it.
  const std::string tricky =
      R"({"type":"change","uuid":"u","properties":{"name":"{\"type\":\"ScopeSync\",\"index\":9"}})";
  for (bool canonical : {true, false}) {
    SCOPED_TRACE(canonical ? "scanned" : "parsed");
    auto m = ParseAll(absl::StrCat("[", sync(canonical, 5, stamped), ",",
                                   sync(canonical, 6, ""), ",",
                                   sync(canonical, 7, tricky), "]"));
    ASSERT_EQ(m.size(), 3u);
    EXPECT_EQ(m[0].type, ServerMessageType::kScopeSync);
    EXPECT_EQ(m[0].index, 5u);
    EXPECT_EQ(m[0].scope_index, 1u);
    EXPECT_EQ(m[0].fragment_count, 2u);
    EXPECT_EQ(m[0].stamp_us, 77);
    EXPECT_EQ(m[1].index, 6u);
    EXPECT_EQ(m[1].fragment_count, 0u);
    EXPECT_EQ(m[1].stamp_us, -1);
    EXPECT_EQ(m[2].index, 7u);
    EXPECT_EQ(m[2].fragment_count, 1u);
    EXPECT_EQ(m[2].stamp_us, -1);
  }
}

TEST(JetstreamMessagesTest, FastPathLeavesTheRestToTheFullParse) {
  // An error in a fragment reply, two messages in one frame, a fragment of
  // an unknown type: all still read correctly.
  auto m = ParseAll(
      R"([{"type":"ScopeSyncReply","index":9,"replyTo":4,"fragmentReplies":[{},{"error":{"message":"x"}}]}])");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_TRUE(m[0].error);

  m = ParseAll(
      R"([{"type":"ScopeSync","index":3,"scopeIndex":0,"fragments":[]},)"
      R"({"type":"ScopeSync","index":4,"scopeIndex":0,"fragments":[]}])");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].index, 3u);
  EXPECT_EQ(m[1].index, 4u);

  m = ParseAll(
      R"([{"type":"ScopeSync","index":3,"scopeIndex":0,"fragments":[{"type":"remove","uuid":"u"}]}])");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].fragment_count, 1u);

  // ScopeSyncs with a Ping between them, and a remove in the second one.
  m = ParseAll(
      R"([{"type":"ScopeSync","index":3,"scopeIndex":0,"fragments":[]},)"
      R"({"type":"Ping","index":0,"ack":1,"resendMissing":false},)"
      R"({"type":"ScopeSync","index":4,"scopeIndex":0,"fragments":[]},)"
      R"({"type":"ScopeSync","index":5,"scopeIndex":0,"fragments":[{"type":"remove","uuid":"u"}]}])");
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[1].type, ServerMessageType::kPing);
  EXPECT_EQ(m[2].index, 4u);
  EXPECT_EQ(m[3].index, 5u);
  EXPECT_EQ(m[3].fragment_count, 1u);

  int calls = 0;
  EXPECT_FALSE(
      ParseServerFrame(
          R"([{"type":"ScopeSync","index":3,"scopeIndex":0,"fragments":[}]})",
          [&](const ServerMessage&) { ++calls; })
          .ok());
  // The first of two ScopeSyncs scans; the second is broken: neither is
  // passed on.
  EXPECT_FALSE(
      ParseServerFrame(
          R"([{"type":"ScopeSync","index":3,"scopeIndex":0,"fragments":[]},)"
          R"({"type":"ScopeSync","index":4,"scopeIndex":0,"fragments":[}]])",
          [&](const ServerMessage&) { ++calls; })
          .ok());
  EXPECT_EQ(calls, 0);
}

TEST(JetstreamMessagesTest, RejectsMalformedFrames) {
  int calls = 0;
  auto count = [&](const ServerMessage&) { ++calls; };
  EXPECT_FALSE(ParseServerFrame("not json", count).ok());
  EXPECT_FALSE(ParseServerFrame("[1]", count).ok());
  EXPECT_FALSE(
      ParseServerFrame(R"([{"type":"Ping","index":0},{"index":1}])", count)
          .ok());
  EXPECT_EQ(calls, 0);
}

TEST(JetstreamMessagesTest, ParsesStamps) {
  EXPECT_EQ(ParseStamp("t0"), 0);
  EXPECT_EQ(ParseStamp("t1234567890123"), 1234567890123);
  EXPECT_EQ(ParseStamp("t"), -1);
  EXPECT_EQ(ParseStamp("x12"), -1);
  EXPECT_EQ(ParseStamp("t12a"), -1);
  EXPECT_EQ(ParseStamp("Shapes Demo"), -1);
}

}  // namespace
}  // namespace jetstream::loadgen
