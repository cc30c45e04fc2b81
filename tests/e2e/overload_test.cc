// A hub that falls more than --max_delivery_lag behind ends its newest
// sessions with 4097 server-overloaded, counts them, and goes on serving
// the others in index order (docs/protocol.md#overload). The bound here is
// one nanosecond, so every commit finds its hub behind: what is tested is
// what the gateway does then, not how a machine gets there. One thread, so
// one hub holds every session. Real binaries over loopback.
#include <memory>
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

using ::testing::HasSubstr;

constexpr char kSessions[] = "jetstream_gateway_sessions";
constexpr char kShed[] = "jetstream_gateway_sessions_shed_total";

class OverloadTest : public SystemFixture {
 protected:
  std::vector<std::string> GatewayFlags() override {
    return {"--ping_interval=1h", "--threads=1", "--max_delivery_lag=1ns"};
  }

  // A client with a session that fetched Canvas; clients made one after
  // the other are one after the other in the hub's order of age.
  SessionClient NewClient() {
    absl::StatusOr<SessionClient> c = StartSession(Connect());
    EXPECT_OK(c);
    return c.ok() ? *std::move(c) : SessionClient{};
  }

  // The writer renames the canvas; returns the fragments it sent.
  std::string Rename(SessionClient& writer, int i) {
    const std::string fragments = FragmentList(
        {ChangeFragment(writer.fetched.root_uuid, "Canvas",
                        absl::StrCat(R"({"name":"overloaded )", i, R"("})"))});
    absl::StatusOr<uint64_t> sync =
        writer.ws->SendScopeSync(writer.fetched.scope_index, fragments);
    EXPECT_OK(sync);
    if (!sync.ok()) return "";
    absl::StatusOr<UntilReply> r = ReadUntilReply(*writer.ws, *sync);
    EXPECT_OK(r);
    if (r.ok()) EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{}]");
    return fragments;
  }

  // `client` was shed: 4097 server-overloaded, and its token is refused.
  void ExpectShed(SessionClient& client) {
    absl::StatusOr<CloseInfo> close = client.ws->WaitForClose();
    ASSERT_OK(close);
    EXPECT_EQ(close->code, 4097);
    EXPECT_EQ(CloseReasonType(*close), "server-overloaded") << close->reason;
    auto again = Connect("/", {{"X-Jetstream-SessionToken", client.token}});
    ASSERT_NE(again, nullptr);
    absl::StatusOr<CloseInfo> refused = again->WaitForClose();
    ASSERT_OK(refused);
    EXPECT_EQ(refused->code, 4096);
  }

  // `client` receives the change as its next message, with `index`.
  void ExpectDelivered(SessionClient& client, const std::string& fragments,
                       int64_t index) {
    absl::StatusOr<std::string> m = client.ws->NextMessage();
    ASSERT_OK(m);
    ASSERT_EQ(MessageType(*m), "ScopeSync") << *m;
    EXPECT_EQ(UintField(*m, "index"), index);
    EXPECT_EQ(Field(*m, "fragments"), fragments);
  }
};

TEST_F(OverloadTest, AHubBehindEndsItsNewestSessionAndServesTheRestInOrder) {
  // The writer first, so it is the oldest; then nine readers. A tenth of
  // ten sessions is one.
  SessionClient writer = NewClient();
  ASSERT_NE(writer.ws, nullptr);
  std::vector<SessionClient> readers;
  for (int i = 0; i < 9; ++i) {
    readers.push_back(NewClient());
    ASSERT_NE(readers.back().ws, nullptr);
  }
  ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(), kSessions, 10));
  EXPECT_EQ(GatewayGauge(gateway_->metrics_port(), kShed).value_or(-1), 0);

  // Each commit arrives after the last shed and finds the hub behind: it
  // ends the newest session still there, and the others get the commit.
  for (int round = 1; round <= 2; ++round) {
    SCOPED_TRACE(absl::StrCat("commit ", round));
    const std::string fragments = Rename(writer, round);
    ASSERT_FALSE(fragments.empty());
    ExpectShed(readers.back());
    ASSERT_FALSE(HasFatalFailure());
    readers.pop_back();
    for (SessionClient& reader : readers) {
      // A reader's session sent 0 (SessionCreateReply), 1 and 2 (the
      // fetch's reply and ScopeState), then one ScopeSync per commit.
      ExpectDelivered(reader, fragments, 2 + round);
      ASSERT_FALSE(HasFatalFailure());
    }
    EXPECT_TRUE(WaitForGauge(gateway_->metrics_port(), kShed, round));
    EXPECT_TRUE(WaitForGauge(gateway_->metrics_port(), kSessions, 10 - round));
  }

  // A shed client connects again, as after any 4097: its new session's
  // state holds every commit.
  SessionClient back = NewClient();
  ASSERT_NE(back.ws, nullptr);
  EXPECT_THAT(Field(back.fetched.state, "fragments"),
              HasSubstr(R"("name":"overloaded 2")"));
}

}  // namespace
}  // namespace jetstream::testing
