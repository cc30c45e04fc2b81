// Hostile and malformed client input against the real binaries. Each case
// gets the documented behaviour (docs/protocol.md#r-frame-2,
// docs/protocol.md#parsing, docs/protocol.md#server-receive: the frame is
// dropped silently and the session goes on, or the connection is closed), and a
// second client on the same scope is never affected: it keeps receiving
// broadcasts and the scope's state stays what its messages say.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/e2e/system_fixture.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class BadInputTest : public SystemFixture {
 protected:
  std::vector<std::string> GatewayFlags() override {
    std::vector<std::string> flags = {"--ping_interval=1h"};
    for (const std::string& f : ExtraFlags()) flags.push_back(f);
    return flags;
  }
  virtual std::vector<std::string> ExtraFlags() { return {}; }

  void SetUp() override {
    SystemFixture::SetUp();
    if (HasFatalFailure()) return;
    observer_ = ConnectWithSession();
    ASSERT_NE(observer_, nullptr);
    absl::StatusOr<Fetched> fo = FetchState(*observer_, "Canvas");
    ASSERT_OK(fo);
    observer_scope_ = fo->scope_index;
    root_ = fo->root_uuid;
    ASSERT_OK(observer_model_.ApplyState(fo->state));
    attacker_ = ConnectWithSession();
    ASSERT_NE(attacker_, nullptr);
    absl::StatusOr<Fetched> fa = FetchState(*attacker_, "Canvas");  // index 1
    ASSERT_OK(fa);
  }

  // The attacker's next request is answered first: whatever it sent before
  // got no reply (and was not applied: the observer saw nothing).
  void ExpectAttackerGotNothing() {
    absl::StatusOr<std::vector<std::string>> before = Barrier(*attacker_, 0);
    ASSERT_OK(before);
    EXPECT_THAT(*before, IsEmpty());
  }

  // A fresh writer changes the scope; the observer receives exactly that,
  // and its model equals the state a fresh fetch returns.
  void ExpectObserverUnaffected() {
    ++writes_;
    auto writer = ConnectWithSession();
    ASSERT_NE(writer, nullptr);
    absl::StatusOr<Fetched> fw = FetchState(*writer, "Canvas");
    ASSERT_OK(fw);
    const std::string shape = TestUuid(0xb0, writes_);
    const std::string fragments =
        FragmentList({AddShapeFragment(shape, writes_, writes_),
                      ChangeFragment(root_, "Canvas",
                                     absl::StrCat(R"({"name":"healthy )",
                                                  writes_, R"("})"))});
    absl::StatusOr<uint64_t> sync =
        writer->SendScopeSync(fw->scope_index, fragments);
    ASSERT_OK(sync);
    absl::StatusOr<UntilReply> r = ReadUntilReply(*writer, *sync);
    ASSERT_OK(r);
    // The shape has no parent: it fails, the rename goes through.
    EXPECT_EQ(
        Field(r->reply, "fragmentReplies"),
        R"([{"error":{"message":"No parents, parent sync fragment failed"}},{}])");
    absl::StatusOr<std::vector<std::string>> before =
        Barrier(*observer_, observer_scope_);
    ASSERT_OK(before);
    ASSERT_THAT(*before, SizeIs(1));
    ASSERT_EQ(MessageType((*before)[0]), "ScopeSync") << (*before)[0];
    EXPECT_EQ(Field((*before)[0], "fragments"),
              FragmentList({ChangeFragment(
                  root_, "Canvas",
                  absl::StrCat(R"({"name":"healthy )", writes_, R"("})"))}));
    ASSERT_TRUE(
        observer_model_.ApplyFragmentsJson(Field((*before)[0], "fragments"))
            .ok());
    absl::StatusOr<Fetched> fresh = FetchState(*writer, "Canvas");
    ASSERT_OK(fresh);
    ScopeModel now;
    ASSERT_OK(now.ApplyState(fresh->state));
    EXPECT_EQ(observer_model_.Canonical(), now.Canonical());
  }

  // Sends each frame, then checks nothing came of it and all is well.
  void SendAllAndExpectDropped(const std::vector<std::string>& frames) {
    for (const std::string& frame : frames) {
      SCOPED_TRACE(frame.substr(0, 200));
      ASSERT_OK(attacker_->SendText(frame));
      ExpectAttackerGotNothing();
      if (HasFatalFailure()) return;
    }
    ExpectObserverUnaffected();
  }

  std::unique_ptr<WsTestClient> observer_;
  uint64_t observer_scope_ = 0;
  std::string root_;
  ScopeModel observer_model_;
  std::unique_ptr<WsTestClient> attacker_;  // its client index 1 is used
  int writes_ = 0;
};

TEST_F(BadInputTest, NotJsonIsDropped) {
  SendAllAndExpectDropped({"hello{", R"({"type":"ScopeSync","index":)", "",
                           "null", "0", "false", R"("")", "42",
                           R"("ScopeSync")", "[]", "{}"});
}

TEST_F(BadInputTest, UnknownOrMissingTypeIsDropped) {
  SendAllAndExpectDropped(
      {R"({"type":"Bogus","index":2})", R"({"index":2})",
       R"({"type":5,"index":2})", R"({"type":null,"index":2})",
       R"([{"type":"scopesync","index":2,"scopeIndex":0,"fragments":[]}])"});
}

TEST_F(BadInputTest, ServerOnlyMessageTypesAreUnparseable) {
  // Not parseable by a server: dropped, index 2 not consumed.
  SendAllAndExpectDropped(
      {R"({"type":"ScopeFetchReply","index":2,"replyTo":1,"scopeIndex":0})",
       R"({"type":"ScopeSyncReply","index":2,"replyTo":1,"fragmentReplies":[]})"});
}

TEST_F(BadInputTest, ParseableButIgnoredTypesConsumeTheirIndex) {
  // Parsed and ignored (docs/protocol.md#msg-ignored), but the index
  // advances: 2..5 are used.
  for (
      const char* frame :
      {R"({"type":"Reply","index":2,"replyTo":1})",
       R"({"type":"SessionCreate","index":3,"version":"0.2.0","params":{}})",
       R"({"type":"SessionCreateReply","index":4,"sessionToken":"abc"})",
       R"({"type":"ScopeState","index":5,"scopeIndex":0,"rootUUID":"x","fragments":[]})"}) {
    ASSERT_OK(attacker_->SendText(frame));
  }
  // Index 5 is now a duplicate: no reply. Index 6 is answered first.
  ASSERT_TRUE(
      attacker_
          ->SendText(
              R"({"type":"ScopeSync","index":5,"scopeIndex":0,"fragments":[]})")
          .ok());
  attacker_->SetNextIndex(6);
  ExpectAttackerGotNothing();
  ExpectObserverUnaffected();
}

TEST_F(BadInputTest, WrongFieldTypesAreDropped) {
  const std::string change =
      ChangeFragment(root_, "Canvas", R"({"name":"bad"})");
  auto sync = [&](const std::string& fields) {
    return absl::StrCat(R"({"type":"ScopeSync",)", fields, "}");
  };
  SendAllAndExpectDropped({
      sync(absl::StrCat(R"("index":"str","scopeIndex":0,"fragments":[)", change,
                        "]")),
      sync(absl::StrCat(R"("index":-1,"scopeIndex":0,"fragments":[)", change,
                        "]")),
      sync(absl::StrCat(R"("index":2.5,"scopeIndex":0,"fragments":[)", change,
                        "]")),
      sync(absl::StrCat(R"("scopeIndex":0,"fragments":[)", change, "]")),
      sync(absl::StrCat(R"("index":2,"scopeIndex":"0","fragments":[)", change,
                        "]")),
      sync(absl::StrCat(R"("index":2,"scopeIndex":-1,"fragments":[)", change,
                        "]")),
      sync(absl::StrCat(R"("index":2,"fragments":[)", change, "]")),
      sync(absl::StrCat(R"("index":2,"scopeIndex":0,"fragments":)", change)),
      sync(R"("index":2,"scopeIndex":0,"fragments":"[]")"),
      sync(R"("index":2,"scopeIndex":0)"),
      sync(absl::StrCat(
          R"("index":2,"scopeIndex":0,"atomic":"yes","fragments":[)", change,
          "]")),
      sync(absl::StrCat(
          R"("index":2,"scopeIndex":0,"procedure":"Canvas.rename","fragments":[)",
          change, "]")),
      sync(absl::StrCat(
          R"("index":2,"scopeIndex":0,"atomic":true,"procedure":"rename","fragments":[)",
          change, "]")),
      // Bad fragments.
      sync(
          R"("index":2,"scopeIndex":0,"fragments":[{"type":"change","uuid":"not-a-uuid","clsName":"Canvas","properties":{"name":"bad"}}])"),
      sync(absl::StrCat(
          R"("index":2,"scopeIndex":0,"fragments":[{"type":"remove","uuid":")",
          root_, R"(","clsName":"Canvas"}])")),
      sync(absl::StrCat(
          R"("index":2,"scopeIndex":0,"fragments":[{"type":"change","uuid":")",
          root_, R"(","properties":{"name":"bad"}}])")),
      sync(absl::StrCat(
          R"("index":2,"scopeIndex":0,"fragments":[{"type":"change","uuid":")",
          root_,
          R"(","clsName":"Canvas","properties":{"name":{"nested":1}}}])")),
      sync(absl::StrCat(
          R"("index":2,"scopeIndex":0,"fragments":[{"type":"change","uuid":")",
          root_, R"(","clsName":"Canvas","properties":{"shapes":[[1]]}}])")),
      sync(absl::StrCat(
          R"("index":2,"scopeIndex":0,"fragments":[{"type":"change","uuid":")",
          root_, R"(","clsName":"Canvas","properties":{"shapes":[1,"a"]}}])")),
      sync(absl::StrCat(
          R"("index":2,"scopeIndex":0,"fragments":[{"type":"change","uuid":")",
          root_, R"(","clsName":"Canvas","properties":[1]}])")),
      sync(R"("index":2,"scopeIndex":0,"fragments":[5])"),
      // Other message kinds.
      R"({"type":"ScopeFetch","index":2,"name":5,"params":{}})",
      R"({"type":"ScopeFetch","index":2,"name":"Canvas","params":[1]})",
      R"({"type":"ScopeFetch","index":"2","name":"Canvas"})",
      R"({"type":"Ping","index":0,"ack":-1,"resendMissing":true})",
      R"({"type":"Ping","index":0,"ack":"1","resendMissing":true})",
      R"({"type":"Ping","index":0,"resendMissing":true})",
  });
}

TEST_F(BadInputTest, BinaryFrameIsParsedLikeText) {
  ASSERT_TRUE(
      attacker_
          ->SendBinary(absl::StrCat(
              R"({"type":"ScopeSync","index":2,"scopeIndex":0,"fragments":[)",
              ChangeFragment(root_, "Canvas", R"({"name":"binary"})"), "]}"))
          .ok());
  absl::StatusOr<UntilReply> r = ReadUntilReply(*attacker_, 2);
  ASSERT_OK(r);
  EXPECT_THAT(r->before, IsEmpty());
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{}]");
  absl::StatusOr<std::vector<std::string>> before =
      Barrier(*observer_, observer_scope_);
  ASSERT_OK(before);
  ASSERT_THAT(*before, SizeIs(1));
  ASSERT_TRUE(
      observer_model_.ApplyFragmentsJson(Field((*before)[0], "fragments"))
          .ok());
  EXPECT_THAT(observer_model_.Canonical(),
              ::testing::HasSubstr(R"(name:"binary")"));
  attacker_->SetNextIndex(3);
  ExpectObserverUnaffected();
}

TEST_F(BadInputTest, InvalidUtf8InABinaryFrameIsDropped) {
  ASSERT_OK(attacker_->SendBinary("\xff\xfe"));
  ASSERT_TRUE(attacker_
                  ->SendBinary("{\"type\":\"ScopeFetch\",\"index\":2,\"name\":"
                               "\"Can\xc3\x28vas\"}")
                  .ok());
  ExpectAttackerGotNothing();
  ExpectObserverUnaffected();
}

TEST_F(BadInputTest, InvalidUtf8InATextFrameFailsTheConnection) {
  // RFC 6455 8.1: a text frame must be UTF-8; the endpoint fails the
  // connection with 1007.
  ASSERT_TRUE(
      attacker_->SendText("{\"type\":\"Ping\",\"index\":0,\"ack\":\"\xff\"}")
          .ok());
  absl::StatusOr<CloseInfo> close = attacker_->WaitForClose();
  ASSERT_OK(close);
  EXPECT_EQ(close->code, 1007);
  ExpectObserverUnaffected();
}

TEST_F(BadInputTest, DeeplyNestedJsonIsSurvived) {
  const int kDepth = 100000;
  std::string open(kDepth, '['), close(kDepth, ']');
  std::string open_obj, close_obj;
  for (int i = 0; i < kDepth / 10; ++i) {
    open_obj += R"({"a":)";
    close_obj += "}";
  }
  SendAllAndExpectDropped({
      open,                                 // unterminated
      absl::StrCat(open, close),            // valid, but no message
      absl::StrCat("[", open, close, "]"),  // an array holding no message
      absl::StrCat(open_obj, "1", close_obj),
      absl::StrCat(
          R"({"type":"ScopeSync","index":2,"scopeIndex":0,"fragments":[{"type":"change","uuid":")",
          root_, R"(","clsName":"Canvas","properties":{"name":)", open, close,
          "}}]}"),
  });
}

TEST_F(BadInputTest, DeeplyNestedParamsAreSurvived) {
  // Params may hold any object (docs/protocol.md#msg-scope-fetch); a deep one
  // must neither crash the gateway nor stall the session. It is either answered
  // or dropped.
  const int kDepth = 450000;
  std::string deep =
      absl::StrCat(std::string(kDepth, '['), std::string(kDepth, ']'));
  ASSERT_TRUE(
      attacker_
          ->SendText(absl::StrCat(
              R"({"type":"ScopeFetch","index":2,"name":"ChatRoom","params":{"deep":)",
              deep, "}}"))
          .ok());
  attacker_->SetNextIndex(3);
  absl::StatusOr<std::vector<std::string>> before = Barrier(*attacker_, 0);
  ASSERT_OK(before);
  if (!before->empty()) {
    ASSERT_THAT(*before, SizeIs(2));
    EXPECT_EQ(UintField((*before)[0], "replyTo"), 2);
    EXPECT_EQ(MessageType((*before)[1]), "ScopeState");
  }
  // Ordinary nesting is fine.
  ASSERT_TRUE(
      attacker_
          ->SendText(absl::StrCat(
              R"({"type":"ScopeFetch","index":4,"name":"ChatRoom","params":{"a":)",
              std::string(20, '['), std::string(20, ']'),
              R"(,"b":{"c":{"d":1}}}})"))
          .ok());
  absl::StatusOr<UntilReply> shallow = ReadUntilReply(*attacker_, 4);
  ASSERT_OK(shallow);
  EXPECT_EQ(MessageType(shallow->reply), "ScopeFetchReply");
  EXPECT_GE(UintField(shallow->reply, "scopeIndex"), 0) << shallow->reply;
  ASSERT_TRUE(attacker_->NextMessage().ok());  // its ScopeState
  // A new session with deep params in its handshake.
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  absl::StatusOr<std::string> token =
      c->CreateSession("0.2.0", absl::StrCat(R"({"deep":)", deep, "}"));
  if (!token.ok()) {
    EXPECT_EQ(c->close_info().code, 4096) << token.status();
  }
  ExpectObserverUnaffected();
}

TEST_F(BadInputTest, TooManyMessagesInOneFrameIsDropped) {
  // Over the per-frame limit (1000): the whole frame is dropped, including
  // its ScopeSync.
  std::string frame = absl::StrCat(
      R"([{"type":"ScopeSync","index":2,"scopeIndex":0,"fragments":[)",
      ChangeFragment(root_, "Canvas", R"({"name":"flood"})"), "]}");
  for (int i = 0; i < 20000; ++i) {
    absl::StrAppend(&frame, R"(,{"type":"Ping","index":0,"ack":0})");
  }
  frame += "]";
  ASSERT_LT(frame.size(), 1u << 20);
  SendAllAndExpectDropped({frame});
}

TEST_F(BadInputTest, ManyMessagesWithinTheLimitAreProcessed) {
  std::string frame = "[";
  for (int i = 0; i < 999; ++i) {
    absl::StrAppend(
        &frame, R"({"type":"Ping","index":0,"ack":0,"resendMissing":false},)");
  }
  absl::StrAppend(
      &frame,
      R"({"type":"ScopeSync","index":2,"scopeIndex":0,"fragments":[]}])");
  ASSERT_OK(attacker_->SendText(frame));
  absl::StatusOr<UntilReply> r = ReadUntilReply(*attacker_, 2);
  ASSERT_OK(r);
  EXPECT_THAT(r->before, IsEmpty());
  attacker_->SetNextIndex(3);
  ExpectAttackerGotNothing();
  ExpectObserverUnaffected();
}

TEST_F(BadInputTest, IndexZeroScopeSyncIsProcessedWithoutConsumingAnIndex) {
  // Index 0 is never duplicate-checked (docs/protocol.md#indexes): processed
  // each time.
  for (const char* name : {"zero-a", "zero-b"}) {
    ASSERT_TRUE(
        attacker_
            ->SendText(absl::StrCat(
                R"({"type":"ScopeSync","index":0,"scopeIndex":0,"fragments":[)",
                ChangeFragment(root_, "Canvas",
                               absl::StrCat(R"({"name":")", name, R"("})")),
                "]}"))
            .ok());
    absl::StatusOr<UntilReply> r = ReadUntilReply(*attacker_, 0);
    ASSERT_OK(r);
    EXPECT_THAT(r->before, IsEmpty());
    EXPECT_EQ(MessageType(r->reply), "ScopeSyncReply");
    EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{}]");
    absl::StatusOr<std::vector<std::string>> before =
        Barrier(*observer_, observer_scope_);
    ASSERT_OK(before);
    ASSERT_THAT(*before, SizeIs(1));
    ASSERT_TRUE(
        observer_model_.ApplyFragmentsJson(Field((*before)[0], "fragments"))
            .ok());
  }
  // Index 2 is still free.
  absl::StatusOr<std::vector<std::string>> before = Barrier(*attacker_, 0);
  ASSERT_OK(before);
  EXPECT_THAT(*before, IsEmpty());
  EXPECT_EQ(attacker_->NextIndex(), 3u);
  ExpectObserverUnaffected();
}

TEST_F(BadInputTest, DecreasingAndRepeatedIndexesAreDuplicates) {
  const std::string change =
      ChangeFragment(root_, "Canvas", R"({"name":"late"})");
  attacker_->SetNextIndex(5);
  ExpectAttackerGotNothing();  // index 5 answered
  // 3 and 4 are below the last index: dropped as duplicates; so is 5.
  for (int index : {3, 4, 5, 1}) {
    ASSERT_TRUE(attacker_
                    ->SendText(absl::StrCat(
                        R"({"type":"ScopeSync","index":)", index,
                        R"(,"scopeIndex":0,"fragments":[)", change, "]}"))
                    .ok());
  }
  // One frame repeating an index: the second copy is a duplicate.
  ASSERT_TRUE(
      attacker_
          ->SendText(
              R"([{"type":"ScopeSync","index":6,"scopeIndex":0,"fragments":[]},)"
              R"({"type":"ScopeSync","index":6,"scopeIndex":0,"fragments":[]}])")
          .ok());
  absl::StatusOr<UntilReply> r = ReadUntilReply(*attacker_, 6);
  ASSERT_OK(r);
  EXPECT_THAT(r->before, IsEmpty());
  attacker_->SetNextIndex(7);
  ExpectAttackerGotNothing();
  ExpectObserverUnaffected();
}

class SmallFrameTest : public BadInputTest {
 protected:
  std::vector<std::string> ExtraFlags() override {
    return {"--max_frame_bytes=1000"};
  }
};

TEST_F(SmallFrameTest, OversizedFrameClosesWith1009) {
  // Under the limit: fine.
  std::string padding(600, ' ');
  ASSERT_TRUE(
      attacker_
          ->SendText(absl::StrCat(
              R"({"type":"ScopeSync","index":2,"scopeIndex":0,"fragments":[]})",
              padding))
          .ok());
  absl::StatusOr<UntilReply> r = ReadUntilReply(*attacker_, 2);
  ASSERT_OK(r);
  // Over it: the connection is closed with 1009 (message too big).
  ASSERT_TRUE(
      attacker_
          ->SendText(absl::StrCat(
              R"({"type":"ScopeSync","index":3,"scopeIndex":0,"fragments":[]})",
              std::string(2000, ' ')))
          .ok());
  absl::StatusOr<CloseInfo> close = attacker_->WaitForClose();
  ASSERT_OK(close);
  EXPECT_EQ(close->code, 1009);
  EXPECT_EQ(CloseReasonType(*close), "message-too-big");
  EXPECT_EQ(CloseReasonMessage(*close),
            "Message is over the limit of 1000 bytes");
  ExpectObserverUnaffected();
}

// At the default limit (1 MiB), with messages far over it that the client
// is still writing when the gateway decides: the client reads the 1009 and
// its reason, not a reset connection.
TEST_F(BadInputTest, AHugeMessageGets1009WithAReasonWhileStillBeingSent) {
  for (size_t size : {size_t{1} << 20, size_t{20} << 20}) {
    SCOPED_TRACE(size);
    std::unique_ptr<WsTestClient> big = ConnectWithSession();
    ASSERT_NE(big, nullptr);
    absl::StatusOr<Fetched> chat = FetchState(*big, "ChatRoom");
    ASSERT_OK(chat);
    // A string property as large as the whole limit.
    const std::string change = FragmentList({ChangeFragment(
        chat->root_uuid, "ChatRoom",
        absl::StrCat(R"({"name":")", std::string(size, 'n'), R"("})"))});
    // The write may end early: the gateway stops reading the message once
    // it is over the limit, and closes.
    (void)big->SendScopeSync(chat->scope_index, change);
    absl::StatusOr<CloseInfo> close = big->WaitForClose(absl::Seconds(60));
    ASSERT_OK(close);
    EXPECT_EQ(close->code, 1009);
    EXPECT_EQ(CloseReasonType(*close), "message-too-big");
  }
  ExpectObserverUnaffected();
}

// The fixture's attacker and observer hold two connections from 127.0.0.1;
// the third slot is for the test.
class ConnectionsPerAddressTest : public BadInputTest {
 protected:
  std::vector<std::string> ExtraFlags() override {
    return {"--max_connections_per_address=3"};
  }
  // Connects over the limit and expects the refusal.
  void ExpectRefused() {
    std::unique_ptr<WsTestClient> over = Connect();
    ASSERT_NE(over, nullptr);
    absl::StatusOr<CloseInfo> close = over->WaitForClose();
    ASSERT_OK(close);
    EXPECT_EQ(close->code, 4096);
    EXPECT_EQ(CloseReasonType(*close), "too-many-connections");
  }
  // Closes `client` and waits until the gateway has let its slot go.
  void Release(std::unique_ptr<WsTestClient> client) {
    client->Drop();
    ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(),
                             "jetstream_gateway_connections", 2));
  }
};

TEST_F(ConnectionsPerAddressTest,
       AConnectionOverTheLimitIsRefusedUntilOneCloses) {
  std::unique_ptr<WsTestClient> third = ConnectWithSession();
  ASSERT_NE(third, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectRefused());
  EXPECT_EQ(GatewayGauge(gateway_->metrics_port(),
                         "jetstream_gateway_connections_over_limit_total")
                .value_or(-1),
            1);
  // The sessions within the limit are served.
  EXPECT_OK(FetchState(*third, "ChatRoom"));

  // Once one closes, a new connection is admitted.
  ASSERT_NO_FATAL_FAILURE(Release(std::move(third)));
  std::unique_ptr<WsTestClient> again = ConnectWithSession();
  ASSERT_NE(again, nullptr);
  EXPECT_OK(FetchState(*again, "ChatRoom"));
  ASSERT_NO_FATAL_FAILURE(Release(std::move(again)));
  ExpectObserverUnaffected();
}

class TotalConnectionsTest : public ConnectionsPerAddressTest {
 protected:
  std::vector<std::string> ExtraFlags() override {
    return {"--max_connections=3"};
  }
};

TEST_F(TotalConnectionsTest, AConnectionOverTheTotalIsRefused) {
  std::unique_ptr<WsTestClient> third = ConnectWithSession();
  ASSERT_NE(third, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectRefused());
  ASSERT_NO_FATAL_FAILURE(Release(std::move(third)));
  ExpectObserverUnaffected();
}

class AllowedOriginsTest : public BadInputTest {
 protected:
  // Sends a WebSocket upgrade with `origin` and returns the response's
  // status and body ("101 " when it is accepted); "" if none came.
  std::string UpgradeAnswer(const std::string& origin) {
    namespace beast = boost::beast;
    namespace http = beast::http;
    boost::asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    beast::error_code ec;
    stream.connect(boost::asio::ip::tcp::endpoint(
                       boost::asio::ip::make_address("127.0.0.1"),
                       static_cast<uint16_t>(gateway_->port())),
                   ec);
    if (ec) return "";
    http::request<http::empty_body> req{http::verb::get, "/", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(http::field::sec_websocket_version, "13");
    req.set(http::field::origin, origin);
    http::write(stream, req, ec);
    if (ec) return "";
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.skip(false);
    http::read_header(stream, buffer, parser, ec);
    if (ec) return "";
    if (parser.get().result_int() == 101) return "101 ";
    http::read(stream, buffer, parser, ec);
    return absl::StrCat(parser.get().result_int(), " ", parser.get().body());
  }

  std::vector<std::string> ExtraFlags() override {
    return {
        "--allowed_origins=https://app.example.com,https://admin.example.com"};
  }
};

TEST_F(AllowedOriginsTest, ABrowserFromAnotherOriginIsRefusedWith403) {
  EXPECT_EQ(
      UpgradeAnswer("https://evil.example"),
      R"(403 {"message":"Origin not allowed","type":"origin-not-allowed"})");
  EXPECT_EQ(GatewayGauge(gateway_->metrics_port(),
                         "jetstream_gateway_origin_refused_total")
                .value_or(-1),
            1);
  // A listed origin, in any case, is upgraded; so are the fixture's
  // clients, which send no Origin (not browsers).
  EXPECT_EQ(UpgradeAnswer("https://ADMIN.example.com"), "101 ");
  ExpectObserverUnaffected();
}

class SmallChangesetTest : public BadInputTest {
 protected:
  std::vector<std::string> ExtraFlags() override {
    return {"--max_fragments_per_changeset=3"};
  }
};

TEST_F(SmallChangesetTest,
       OversizedChangesetFailsEveryFragmentAndAppliesNothing) {
  const std::string s1 = TestUuid(0xc0, 1);
  const std::string s2 = TestUuid(0xc0, 2);
  absl::StatusOr<uint64_t> sync = attacker_->SendScopeSync(
      0, FragmentList({AddShapeFragment(s1, 1, 1), AddShapeFragment(s2, 2, 2),
                       SetShapesFragment(root_, {s1, s2}),
                       ChangeFragment(root_, "Canvas", R"({"name":"big"})")}));
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*attacker_, *sync);
  ASSERT_OK(r);
  const std::string error =
      R"({"error":{"message":"Changeset has 4 fragments; the limit is 3","type":"changeset-too-large"}})";
  EXPECT_EQ(Field(r->reply, "fragmentReplies"),
            absl::StrCat("[", error, ",", error, ",", error, ",", error, "]"));
  absl::StatusOr<std::vector<std::string>> before =
      Barrier(*observer_, observer_scope_);
  ASSERT_OK(before);
  EXPECT_THAT(*before, IsEmpty());
  // Three fragments are fine.
  sync = attacker_->SendScopeSync(
      0, FragmentList({AddShapeFragment(s1, 1, 1), AddShapeFragment(s2, 2, 2),
                       SetShapesFragment(root_, {s1, s2})}));
  ASSERT_OK(sync);
  r = ReadUntilReply(*attacker_, *sync);
  ASSERT_OK(r);
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{},{},{}]");
  before = Barrier(*observer_, observer_scope_);
  ASSERT_OK(before);
  ASSERT_THAT(*before, SizeIs(1));
  ASSERT_TRUE(
      observer_model_.ApplyFragmentsJson(Field((*before)[0], "fragments"))
          .ok());
  EXPECT_EQ(observer_model_.ReachableCount(), 3u);
  ExpectObserverUnaffected();
}

class MessageRateTest : public BadInputTest {
 protected:
  // Two a second, four at once.
  std::vector<std::string> ExtraFlags() override {
    return {"--max_messages_per_second=2"};
  }
};

TEST_F(MessageRateTest, MessagesOverTheRateAreRefusedAndTheSessionStays) {
  // Ten renames in one frame: the attacker's bucket (four at once, one
  // taken by its fetch) lets the first few through, in order; the rest are
  // refused with rate-limited and never reach the scope.
  const int kRenames = 10;
  std::string frame = "[";
  for (int i = 0; i < kRenames; ++i) {
    absl::StrAppend(&frame, i == 0 ? "" : ",",
                    R"({"type":"ScopeSync","index":)", 2 + i,
                    R"(,"scopeIndex":0,"fragments":[)",
                    ChangeFragment(root_, "Canvas",
                                   absl::StrCat(R"({"name":"r)", i, R"("})")),
                    "]}");
  }
  frame += "]";
  ASSERT_OK(attacker_->SendText(frame));
  attacker_->SetNextIndex(2 + kRenames);
  const std::string refused =
      R"([{"error":{"message":"Session is over its limit of 2 messages per second","type":"rate-limited"}}])";
  int accepted = 0;
  int refusals = 0;
  for (int i = 0; i < kRenames; ++i) {
    absl::StatusOr<std::string> reply = attacker_->WaitForReply(2 + i);
    ASSERT_OK(reply);
    const std::string replies = Field(*reply, "fragmentReplies");
    if (replies == "[{}]") {
      EXPECT_EQ(accepted, i) << "message " << i << " accepted after a refusal";
      ++accepted;
    } else {
      EXPECT_EQ(replies, refused);
      ++refusals;
    }
  }
  EXPECT_GE(accepted, 1);
  EXPECT_LE(accepted, 4);
  // The scope got exactly the accepted renames, in order.
  absl::StatusOr<std::vector<std::string>> seen =
      Barrier(*observer_, observer_scope_);
  ASSERT_OK(seen);
  ASSERT_THAT(*seen, SizeIs(accepted));
  for (int i = 0; i < accepted; ++i) {
    EXPECT_EQ(
        Field((*seen)[i], "fragments"),
        FragmentList({ChangeFragment(
            root_, "Canvas", absl::StrCat(R"({"name":"r)", i, R"("})"))}));
    ASSERT_TRUE(
        observer_model_.ApplyFragmentsJson(Field((*seen)[i], "fragments"))
            .ok());
  }
  // The session stays: once its bucket refills, a rename goes through.
  std::string later_reply;
  for (int attempt = 0; attempt < 100; ++attempt) {
    absl::StatusOr<uint64_t> sync = attacker_->SendScopeSync(
        0,
        FragmentList({ChangeFragment(root_, "Canvas", R"({"name":"later"})")}));
    ASSERT_OK(sync);
    absl::StatusOr<std::string> reply = attacker_->WaitForReply(*sync);
    ASSERT_OK(reply);
    later_reply = Field(*reply, "fragmentReplies");
    if (later_reply != refused) break;
    ++refusals;
    absl::SleepFor(absl::Milliseconds(100));  // it refills at 2 a second
  }
  ASSERT_EQ(later_reply, "[{}]");
  seen = Barrier(*observer_, observer_scope_);
  ASSERT_OK(seen);
  ASSERT_THAT(*seen, SizeIs(1));
  ASSERT_TRUE(
      observer_model_.ApplyFragmentsJson(Field((*seen)[0], "fragments")).ok());
  EXPECT_EQ(GatewayGauge(gateway_->metrics_port(),
                         "jetstream_gateway_messages_rate_limited_total")
                .value_or(-1),
            refusals);
  ExpectObserverUnaffected();
}

class ByteRateTest : public BadInputTest {
 protected:
  // 1000 bytes a second, 2000 at once.
  std::vector<std::string> ExtraFlags() override {
    return {"--max_bytes_per_second=1000"};
  }
};

TEST_F(ByteRateTest, FramesOverTheRateAreRefusedAndNothingOfThemIsApplied) {
  // Five frames of about 1500 bytes, sent back to back: the first fits the
  // bucket; passing all five would take four seconds of refill.
  const int kFrames = 5;
  const std::string padding(1400, 'x');
  std::vector<uint64_t> indexes;
  for (int i = 0; i < kFrames; ++i) {
    absl::StatusOr<uint64_t> sync = attacker_->SendScopeSync(
        0, FragmentList({ChangeFragment(
               root_, "Canvas",
               absl::StrCat(R"({"name":"b)", i, padding, R"("})"))}));
    ASSERT_OK(sync);
    indexes.push_back(*sync);
  }
  const std::string refused =
      R"([{"error":{"message":"Session is over its limit of 1000 bytes per second","type":"rate-limited"}}])";
  std::vector<int> accepted;
  for (int i = 0; i < kFrames; ++i) {
    absl::StatusOr<std::string> reply = attacker_->WaitForReply(indexes[i]);
    ASSERT_OK(reply);
    const std::string replies = Field(*reply, "fragmentReplies");
    if (replies == "[{}]") {
      accepted.push_back(i);
    } else {
      EXPECT_EQ(replies, refused);
    }
  }
  ASSERT_FALSE(accepted.empty());
  EXPECT_EQ(accepted.front(), 0);
  EXPECT_LT(accepted.size(), static_cast<size_t>(kFrames));
  absl::StatusOr<std::vector<std::string>> seen =
      Barrier(*observer_, observer_scope_);
  ASSERT_OK(seen);
  ASSERT_THAT(*seen, SizeIs(accepted.size()));
  for (size_t k = 0; k < accepted.size(); ++k) {
    EXPECT_EQ(
        Field((*seen)[k], "fragments"),
        FragmentList({ChangeFragment(
            root_, "Canvas",
            absl::StrCat(R"({"name":"b)", accepted[k], padding, R"("})"))}));
    ASSERT_TRUE(
        observer_model_.ApplyFragmentsJson(Field((*seen)[k], "fragments"))
            .ok());
  }
  EXPECT_EQ(GatewayGauge(gateway_->metrics_port(),
                         "jetstream_gateway_messages_rate_limited_total")
                .value_or(-1),
            static_cast<int64_t>(kFrames - accepted.size()));
  ExpectObserverUnaffected();
}

class ConnectionRateTest : public BadInputTest {
 protected:
  // The loopback peer is a trusted proxy, so X-Forwarded-For names the
  // client; one new connection a second per client address, two at once.
  std::vector<std::string> ExtraFlags() override {
    return {"--trusted_proxies=127.0.0.1",
            "--max_connection_rate_per_address=1"};
  }
  std::unique_ptr<WsTestClient> ConnectFrom(const std::string& address) {
    return Connect("/", {{"X-Forwarded-For", address}});
  }
};

TEST_F(ConnectionRateTest,
       NewConnectionsOverTheRateAreRefusedPerClientAddress) {
  // Six at once from one client address: passing all would take four
  // seconds of refill.
  std::vector<std::unique_ptr<WsTestClient>> admitted;
  int refused = 0;
  for (int i = 0; i < 6; ++i) {
    std::unique_ptr<WsTestClient> client = ConnectFrom("198.51.100.7");
    ASSERT_NE(client, nullptr);
    absl::StatusOr<std::string> token = client->CreateSession();
    if (token.ok()) {
      admitted.push_back(std::move(client));
      continue;
    }
    if (!client->closed()) {
      ASSERT_TRUE(client->WaitForClose().ok()) << token.status();
    }
    EXPECT_EQ(client->close_info().code, 4096) << token.status();
    EXPECT_EQ(CloseReasonType(client->close_info()), "connection-rate-limited");
    ++refused;
  }
  EXPECT_GE(admitted.size(), 2u);
  EXPECT_GE(refused, 1);
  EXPECT_EQ(GatewayGauge(gateway_->metrics_port(),
                         "jetstream_gateway_connections_rate_limited_total")
                .value_or(-1),
            refused);
  // Another client behind the same proxy has a bucket of its own.
  std::unique_ptr<WsTestClient> other = ConnectFrom("198.51.100.8");
  ASSERT_NE(other, nullptr);
  ASSERT_OK(other->CreateSession());
  EXPECT_OK(FetchState(*other, "Canvas"));
  // Admitted sessions are served.
  for (auto& client : admitted) EXPECT_TRUE(FetchState(*client, "Canvas").ok());
  absl::StatusOr<std::vector<std::string>> seen =
      Barrier(*observer_, observer_scope_);
  ASSERT_OK(seen);
  EXPECT_THAT(*seen, IsEmpty());
}

}  // namespace
}  // namespace jetstream::testing
