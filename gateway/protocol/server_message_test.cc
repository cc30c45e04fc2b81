#include "gateway/protocol/server_message.h"

#include <cstdint>
#include <limits>
#include <string>

#include "gateway/protocol/server_frame.h"
#include "gtest/gtest.h"

namespace jetstream::gateway {
namespace {

constexpr char kFragments[] =
    R"([{"type":"change","uuid":"1a2b","clsName":"Shape","properties":{"x":1}}])";

TEST(ServerMessageTest, SharedScopeSyncHasTheTextOfEncodeScopeSync) {
  auto body = EncodeScopeSyncBody(kFragments);
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (auto [index, scope_index] :
       {std::pair<uint64_t, uint64_t>{1, 0}, {42, 7}, {kMax, kMax}}) {
    ServerMessage m = EncodeScopeSyncMessage(index, scope_index, body);
    EXPECT_EQ(m.ToString(), EncodeScopeSync(index, scope_index, kFragments));
    EXPECT_EQ(m.size(), m.ToString().size());
  }
}

TEST(ServerMessageTest, RecipientsShareOneBody) {
  auto body = EncodeScopeSyncBody(kFragments);
  ServerMessage a = EncodeScopeSyncMessage(3, 0, body);
  ServerMessage b = EncodeScopeSyncMessage(9, 1, body);
  EXPECT_EQ(a.body().get(), b.body().get());
  EXPECT_EQ(b.ToString(), EncodeScopeSync(9, 1, kFragments));
}

TEST(ServerFrameTest, FrameIsTheJsonArrayOfItsMessages) {
  std::string ping = EncodePing(4, false);
  std::string sync = EncodeScopeSync(5, 0, kFragments);
  ServerFrame frame(ServerMessage{ping});
  frame.Add(EncodeScopeSyncMessage(5, 0, EncodeScopeSyncBody(kFragments)));
  EXPECT_EQ(frame.ToString(), EncodeFrame({&ping, &sync}));
  EXPECT_EQ(frame.size(), frame.ToString().size());
  EXPECT_EQ(frame.message_count(), 2u);

  ServerFrame one(ServerMessage{ping});
  EXPECT_EQ(one.ToString(), EncodeFrame({&ping}));
  EXPECT_EQ(one.size(), one.ToString().size());
}

TEST(ServerFrameTest, SizeIsTheTextLengthThroughAddAppendAndClear) {
  ServerFrame frame;
  EXPECT_EQ(frame.size(), frame.ToString().size());  // "[]"
  frame.Add(ServerMessage{EncodePing(1, false)});
  EXPECT_EQ(frame.size(), frame.ToString().size());
  ServerFrame later(ServerMessage{EncodePing(2, true)});
  later.Add(ServerMessage("{\"n\":3}"));
  frame.Append(std::move(later));
  EXPECT_EQ(frame.message_count(), 3u);
  EXPECT_EQ(frame.size(), frame.ToString().size());
  EXPECT_TRUE(later.empty());
  EXPECT_EQ(later.size(), 2u);
  frame.clear();
  EXPECT_EQ(frame.size(), 2u);
}

TEST(ServerFrameTest, PiecesAreNeverEmpty) {
  ServerFrame frame(ServerMessage{EncodePing(0, true)});
  frame.Add(EncodeScopeSyncMessage(1, 0, EncodeScopeSyncBody("[]")));
  frame.ForEachPiece([](absl::string_view p) { EXPECT_FALSE(p.empty()); });
}

}  // namespace
}  // namespace jetstream::gateway
