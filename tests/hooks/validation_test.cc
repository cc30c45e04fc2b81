// End-to-end tests of changeset validation and procedures by downstream
// hooks: the real binaries, a hook server in this process.

#include <limits>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/substitute.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/e2e/system_fixture.h"
#include "tests/hooks/hook_system.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
namespace v1 = hooks::v1;

constexpr char kShapeValidator[] = R"({"hooks": [
  {"name": "users", "kind": "session_authorizer", "endpoint": "$0"},
  {"name": "shapes", "kind": "validator", "endpoint": "$0",
   "scopes": ["Canvas", "canvas/*"], "models": ["Shape"],
   "deadline_ms": $1, "failure": "$2"}]})";

std::string ShapeValidator(const std::string& endpoint, int deadline_ms = 5000,
                           const char* failure = "closed") {
  return absl::Substitute(kShapeValidator, endpoint, deadline_ms, failure);
}

// The number value of property `key` of a fragment, or NaN.
double NumberProperty(const sync::v1::SyncFragment& f, const std::string& key) {
  for (const sync::v1::Property& p : f.properties()) {
    if (p.name() == key && p.value().has_number_value()) {
      return p.value().number_value();
    }
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// A scope of its own for each test (from the "canvas/*" or "chat/*"
// template), so that tests never see each other's changes even if the sync
// service keeps scopes across restarts.
std::string TestScope(const std::string& prefix) {
  return prefix +
         ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

class ValidationTest : public HookSystemTest {
 protected:
  // Sessions a and b (users alice and bob) on `scope`.
  void Open(const std::string& scope = TestScope("canvas/")) {
    a_ = ConnectWithSession(R"({"user":"alice"})");
    b_ = ConnectWithSession(R"({"user":"bob"})");
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
    absl::StatusOr<Fetched> fa = FetchState(*a_, scope);
    absl::StatusOr<Fetched> fb = FetchState(*b_, scope);
    ASSERT_OK(fa);
    ASSERT_OK(fb);
    fa_ = *fa;
    fb_ = *fb;
  }

  // Sends `fragments` from a and returns the fragmentReplies JSON.
  std::string SyncFromA(const std::vector<std::string>& fragments,
                        bool atomic = false) {
    absl::StatusOr<uint64_t> sync =
        a_->SendScopeSync(fa_.scope_index, FragmentList(fragments), atomic);
    EXPECT_OK(sync);
    absl::StatusOr<UntilReply> r = ReadUntilReply(*a_, *sync);
    EXPECT_OK(r);
    return r.ok() ? Field(r->reply, "fragmentReplies") : "";
  }

  // What b received since its last barrier (pings left out).
  std::vector<std::string> SeenByB() {
    absl::StatusOr<std::vector<std::string>> before =
        Barrier(*b_, fb_.scope_index);
    EXPECT_OK(before);
    return before.ok() ? WithoutPings(*before) : std::vector<std::string>{};
  }

  std::unique_ptr<WsTestClient> a_, b_;
  Fetched fa_, fb_;
};

TEST_F(ValidationTest, AcceptedChangesetIsAppliedAndBroadcast) {
  StartSystem(ShapeValidator(hooks_.address()));
  Open();
  const std::string s1 = TestUuid(1, 1);
  EXPECT_EQ(SyncFromA({AddShapeFragment(s1, 10, 20),
                       SetShapesFragment(fa_.root_uuid, {s1})}),
            "[{},{}]");
  std::vector<std::string> seen = SeenByB();
  ASSERT_THAT(seen, SizeIs(1));
  EXPECT_EQ(MessageType(seen[0]), "ScopeSync");
  EXPECT_THAT(seen[0], HasSubstr(s1));

  // The validator saw the changeset, who sent it, and the current state of
  // the existing object it touches (the root). Barriers (no Shape) skip it.
  std::vector<v1::ValidateChangesetRequest> calls = hooks_.validate_requests();
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].scope(), TestScope("canvas/"));
  EXPECT_EQ(calls[0].principal().identity(), "alice");
  ASSERT_EQ(calls[0].fragments_size(), 2);
  EXPECT_EQ(calls[0].fragments(0).type(), sync::v1::SyncFragment::ADD);
  EXPECT_EQ(NumberProperty(calls[0].fragments(0), "x"), 10);
  ASSERT_EQ(calls[0].current_size(), 1);
  EXPECT_EQ(calls[0].current(0).uuid(), fa_.root_uuid);
  EXPECT_EQ(calls[0].current(0).cls_name(), "Canvas");
}

TEST_F(ValidationTest, RejectedChangesetAppliesNothing) {
  hooks_.OnValidate([](const v1::ValidateChangesetRequest&,
                       v1::ValidateChangesetResponse* r) {
    r->set_verdict(v1::ValidateChangesetResponse::REJECT);
    r->set_message("No shapes on Mondays");
    return grpc::Status::OK;
  });
  StartSystem(ShapeValidator(hooks_.address()));
  Open();
  const std::string s1 = TestUuid(1, 1);
  const std::string error =
      R"({"error":{"message":"Could not apply SyncMessage: No shapes on Mondays","type":"could-not-apply-sync-message"}})";
  EXPECT_EQ(SyncFromA({AddShapeFragment(s1, 10, 20),
                       SetShapesFragment(fa_.root_uuid, {s1})}),
            absl::StrCat("[", error, ",", error, "]"));
  EXPECT_THAT(SeenByB(), IsEmpty());
}

// The shape validator of the examples: shapes stay inside 0..10000.
grpc::Status RejectOffCanvas(const v1::ValidateChangesetRequest& request,
                             v1::ValidateChangesetResponse* response) {
  for (int i = 0; i < request.fragments_size(); ++i) {
    double x = NumberProperty(request.fragments(i), "x");
    if (x < 0 || x > 10000) {
      v1::FragmentRejection* r = response->add_rejections();
      r->set_fragment(i);
      r->set_message("Shape leaves the canvas");
    }
  }
  return grpc::Status::OK;
}

TEST_F(ValidationTest, RejectedFragmentIsTheOnlyOneNotApplied) {
  hooks_.OnValidate(RejectOffCanvas);
  StartSystem(ShapeValidator(hooks_.address()));
  Open();
  const std::string s1 = TestUuid(1, 1), s2 = TestUuid(1, 2);
  ASSERT_EQ(SyncFromA({AddShapeFragment(s1, 1, 1), AddShapeFragment(s2, 2, 2),
                       SetShapesFragment(fa_.root_uuid, {s1, s2})}),
            "[{},{},{}]");
  ASSERT_THAT(SeenByB(), SizeIs(1));

  EXPECT_EQ(SyncFromA({MoveShapeFragment(s1, 100, 100),
                       MoveShapeFragment(s2, 20000, 5)}),
            R"([{},{"error":{"message":"Shape leaves the canvas"}}])");
  std::vector<std::string> seen = SeenByB();
  ASSERT_THAT(seen, SizeIs(1));
  EXPECT_THAT(seen[0], HasSubstr(s1));
  EXPECT_THAT(seen[0], Not(HasSubstr(s2)));

  // Atomic: the refusal of one refuses all (docs/protocol.md#d1-atomic),
  // nothing is applied.
  EXPECT_EQ(
      SyncFromA(
          {MoveShapeFragment(s1, 200, 200), MoveShapeFragment(s2, 20000, 5)},
          /*atomic=*/true),
      R"([{"error":{"message":"Atomic changeset rejected: fragment 1 failed: Shape leaves the canvas","type":"atomic-changeset-rejected"}},{"error":{"message":"Shape leaves the canvas"}}])");
  EXPECT_THAT(SeenByB(), IsEmpty());
}

TEST_F(ValidationTest, ModifiedValuesGoToTheOriginatorAndEveryoneElse) {
  // Clamps x into the canvas instead of refusing
  // (docs/protocol.md#d3-modifications).
  hooks_.OnValidate([](const v1::ValidateChangesetRequest& request,
                       v1::ValidateChangesetResponse* response) {
    for (int i = 0; i < request.fragments_size(); ++i) {
      if (NumberProperty(request.fragments(i), "x") > 10000) {
        v1::FragmentModification* m = response->add_modifications();
        m->set_fragment(i);
        sync::v1::Property* p = m->add_properties();
        p->set_name("x");
        p->mutable_value()->set_number_value(10000);
      }
    }
    return grpc::Status::OK;
  });
  StartSystem(ShapeValidator(hooks_.address()));
  Open();
  const std::string s1 = TestUuid(1, 1);
  ASSERT_EQ(SyncFromA({AddShapeFragment(s1, 1, 1),
                       SetShapesFragment(fa_.root_uuid, {s1})}),
            "[{},{}]");
  ASSERT_THAT(SeenByB(), SizeIs(1));

  EXPECT_EQ(SyncFromA({MoveShapeFragment(s1, 12345, 7)}),
            R"([{"modifications":{"x":10000}}])");
  std::vector<std::string> seen = SeenByB();
  ASSERT_THAT(seen, SizeIs(1));
  EXPECT_THAT(seen[0], HasSubstr(R"("x":10000)"));
  EXPECT_THAT(seen[0], Not(HasSubstr("12345")));
  // A new session sees the modified value in the state.
  auto c = ConnectWithSession(R"({"user":"carol"})");
  ASSERT_NE(c, nullptr);
  absl::StatusOr<Fetched> fc = FetchState(*c, TestScope("canvas/"));
  ASSERT_OK(fc);
  EXPECT_THAT(fc->state, HasSubstr(R"("x":10000)"));
}

TEST_F(ValidationTest, HookPastItsDeadlineFailsClosed) {
  absl::Notification* release = &release_;
  hooks_.OnValidate([release](const v1::ValidateChangesetRequest&,
                              v1::ValidateChangesetResponse*) {
    release->WaitForNotification();
    return grpc::Status::OK;
  });
  StartSystem(ShapeValidator(hooks_.address(), /*deadline_ms=*/300));
  Open();
  const std::string s1 = TestUuid(1, 1);
  const std::string error =
      R"({"error":{"message":"Could not apply SyncMessage: downstream service 'shapes' unavailable","type":"downstream-unavailable"}})";
  EXPECT_EQ(SyncFromA({AddShapeFragment(s1, 1, 1),
                       SetShapesFragment(fa_.root_uuid, {s1})}),
            absl::StrCat("[", error, ",", error, "]"));
  EXPECT_THAT(SeenByB(), IsEmpty());
}

TEST_F(ValidationTest, UnreachableHookFailsClosed) {
  StartSystem(absl::Substitute(
      R"({"hooks": [{"name": "shapes", "kind": "validator",
          "endpoint": "$0", "models": ["Shape"], "deadline_ms": 2000}]})",
      UnusedAddress()));
  Open();
  const std::string s1 = TestUuid(1, 1);
  const std::string error =
      R"({"error":{"message":"Could not apply SyncMessage: downstream service 'shapes' unavailable","type":"downstream-unavailable"}})";
  EXPECT_EQ(SyncFromA({AddShapeFragment(s1, 1, 1),
                       SetShapesFragment(fa_.root_uuid, {s1})}),
            absl::StrCat("[", error, ",", error, "]"));
  EXPECT_THAT(SeenByB(), IsEmpty());
}

TEST_F(ValidationTest, UnreachableHookFailsOpenWhenConfigured) {
  StartSystem(absl::Substitute(
      R"({"hooks": [{"name": "shapes", "kind": "validator",
          "endpoint": "$0", "models": ["Shape"], "deadline_ms": 2000,
          "failure": "open"}]})",
      UnusedAddress()));
  Open();
  const std::string s1 = TestUuid(1, 1);
  EXPECT_EQ(SyncFromA({AddShapeFragment(s1, 1, 1),
                       SetShapesFragment(fa_.root_uuid, {s1})}),
            "[{},{}]");
  EXPECT_THAT(SeenByB(), SizeIs(1));
}

// While scope "canvas/slow-..." waits for its validator, "canvas/fast-..."
// (with the same validator) commits, and the gateway opens sessions and serves
// fetches. Fails if B's changeset waits for A's hook: the hook is released
// only after B's reply arrived.
TEST_F(ValidationTest, SlowValidatorOnOneScopeDoesNotDelayAnother) {
  absl::Notification entered, unblock;
  hooks_.OnValidate([&entered, &unblock](const v1::ValidateChangesetRequest& r,
                                         v1::ValidateChangesetResponse*) {
    if (absl::StartsWith(r.scope(), "canvas/slow")) {
      if (!entered.HasBeenNotified()) entered.Notify();
      unblock.WaitForNotification();
    }
    return grpc::Status::OK;
  });
  StartSystem(ShapeValidator(hooks_.address(), /*deadline_ms=*/60000));
  auto a = ConnectWithSession(R"({"user":"alice"})");
  auto b = ConnectWithSession(R"({"user":"bob"})");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const std::string slow_scope = TestScope("canvas/slow-");
  absl::StatusOr<Fetched> fa = FetchState(*a, slow_scope);
  absl::StatusOr<Fetched> fb = FetchState(*b, TestScope("canvas/fast-"));
  ASSERT_TRUE(fa.ok() && fb.ok());

  const std::string s1 = TestUuid(1, 1), s2 = TestUuid(1, 2);
  absl::StatusOr<uint64_t> slow = a->SendScopeSync(
      fa->scope_index, FragmentList({AddShapeFragment(s1, 1, 1),
                                     SetShapesFragment(fa->root_uuid, {s1})}));
  ASSERT_OK(slow);
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));

  // Scope B commits while A's hook holds A's changeset.
  absl::StatusOr<uint64_t> fast = b->SendScopeSync(
      fb->scope_index, FragmentList({AddShapeFragment(s2, 2, 2),
                                     SetShapesFragment(fb->root_uuid, {s2})}));
  ASSERT_OK(fast);
  absl::StatusOr<UntilReply> rb = ReadUntilReply(*b, *fast, absl::Seconds(5));
  ASSERT_OK(rb);
  EXPECT_EQ(Field(rb->reply, "fragmentReplies"), "[{},{}]");
  // The gateway is responsive: a new session, and a fetch of the slow scope
  // itself (its state is the one before the held changeset).
  auto c = ConnectWithSession(R"({"user":"carol"})");
  ASSERT_NE(c, nullptr);
  absl::StatusOr<Fetched> fc = FetchState(*c, slow_scope, absl::Seconds(5));
  ASSERT_OK(fc);
  EXPECT_THAT(fc->state, Not(HasSubstr(s1)));
  EXPECT_FALSE(unblock.HasBeenNotified());

  unblock.Notify();
  absl::StatusOr<UntilReply> ra = ReadUntilReply(*a, *slow);
  ASSERT_OK(ra);
  EXPECT_EQ(Field(ra->reply, "fragmentReplies"), "[{},{}]");
  absl::StatusOr<std::vector<std::string>> seen = Barrier(*c, fc->scope_index);
  ASSERT_OK(seen);
  ASSERT_THAT(WithoutPings(*seen), SizeIs(1));
  EXPECT_THAT(WithoutPings(*seen)[0], HasSubstr(s1));
}

// ------------------------------------------------------------ procedures

constexpr char kPostMessage[] = R"({"procedures": [
  {"name": "ChatRoom.postMessage", "endpoint": "$0",
   "scopes": ["ChatRoom", "chat/*"], "deadline_ms": 5000,
   "constraints": [
     {"type": "add", "clsName": "Message",
      "properties": {"text": {"$$hasNewValue": true}},
      "allowAdditionalProperties": true},
     {"type": "change", "clsName": "ChatRoom",
      "properties": {"messages": {"$$array": "insert"}}}]}]})";

// Rejects "spam"; otherwise renames the room after the last message, as a
// follow-up update.
grpc::Status PostMessage(const v1::RunProcedureRequest& request,
                         v1::RunProcedureResponse* response) {
  std::string text;
  for (const sync::v1::SyncFragment& f : request.fragments()) {
    for (const sync::v1::Property& p : f.properties()) {
      if (p.name() == "text") text = p.value().string_value();
    }
  }
  if (text == "spam") {
    response->set_reject(true);
    response->set_message("No spam");
    return grpc::Status::OK;
  }
  for (const v1::ObjectState& o : request.current()) {
    if (o.cls_name() != "ChatRoom") continue;
    sync::v1::SyncFragment* update = response->add_updates();
    update->set_type(sync::v1::SyncFragment::CHANGE);
    update->set_uuid(o.uuid());
    update->set_cls_name("ChatRoom");
    sync::v1::Property* name = update->add_properties();
    name->set_name("name");
    name->mutable_value()->set_string_value("Last: " + text);
  }
  return grpc::Status::OK;
}

std::string ProcedureSync(uint64_t index, uint64_t scope_index,
                          const std::string& procedure,
                          const std::vector<std::string>& fragments) {
  return absl::StrCat(R"({"type":"ScopeSync","index":)", index,
                      R"(,"scopeIndex":)", scope_index,
                      R"(,"atomic":true,"procedure":")", procedure,
                      R"(","fragments":)", FragmentList(fragments), "}");
}

class ProcedureTest : public ValidationTest {
 protected:
  // Sends a procedure call from a; returns the fragmentReplies JSON.
  std::string Call(const std::string& procedure,
                   const std::vector<std::string>& fragments) {
    uint64_t index = a_->NextIndex();
    EXPECT_TRUE(a_->SendText(ProcedureSync(index, fa_.scope_index, procedure,
                                           fragments))
                    .ok());
    absl::StatusOr<UntilReply> r = ReadUntilReply(*a_, index);
    EXPECT_OK(r);
    return r.ok() ? Field(r->reply, "fragmentReplies") : "";
  }

  std::vector<std::string> Post(const std::string& message,
                                const std::string& text) {
    return {
        absl::StrCat(R"({"type":"add","uuid":")", message,
                     R"(","clsName":"Message","properties":{"text":")", text,
                     R"(","postedAt":1700000000}})"),
        ChangeFragment(fa_.root_uuid, "ChatRoom",
                       absl::StrCat(R"({"messages":[")", message, R"("]})"))};
  }
};

TEST_F(ProcedureTest, AppliesTheChangesetThenFollowUpsToEverySession) {
  hooks_.OnProcedure(PostMessage);
  StartSystem(absl::Substitute(kPostMessage, hooks_.address()));
  Open(TestScope("chat/"));
  const std::string m1 = TestUuid(2, 1);
  EXPECT_EQ(Call("ChatRoom.postMessage", Post(m1, "hello")), "[{},{}]");

  // The caller receives the follow-up as a server-side change.
  absl::StatusOr<std::vector<std::string>> mine = Barrier(*a_, fa_.scope_index);
  ASSERT_OK(mine);
  ASSERT_THAT(WithoutPings(*mine), SizeIs(1));
  EXPECT_THAT(WithoutPings(*mine)[0], HasSubstr(R"("name":"Last: hello")"));
  // Everybody else: the changeset, then the follow-up.
  std::vector<std::string> seen = SeenByB();
  ASSERT_THAT(seen, SizeIs(2));
  EXPECT_THAT(seen[0], HasSubstr(m1));
  EXPECT_THAT(seen[0], HasSubstr(R"("text":"hello")"));
  EXPECT_THAT(seen[1], HasSubstr(R"("name":"Last: hello")"));

  std::vector<v1::RunProcedureRequest> calls = hooks_.procedure_requests();
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].scope(), TestScope("chat/"));
  EXPECT_EQ(calls[0].procedure(), "ChatRoom.postMessage");
  EXPECT_EQ(calls[0].principal().identity(), "");  // no session authorizer
  EXPECT_EQ(calls[0].fragments_size(), 2);
  ASSERT_EQ(calls[0].current_size(), 1);
  EXPECT_EQ(calls[0].current(0).uuid(), fa_.root_uuid);
}

TEST_F(ProcedureTest, RefusalsApplyNothing) {
  hooks_.OnProcedure(PostMessage);
  StartSystem(absl::Substitute(kPostMessage, hooks_.address()));
  Open(TestScope("chat/"));
  auto refused = [](const std::string& reason, int n) {
    std::string error =
        absl::StrCat(R"({"error":{"message":"Could not apply SyncMessage: )",
                     reason, R"(","type":"could-not-apply-sync-message"}})");
    std::vector<std::string> all(n, error);
    return absl::StrCat("[", absl::StrJoin(all, ","), "]");
  };
  const std::string m1 = TestUuid(2, 1);
  EXPECT_EQ(Call("ChatRoom.postMessage", Post(m1, "spam")),
            refused("No spam", 2));
  EXPECT_EQ(
      Call("ChatRoom.postMessage", {ChangeFragment(fa_.root_uuid, "ChatRoom",
                                                   R"({"name":"renamed"})")}),
      refused("Changes do not match the procedure constraints", 1));
  EXPECT_EQ(Call("ChatRoom.shout", Post(m1, "hello")),
            refused("No such procedure 'shout' for model 'ChatRoom'", 2));
  EXPECT_EQ(Call("Room.postMessage", Post(m1, "hello")),
            refused("No such model 'Room' for procedure call with procedure "
                    "'postMessage'",
                    2));
  EXPECT_THAT(SeenByB(), IsEmpty());
  // Only the spam call reached the handler; constraints are checked first.
  EXPECT_THAT(hooks_.procedure_requests(), SizeIs(1));
}

TEST_F(ProcedureTest, UnreachableHandlerFailsTheCall) {
  StartSystem(absl::Substitute(kPostMessage, UnusedAddress()));
  Open(TestScope("chat/"));
  const std::string error =
      R"({"error":{"message":"Could not apply SyncMessage: downstream service 'ChatRoom.postMessage' unavailable","type":"downstream-unavailable"}})";
  EXPECT_EQ(Call("ChatRoom.postMessage", Post(TestUuid(2, 1), "hello")),
            absl::StrCat("[", error, ",", error, "]"));
  EXPECT_THAT(SeenByB(), IsEmpty());
}

}  // namespace
}  // namespace jetstream::testing
