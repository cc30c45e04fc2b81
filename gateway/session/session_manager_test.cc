// Unit tests of the session layer: SessionManager and Session over a fake
// connection and a fake sync service, on an io_context the test runs by
// hand, so every interleaving below happens in exactly the order written.

#include "gateway/session/session_manager.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/strand.hpp"
#include "gateway/protocol/client_message.h"
#include "gateway/protocol/server_message.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_connection.h"
#include "tests/testing/fake_sync_client.h"
#include "tests/testing/manual_clock.h"

namespace jetstream::gateway {
namespace {

using ::jetstream::testing::FakeConnection;
using ::jetstream::testing::FakeSyncClient;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kRoot[] = "6b1e0c3a-2f4d-4b8e-8c9a-1e2d3f4a5b6c";

std::string Rename(const std::string& name) {
  return absl::StrCat(R"({"type":"change","uuid":")", kRoot,
                      R"(","clsName":"Canvas","properties":{"name":")", name,
                      R"("}})");
}

sync::v1::ScopeSnapshot Snapshot(const std::string& epoch, uint64_t version) {
  sync::v1::ScopeSnapshot s;
  s.set_scope("Canvas");
  s.set_epoch(epoch);
  s.set_version(version);
  s.set_root_uuid(kRoot);
  s.set_fragments_json(absl::StrCat("[", Rename("v"), "]"));
  return s;
}

sync::v1::FetchResult Fetched(const std::string& epoch, uint64_t version) {
  sync::v1::FetchResult r;
  *r.mutable_snapshot() = Snapshot(epoch, version);
  return r;
}

sync::v1::Commit Commit(const std::string& epoch, uint64_t version,
                        const std::string& origin = "", bool replayed = false) {
  sync::v1::Commit c;
  c.set_scope("Canvas");
  c.set_epoch(epoch);
  c.set_version(version);
  c.set_origin_session_id(origin);
  c.set_fragments_json(
      absl::StrCat("[", Rename(absl::StrCat("c", version)), "]"));
  c.set_replayed(replayed);
  return c;
}

sync::v1::ApplyResult Applied(uint64_t version) {
  sync::v1::ApplyResult r;
  r.add_replies();
  r.set_version(version);
  return r;
}

class SessionManagerTest : public ::testing::Test {
 protected:
  SessionManagerTest() { options_.tarpit_max_delay = absl::ZeroDuration(); }

  void SetUp() override { Start(); }
  void TearDown() override {
    manager_->Shutdown();
    Run();
  }

  // (Re)creates the manager with options_.
  void Start() {
    manager_ = std::make_unique<SessionManager>(hub_, options_, sync_, clock_);
  }

  // Runs every handler that is ready, and those they post, until none is.
  void Run() {
    ioc_.restart();
    ioc_.poll();
  }

  std::shared_ptr<FakeConnection> Open(ConnectionParams params = {},
                                       std::string address = "127.0.0.1",
                                       std::string origin = "") {
    auto connection = std::make_shared<FakeConnection>(
        ++next_connection_, std::move(address), std::move(origin));
    manager_->OnConnectionOpened(connection, std::move(params));
    Run();
    return connection;
  }

  void Send(const std::shared_ptr<FakeConnection>& connection,
            const std::string& frame) {
    manager_->OnFrame(connection, frame.size(), ParseClientFrame(frame));
    Run();
  }

  // A connection with an authorized session; its SessionCreateReply taken.
  struct Client {
    std::shared_ptr<FakeConnection> connection;
    std::string token;
    std::string session_id;
  };
  Client NewSession() {
    Client c;
    c.connection = Open();
    Send(c.connection,
         R"({"type":"SessionCreate","index":0,"version":"0.2.0"})");
    const size_t i = sync_.authorizations().size() - 1;
    c.session_id = sync_.authorizations()[i].request.session_id();
    sync::v1::SessionAuthorization allow;
    allow.set_allow(true);
    sync_.AnswerAuthorization(i, allow);
    Run();
    std::vector<std::string> sent = c.connection->TakeMessages();
    EXPECT_THAT(sent, ElementsAre(HasSubstr("SessionCreateReply")));
    if (!sent.empty()) {
      const std::string key = R"("sessionToken":")";
      size_t from = sent[0].find(key) + key.size();
      c.token = sent[0].substr(from, sent[0].find('"', from) - from);
    }
    return c;
  }  // A new session that fetched Canvas at (e1, 5) as scopeIndex 1, with its
  // messages so far taken.
  Client NewSessionOnCanvas() {
    Client c = NewSession();
    Fetch(c, 1, Fetched("e1", 5));
    c.connection->TakeMessages();
    return c;
  }

  // Sends ScopeFetch "Canvas" with `index` and answers it with `result`.
  void Fetch(Client& c, uint64_t index,
             absl::StatusOr<sync::v1::FetchResult> result) {
    Send(c.connection, absl::StrCat(R"({"type":"ScopeFetch","index":)", index,
                                    R"(,"name":"Canvas"})"));
    sync_.AnswerFetch(sync_.fetches().size() - 1, std::move(result));
    Run();
  }

  std::string SyncFrame(uint64_t index, const std::string& name) {
    return absl::StrCat(R"({"type":"ScopeSync","index":)", index,
                        R"(,"scopeIndex":0,"fragments":[)", Rename(name), "]}");
  }

  boost::asio::io_context ioc_;
  HubExecutor hub_ = boost::asio::make_strand(ioc_);
  FakeSyncClient sync_{hub_};
  ::jetstream::testing::ManualClock clock_;
  GatewayOptions options_;
  std::unique_ptr<SessionManager> manager_;
  uint64_t next_connection_ = 0;
};

TEST_F(SessionManagerTest, TheAuthorizerIsAskedWithEverythingTheClientSaid) {
  auto connection =
      Open({{"tenant", "acme"}}, "198.51.100.7", "https://app.example.com");
  Send(
      connection,
      R"({"type":"SessionCreate","index":0,"version":"0.1.0","params":{"token":"x"}})");
  ASSERT_THAT(sync_.authorizations(), SizeIs(1));
  const sync::v1::AuthorizeSessionRequest& asked =
      sync_.authorizations()[0].request;
  EXPECT_EQ(asked.params_json(), R"({"token":"x"})");
  EXPECT_EQ(asked.connection_params().at("tenant"), "acme");
  EXPECT_EQ(asked.client_version(), "0.1.0");
  EXPECT_EQ(asked.origin(), "https://app.example.com");
  EXPECT_EQ(asked.client_address(), "198.51.100.7");
  EXPECT_THAT(connection->messages(), IsEmpty());  // nothing before the answer

  sync::v1::SessionAuthorization allow;
  allow.set_allow(true);
  sync_.AnswerAuthorization(0, allow);
  Run();
  EXPECT_THAT(connection->messages(),
              ElementsAre(AllOf(HasSubstr(R"("type":"SessionCreateReply")"),
                                HasSubstr(R"("index":0)"),
                                HasSubstr(R"("sessionToken":")"))));
  EXPECT_EQ(manager_->session_count(), 1u);
}

TEST_F(SessionManagerTest, ADeniedSessionGetsTheFixedReplyAndNothingMore) {
  auto connection = Open();
  Send(connection, R"({"type":"SessionCreate","index":0,"version":"0.2.0"})");
  sync::v1::SessionAuthorization deny;
  deny.set_allow(false);
  deny.mutable_error()->set_message("no token");
  sync_.AnswerAuthorization(0, deny);
  Run();
  EXPECT_THAT(
      connection->messages(),
      ElementsAre(
          R"({"type":"SessionCreateReply","index":0,"error":{"message":"Session creation denied"}})"));
  Send(connection, R"({"type":"ScopeFetch","index":1,"name":"Canvas"})");
  EXPECT_THAT(sync_.fetches(), IsEmpty());
  EXPECT_FALSE(connection->close().has_value());
  EXPECT_EQ(manager_->session_count(), 0u);
}

TEST_F(SessionManagerTest, AFirstFrameThatIsNotSessionCreateIsDenied) {
  auto connection = Open();
  Send(connection, R"({"type":"Ping","index":0,"ack":0})");
  ASSERT_TRUE(connection->close().has_value());
  EXPECT_EQ(connection->close()->code, kCloseDeniedConnection);
  EXPECT_THAT(connection->close()->reason, HasSubstr("unrecognized-handshake"));
  EXPECT_THAT(sync_.authorizations(), IsEmpty());
}

TEST_F(SessionManagerTest, AnUnknownSessionTokenIsDenied) {
  auto connection = Open({{"sessiontoken", "nope"}});
  ASSERT_TRUE(connection->close().has_value());
  EXPECT_EQ(connection->close()->code, kCloseDeniedConnection);
  EXPECT_THAT(connection->close()->reason,
              HasSubstr("session-token-unrecognized"));
}

TEST_F(SessionManagerTest, AFetchAnsweredAfterANewStreamPlacesTheScope) {
  Client a = NewSession();
  Send(a.connection, R"({"type":"ScopeFetch","index":1,"name":"Canvas"})");
  ASSERT_THAT(sync_.fetches(), SizeIs(1));
  // The stream is (re)established while the fetch is in flight: there is
  // nothing to watch again yet, the fetch will place the scope.
  sync_.StartStream();
  Run();
  EXPECT_THAT(sync_.watches(), IsEmpty());
  sync_.AnswerFetch(0, Fetched("e1", 5));
  Run();
  EXPECT_THAT(a.connection->TakeMessages(),
              ElementsAre(HasSubstr(R"("type":"ScopeFetchReply")"),
                          HasSubstr(R"("type":"ScopeState")")));
  // A commit the fetched state already includes is not sent again; the
  // next one is.
  sync_.SendCommit(Commit("e1", 5));
  sync_.SendCommit(Commit("e1", 6));
  Run();
  EXPECT_THAT(a.connection->TakeMessages(),
              ElementsAre(AllOf(HasSubstr(R"("type":"ScopeSync")"),
                                HasSubstr(Rename("c6")))));
  // The next stream watches from what the gateway has.
  sync_.StartStream();
  Run();
  ASSERT_THAT(sync_.watches(), SizeIs(1));
  EXPECT_EQ(sync_.watches()[0].scope(), "Canvas");
  EXPECT_EQ(sync_.watches()[0].epoch(), "e1");
  EXPECT_EQ(sync_.watches()[0].after_version(), 6u);
}

TEST_F(SessionManagerTest, ACommitThatDoesNotFollowWatchesTheScopeAgain) {
  Client a = NewSession();
  Fetch(a, 1, Fetched("e1", 5));
  a.connection->TakeMessages();
  sync_.SendCommit(Commit("e1", 8));  // 6 and 7 are missing
  Run();
  EXPECT_THAT(a.connection->TakeMessages(), IsEmpty());
  EXPECT_THAT(sync_.unwatches(), ElementsAre("Canvas"));
  ASSERT_THAT(sync_.watches(), SizeIs(1));
  EXPECT_EQ(sync_.watches()[0].after_version(), 5u);
  // The replay fills the gap in order.
  for (uint64_t v = 6; v <= 8; ++v) {
    sync_.SendCommit(Commit("e1", v, "", /*replayed=*/true));
  }
  Run();
  EXPECT_THAT(a.connection->TakeMessages(),
              ElementsAre(HasSubstr(Rename("c6")), HasSubstr(Rename("c7")),
                          HasSubstr(Rename("c8"))));
}

TEST_F(SessionManagerTest, ACommitGoesToEverySessionButItsOriginator) {
  Client a = NewSessionOnCanvas();
  Client b = NewSessionOnCanvas();
  Send(a.connection, SyncFrame(2, "mine"));
  ASSERT_THAT(sync_.applies(), SizeIs(1));
  EXPECT_EQ(sync_.applies()[0].request.session_id(), a.session_id);
  EXPECT_EQ(sync_.applies()[0].request.scope(), "Canvas");
  sync_.AnswerApply(0, Applied(6));
  sync_.SendCommit(Commit("e1", 6, a.session_id));
  Run();
  EXPECT_THAT(a.connection->TakeMessages(),
              ElementsAre(AllOf(HasSubstr(R"("type":"ScopeSyncReply")"),
                                HasSubstr(R"("replyTo":2)"),
                                HasSubstr(R"("fragmentReplies":[{}])"))));
  EXPECT_THAT(b.connection->TakeMessages(),
              ElementsAre(AllOf(HasSubstr(R"("type":"ScopeSync")"),
                                HasSubstr(Rename("c6")))));
}

TEST_F(SessionManagerTest, ACommitOfAnApplyThatTimedOutGoesToItsSenderToo) {
  Client a = NewSessionOnCanvas();
  Client b = NewSessionOnCanvas();
  // The service did not answer in time: a is told so...
  Send(a.connection, SyncFrame(2, "late"));
  sync_.AnswerApply(0, absl::DeadlineExceededError("no answer in time"));
  Run();
  EXPECT_THAT(a.connection->TakeMessages(),
              ElementsAre(HasSubstr(R"("fragmentReplies":[{"error")")));
  // ...and then it committed after all (its late result went nowhere): a
  // learns the change as b does, or it would never have it.
  sync_.SendCommit(Commit("e1", 6, a.session_id));
  Run();
  EXPECT_THAT(a.connection->TakeMessages(),
              ElementsAre(HasSubstr(Rename("c6"))));
  EXPECT_THAT(b.connection->TakeMessages(),
              ElementsAre(HasSubstr(Rename("c6"))));
}

TEST_F(SessionManagerTest,
       AReplayedCommitGoesToItsOriginatorOnlyIfItsReplyWasLost) {
  Client a = NewSession();
  Fetch(a, 1, Fetched("e1", 5));
  a.connection->TakeMessages();
  // Change 6: the stream broke before its reply.
  Send(a.connection, SyncFrame(2, "lost"));
  sync_.AnswerApply(0, absl::UnknownError("stream broke"));
  Run();
  EXPECT_THAT(a.connection->TakeMessages(),
              ElementsAre(HasSubstr(R"("type":"outcome-unknown")")));
  // Change 7: answered on the new stream, before the replay reaches it.
  Send(a.connection, SyncFrame(3, "answered"));
  sync_.AnswerApply(1, Applied(7));
  Run();
  EXPECT_THAT(a.connection->TakeMessages(),
              ElementsAre(HasSubstr(R"("fragmentReplies":[{}])")));
  sync_.SendCommit(Commit("e1", 6, a.session_id, /*replayed=*/true));
  sync_.SendCommit(Commit("e1", 7, a.session_id, /*replayed=*/true));
  Run();
  // Only the change whose outcome it never learnt.
  EXPECT_THAT(a.connection->TakeMessages(),
              ElementsAre(HasSubstr(Rename("c6"))));
}

TEST_F(SessionManagerTest, AResumedSessionGetsEverythingUnacknowledged) {
  Client a = NewSession();
  Fetch(a, 1, Fetched("e1", 5));
  a.connection->TakeMessages();
  manager_->OnConnectionClosed(a.connection);
  Run();
  sync_.SendCommit(Commit("e1", 6));
  Run();
  EXPECT_THAT(a.connection->messages(), IsEmpty());
  auto resumed = Open({{"sessiontoken", a.token}});
  // The fetch reply, the state and the commit: nothing was acknowledged.
  EXPECT_THAT(resumed->messages(),
              ElementsAre(HasSubstr(R"("type":"ScopeFetchReply")"),
                          HasSubstr(R"("type":"ScopeState")"),
                          HasSubstr(Rename("c6"))));
  EXPECT_FALSE(resumed->close().has_value());
}

TEST_F(SessionManagerTest, TheLastSessionOfAScopeToEndUnwatchesIt) {
  Client a = NewSession();
  Client b = NewSession();
  Fetch(a, 1, Fetched("e1", 5));
  Fetch(b, 1, Fetched("e1", 5));
  manager_->OnWriteQueueOverflow(a.connection);
  Run();
  ASSERT_TRUE(a.connection->close().has_value());
  EXPECT_EQ(a.connection->close()->code, kCloseClosedConnection);
  EXPECT_THAT(a.connection->close()->reason, HasSubstr("write-queue-overflow"));
  EXPECT_THAT(sync_.unwatches(), IsEmpty());
  manager_->OnWriteQueueOverflow(b.connection);
  Run();
  EXPECT_THAT(sync_.unwatches(), ElementsAre("Canvas"));
  EXPECT_EQ(manager_->session_count(), 0u);
}

TEST_F(SessionManagerTest, MessagesOverTheRateAreRefusedUntilTheBucketRefills) {
  options_.max_messages_per_second = 1;  // two at once
  Start();
  Client a = NewSession();
  Fetch(a, 1, Fetched("e1", 5));  // takes one
  a.connection->TakeMessages();
  Send(a.connection,
       absl::StrCat("[", SyncFrame(2, "x"), ",", SyncFrame(3, "y"), "]"));
  ASSERT_THAT(sync_.applies(), SizeIs(1));  // only index 2 went on
  EXPECT_THAT(a.connection->TakeMessages(),
              ElementsAre(AllOf(HasSubstr(R"("replyTo":3)"),
                                HasSubstr(R"("type":"rate-limited")"))));
  EXPECT_EQ(manager_->messages_rate_limited_total(), 1u);
  clock_.Advance(absl::Seconds(1));
  Send(a.connection, SyncFrame(4, "z"));
  EXPECT_THAT(sync_.applies(), SizeIs(2));
  EXPECT_THAT(a.connection->TakeMessages(), IsEmpty());  // awaits its reply
}

TEST_F(SessionManagerTest, NewConnectionsOverTheRateOfTheirAddressAreDenied) {
  options_.max_connection_rate_per_address = 1;  // two at once
  Start();
  EXPECT_FALSE(Open({}, "10.0.0.1")->close().has_value());
  EXPECT_FALSE(Open({}, "10.0.0.1")->close().has_value());
  auto third = Open({}, "10.0.0.1");
  ASSERT_TRUE(third->close().has_value());
  EXPECT_THAT(third->close()->reason, HasSubstr("connection-rate-limited"));
  EXPECT_FALSE(Open({}, "10.0.0.2")->close().has_value());
  clock_.Advance(absl::Seconds(1));
  EXPECT_FALSE(Open({}, "10.0.0.1")->close().has_value());
  EXPECT_EQ(manager_->connections_rate_limited_total(), 1u);
}

// A commit as the fan-out hands it to a hub: encoded once, stamped with
// when the gateway received it.
FannedOutCommit FannedOut(sync::v1::Commit commit, absl::Time received) {
  FannedOutCommit fanned;
  fanned.encoded = EncodeScopeSyncBody(commit.fragments_json());
  fanned.commit = std::make_shared<const sync::v1::Commit>(std::move(commit));
  fanned.received = received;
  return fanned;
}

TEST_F(SessionManagerTest, AHubThatFallsBehindEndsItsNewestSessionsFirst) {
  options_.max_delivery_lag = absl::Seconds(2);
  Start();
  Client oldest = NewSessionOnCanvas();
  Client middle = NewSessionOnCanvas();
  Client newest = NewSessionOnCanvas();

  // Waited 3 s in the hub's queue: over the bound.
  const absl::Time received = clock_.Now();
  clock_.Advance(absl::Seconds(3));
  manager_->OnFannedOutCommit(FannedOut(Commit("e1", 6), received));
  Run();

  ASSERT_TRUE(newest.connection->close().has_value());
  EXPECT_EQ(newest.connection->close()->code, 4097);
  EXPECT_THAT(newest.connection->close()->reason,
              HasSubstr(R"("type":"server-overloaded")"));
  EXPECT_EQ(manager_->shed_total(), 1u);
  EXPECT_EQ(manager_->session_count(), 2u);
  // The others are served, the shed one gets nothing more.
  for (Client* c : {&oldest, &middle}) {
    EXPECT_FALSE(c->connection->close().has_value());
    EXPECT_THAT(c->connection->TakeMessages(),
                ElementsAre(HasSubstr(Rename("c6"))));
  }

  // Commits queued before the shed are late too, but shed nothing more.
  manager_->OnFannedOutCommit(
      FannedOut(Commit("e1", 7), received + absl::Seconds(1)));
  Run();
  EXPECT_EQ(manager_->shed_total(), 1u);
  EXPECT_FALSE(middle.connection->close().has_value());
  EXPECT_THAT(middle.connection->TakeMessages(),
              ElementsAre(HasSubstr(Rename("c7"))));

  // One received after the shed and still late sheds the next newest.
  const absl::Time later = clock_.Now() + absl::Milliseconds(1);
  clock_.Advance(absl::Seconds(5));
  manager_->OnFannedOutCommit(FannedOut(Commit("e1", 8), later));
  Run();
  EXPECT_EQ(manager_->shed_total(), 2u);
  ASSERT_TRUE(middle.connection->close().has_value());
  EXPECT_FALSE(oldest.connection->close().has_value());
}

TEST_F(SessionManagerTest, ACommitWithinTheBoundShedsNothing) {
  options_.max_delivery_lag = absl::Seconds(2);
  Start();
  Client a = NewSessionOnCanvas();
  const absl::Time received = clock_.Now();
  clock_.Advance(absl::Seconds(2));
  manager_->OnFannedOutCommit(FannedOut(Commit("e1", 6), received));
  Run();
  EXPECT_FALSE(a.connection->close().has_value());
  EXPECT_EQ(manager_->shed_total(), 0u);
  EXPECT_THAT(a.connection->TakeMessages(),
              ElementsAre(HasSubstr(Rename("c6"))));
}

TEST_F(SessionManagerTest, ANewSessionsTokenNamesItsHub) {
  manager_ = std::make_unique<SessionManager>(
      hub_, options_, sync_, clock_, nullptr,
      HubPlacement{/*index=*/2, /*count=*/3, /*gate=*/nullptr});
  for (int i = 0; i < 5; ++i) {
    Client c = NewSession();
    EXPECT_EQ(HubOfSessionToken(c.token, 3), 2u) << c.token;
  }
}

}  // namespace
}  // namespace jetstream::gateway
