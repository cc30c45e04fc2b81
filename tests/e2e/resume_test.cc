// Session resume (docs/protocol.md#resume, docs/protocol.md#d6-resume-token,
// docs/protocol.md#d7-flush-on-resume) and expiry (docs/protocol.md#expiry)
// against the real binaries, and fan-out with exactly-once, in-order
// delivery. The resume and fan-out tests run against a gateway with one hub
// and with three (--threads): the gateway hands new connections to its hubs
// in turn, so a resume's connection lands on another hub than its session's
// and must move there. A resumed client applies the receive rules of real
// clients (docs/protocol.md#client-receive): index 0 is ephemeral, an index at
// or below the last one seen is a duplicate to ignore, and any other index but
// last+1 is a gap, which a real client treats as a broken connection.
#include <map>
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

using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kConnections[] = "jetstream_gateway_connections";
constexpr char kSessions[] = "jetstream_gateway_sessions";

// The receive rules of docs/protocol.md#client-receive.
class Sequencer {
 public:
  explicit Sequencer(uint64_t last_seen) : last_(last_seen) {}

  void Feed(const std::string& message) {
    int64_t index = UintField(message, "index");
    ASSERT_GE(index, 0) << message;
    if (index == 0) {
      pings_.push_back(message);
      return;
    }
    if (static_cast<uint64_t>(index) <= last_) {
      ++duplicates_;
      return;
    }
    ASSERT_EQ(static_cast<uint64_t>(index), last_ + 1)
        << "gap: last seen " << last_ << ", got " << message;
    last_ = static_cast<uint64_t>(index);
    accepted_.push_back(message);
  }

  uint64_t last() const { return last_; }
  const std::vector<std::string>& accepted() const { return accepted_; }
  const std::vector<std::string>& pings() const { return pings_; }

 private:
  uint64_t last_;
  std::vector<std::string> accepted_;
  std::vector<std::string> pings_;
  int duplicates_ = 0;
};

// The parameter: the gateway's hubs (--threads).
class ResumeTest : public SystemFixture,
                   public ::testing::WithParamInterface<int> {
 protected:
  std::vector<std::string> GatewayFlags() override {
    return {"--ping_interval=1h", absl::StrCat("--threads=", GetParam())};
  }

  // A client with a session that fetched Canvas.
  SessionClient NewClient() {
    absl::StatusOr<SessionClient> c = StartSession(Connect());
    EXPECT_OK(c);
    return c.ok() ? *std::move(c) : SessionClient{};
  }

  // `count` changes by `writer`, each answered; returns the fragments lists.
  std::vector<std::string> Write(SessionClient& writer, int count, int tag) {
    std::vector<std::string> written;
    for (int i = 0; i < count; ++i) {
      std::string fragments = FragmentList({ChangeFragment(
          writer.fetched.root_uuid, "Canvas",
          absl::StrCat(R"({"name":"change )", tag, "-", i, R"("})"))});
      absl::StatusOr<uint64_t> sync =
          writer.ws->SendScopeSync(writer.fetched.scope_index, fragments);
      EXPECT_OK(sync);
      if (!sync.ok()) return written;
      absl::StatusOr<UntilReply> r = ReadUntilReply(*writer.ws, *sync);
      EXPECT_OK(r);
      if (r.ok()) {
        EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{}]");
      }
      written.push_back(fragments);
    }
    return written;
  }

  // Reads the resumed client's messages up to the reply to a barrier,
  // through the sequencer.
  void ReadThroughBarrier(WsTestClient& ws, uint64_t scope_index,
                          Sequencer& seq) {
    absl::StatusOr<uint64_t> index = ws.SendScopeSync(scope_index, "[]");
    ASSERT_OK(index);
    absl::StatusOr<UntilReply> r = ReadUntilReply(ws, *index);
    ASSERT_OK(r);
    for (const std::string& m : r->before) {
      seq.Feed(m);
      if (::testing::Test::HasFatalFailure()) return;
    }
    seq.Feed(r->reply);
  }

  // The fragments of the ScopeSyncs among `messages`.
  static std::vector<std::string> SyncFragments(
      const std::vector<std::string>& messages) {
    std::vector<std::string> out;
    for (const std::string& m : messages) {
      if (MessageType(m) == "ScopeSync") out.push_back(Field(m, "fragments"));
    }
    return out;
  }
};

// The gateway has seen the drop before the writes: the missed messages go
// out as soon as the session is resumed, without any request
// (docs/protocol.md#d7-flush-on-resume).
TEST_P(ResumeTest, HeaderResumeFlushesMissedMessagesAtOnce) {
  SessionClient b = NewClient();
  SessionClient a = NewClient();
  ASSERT_NE(a.ws, nullptr);
  ASSERT_NE(b.ws, nullptr);
  a.ws->Drop();
  ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(), kConnections, 1));
  std::vector<std::string> written = Write(b, 3, 1);

  auto a2 = Connect("/", {{"X-Jetstream-SessionToken", a.token}});
  ASSERT_NE(a2, nullptr);
  Sequencer seq(2);  // a saw its fetch reply (1) and state (2)
  while (seq.last() < 5) {
    absl::StatusOr<std::string> m = a2->NextMessage();
    ASSERT_TRUE(m.ok()) << m.status() << " after index " << seq.last();
    seq.Feed(*m);
    ASSERT_FALSE(HasFatalFailure());
  }
  EXPECT_EQ(SyncFragments(seq.accepted()), written);
  // The session goes on where it was: client index 2, scopeIndex 0.
  a2->SetNextIndex(2);
  ReadThroughBarrier(*a2, a.fetched.scope_index, seq);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(seq.last(), 6u);
  EXPECT_EQ(SyncFragments(seq.accepted()), written);
}

TEST_P(ResumeTest,
       QueryParameterResumeInAnyCase) {  // docs/protocol.md#d6-resume-token
  for (const char* key :
       {"x-jetstream-sessiontoken", "X-Jetstream-SessionToken",
        "X-JETSTREAM-SESSIONTOKEN"}) {
    SCOPED_TRACE(key);
    SessionClient b = NewClient();
    SessionClient a = NewClient();
    ASSERT_NE(a.ws, nullptr);
    ASSERT_NE(b.ws, nullptr);
    a.ws->Drop();
    ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(), kConnections, 1));
    std::vector<std::string> written = Write(b, 2, 2);

    auto a2 = Connect(absl::StrCat("/?", key, "=", a.token));
    ASSERT_NE(a2, nullptr);
    Sequencer seq(2);
    a2->SetNextIndex(2);
    ReadThroughBarrier(*a2, a.fetched.scope_index, seq);
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_EQ(SyncFragments(seq.accepted()), written);
    EXPECT_EQ(seq.last(), 5u);
    a2->Close();
    b.ws->Close();
    ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(), kConnections, 0));
  }
}

TEST_P(ResumeTest, UnknownTokenIsDenied) {
  for (const std::string& target :
       {std::string("/?x-jetstream-sessiontoken=nosuchtoken"),
        std::string("/")}) {
    std::map<std::string, std::string> headers;
    if (target == "/") headers["X-Jetstream-SessionToken"] = "nosuchtoken";
    auto c = Connect(target, headers);
    ASSERT_NE(c, nullptr);
    absl::StatusOr<CloseInfo> close = c->WaitForClose();
    ASSERT_OK(close);
    EXPECT_EQ(close->code, 4096);
    EXPECT_EQ(CloseReasonType(*close), "session-token-unrecognized");
    EXPECT_EQ(CloseReasonMessage(*close), "Session token unrecognized");
  }
}

// The realistic case: the client vanished, the server wrote to the dead
// connection before noticing, the other writes were queued after. The client
// reconnects and asks for a resend like iOS does. It must see every missed
// message once in index order, with no gap at any point: not in what the
// resume flushes, not in the resend.
TEST_P(ResumeTest, MessagesLostOnTheDeadConnectionComeBackWithoutGap) {
  SessionClient b = NewClient();
  SessionClient a = NewClient();
  ASSERT_NE(a.ws, nullptr);
  ASSERT_NE(b.ws, nullptr);
  // Written to a's connection, never read by a.
  std::vector<std::string> written = Write(b, 1, 3);
  ASSERT_OK(Barrier(*b.ws, b.fetched.scope_index));
  a.ws->Drop();
  ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(), kConnections, 1));
  // Queued while a is away.
  for (const std::string& f : Write(b, 2, 4)) written.push_back(f);

  auto a2 = Connect("/", {{"X-Jetstream-SessionToken", a.token}});
  ASSERT_NE(a2, nullptr);
  ASSERT_OK(a2->SendPing(2, true));
  Sequencer seq(2);
  a2->SetNextIndex(2);
  ReadThroughBarrier(*a2, a.fetched.scope_index, seq);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(SyncFragments(seq.accepted()), written);
  EXPECT_EQ(seq.last(), 6u);
  // The resend Ping reply: ack is a's last index (its fetch).
  ASSERT_THAT(seq.pings(), SizeIs(1));
  EXPECT_EQ(seq.pings()[0],
            R"({"type":"Ping","index":0,"ack":1,"resendMissing":true})");
}

// The same without waiting for the gateway to notice the drop: whichever
// way the writes race with the drop, nothing is missing and nothing gaps.
TEST_P(ResumeTest, ResumeRacingTheDropLosesNothing) {
  SessionClient b = NewClient();
  ASSERT_NE(b.ws, nullptr);
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    SessionClient a = NewClient();
    ASSERT_NE(a.ws, nullptr);
    a.ws->Drop();
    std::vector<std::string> written = Write(b, 3, 10 + round);
    auto a2 = Connect("/", {{"X-Jetstream-SessionToken", a.token}});
    ASSERT_NE(a2, nullptr);
    ASSERT_OK(a2->SendPing(2, true));
    Sequencer seq(2);
    a2->SetNextIndex(2);
    ReadThroughBarrier(*a2, a.fetched.scope_index, seq);
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_EQ(SyncFragments(seq.accepted()), written);
    EXPECT_EQ(seq.last(), 6u);
  }
}

// Resuming while the old connection is still open: the gateway closes the
// old one, and its late close never touches the new one
// (docs/protocol.md#d7-flush-on-resume).
TEST_P(ResumeTest, LateCloseOfTheOldConnectionDoesNotBreakTheResumedOne) {
  SessionClient b = NewClient();
  SessionClient a = NewClient();
  ASSERT_NE(a.ws, nullptr);
  ASSERT_NE(b.ws, nullptr);
  std::vector<std::string> written = Write(b, 1, 5);  // sent to a's old socket
  auto a2 = Connect("/", {{"X-Jetstream-SessionToken", a.token}});
  ASSERT_NE(a2, nullptr);
  // The old connection is closed by the server; a reads what it had first.
  absl::StatusOr<CloseInfo> close = a.ws->WaitForClose();
  ASSERT_OK(close);
  EXPECT_NE(close->code, 4096);
  EXPECT_NE(close->code, 4097);
  // Its close has been processed; the new connection still works.
  ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(), kConnections, 2));
  for (const std::string& f : Write(b, 2, 6)) written.push_back(f);
  Sequencer seq(2);
  a2->SetNextIndex(2);
  ReadThroughBarrier(*a2, a.fetched.scope_index, seq);
  ASSERT_FALSE(HasFatalFailure());
  // The first change went to the old socket; a resend brings it back.
  ASSERT_OK(a2->SendPing(seq.last(), true));
  ReadThroughBarrier(*a2, a.fetched.scope_index, seq);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_OK(a2->SendPing(2, true));
  ReadThroughBarrier(*a2, a.fetched.scope_index, seq);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(SyncFragments(seq.accepted()), written);
  // And it receives live changes.
  for (const std::string& f : Write(b, 1, 7)) written.push_back(f);
  ReadThroughBarrier(*a2, a.fetched.scope_index, seq);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(SyncFragments(seq.accepted()), written);
}

TEST_P(ResumeTest, DroppingTheOldConnectionAfterResumeDoesNotBreakTheNewOne) {
  SessionClient b = NewClient();
  SessionClient a = NewClient();
  ASSERT_NE(a.ws, nullptr);
  ASSERT_NE(b.ws, nullptr);
  auto a2 = Connect("/", {{"X-Jetstream-SessionToken", a.token}});
  ASSERT_NE(a2, nullptr);
  a.ws->Drop();  // the old socket's close comes late, after the resume
  ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(), kConnections, 2));
  std::vector<std::string> written = Write(b, 2, 8);
  Sequencer seq(2);
  a2->SetNextIndex(2);
  ReadThroughBarrier(*a2, a.fetched.scope_index, seq);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(SyncFragments(seq.accepted()), written);
}

TEST_P(ResumeTest, CleanCloseKeepsTheSessionResumable) {
  SessionClient b = NewClient();
  SessionClient a = NewClient();
  ASSERT_NE(a.ws, nullptr);
  ASSERT_NE(b.ws, nullptr);
  a.ws->Close();  // a WebSocket close, not the end of the session
  ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(), kConnections, 1));
  std::vector<std::string> written = Write(b, 2, 20);
  auto a2 = Connect("/", {{"X-Jetstream-SessionToken", a.token}});
  ASSERT_NE(a2, nullptr);
  Sequencer seq(2);
  a2->SetNextIndex(2);
  ReadThroughBarrier(*a2, a.fetched.scope_index, seq);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(SyncFragments(seq.accepted()), written);
}

TEST_P(ResumeTest, OnlyTheLatestOfTwoResumesStaysConnected) {
  SessionClient b = NewClient();
  SessionClient a = NewClient();
  ASSERT_NE(a.ws, nullptr);
  ASSERT_NE(b.ws, nullptr);
  a.ws->Drop();
  auto a2 = Connect("/", {{"X-Jetstream-SessionToken", a.token}});
  ASSERT_NE(a2, nullptr);
  auto a3 = Connect(absl::StrCat("/?x-jetstream-sessiontoken=", a.token));
  ASSERT_NE(a3, nullptr);
  // a2 is closed by the server (not denied, not the session's end).
  absl::StatusOr<CloseInfo> close = a2->WaitForClose();
  ASSERT_OK(close);
  EXPECT_NE(close->code, 4096);
  EXPECT_NE(close->code, 4097);
  std::vector<std::string> written = Write(b, 2, 21);
  Sequencer seq(2);
  a3->SetNextIndex(2);
  ReadThroughBarrier(*a3, a.fetched.scope_index, seq);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(SyncFragments(seq.accepted()), written);
  ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(), kConnections, 2));
}

// Readers on every hub (connections go to the hubs in turn) each get every
// change once, in order, with consecutive indexes, while the writer keeps
// writing; some of them drop their connection midway and resume (on
// another hub's accepted connection) with a resend request.
TEST_P(ResumeTest, EveryReaderOnEveryHubGetsEveryChangeOnceAndInOrder) {
  constexpr int kReaders = 7;
  SessionClient writer = NewClient();
  ASSERT_NE(writer.ws, nullptr);
  std::vector<SessionClient> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.push_back(NewClient());
    ASSERT_NE(readers.back().ws, nullptr);
  }
  std::vector<std::string> written = Write(writer, 40, 1);
  // Every other reader drops its connection and resumes on a new one.
  for (int i = 0; i < kReaders; i += 2) {
    readers[i].ws->Drop();
  }
  for (const std::string& f : Write(writer, 40, 2)) written.push_back(f);
  for (int i = 0; i < kReaders; ++i) {
    SCOPED_TRACE(absl::StrCat("reader ", i));
    Sequencer seq(2);  // its SessionCreateReply and ScopeFetchReply
    if (i % 2 == 0) {
      readers[i].ws =
          Connect("/", {{"X-Jetstream-SessionToken", readers[i].token}});
      ASSERT_NE(readers[i].ws, nullptr);
      // Asks for everything after its fetch's reply (index 2); what the
      // dead connection may have carried comes again, and the sequencer
      // drops what it already has (here: nothing was read).
      ASSERT_OK(readers[i].ws->SendPing(2, true));
      readers[i].ws->SetNextIndex(2);
    }
    ReadThroughBarrier(*readers[i].ws, readers[i].fetched.scope_index, seq);
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_EQ(SyncFragments(seq.accepted()), written);
  }
}

INSTANTIATE_TEST_SUITE_P(Hubs, ResumeTest, ::testing::Values(1, 3),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return absl::StrCat(info.param, "Hubs");
                         });

class ExpiryTest : public SystemFixture {
 protected:
  std::vector<std::string> GatewayFlags() override {
    return {"--session_expiry=1s", "--ping_interval=1h"};
  }
};

TEST_F(ExpiryTest, DroppedSessionExpiresAndItsTokenIsRefused) {
  auto a = Connect();
  ASSERT_NE(a, nullptr);
  absl::StatusOr<std::string> token = a->CreateSession();
  ASSERT_OK(token);
  ASSERT_OK(FetchState(*a, "Canvas"));
  a->Drop();
  ASSERT_TRUE(
      WaitForGauge(gateway_->metrics_port(), kSessions, 0, absl::Seconds(10)));
  for (const std::string& target :
       {std::string("/"),
        absl::StrCat("/?x-jetstream-sessiontoken=", *token)}) {
    std::map<std::string, std::string> headers;
    if (target == "/") headers["X-Jetstream-SessionToken"] = *token;
    auto again = Connect(target, headers);
    ASSERT_NE(again, nullptr);
    absl::StatusOr<CloseInfo> close = again->WaitForClose();
    ASSERT_OK(close);
    EXPECT_EQ(close->code, 4096);
    EXPECT_EQ(CloseReasonType(*close), "session-token-unrecognized");
  }
}

TEST_F(ExpiryTest, SilentConnectedSessionIsClosedWith4097) {
  auto a = Connect();
  ASSERT_NE(a, nullptr);
  absl::StatusOr<std::string> token = a->CreateSession();
  ASSERT_OK(token);
  absl::Time start = absl::Now();
  absl::StatusOr<CloseInfo> close = a->WaitForClose(absl::Seconds(10));
  ASSERT_OK(close);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900));
  EXPECT_EQ(close->code, 4097);
  auto again = Connect("/", {{"X-Jetstream-SessionToken", *token}});
  ASSERT_NE(again, nullptr);
  close = again->WaitForClose();
  ASSERT_OK(close);
  EXPECT_EQ(close->code, 4096);
  EXPECT_EQ(CloseReasonType(*close), "session-token-unrecognized");
}

TEST_F(ExpiryTest, ExpiredSessionLeavesItsScopeToTheOthers) {
  // b keeps its session alive by talking; a goes silent and expires. b's
  // changes go on working and no longer count a as a subscriber.
  auto a = ConnectWithSession();
  ASSERT_NE(a, nullptr);
  ASSERT_OK(FetchState(*a, "Canvas"));
  absl::StatusOr<CloseInfo> close = a->WaitForClose(absl::Seconds(10));
  ASSERT_OK(close);
  EXPECT_EQ(close->code, 4097);
  auto b = ConnectWithSession();
  ASSERT_NE(b, nullptr);
  absl::StatusOr<Fetched> fb = FetchState(*b, "Canvas");
  ASSERT_OK(fb);
  absl::StatusOr<uint64_t> sync = b->SendScopeSync(
      fb->scope_index, FragmentList({ChangeFragment(fb->root_uuid, "Canvas",
                                                    R"({"name":"after"})")}));
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*b, *sync);
  ASSERT_OK(r);
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{}]");
}

}  // namespace
}  // namespace jetstream::testing
