// The C++ example validator (examples/validator-cpp) wired in with the
// example hooks file (examples/demo_hooks.json), as
// examples/demo_with_validator.sh runs them: the real demo_validator,
// syncservice and gateway binaries; WebSocket clients check the demo's
// rules end to end. The hooks file is used as committed, with only its
// endpoint replaced by the validator's port (the test binds port 0).

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/e2e/system_fixture.h"
#include "tests/security/test_pki.h"
#include "tests/testing/process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/ws_test_client.h"

namespace jetstream::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kShapeRejected[] =
    R"({"error":{"message":"Shape must stay inside the 0..10000 canvas"}})";
constexpr char kEmptyRejected[] =
    R"({"error":{"message":"Message text must not be empty"}})";

class DemoValidatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto validator = ChildProcess::StartListening(
        "examples/validator-cpp/demo_validator", {"--listen=127.0.0.1:0"});
    ASSERT_OK(validator);
    validator_ = *std::move(validator);
    const std::string hooks =
        absl::StrReplaceAll(ReadTextFile(Runfile("examples/demo_hooks.json")),
                            {{"127.0.0.1:50061", validator_->address()}});
    ASSERT_THAT(hooks, HasSubstr(validator_->address()));
    const std::string hooks_path = TestTmpDir("hooks") + "/demo_hooks.json";
    std::ofstream(hooks_path) << hooks;
    auto sync = ChildProcess::StartListening(
        "syncservice/syncservice",
        {"--listen=127.0.0.1:0",
         "--schema=" + Runfile("syncservice/config/demo_schema.json"),
         "--scopes=" + Runfile("syncservice/config/demo_scopes.json"),
         "--hooks=" + hooks_path, "--store=memory"});
    ASSERT_OK(sync);
    sync_ = *std::move(sync);
    auto gateway = ChildProcess::StartListening(
        "gateway/gateway", {"--port=0", "--sync_service=" + sync_->address()});
    ASSERT_OK(gateway);
    gateway_ = *std::move(gateway);
  }

  // Two sessions, a and b, on `scope`.
  void Open(const std::string& scope) {
    for (auto* client : {&a_, &b_}) {
      auto c = WsTestClient::Connect("127.0.0.1", gateway_->port(), "/");
      ASSERT_OK(c);
      ASSERT_OK((*c)->CreateSession());
      *client = *std::move(c);
    }
    absl::StatusOr<Fetched> fa = FetchState(*a_, scope);
    absl::StatusOr<Fetched> fb = FetchState(*b_, scope);
    ASSERT_OK(fa);
    ASSERT_OK(fb);
    fa_ = *fa;
    fb_ = *fb;
  }

  // Sends `fragments` from a; the reply's fragmentReplies.
  std::string SyncFromA(const std::vector<std::string>& fragments) {
    absl::StatusOr<uint64_t> sync =
        a_->SendScopeSync(fa_.scope_index, FragmentList(fragments));
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

  // Adds a Message with `text` to the chat room (root) as fragment 0.
  std::vector<std::string> PostMessage(const std::string& uuid,
                                       const std::string& text) {
    return {absl::StrCat(R"({"type":"add","uuid":")", uuid,
                         R"(","clsName":"Message","properties":{"text":")",
                         text, R"("}})"),
            ChangeFragment(fa_.root_uuid, "ChatRoom",
                           absl::StrCat(R"({"messages":[")", uuid, R"("]})"))};
  }

  std::unique_ptr<ChildProcess> validator_, sync_, gateway_;
  std::unique_ptr<WsTestClient> a_, b_;
  Fetched fa_, fb_;
};

TEST_F(DemoValidatorTest, ShapesStayInsideTheCanvas) {
  Open("Canvas");
  const std::string s1 = TestUuid(1, 1), s2 = TestUuid(1, 2);
  // One shape inside, one outside: only the outside one is refused.
  EXPECT_EQ(
      SyncFromA({AddShapeFragment(s1, 100, 200), AddShapeFragment(s2, 20000, 5),
                 SetShapesFragment(fa_.root_uuid, {s1})}),
      absl::StrCat("[{},", kShapeRejected, ",{}]"));
  std::vector<std::string> seen = SeenByB();
  ASSERT_THAT(seen, SizeIs(1));
  EXPECT_THAT(seen[0], HasSubstr(s1));
  EXPECT_THAT(seen[0], Not(HasSubstr(s2)));

  // Moving it outside (either way) is refused and changes nothing.
  EXPECT_EQ(SyncFromA({MoveShapeFragment(s1, 10001, 5)}),
            absl::StrCat("[", kShapeRejected, "]"));
  EXPECT_EQ(SyncFromA({MoveShapeFragment(s1, 5, -1)}),
            absl::StrCat("[", kShapeRejected, "]"));
  EXPECT_THAT(SeenByB(), IsEmpty());
  // Inside is fine (the shape is 100 wide: 9900 is the last x).
  EXPECT_EQ(SyncFromA({MoveShapeFragment(s1, 9900, 9900)}), "[{}]");
  ASSERT_THAT(SeenByB(), SizeIs(1));
}

TEST_F(DemoValidatorTest, LongChatMessagesAreCutAndEmptyOnesRejected) {
  Open("ChatRoom");
  const std::string m1 = TestUuid(2, 1), m2 = TestUuid(2, 2),
                    m3 = TestUuid(2, 3);
  const std::string long_text(600, 'a'), cut(500, 'a');
  // The sender gets the cut text as a modification, b only the cut text.
  EXPECT_EQ(SyncFromA(PostMessage(m1, long_text)),
            absl::StrCat(R"([{"modifications":{"text":")", cut, R"("}},{}])"));
  std::vector<std::string> seen = SeenByB();
  ASSERT_THAT(seen, SizeIs(1));
  EXPECT_THAT(seen[0], HasSubstr(absl::StrCat("\"", cut, "\"")));
  EXPECT_THAT(seen[0], Not(HasSubstr(long_text)));

  EXPECT_EQ(SyncFromA({PostMessage(m2, "")[0]}),
            absl::StrCat("[", kEmptyRejected, "]"));
  EXPECT_EQ(SyncFromA({PostMessage(m2, " \\n ")[0]}),
            absl::StrCat("[", kEmptyRejected, "]"));
  EXPECT_THAT(SeenByB(), IsEmpty());
  EXPECT_EQ(SyncFromA(PostMessage(m3, "hello")), "[{},{}]");
  seen = SeenByB();
  ASSERT_THAT(seen, SizeIs(1));
  EXPECT_THAT(seen[0], HasSubstr("hello"));
}

}  // namespace
}  // namespace jetstream::testing
