// The original JavaScript client (jetstream-js, "version":"0.1.0") as it
// behaves on the wire, against the real gateway and sync service: it sends
// Dates as ISO-8601 strings (JSON.stringify), reads them with
// `new Date(value)`, counts its indexes strictly, and after a dropped
// connection reconnects at once without a token and sends a Ping first
// (docs/protocol.md#client-js).
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/e2e/system_fixture.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// What the original client sends first on a reconnect.
constexpr char kPingFirst[] =
    R"({"type":"Ping","index":0,"ack":2,"resendMissing":false})";

class OriginalJsClientTest : public SystemFixture {
 protected:
  // `client` posts a chat message, Dates as ISO strings, and every
  // fragment applies.
  void ExpectPosts(WsTestClient& client) {
    absl::StatusOr<Fetched> room = FetchState(client, "ChatRoom");
    ASSERT_OK(room);
    absl::StatusOr<uint64_t> sync = client.SendScopeSync(
        room->scope_index,
        PostMessage(room->root_uuid, TestUuid(9, 1), TestUuid(9, 2),
                    R"("2016-02-29T23:59:59.999Z")",
                    R"("2016-03-01T00:00:00.000Z")"));
    ASSERT_OK(sync);
    absl::StatusOr<UntilReply> reply = ReadUntilReply(client, *sync);
    ASSERT_OK(reply);
    EXPECT_EQ(Field(reply->reply, "fragmentReplies"), "[{},{},{}]")
        << reply->reply;
  }

  // A connection with a session announcing `version`.
  std::unique_ptr<WsTestClient> SessionAs(const char* version) {
    std::unique_ptr<WsTestClient> c = Connect();
    if (c == nullptr) return nullptr;
    absl::StatusOr<std::string> token = c->CreateSession(version);
    EXPECT_OK(token);
    if (!token.ok()) return nullptr;
    return c;
  }

  // The changeset the original client sends to post a chat message: a new
  // User and Message (Dates as JSON.stringify writes them) and the room's
  // lists pointing at them.
  static std::string PostMessage(const std::string& room,
                                 const std::string& user,
                                 const std::string& message,
                                 const std::string& last_active,
                                 const std::string& posted_at) {
    return FragmentList(
        {absl::StrCat(
             R"({"type":"add","uuid":")", user,
             R"(","clsName":"User","properties":{"username":"ada","color":255,"lastActive":)",
             last_active, "}}"),
         absl::StrCat(R"({"type":"add","uuid":")", message,
                      R"(","clsName":"Message","properties":{"author":")", user,
                      R"(","postedAt":)", posted_at, R"(,"text":"hello"}})"),
         ChangeFragment(
             room, "ChatRoom",
             absl::StrCat(R"({"users":[")", user, R"("],"messages":[")",
                          message, R"("]})"))});
  }
};

// The property `key` of the fragment for `uuid` among `fragments` (a JSON
// array): a string as itself in quotes, a number as seconds with
// millisecond precision ("s:1420113605.250"), anything else "<other>";
// "<absent>" if no fragment sets it.
std::string PropertyOf(const JsonValue& fragments, const std::string& uuid,
                       const char* key) {
  if (!fragments.IsArray()) return "<absent>";
  for (const JsonValue& f : fragments.GetArray()) {
    if (!f.IsObject() || !f.HasMember("uuid") || !f["uuid"].IsString() ||
        f["uuid"].GetString() != uuid) {
      continue;
    }
    if (!f.HasMember("properties") || !f["properties"].HasMember(key)) continue;
    const JsonValue& v = f["properties"][key];
    if (v.IsString()) return absl::StrCat("\"", v.GetString(), "\"");
    if (v.IsNumber()) return absl::StrFormat("s:%.3f", v.GetDouble());
    return "<other>";
  }
  return "<absent>";
}

TEST_F(OriginalJsClientTest, PostsAChatMessageAndEveryClientReadsItsDates) {
  std::unique_ptr<WsTestClient> js = SessionAs("0.1.0");
  std::unique_ptr<WsTestClient> js_reader = SessionAs("0.1.3");
  std::unique_ptr<WsTestClient> ios = SessionAs("0.2.0");
  ASSERT_TRUE(js && js_reader && ios);
  absl::StatusOr<Fetched> room = FetchState(*js, "ChatRoom");
  absl::StatusOr<Fetched> room_js = FetchState(*js_reader, "ChatRoom");
  absl::StatusOr<Fetched> room_ios = FetchState(*ios, "ChatRoom");
  ASSERT_TRUE(room.ok() && room_js.ok() && room_ios.ok());

  const std::string user = TestUuid(7, 1);
  const std::string message = TestUuid(7, 2);
  // With and without fractional seconds, with Z and with an offset.
  absl::StatusOr<uint64_t> sync = js->SendScopeSync(
      room->scope_index,
      PostMessage(room->root_uuid, user, message, R"("2015-01-01T12:00:00Z")",
                  R"("2015-01-01T13:00:05.250+01:00")"));
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> reply = ReadUntilReply(*js, *sync);
  ASSERT_OK(reply);
  EXPECT_EQ(Field(reply->reply, "fragmentReplies"), "[{},{},{}]")
      << reply->reply;

  // Another original client reads ISO strings (what new Date() parses).
  absl::StatusOr<std::string> js_sync = js_reader->WaitFor("ScopeSync");
  ASSERT_OK(js_sync);
  JsonDocument js_doc = ParseOrDie(*js_sync);
  EXPECT_EQ(PropertyOf(js_doc["fragments"], user, "lastActive"),
            R"("2015-01-01T12:00:00.000Z")");
  EXPECT_EQ(PropertyOf(js_doc["fragments"], message, "postedAt"),
            R"("2015-01-01T12:00:05.250Z")");

  // Every other client reads seconds, as stored.
  absl::StatusOr<std::string> ios_sync = ios->WaitFor("ScopeSync");
  ASSERT_OK(ios_sync);
  JsonDocument ios_doc = ParseOrDie(*ios_sync);
  EXPECT_EQ(PropertyOf(ios_doc["fragments"], user, "lastActive"),
            "s:1420113600.000");
  EXPECT_EQ(PropertyOf(ios_doc["fragments"], message, "postedAt"),
            "s:1420113605.250");

  // Late joiners: the state says the same in each form.
  std::unique_ptr<WsTestClient> js_late = SessionAs("0.1.0");
  std::unique_ptr<WsTestClient> ios_late = SessionAs("0.2.0");
  ASSERT_TRUE(js_late && ios_late);
  absl::StatusOr<Fetched> js_state = FetchState(*js_late, "ChatRoom");
  absl::StatusOr<Fetched> ios_state = FetchState(*ios_late, "ChatRoom");
  ASSERT_TRUE(js_state.ok() && ios_state.ok());
  JsonDocument js_state_doc = ParseOrDie(js_state->state);
  JsonDocument ios_state_doc = ParseOrDie(ios_state->state);
  EXPECT_EQ(PropertyOf(js_state_doc["fragments"], message, "postedAt"),
            R"("2015-01-01T12:00:05.250Z")");
  EXPECT_EQ(PropertyOf(ios_state_doc["fragments"], message, "postedAt"),
            "s:1420113605.250");
  // Nothing but Dates changes form: the text stays the same.
  EXPECT_EQ(PropertyOf(js_state_doc["fragments"], message, "text"),
            R"("hello")");
}

TEST_F(OriginalJsClientTest, AStringThatIsNoDateIsRefusedAndNothingIsApplied) {
  std::unique_ptr<WsTestClient> js = SessionAs("0.1.0");
  ASSERT_NE(js, nullptr);
  absl::StatusOr<Fetched> room = FetchState(*js, "ChatRoom");
  ASSERT_OK(room);
  absl::StatusOr<uint64_t> sync = js->SendScopeSync(
      room->scope_index,
      PostMessage(room->root_uuid, TestUuid(8, 1), TestUuid(8, 2),
                  R"("2015-01-01T12:00:00.000Z")", R"("yesterday")"),
      /*atomic=*/true);
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> reply = ReadUntilReply(*js, *sync);
  ASSERT_OK(reply);
  EXPECT_THAT(reply->reply,
              HasSubstr("Not valid type at 'postedAt', should be Date"));

  std::unique_ptr<WsTestClient> other = SessionAs("0.2.0");
  ASSERT_NE(other, nullptr);
  absl::StatusOr<Fetched> state = FetchState(*other, "ChatRoom");
  ASSERT_OK(state);
  EXPECT_THAT(state->state, Not(HasSubstr(TestUuid(8, 2))));
}

// After its socket drops, the original client comes back without a token
// and sends a Ping first. That connection is refused with 4096; the client
// then starts a new session with SessionCreate and posts again.
TEST_F(OriginalJsClientTest, APingFirstReconnectIsRefusedAndANewSessionWorks) {
  std::unique_ptr<WsTestClient> js = SessionAs("0.1.0");
  ASSERT_NE(js, nullptr);
  ASSERT_OK(FetchState(*js, "ChatRoom"));
  js->Drop();

  std::unique_ptr<WsTestClient> again = Connect();
  ASSERT_NE(again, nullptr);
  ASSERT_OK(again->SendText(kPingFirst));
  absl::StatusOr<CloseInfo> close = again->WaitForClose(absl::Seconds(60));
  ASSERT_OK(close);
  EXPECT_EQ(close->code, 4096);
  EXPECT_EQ(CloseReasonType(*close), "unrecognized-handshake");

  std::unique_ptr<WsTestClient> fresh = SessionAs("0.1.0");
  ASSERT_NE(fresh, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectPosts(*fresh));
}

// With the tarpit on, as a gateway runs by default.
class TarpitTest : public OriginalJsClientTest {
 protected:
  std::vector<std::string> GatewayFlags() override {
    return {"--tarpit_first_delay=100ms", "--tarpit_max_delay=400ms"};
  }

  // Connects as the original client does after a drop (no token, a Ping
  // first) and waits for the refusal.
  void RefusedReconnect() {
    std::unique_ptr<WsTestClient> c = Connect();
    ASSERT_NE(c, nullptr);
    ASSERT_OK(c->SendText(kPingFirst));
    absl::StatusOr<CloseInfo> close = c->WaitForClose(absl::Seconds(60));
    ASSERT_OK(close);
    EXPECT_EQ(close->code, 4096);
    EXPECT_EQ(CloseReasonType(*close), "unrecognized-handshake");
  }
};

TEST_F(TarpitTest, AReconnectLoopIsHeldLongerAfterEachRefusal) {
  // The original client's loop: reconnect the moment the socket closes.
  const absl::Time start = absl::Now();
  constexpr int kAttempts = 6;
  for (int i = 0; i < kAttempts; ++i) {
    ASSERT_NO_FATAL_FAILURE(RefusedReconnect());
  }
  const absl::Duration elapsed = absl::Now() - start;
  // Held 100, 200, 400, 400, 400 and 400 ms: at most one socket per hold,
  // not thousands a second.
  EXPECT_GE(elapsed, absl::Milliseconds(1900));
  EXPECT_EQ(GatewayGauge(gateway_->metrics_port(),
                         "jetstream_gateway_connections_tarpitted_total")
                .value_or(-1),
            kAttempts);
}

class LongTarpitTest : public OriginalJsClientTest {
 protected:
  std::vector<std::string> GatewayFlags() override {
    return {"--tarpit_first_delay=1h", "--tarpit_max_delay=1h"};
  }
};

TEST_F(LongTarpitTest, AHeldConnectionDelaysNobodyElseFromItsAddress) {
  std::unique_ptr<WsTestClient> refused = Connect();
  ASSERT_NE(refused, nullptr);
  ASSERT_OK(refused->SendText(kPingFirst));
  ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(),
                           "jetstream_gateway_connections_held", 1));

  // Held for an hour, yet a client from the same address gets its session
  // and posts.
  std::unique_ptr<WsTestClient> fresh = SessionAs("0.1.0");
  ASSERT_NE(fresh, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectPosts(*fresh));
  EXPECT_EQ(GatewayGauge(gateway_->metrics_port(),
                         "jetstream_gateway_connections_held")
                .value_or(-1),
            1);

  // The held client gives up: the gateway lets it go.
  refused->Drop();
  EXPECT_TRUE(WaitForGauge(gateway_->metrics_port(),
                           "jetstream_gateway_connections_held", 0));
}

}  // namespace
}  // namespace jetstream::testing
