// Protocol conformance (docs/protocol.md#conformance and the decisions D1,
// D4, D5, D11 of docs/protocol.md#differences) against
// the real gateway and sync service binaries over loopback.
//
// Absence of a message is proven with a later request of the same session
// (per-session order is total): its reply must come with nothing before it.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/e2e/system_fixture.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::SizeIs;

constexpr char kSessionCreate[] =
    R"({"type":"SessionCreate","index":0,"version":"0.2.0","params":{}})";

// No server pings: frames are exactly the replies the tests expect.
class ConformanceTest : public SystemFixture {
 protected:
  std::vector<std::string> GatewayFlags() override {
    return {"--ping_interval=1h"};
  }

  // A client with a session that fetched `scope`.
  std::unique_ptr<WsTestClient> ClientOn(const std::string& scope,
                                         Fetched* fetched) {
    std::unique_ptr<WsTestClient> c = ConnectWithSession();
    if (c == nullptr) return nullptr;
    absl::StatusOr<Fetched> f = FetchState(*c, scope);
    EXPECT_OK(f);
    if (!f.ok()) return nullptr;
    *fetched = *std::move(f);
    return c;
  }

  // The state fragments of `scope` as a fresh session sees them.
  std::string FreshStateFragments(const std::string& scope) {
    std::unique_ptr<WsTestClient> c = ConnectWithSession();
    if (c == nullptr) return "<no client>";
    absl::StatusOr<Fetched> f = FetchState(*c, scope);
    if (!f.ok()) return f.status().ToString();
    return Field(f->state, "fragments");
  }
};

// ---------------------------------------------------------------- handshake

TEST_F(ConformanceTest, HandshakeArrayOfTwoMessagesIsRefused) {
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(
      c
          ->SendText(absl::StrCat(
              "[", kSessionCreate,
              R"(,{"type":"Ping","index":0,"ack":0,"resendMissing":false}])"))
          .ok());
  absl::StatusOr<CloseInfo> close = c->WaitForClose();
  ASSERT_OK(close);
  EXPECT_EQ(close->code, 4096);
  EXPECT_EQ(CloseReasonType(*close), "unrecognized-handshake") << close->reason;
}

TEST_F(ConformanceTest, HandshakeOneElementArrayIsAccepted) {
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->SendText(absl::StrCat("[", kSessionCreate, "]")));
  absl::StatusOr<std::string> frame = c->ReceiveFrame();
  ASSERT_OK(frame);
  EXPECT_THAT(
      *frame,
      MatchesRegex(
          R"(\[\{"type":"SessionCreateReply","index":0,"sessionToken":"[0-9A-Za-z]+"\}\])"));
  // The session works.
  absl::StatusOr<Fetched> f = FetchState(*c, "Canvas");
  ASSERT_OK(f);
  EXPECT_EQ(f->scope_index, 0u);
}

TEST_F(ConformanceTest, HandshakeFirstMessageNotSessionCreateIsRefused) {
  for (const char* first :
       {R"({"type":"ScopeFetch","index":1,"name":"Canvas","params":{}})",
        R"({"type":"Ping","index":0,"ack":0,"resendMissing":true})",
        R"([{"type":"ScopeFetch","index":1,"name":"Canvas","params":{}}])"}) {
    SCOPED_TRACE(first);
    auto c = Connect();
    ASSERT_NE(c, nullptr);
    ASSERT_OK(c->SendText(first));
    absl::StatusOr<CloseInfo> close = c->WaitForClose();
    ASSERT_OK(close);
    EXPECT_EQ(close->code, 4096);
    EXPECT_EQ(CloseReasonType(*close), "unrecognized-handshake")
        << close->reason;
  }
}

TEST_F(ConformanceTest, HandshakeInvalidSemverIsDenied) {
  for (const char* version : {"not-a-version", "1.2", "01.2.3", ""}) {
    SCOPED_TRACE(version);
    auto c = Connect();
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(
        c->SendText(
             absl::StrCat(R"({"type":"SessionCreate","index":0,"version":")",
                          version, R"(","params":{}})"))
            .ok());
    absl::StatusOr<CloseInfo> close = c->WaitForClose();
    ASSERT_OK(close);
    EXPECT_EQ(close->code, 4096);
    EXPECT_EQ(CloseReasonMessage(*close), "Requires valid version")
        << close->reason;
  }
  // A missing version is refused too.
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(
      c->SendText(R"({"type":"SessionCreate","index":0,"params":{}})").ok());
  absl::StatusOr<CloseInfo> close = c->WaitForClose();
  ASSERT_OK(close);
  EXPECT_EQ(close->code, 4096);
  EXPECT_EQ(CloseReasonMessage(*close), "Requires version") << close->reason;
}

class HandshakeTimeoutTest : public SystemFixture {
 protected:
  std::vector<std::string> GatewayFlags() override {
    return {"--handshake_timeout=1s", "--ping_interval=1h"};
  }
};

TEST_F(HandshakeTimeoutTest, NoFrameWithinTimeoutIsDenied) {
  absl::Time start = absl::Now();
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  absl::StatusOr<CloseInfo> close = c->WaitForClose(absl::Seconds(10));
  ASSERT_OK(close);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900));
  EXPECT_EQ(close->code, 4096);
  EXPECT_EQ(CloseReasonType(*close), "session-establish-timedout")
      << close->reason;
  EXPECT_EQ(CloseReasonMessage(*close),
            "Session took long to establish and timed out");
}

TEST_F(HandshakeTimeoutTest, EstablishedSessionOutlivesTheHandshakeTimeout) {
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->CreateSession());
  // Once an idle connection opened after c has been refused, c's handshake
  // timer would certainly have fired too.
  auto idle = Connect();
  ASSERT_NE(idle, nullptr);
  absl::StatusOr<CloseInfo> close = idle->WaitForClose(absl::Seconds(10));
  ASSERT_OK(close);
  EXPECT_EQ(CloseReasonType(*close), "session-establish-timedout");
  absl::StatusOr<Fetched> f = FetchState(*c, "Canvas");
  ASSERT_OK(f);
}

// ------------------------------------------------------------ accept reply

TEST_F(ConformanceTest, AcceptReplyCarriesAlphanumericToken) {
  std::vector<std::string> tokens;
  for (int i = 0; i < 2; ++i) {
    auto c = Connect();
    ASSERT_NE(c, nullptr);
    ASSERT_OK(c->SendText(kSessionCreate));
    absl::StatusOr<std::string> frame = c->ReceiveFrame();
    ASSERT_OK(frame);
    EXPECT_THAT(
        *frame,
        MatchesRegex(
            R"(\[\{"type":"SessionCreateReply","index":0,"sessionToken":"[0-9A-Za-z]{60,88}"\}\])"));
    tokens.push_back(StringField(FrameMessages(*frame)[0], "sessionToken"));
  }
  EXPECT_NE(tokens[0], tokens[1]);
}

// -------------------------------------------------------------------- fetch

TEST_F(ConformanceTest, FetchReplyAndStateInOneFrame) {
  // A shape with only x and y set: its other properties are null.
  Fetched fa;
  auto a = ClientOn("Canvas", &fa);
  ASSERT_NE(a, nullptr);
  const std::string s1 = TestUuid(1, 1);
  absl::StatusOr<uint64_t> sync = a->SendScopeSync(
      fa.scope_index,
      FragmentList(
          {absl::StrCat(R"({"type":"add","uuid":")", s1,
                        R"(","clsName":"Shape","properties":{"x":1,"y":2}})"),
           SetShapesFragment(fa.root_uuid, {s1})}));
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*a, *sync);
  ASSERT_OK(r);
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{},{}]");

  auto b = ConnectWithSession();
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(
      b->SendText(
           R"({"type":"ScopeFetch","index":1,"name":"Canvas","params":{}})")
          .ok());
  absl::StatusOr<std::string> frame = b->ReceiveFrame();
  ASSERT_OK(frame);
  std::vector<std::string> messages = FrameMessages(*frame);
  ASSERT_THAT(messages, SizeIs(2)) << *frame;
  EXPECT_EQ(
      messages[0],
      R"({"type":"ScopeFetchReply","index":1,"replyTo":1,"scopeIndex":0})");
  const std::string& state = messages[1];
  EXPECT_EQ(MessageType(state), "ScopeState");
  EXPECT_EQ(UintField(state, "index"), 2);
  EXPECT_EQ(UintField(state, "scopeIndex"), 0);
  EXPECT_EQ(StringField(state, "rootUUID"), fa.root_uuid);
  EXPECT_EQ(
      Field(state, "fragments"),
      absl::StrCat(
          R"([{"type":"change","uuid":")", fa.root_uuid,
          R"(","clsName":"Canvas","properties":{"name":"Shapes Demo","shapes":[")",
          s1, R"("]}},)", R"({"type":"add","uuid":")", s1,
          R"(","clsName":"Shape","properties":{"x":1,"y":2,"width":null,"height":null,"color":null}}])"));
}

TEST_F(ConformanceTest, StateOmitsNullReferencesAndKeepsNullValues) {
  Fetched fa;
  auto a = ClientOn("ChatRoom", &fa);
  ASSERT_NE(a, nullptr);
  // A message without author (a null single reference) and without date.
  const std::string m = TestUuid(2, 1);
  absl::StatusOr<uint64_t> sync = a->SendScopeSync(
      fa.scope_index,
      FragmentList(
          {absl::StrCat(R"({"type":"add","uuid":")", m,
                        R"(","clsName":"Message","properties":{"text":"hi"}})"),
           absl::StrCat(R"({"type":"change","uuid":")", fa.root_uuid,
                        R"(","clsName":"ChatRoom","properties":{"messages":[")",
                        m, R"("]}})")}));
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*a, *sync);
  ASSERT_OK(r);
  ASSERT_EQ(Field(r->reply, "fragmentReplies"), "[{},{}]");

  auto b = ConnectWithSession();
  ASSERT_NE(b, nullptr);
  absl::StatusOr<Fetched> fb = FetchState(*b, "ChatRoom");
  ASSERT_OK(fb);
  JsonDocument state = ParseOrDie(fb->state);
  const JsonValue& fragments = state["fragments"];
  ASSERT_TRUE(fragments.IsArray());
  EXPECT_EQ(std::string(fragments[0]["type"].GetString()), "change");
  EXPECT_EQ(std::string(fragments[0]["uuid"].GetString()), fa.root_uuid);
  bool found = false;
  for (const JsonValue& f : fragments.GetArray()) {
    if (std::string(f["uuid"].GetString()) != m) continue;
    found = true;
    EXPECT_EQ(std::string(f["type"].GetString()), "add");
    const JsonValue& p = f["properties"];
    EXPECT_FALSE(p.HasMember("author")) << "null reference must be omitted";
    ASSERT_TRUE(p.HasMember("postedAt"));
    EXPECT_TRUE(p["postedAt"].IsNull());
    ASSERT_TRUE(p.HasMember("text"));
    EXPECT_EQ(std::string(p["text"].GetString()), "hi");
  }
  EXPECT_TRUE(found) << fb->state;
  // The attributes object's unset values are present as null.
  for (const JsonValue& f : fragments.GetArray()) {
    if (std::string(f["clsName"].GetString()) != "ChatRoomAttributes") continue;
    ASSERT_TRUE(f["properties"].HasMember("locale"));
    EXPECT_TRUE(f["properties"]["locale"].IsNull());
  }
}

TEST_F(ConformanceTest, FetchUnknownScopeIsRefused) {
  auto c = ConnectWithSession();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(
      c->SendText(
           R"({"type":"ScopeFetch","index":1,"name":"NoSuchScope","params":{}})")
          .ok());
  absl::StatusOr<std::string> frame = c->ReceiveFrame();
  ASSERT_OK(frame);
  EXPECT_EQ(
      *frame,
      R"([{"type":"ScopeFetchReply","index":1,"replyTo":1,"error":{"message":"No such scope"}}])");
  // The session goes on: its next fetch works and takes scopeIndex 0.
  c->SetNextIndex(2);
  absl::StatusOr<Fetched> f = FetchState(*c, "Canvas");
  ASSERT_OK(f);
  EXPECT_EQ(f->scope_index, 0u);
  EXPECT_EQ(UintField(f->reply, "index"), 2);
}

TEST_F(ConformanceTest, ScopeSyncToUnknownScopeIndexFailsEveryFragment) {
  Fetched f;
  auto c = ClientOn("Canvas", &f);
  ASSERT_NE(c, nullptr);
  absl::StatusOr<uint64_t> sync = c->SendScopeSync(
      5, FragmentList({ChangeFragment(f.root_uuid, "Canvas", R"({"name":"x"})"),
                       AddShapeFragment(TestUuid(3, 1), 1, 1)}));
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*c, *sync);
  ASSERT_OK(r);
  EXPECT_THAT(r->before, IsEmpty());
  const std::string error =
      R"({"error":{"message":"Scope at index 5 was not found","type":"scope-index-not-found"}})";
  EXPECT_EQ(Field(r->reply, "fragmentReplies"),
            absl::StrCat("[", error, ",", error, "]"));
  EXPECT_EQ(FreshStateFragments("Canvas"), Field(f.state, "fragments"));
}

// ------------------------------------------------------------------ indexes

TEST_F(ConformanceTest, ServerIndexesAreConsecutiveAcrossMessageKinds) {
  Fetched fb;
  auto b = ClientOn("Canvas", &fb);
  ASSERT_NE(b, nullptr);
  auto a = ConnectWithSession();
  ASSERT_NE(a, nullptr);
  std::vector<std::string> seen;  // every non-ping message of a
  absl::StatusOr<Fetched> fa = FetchState(*a, "Canvas");
  ASSERT_OK(fa);
  seen.push_back(fa->reply);
  seen.push_back(fa->state);
  // b's change reaches a as a ScopeSync.
  const std::string s = TestUuid(4, 1);
  absl::StatusOr<uint64_t> sync = b->SendScopeSync(
      fb.scope_index, FragmentList({AddShapeFragment(s, 1, 1),
                                    SetShapesFragment(fb.root_uuid, {s})}));
  ASSERT_OK(sync);
  ASSERT_OK(ReadUntilReply(*b, *sync));
  // a: a failed fetch, a fetch of another scope, a changeset of its own.
  absl::StatusOr<uint64_t> bad = a->SendScopeFetch("NoSuchScope");
  ASSERT_OK(bad);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*a, *bad);
  ASSERT_OK(r);
  for (auto& m : r->before) seen.push_back(m);
  seen.push_back(r->reply);
  absl::StatusOr<Fetched> chat = FetchState(*a, "ChatRoom");
  ASSERT_OK(chat);
  EXPECT_EQ(chat->scope_index, 1u);
  seen.push_back(chat->reply);
  seen.push_back(chat->state);
  absl::StatusOr<uint64_t> own = a->SendScopeSync(
      fa->scope_index, FragmentList({MoveShapeFragment(s, 7, 7)}));
  ASSERT_OK(own);
  r = ReadUntilReply(*a, *own);
  ASSERT_OK(r);
  for (auto& m : r->before) seen.push_back(m);
  seen.push_back(r->reply);

  std::vector<std::string> types;
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(UintField(seen[i], "index"), static_cast<int64_t>(i + 1))
        << seen[i];
    types.push_back(MessageType(seen[i]));
  }
  EXPECT_THAT(types, ElementsAre("ScopeFetchReply", "ScopeState", "ScopeSync",
                                 "ScopeFetchReply", "ScopeFetchReply",
                                 "ScopeState", "ScopeSyncReply"));
}

TEST_F(ConformanceTest, DuplicateClientIndexIsIgnored) {
  Fetched f;
  auto c = ClientOn("Canvas", &f);
  ASSERT_NE(c, nullptr);
  // Index 2: renames the canvas.
  ASSERT_TRUE(
      c
          ->SendText(absl::StrCat(
              R"({"type":"ScopeSync","index":2,"scopeIndex":0,"fragments":[)",
              ChangeFragment(f.root_uuid, "Canvas", R"({"name":"first"})"),
              "]}"))
          .ok());
  absl::StatusOr<UntilReply> r = ReadUntilReply(*c, 2);
  ASSERT_OK(r);
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{}]");
  // Index 2 again, and index 1: both duplicates, no reply, not applied.
  ASSERT_TRUE(
      c
          ->SendText(absl::StrCat(
              R"({"type":"ScopeSync","index":2,"scopeIndex":0,"fragments":[)",
              ChangeFragment(f.root_uuid, "Canvas", R"({"name":"dup"})"), "]}"))
          .ok());
  ASSERT_TRUE(
      c->SendText(
           R"({"type":"ScopeFetch","index":1,"name":"ChatRoom","params":{}})")
          .ok());
  // Index 3 is answered, and is the first thing that arrives.
  c->SetNextIndex(3);
  absl::StatusOr<std::vector<std::string>> before = Barrier(*c, f.scope_index);
  ASSERT_OK(before);
  EXPECT_THAT(*before, IsEmpty());
  EXPECT_THAT(FreshStateFragments("Canvas"),
              ::testing::HasSubstr(R"("name":"first")"));
}

TEST_F(ConformanceTest, IndexJumpIsAcceptedAndSkippedIndexesAreDuplicates) {
  Fetched f;
  auto c = ClientOn("Canvas", &f);
  ASSERT_NE(c, nullptr);
  // 1 -> 5: accepted.
  c->SetNextIndex(5);
  absl::StatusOr<uint64_t> jump = c->SendScopeSync(
      f.scope_index, FragmentList({ChangeFragment(f.root_uuid, "Canvas",
                                                  R"({"name":"jumped"})")}));
  ASSERT_OK(jump);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*c, *jump);
  ASSERT_OK(r);
  EXPECT_EQ(UintField(r->reply, "replyTo"), 5);
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{}]");
  // 3 was skipped: now a duplicate.
  ASSERT_TRUE(
      c
          ->SendText(absl::StrCat(
              R"({"type":"ScopeSync","index":3,"scopeIndex":0,"fragments":[)",
              ChangeFragment(f.root_uuid, "Canvas", R"({"name":"late"})"),
              "]}"))
          .ok());
  c->SetNextIndex(6);
  absl::StatusOr<std::vector<std::string>> before = Barrier(*c, f.scope_index);
  ASSERT_OK(before);
  EXPECT_THAT(*before, IsEmpty());
  EXPECT_THAT(FreshStateFragments("Canvas"),
              ::testing::HasSubstr(R"("name":"jumped")"));
}

// --------------------------------------------------------------------- ping

TEST_F(ConformanceTest, PingAckPrunesAndResendMissingResendsTheRest) {
  Fetched f;
  auto c = ClientOn("Canvas", &f);  // server messages 1 and 2
  ASSERT_NE(c, nullptr);
  absl::StatusOr<uint64_t> sync = c->SendScopeSync(
      f.scope_index, FragmentList({ChangeFragment(f.root_uuid, "Canvas",
                                                  R"({"name":"pinged"})")}));
  ASSERT_OK(sync);
  ASSERT_EQ(*sync, 2u);
  absl::StatusOr<std::string> frame = c->ReceiveFrame();  // message 3
  ASSERT_OK(frame);
  const std::string reply3 = FrameMessages(*frame)[0];
  EXPECT_EQ(UintField(reply3, "index"), 3);

  // Ack 2 (no reply), then ask for everything un-acked with ack 0: only 3
  // is left.
  ASSERT_OK(c->SendPing(2, false));
  ASSERT_OK(c->SendPing(0, true));
  frame = c->ReceiveFrame();
  ASSERT_OK(frame);
  std::vector<std::string> messages = FrameMessages(*frame);
  ASSERT_THAT(messages, SizeIs(2)) << *frame;
  EXPECT_EQ(messages[0],
            R"({"type":"Ping","index":0,"ack":2,"resendMissing":true})");
  EXPECT_EQ(messages[1], reply3);

  // Nothing un-acked after ack 3: the reply Ping alone.
  ASSERT_OK(c->SendPing(3, true));
  frame = c->ReceiveFrame();
  ASSERT_OK(frame);
  EXPECT_EQ(*frame,
            R"([{"type":"Ping","index":0,"ack":2,"resendMissing":true}])");
}

TEST_F(ConformanceTest, ResendMissingResendsUnackedInOrderInOneFrame) {
  Fetched fb;
  auto b = ClientOn("Canvas", &fb);
  ASSERT_NE(b, nullptr);
  Fetched fa;
  auto a = ClientOn("Canvas", &fa);  // a's messages 1, 2
  ASSERT_NE(a, nullptr);
  // Three changes by b: a receives ScopeSyncs 3, 4, 5.
  std::vector<std::string> syncs;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<uint64_t> s = b->SendScopeSync(
        fb.scope_index, FragmentList({ChangeFragment(
                            fb.root_uuid, "Canvas",
                            absl::StrCat(R"({"name":"n)", i, R"("})"))}));
    ASSERT_OK(s);
    ASSERT_OK(ReadUntilReply(*b, *s));
    absl::StatusOr<std::string> m = a->NextMessage();
    ASSERT_OK(m);
    EXPECT_EQ(MessageType(*m), "ScopeSync");
    syncs.push_back(*m);
  }
  ASSERT_OK(a->SendPing(3, true));
  absl::StatusOr<std::string> frame = a->ReceiveFrame();
  ASSERT_OK(frame);
  std::vector<std::string> messages = FrameMessages(*frame);
  ASSERT_THAT(messages, SizeIs(3)) << *frame;
  // a has sent only its fetch (index 1).
  EXPECT_EQ(messages[0],
            R"({"type":"Ping","index":0,"ack":1,"resendMissing":true})");
  EXPECT_EQ(messages[1], syncs[1]);
  EXPECT_EQ(messages[2], syncs[2]);
}

TEST_F(ConformanceTest, PlainPingGetsNoReply) {
  Fetched f;
  auto c = ClientOn("Canvas", &f);
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->SendPing(2, false));
  ASSERT_OK(c->SendText(R"({"type":"Ping","index":0,"ack":0})"));
  absl::StatusOr<std::vector<std::string>> before = Barrier(*c, f.scope_index);
  ASSERT_OK(before);
  EXPECT_THAT(*before, IsEmpty());
}

class PingTest : public SystemFixture {
 protected:
  std::vector<std::string> GatewayFlags() override {
    return {"--ping_interval=300ms", "--ping_jitter=100ms"};
  }
};

TEST_F(PingTest, ServerPingsPeriodicallyWithLastClientIndex) {
  auto c = ConnectWithSession();
  ASSERT_NE(c, nullptr);
  absl::StatusOr<Fetched> f = FetchState(*c, "Canvas");  // client index 1
  ASSERT_OK(f);
  absl::StatusOr<uint64_t> sync = c->SendScopeSync(f->scope_index, "[]");  // 2
  ASSERT_OK(sync);
  ASSERT_OK(ReadUntilReply(*c, *sync));
  // Pings sent after the reply carry ack 2.
  std::vector<absl::Time> arrivals;
  while (arrivals.size() < 3) {
    absl::StatusOr<std::string> m = c->NextMessage(absl::Seconds(5));
    ASSERT_OK(m);
    ASSERT_EQ(MessageType(*m), "Ping") << *m;
    arrivals.push_back(absl::Now());
    EXPECT_EQ(*m, R"({"type":"Ping","index":0,"ack":2,"resendMissing":false})");
  }
  // Periodic at roughly the configured interval, not a burst.
  EXPECT_GE(arrivals[2] - arrivals[0], absl::Milliseconds(300));
  EXPECT_LE(arrivals[2] - arrivals[0], absl::Seconds(4));
}

// --------------------------------------------------------------- changesets

TEST_F(ConformanceTest,
       ChangesetRepliesPerFragmentAndBroadcastExcludesOriginator) {
  Fetched fb;
  auto b = ClientOn("Canvas", &fb);
  ASSERT_NE(b, nullptr);
  Fetched fa;
  auto a = ClientOn("Canvas", &fa);
  ASSERT_NE(a, nullptr);
  const std::string s1 = TestUuid(5, 1);
  const std::string orphan = TestUuid(5, 2);
  const std::string unknown = TestUuid(5, 3);
  const std::string add_s1 = AddShapeFragment(s1, 1, 2);
  const std::string set_shapes = SetShapesFragment(fa.root_uuid, {s1});
  absl::StatusOr<uint64_t> sync = a->SendScopeSync(
      fa.scope_index,
      FragmentList({add_s1, AddShapeFragment(orphan, 3, 4), set_shapes,
                    MoveShapeFragment(unknown, 0, 0)}));
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*a, *sync);
  ASSERT_OK(r);
  EXPECT_THAT(r->before, IsEmpty());
  EXPECT_EQ(
      Field(r->reply, "fragmentReplies"),
      R"([{},{"error":{"message":"No parents, parent sync fragment failed"}},{},{"error":{"message":"ModelObject not found"}}])");
  // b gets exactly the applied fragments, in request order.
  absl::StatusOr<std::vector<std::string>> before_b =
      Barrier(*b, fb.scope_index);
  ASSERT_OK(before_b);
  ASSERT_THAT(*before_b, SizeIs(1));
  EXPECT_EQ(MessageType((*before_b)[0]), "ScopeSync");
  EXPECT_EQ(Field((*before_b)[0], "fragments"),
            FragmentList({add_s1, set_shapes}));
  // a got no broadcast of its own changeset.
  absl::StatusOr<std::vector<std::string>> before_a =
      Barrier(*a, fa.scope_index);
  ASSERT_OK(before_a);
  EXPECT_THAT(*before_a, IsEmpty());
}

TEST_F(ConformanceTest, OrphanRemovalIsVisibleInALaterFetch) {
  Fetched fa;
  auto a = ClientOn("Canvas", &fa);
  ASSERT_NE(a, nullptr);
  const std::string s1 = TestUuid(6, 1);
  const std::string s2 = TestUuid(6, 2);
  absl::StatusOr<uint64_t> sync = a->SendScopeSync(
      fa.scope_index,
      FragmentList({AddShapeFragment(s1, 1, 1), AddShapeFragment(s2, 2, 2),
                    SetShapesFragment(fa.root_uuid, {s1, s2})}));
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*a, *sync);
  ASSERT_OK(r);
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{},{},{}]");
  // s1 loses its only parent.
  sync = a->SendScopeSync(
      fa.scope_index, FragmentList({SetShapesFragment(fa.root_uuid, {s2})}));
  ASSERT_OK(sync);
  r = ReadUntilReply(*a, *sync);
  ASSERT_OK(r);
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{}]");
  auto c = ConnectWithSession();
  ASSERT_NE(c, nullptr);
  absl::StatusOr<Fetched> fc = FetchState(*c, "Canvas");
  ASSERT_OK(fc);
  JsonDocument state = ParseOrDie(fc->state);
  ASSERT_EQ(state["fragments"].Size(), 2u) << fc->state;
  EXPECT_EQ(std::string(state["fragments"][1]["uuid"].GetString()), s2);
  EXPECT_EQ(fc->state.find(s1), std::string::npos) << fc->state;
  // s1 is gone: changing it fails, and it can be added afresh.
  sync = a->SendScopeSync(fa.scope_index,
                          FragmentList({MoveShapeFragment(s1, 9, 9)}));
  ASSERT_OK(sync);
  r = ReadUntilReply(*a, *sync);
  ASSERT_OK(r);
  EXPECT_EQ(Field(r->reply, "fragmentReplies"),
            R"([{"error":{"message":"ModelObject not found"}}])");
}

TEST_F(ConformanceTest, MoveWithinOneChangesetKeepsTheObject) {
  Fetched fa;
  auto a = ClientOn("Canvas", &fa);
  ASSERT_NE(a, nullptr);
  const std::string s1 = TestUuid(7, 1);
  absl::StatusOr<uint64_t> sync = a->SendScopeSync(
      fa.scope_index, FragmentList({AddShapeFragment(s1, 1, 1),
                                    SetShapesFragment(fa.root_uuid, {s1})}));
  ASSERT_OK(sync);
  ASSERT_OK(ReadUntilReply(*a, *sync));
  // Out and back in within one changeset.
  sync = a->SendScopeSync(
      fa.scope_index, FragmentList({SetShapesFragment(fa.root_uuid, {}),
                                    SetShapesFragment(fa.root_uuid, {s1})}));
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*a, *sync);
  ASSERT_OK(r);
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{},{}]");
  sync = a->SendScopeSync(fa.scope_index,
                          FragmentList({MoveShapeFragment(s1, 5, 5)}));
  ASSERT_OK(sync);
  r = ReadUntilReply(*a, *sync);
  ASSERT_OK(r);
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{}]");
}

// docs/protocol.md#d4-no-empty-broadcasts
TEST_F(ConformanceTest, ChangesetWhoseFragmentsAllFailIsNotBroadcast) {
  Fetched fb;
  auto b = ClientOn("Canvas", &fb);
  ASSERT_NE(b, nullptr);
  Fetched fa;
  auto a = ClientOn("Canvas", &fa);
  ASSERT_NE(a, nullptr);
  absl::StatusOr<uint64_t> sync = a->SendScopeSync(
      fa.scope_index,
      FragmentList({MoveShapeFragment(TestUuid(8, 1), 1, 1),
                    ChangeFragment(fa.root_uuid, "Canvas", R"({"name":5})"),
                    AddShapeFragment(TestUuid(8, 2), 1, 1)}));
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*a, *sync);
  ASSERT_OK(r);
  EXPECT_EQ(
      Field(r->reply, "fragmentReplies"),
      R"([{"error":{"message":"ModelObject not found"}},{"error":{"message":"Not valid type at 'name', should be String"}},{"error":{"message":"No parents, parent sync fragment failed"}}])");
  absl::StatusOr<std::vector<std::string>> before = Barrier(*b, fb.scope_index);
  ASSERT_OK(before);
  EXPECT_THAT(*before, IsEmpty());
  // An empty changeset is not broadcast either.
  absl::StatusOr<std::vector<std::string>> before_a =
      Barrier(*a, fa.scope_index);
  ASSERT_OK(before_a);
  before = Barrier(*b, fb.scope_index);
  ASSERT_OK(before);
  EXPECT_THAT(*before, IsEmpty());
}

TEST_F(ConformanceTest,
       RejectedAtomicChangesetChangesNothing) {  // docs/protocol.md#d1-atomic
  Fetched fb;
  auto b = ClientOn("Canvas", &fb);
  ASSERT_NE(b, nullptr);
  Fetched fa;
  auto a = ClientOn("Canvas", &fa);
  ASSERT_NE(a, nullptr);
  const std::string s1 = TestUuid(9, 1);
  absl::StatusOr<uint64_t> sync = a->SendScopeSync(
      fa.scope_index, FragmentList({AddShapeFragment(s1, 1, 1),
                                    SetShapesFragment(fa.root_uuid, {s1})}));
  ASSERT_OK(sync);
  ASSERT_OK(ReadUntilReply(*a, *sync));
  absl::StatusOr<std::vector<std::string>> before = Barrier(*b, fb.scope_index);
  ASSERT_OK(before);
  ASSERT_THAT(*before, SizeIs(1));
  const std::string state_before = FreshStateFragments("Canvas");

  const std::string s2 = TestUuid(9, 2);
  sync = a->SendScopeSync(
      fa.scope_index,
      FragmentList({MoveShapeFragment(s1, 50, 60),
                    ChangeFragment(s1, "Shape", R"({"y":"bad"})"),
                    AddShapeFragment(s2, 3, 3),
                    SetShapesFragment(fa.root_uuid, {s1, s2})}),
      /*atomic=*/true);
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*a, *sync);
  ASSERT_OK(r);
  const std::string rejected =
      R"({"error":{"message":"Atomic changeset rejected: fragment 1 failed: Not valid type at 'y', should be Number","type":"atomic-changeset-rejected"}})";
  EXPECT_EQ(
      Field(r->reply, "fragmentReplies"),
      absl::StrCat(
          "[", rejected,
          R"(,{"error":{"message":"Not valid type at 'y', should be Number"}},)",
          rejected, ",", rejected, "]"));
  before = Barrier(*b, fb.scope_index);
  ASSERT_OK(before);
  EXPECT_THAT(*before, IsEmpty());
  EXPECT_EQ(FreshStateFragments("Canvas"), state_before);

  // The same changeset without the bad fragment goes through atomically.
  sync = a->SendScopeSync(
      fa.scope_index,
      FragmentList({MoveShapeFragment(s1, 50, 60), AddShapeFragment(s2, 3, 3),
                    SetShapesFragment(fa.root_uuid, {s1, s2})}),
      /*atomic=*/true);
  ASSERT_OK(sync);
  r = ReadUntilReply(*a, *sync);
  ASSERT_OK(r);
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{},{},{}]");
  before = Barrier(*b, fb.scope_index);
  ASSERT_OK(before);
  EXPECT_THAT(*before, SizeIs(1));
}

// ----------------------------------------------------------- frame parsing

TEST_F(ConformanceTest, FrameWithOneUnparsableMessageIsIgnoredWhole) {
  Fetched f;
  auto c = ClientOn("Canvas", &f);  // client index 1 used
  ASSERT_NE(c, nullptr);
  // A good ScopeSync (index 2) next to a message that does not parse.
  ASSERT_TRUE(
      c
          ->SendText(absl::StrCat(
              R"([{"type":"ScopeSync","index":2,"scopeIndex":0,"fragments":[)",
              ChangeFragment(f.root_uuid, "Canvas", R"({"name":"dropped"})"),
              R"(]},{"type":"Bogus","index":3}])"))
          .ok());
  // Index 2 was not consumed: a ScopeSync with index 2 is processed, and its
  // reply is the first thing that arrives.
  absl::StatusOr<std::vector<std::string>> before = Barrier(*c, f.scope_index);
  ASSERT_OK(before);
  EXPECT_THAT(*before, IsEmpty());
  EXPECT_EQ(c->NextIndex(), 3u);
  EXPECT_EQ(FreshStateFragments("Canvas"), Field(f.state, "fragments"));
}

TEST_F(ConformanceTest, ArrayFrameIsProcessedInIndexOrder) {
  Fetched f;
  auto c = ClientOn("Canvas", &f);
  ASSERT_NE(c, nullptr);
  // Sent as [3, 2]: sorted, both processed, replies in index order.
  ASSERT_TRUE(
      c
          ->SendText(absl::StrCat(
              R"([{"type":"ScopeSync","index":3,"scopeIndex":0,"fragments":[)",
              ChangeFragment(f.root_uuid, "Canvas", R"({"name":"three"})"),
              R"(]},{"type":"ScopeSync","index":2,"scopeIndex":0,"fragments":[)",
              ChangeFragment(f.root_uuid, "Canvas", R"({"name":"two"})"),
              "]}]"))
          .ok());
  absl::StatusOr<UntilReply> r = ReadUntilReply(*c, 3);
  ASSERT_OK(r);
  ASSERT_THAT(r->before, SizeIs(1));
  EXPECT_EQ(UintField(r->before[0], "replyTo"), 2);
  EXPECT_THAT(FreshStateFragments("Canvas"),
              ::testing::HasSubstr(R"("name":"three")"));
}

// ----------------------------------------- docs/protocol.md#d11-fetch-twice

TEST_F(ConformanceTest, FetchingTheSameScopeTwiceKeepsOneSubscription) {
  Fetched fb;
  auto b = ClientOn("Canvas", &fb);
  ASSERT_NE(b, nullptr);
  Fetched first;
  auto a = ClientOn("Canvas", &first);
  ASSERT_NE(a, nullptr);
  absl::StatusOr<Fetched> second = FetchState(*a, "Canvas");
  ASSERT_OK(second);
  EXPECT_EQ(second->scope_index, first.scope_index);
  EXPECT_EQ(UintField(second->state, "scopeIndex"),
            static_cast<int64_t>(first.scope_index));
  EXPECT_EQ(Field(second->state, "fragments"), Field(first.state, "fragments"));
  // Another scope gets the next index.
  absl::StatusOr<Fetched> chat = FetchState(*a, "ChatRoom");
  ASSERT_OK(chat);
  EXPECT_EQ(chat->scope_index, first.scope_index + 1);

  absl::StatusOr<uint64_t> sync = b->SendScopeSync(
      fb.scope_index, FragmentList({ChangeFragment(fb.root_uuid, "Canvas",
                                                   R"({"name":"once"})")}));
  ASSERT_OK(sync);
  ASSERT_OK(ReadUntilReply(*b, *sync));
  absl::StatusOr<std::vector<std::string>> before =
      Barrier(*a, first.scope_index);
  ASSERT_OK(before);
  ASSERT_THAT(*before, SizeIs(1));
  EXPECT_EQ(MessageType((*before)[0]), "ScopeSync");
  EXPECT_EQ(UintField((*before)[0], "scopeIndex"),
            static_cast<int64_t>(first.scope_index));
}

}  // namespace
}  // namespace jetstream::testing
