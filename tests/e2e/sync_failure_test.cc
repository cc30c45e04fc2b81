// The sync service going away and coming back, against the real binaries:
// requests made meanwhile get error replies in time (never a hang), the
// gateway reconnects by itself, and sessions that had fetched scopes get
// those scopes' states afresh from the new process (a new epoch: Resync).
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
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

constexpr absl::Duration kRequestTimeout = absl::Seconds(2);
// How long a test waits for an answer the gateway owes after its request
// timeout: a guard against hanging, far above the timeout, not a bound the
// test asserts (the reply's error type shows which path answered).
const absl::Duration kAnswerGuard =
    absl::Seconds(32);  // kRequestTimeout + 30 s

class SyncFailureTest : public SystemFixture {
 protected:
  std::vector<std::string> GatewayFlags() override {
    return {"--ping_interval=1h",
            absl::StrCat("--sync_request_timeout=",
                         absl::FormatDuration(kRequestTimeout))};
  }

  // Stops the sync service (it keeps its sockets, answers nothing) and
  // returns once every one of its threads has stopped.
  void StopSyncService() {
    ASSERT_EQ(::kill(sync_service_->pid(), SIGSTOP), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(sync_service_->pid(), &status, WUNTRACED),
              sync_service_->pid());
    ASSERT_TRUE(WIFSTOPPED(status));
  }
  void ContinueSyncService() {
    ASSERT_EQ(::kill(sync_service_->pid(), SIGCONT), 0);
  }

  // Fetches `name` on `client` until it succeeds (the gateway has
  // reconnected), each attempt answered; false if `timeout` passes first.
  // Retries back off (5 ms doubling to 100 ms), as a client should: a tight
  // loop would run into the session's message rate (rate-limited).
  bool FetchUntilServed(WsTestClient& client, const std::string& name,
                        absl::Duration timeout, Fetched* out) {
    absl::Time deadline = absl::Now() + timeout;
    absl::Duration backoff = absl::Milliseconds(5);
    for (bool first = true; absl::Now() < deadline; first = false) {
      if (!first) {
        absl::SleepFor(backoff);
        backoff = std::min(2 * backoff, absl::Milliseconds(100));
      }
      absl::StatusOr<Fetched> f = FetchState(client, name);
      if (f.ok()) {
        *out = *std::move(f);
        return true;
      }
      // Every failed attempt is an error reply, not silence.
      EXPECT_TRUE(absl::IsNotFound(f.status())) << f.status();
      if (!absl::IsNotFound(f.status())) return false;
      EXPECT_THAT(f.status().message(), HasSubstr("sync-service-unavailable"));
    }
    return false;
  }
};

TEST_F(SyncFailureTest, OutageGivesErrorRepliesAndRecoveryResyncsSessions) {
  // a has two scopes and changed one of them.
  auto a = ConnectWithSession();
  ASSERT_NE(a, nullptr);
  absl::StatusOr<Fetched> canvas = FetchState(*a, "Canvas");  // a: 1, 2
  ASSERT_OK(canvas);
  absl::StatusOr<Fetched> board = FetchState(*a, "canvas/failover");  // 3, 4
  ASSERT_OK(board);
  EXPECT_EQ(board->scope_index, 1u);
  const std::string fresh_canvas = Field(canvas->state, "fragments");
  const std::string s1 = TestUuid(0xf0, 1);
  absl::StatusOr<uint64_t> sync = a->SendScopeSync(
      canvas->scope_index,
      FragmentList({AddShapeFragment(s1, 1, 1),
                    SetShapesFragment(canvas->root_uuid, {s1})}));
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*a, *sync);  // 5
  ASSERT_OK(r);
  ASSERT_EQ(Field(r->reply, "fragmentReplies"), "[{},{}]");

  auto b = ConnectWithSession();
  ASSERT_NE(b, nullptr);

  const int port = sync_service_->port();
  sync_service_->Kill(SIGKILL);

  // A fetch is answered with an error, not left hanging.
  absl::StatusOr<uint64_t> fetch = b->SendScopeFetch("ChatRoom");
  ASSERT_OK(fetch);
  absl::StatusOr<UntilReply> fr = ReadUntilReply(*b, *fetch, kAnswerGuard);
  ASSERT_OK(fr);
  EXPECT_THAT(fr->before, IsEmpty());
  EXPECT_EQ(MessageType(fr->reply), "ScopeFetchReply");
  EXPECT_EQ(Field(fr->reply, "scopeIndex"), "<absent>");
  JsonDocument reply = ParseOrDie(fr->reply);
  ASSERT_TRUE(reply.HasMember("error")) << fr->reply;
  EXPECT_EQ(std::string(reply["error"]["type"].GetString()),
            "sync-service-unavailable");
  EXPECT_FALSE(std::string(reply["error"]["message"].GetString()).empty());

  // A changeset gets one error per fragment.
  sync = a->SendScopeSync(
      canvas->scope_index,
      FragmentList(
          {MoveShapeFragment(s1, 5, 5),
           ChangeFragment(canvas->root_uuid, "Canvas", R"({"name":"lost"})")}));
  ASSERT_OK(sync);
  r = ReadUntilReply(*a, *sync, kAnswerGuard);  // a: 6
  ASSERT_OK(r);
  EXPECT_THAT(r->before, IsEmpty());
  EXPECT_EQ(UintField(r->reply, "index"), 6);
  JsonDocument sync_reply = ParseOrDie(r->reply);
  const JsonValue& replies = sync_reply["fragmentReplies"];
  ASSERT_EQ(replies.Size(), 2u) << r->reply;
  for (const JsonValue& e : replies.GetArray()) {
    ASSERT_TRUE(e.HasMember("error")) << r->reply;
    EXPECT_EQ(std::string(e["error"]["type"].GetString()),
              "could-not-apply-sync-message");
    EXPECT_THAT(std::string(e["error"]["message"].GetString()),
                HasSubstr("Could not apply SyncMessage: "));
  }

  // The service comes back on the same port; the gateway reconnects alone.
  StartSyncService(port);
  ASSERT_NE(sync_service_, nullptr);
  Fetched chat;
  ASSERT_TRUE(FetchUntilServed(*b, "ChatRoom", absl::Seconds(20), &chat));

  // a's scopes come back as fresh states (the new process knows nothing of
  // a's change), with consecutive indexes, one per scope.
  std::vector<std::string> states;
  uint64_t expected_index = 7;
  while (states.size() < 2) {
    absl::StatusOr<std::string> m = a->NextMessage(absl::Seconds(15));
    ASSERT_OK(m);
    ASSERT_EQ(MessageType(*m), "ScopeState") << *m;
    EXPECT_EQ(UintField(*m, "index"), static_cast<int64_t>(expected_index++));
    states.push_back(*m);
  }
  // The new process made a new root: clients adopt the state's rootUUID.
  std::string root;
  for (const std::string& state : states) {
    if (UintField(state, "scopeIndex") == 0) {
      root = StringField(state, "rootUUID");
      EXPECT_EQ(Field(state, "fragments"),
                absl::StrReplaceAll(fresh_canvas, {{canvas->root_uuid, root}}));
    } else {
      EXPECT_EQ(UintField(state, "scopeIndex"), 1);
      // A template scope is created afresh: same shape of state.
      ScopeModel model;
      ASSERT_OK(model.ApplyState(state));
      EXPECT_EQ(model.ReachableCount(), 1u);
      EXPECT_THAT(Field(state, "fragments"), HasSubstr(R"("name":"Canvas")"));
    }
  }

  // Everything works again: a's changes reach a new session, and the
  // other way round.
  auto c = ConnectWithSession();
  ASSERT_NE(c, nullptr);
  absl::StatusOr<Fetched> fc = FetchState(*c, "Canvas");
  ASSERT_OK(fc);
  EXPECT_EQ(fc->root_uuid, root);
  EXPECT_EQ(Field(fc->state, "fragments"),
            absl::StrReplaceAll(fresh_canvas, {{canvas->root_uuid, root}}));
  sync = a->SendScopeSync(0, FragmentList({AddShapeFragment(s1, 2, 2),
                                           SetShapesFragment(root, {s1})}));
  ASSERT_OK(sync);
  r = ReadUntilReply(*a, *sync);
  ASSERT_OK(r);
  EXPECT_THAT(r->before, IsEmpty());
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{},{}]");
  absl::StatusOr<std::vector<std::string>> before =
      Barrier(*c, fc->scope_index);
  ASSERT_OK(before);
  ASSERT_THAT(*before, SizeIs(1));
  EXPECT_EQ(MessageType((*before)[0]), "ScopeSync");
  sync = c->SendScopeSync(
      fc->scope_index,
      FragmentList({ChangeFragment(root, "Canvas", R"({"name":"back"})")}));
  ASSERT_OK(sync);
  ASSERT_OK(ReadUntilReply(*c, *sync));
  before = Barrier(*a, 0);
  ASSERT_OK(before);
  ASSERT_THAT(*before, SizeIs(1));
  EXPECT_THAT(Field((*before)[0], "fragments"), HasSubstr(R"("name":"back")"));
}

TEST_F(SyncFailureTest, RequestsWhileTheServiceIsDownNeverHang) {
  auto a = ConnectWithSession();
  ASSERT_NE(a, nullptr);
  absl::StatusOr<Fetched> canvas = FetchState(*a, "Canvas");
  ASSERT_OK(canvas);
  sync_service_->Kill(SIGKILL);
  // A burst of requests, each answered with an error, in order.
  std::vector<std::pair<uint64_t, std::string>> sent;  // index, error type
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<uint64_t> index;
    if (i % 2 == 0) {
      index = a->SendScopeFetch(absl::StrCat("canvas/down-", i));
      ASSERT_OK(index);
      sent.push_back({*index, "sync-service-unavailable"});
    } else {
      index = a->SendScopeSync(
          canvas->scope_index,
          FragmentList({ChangeFragment(canvas->root_uuid, "Canvas",
                                       R"({"name":"down"})")}));
      ASSERT_OK(index);
      sent.push_back({*index, "could-not-apply-sync-message"});
    }
  }
  absl::Time deadline = absl::Now() + kAnswerGuard;
  for (const auto& [index, type] : sent) {
    absl::StatusOr<UntilReply> r =
        ReadUntilReply(*a, index, deadline - absl::Now());
    ASSERT_OK(r);
    EXPECT_THAT(r->before, IsEmpty());
    EXPECT_THAT(r->reply, HasSubstr(absl::StrCat(R"("type":")", type, R"(")")));
  }
}

// A service that hangs (stopped, its sockets still open) is no better than a
// dead one for the client: the request timeout answers.
TEST_F(SyncFailureTest, HungServiceFetchTimesOutWithAnErrorReply) {
  auto a = ConnectWithSession();
  ASSERT_NE(a, nullptr);
  ASSERT_OK(FetchState(*a, "Canvas"));
  StopSyncService();
  ASSERT_FALSE(HasFatalFailure());
  absl::Time start = absl::Now();
  absl::StatusOr<uint64_t> fetch = a->SendScopeFetch("ChatRoom");
  ASSERT_OK(fetch);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*a, *fetch, kAnswerGuard);
  absl::Duration took = absl::Now() - start;
  ContinueSyncService();
  ASSERT_OK(r);
  EXPECT_GE(took, kRequestTimeout - absl::Milliseconds(100));
  EXPECT_THAT(r->reply, HasSubstr("sync-service-unavailable"));
  // Once it runs again, fetches are served (the late answer to the timed
  // out one is not delivered twice).
  absl::StatusOr<Fetched> again = FetchState(*a, "ChatRoom");
  ASSERT_OK(again);
  EXPECT_THAT(again->before, IsEmpty());
  EXPECT_EQ(again->scope_index, 1u);
}

// A changeset whose reply timed out while the service hung may still be
// applied once the service runs again. Its sender was told the outcome is
// unknown; the sender's view must still converge with everybody else's.
TEST_F(SyncFailureTest, ChangesetTimedOutOnAHungServiceStillConverges) {
  auto a = ConnectWithSession();
  auto b = ConnectWithSession();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  absl::StatusOr<Fetched> fa = FetchState(*a, "Canvas");
  absl::StatusOr<Fetched> fb = FetchState(*b, "Canvas");
  ASSERT_TRUE(fa.ok() && fb.ok());
  ScopeModel view_a, view_b;
  ASSERT_OK(view_a.ApplyState(fa->state));
  ASSERT_OK(view_b.ApplyState(fb->state));

  StopSyncService();
  ASSERT_FALSE(HasFatalFailure());
  const std::string change = FragmentList(
      {ChangeFragment(fa->root_uuid, "Canvas", R"({"name":"while hung"})")});
  absl::StatusOr<uint64_t> sync = a->SendScopeSync(fa->scope_index, change);
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*a, *sync, kAnswerGuard);
  ContinueSyncService();
  ASSERT_OK(r);
  // The gateway could not wait any longer and cannot know whether it was
  // applied (docs/protocol.md#typed-errors): a, like a real client,
  // reverts, and the commit, if any, reaches it as a ScopeSync.
  EXPECT_THAT(r->reply, HasSubstr("outcome-unknown"));

  // Both views, after everything committed so far.
  auto catch_up = [](WsTestClient& c, ScopeModel& view, uint64_t scope) {
    absl::StatusOr<std::vector<std::string>> before = Barrier(c, scope);
    ASSERT_OK(before);
    for (const std::string& m : *before) {
      ASSERT_EQ(MessageType(m), "ScopeSync") << m;
      ASSERT_OK(view.ApplyFragmentsJson(Field(m, "fragments")));
    }
  };
  catch_up(*a, view_a, fa->scope_index);
  catch_up(*b, view_b, fb->scope_index);
  auto c = ConnectWithSession();
  ASSERT_NE(c, nullptr);
  absl::StatusOr<Fetched> fc = FetchState(*c, "Canvas");
  ASSERT_OK(fc);
  ScopeModel final_state;
  ASSERT_OK(final_state.ApplyState(fc->state));
  EXPECT_EQ(view_b.Canonical(), final_state.Canonical());
  EXPECT_EQ(view_a.Canonical(), final_state.Canonical())
      << "the sender's view diverged; its reply was " << r->reply;
}

// A client arriving during the outage is answered too: its SessionCreate
// gets a reply (the sync service authorizes sessions, so a denial) within
// the request timeout; once the service is back, new sessions work.
TEST_F(SyncFailureTest, SessionCreateDuringOutageIsAnswered) {
  const int port = sync_service_->port();
  sync_service_->Kill(SIGKILL);
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(
      c->SendText(
           R"({"type":"SessionCreate","index":0,"version":"0.2.0","params":{}})")
          .ok());
  absl::StatusOr<std::string> frame = c->ReceiveFrame(kAnswerGuard);
  ASSERT_OK(frame);
  std::vector<std::string> messages = FrameMessages(*frame);
  ASSERT_THAT(messages, SizeIs(1)) << *frame;
  EXPECT_EQ(MessageType(messages[0]), "SessionCreateReply");
  EXPECT_EQ(UintField(messages[0], "index"), 0);

  StartSyncService(port);
  ASSERT_NE(sync_service_, nullptr);
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  bool created = false;
  while (!created && absl::Now() < deadline) {
    auto d = Connect();
    ASSERT_NE(d, nullptr);
    absl::StatusOr<std::string> token = d->CreateSession();
    if (!token.ok()) {
      // Refused while the gateway reconnects: a reply, never silence.
      ASSERT_TRUE(absl::IsPermissionDenied(token.status())) << token.status();
      continue;
    }
    created = true;
    EXPECT_OK(FetchState(*d, "Canvas"));
  }
  EXPECT_TRUE(created);
}

}  // namespace
}  // namespace jetstream::testing
