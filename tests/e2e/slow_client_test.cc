// A client that stops reading must not stall anybody else: once its
// connection's write queue passes --max_write_queue_bytes its session ends
// with close code 4097 and reason type "write-queue-overflow", while the
// other clients of the scope keep receiving everything. Real binaries over
// loopback.
#include <fstream>
#include <sstream>
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
using ::testing::SizeIs;

constexpr size_t kWriteQueueBytes = 65536;
constexpr char kSessions[] = "jetstream_gateway_sessions";

// The largest send buffer TCP autotuning may give the gateway's socket
// (the third value of tcp_wmem).
size_t MaxTcpSendBuffer() {
  std::ifstream in("/proc/sys/net/ipv4/tcp_wmem");
  size_t min = 0, def = 0, max = 0;
  if (in >> min >> def >> max) return max;
  return 4 << 20;  // the Linux default
}

class SlowClientTest : public SystemFixture {
 protected:
  std::vector<std::string> GatewayFlags() override {
    // The writer sends megabytes as fast as it is answered: no byte rate.
    return {"--ping_interval=1h", "--max_bytes_per_second=0",
            absl::StrCat("--max_write_queue_bytes=", kWriteQueueBytes)};
  }

  // A client with a session that fetched Canvas.
  SessionClient NewClient() {
    absl::StatusOr<SessionClient> c = StartSession(Connect());
    EXPECT_OK(c);
    return c.ok() ? *std::move(c) : SessionClient{};
  }

  // The writer renames the canvas to a `bytes`-long name; the reader, which
  // keeps up, receives exactly that as its next message.
  void WriteAndCheck(SessionClient& writer, SessionClient& reader, int i,
                     size_t bytes, uint64_t* reader_index) {
    std::string name(bytes, static_cast<char>('a' + i % 26));
    absl::StrAppend(&name, i);
    const std::string fragments = FragmentList(
        {ChangeFragment(writer.fetched.root_uuid, "Canvas",
                        absl::StrCat(R"({"name":")", name, R"("})"))});
    absl::StatusOr<uint64_t> sync =
        writer.ws->SendScopeSync(writer.fetched.scope_index, fragments);
    ASSERT_OK(sync);
    absl::StatusOr<UntilReply> r = ReadUntilReply(*writer.ws, *sync);
    ASSERT_OK(r);
    ASSERT_EQ(Field(r->reply, "fragmentReplies"), "[{}]");
    absl::StatusOr<std::string> m = reader.ws->NextMessage();
    ASSERT_TRUE(m.ok()) << m.status() << " at change " << i;
    ASSERT_EQ(MessageType(*m), "ScopeSync");
    ASSERT_EQ(UintField(*m, "index"), static_cast<int64_t>(++*reader_index));
    ASSERT_EQ(Field(*m, "fragments"), fragments);
  }
};

TEST_F(SlowClientTest, ClientThatStopsReadingIsClosedAndOthersKeepReceiving) {
  SessionClient writer = NewClient();
  SessionClient normal = NewClient();
  SessionClient slow = NewClient();
  ASSERT_NE(writer.ws, nullptr);
  ASSERT_NE(normal.ws, nullptr);
  ASSERT_NE(slow.ws, nullptr);
  ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(), kSessions, 3));
  // From now on the slow client reads nothing. (Its receive buffer stays
  // small: TCP grows it only for a reader. Shrinking it further would make
  // Linux keep the window shut even after reading resumes, as it is below
  // one loopback MSS.)

  // Enough to fill the gateway's socket buffer (the client's stays around
  // tcp_rmem's default) and the write queue, twice over.
  const size_t kFrame = 30000;
  const size_t needed = 2 * (MaxTcpSendBuffer() + kWriteQueueBytes) + (1 << 20);
  const int changes = static_cast<int>(needed / kFrame) + 1;
  uint64_t normal_index = 2;
  int written = 0;
  for (; written < changes; ++written) {
    WriteAndCheck(writer, normal, written, kFrame, &normal_index);
    ASSERT_FALSE(HasFatalFailure());
  }
  // Should the buffers have been larger than estimated, more of the same
  // until the slow session has ended.
  while (GatewayGauge(gateway_->metrics_port(), kSessions).value_or(-1) != 2 &&
         written < 3 * changes) {
    WriteAndCheck(writer, normal, written++, kFrame, &normal_index);
    ASSERT_FALSE(HasFatalFailure());
  }
  // The slow session has ended on its own, while it was not reading.
  ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(), kSessions, 2));

  // What reached the slow client is an in-order prefix, then the close.
  uint64_t slow_index = 2;
  int received = 0;
  for (;;) {
    absl::StatusOr<std::string> frame =
        slow.ws->ReceiveFrame(absl::Seconds(20));
    if (!frame.ok()) {
      ASSERT_TRUE(absl::IsUnavailable(frame.status())) << frame.status();
      break;
    }
    for (const std::string& m : FrameMessages(*frame)) {
      ASSERT_EQ(MessageType(m), "ScopeSync");
      ASSERT_EQ(UintField(m, "index"), static_cast<int64_t>(++slow_index));
      ++received;
    }
  }
  EXPECT_LT(received, written);
  EXPECT_EQ(slow.ws->close_info().code, 4097);
  EXPECT_EQ(CloseReasonType(slow.ws->close_info()), "write-queue-overflow")
      << slow.ws->close_info().reason;

  // Its session is gone: the token is refused.
  auto again = Connect("/", {{"X-Jetstream-SessionToken", slow.token}});
  ASSERT_NE(again, nullptr);
  absl::StatusOr<CloseInfo> close = again->WaitForClose();
  ASSERT_OK(close);
  EXPECT_EQ(close->code, 4096);

  // The others carry on, and the normal client's view is the scope's state.
  WriteAndCheck(writer, normal, written, 10, &normal_index);
  ASSERT_FALSE(HasFatalFailure());
  absl::StatusOr<Fetched> fresh = FetchState(*normal.ws, "Canvas");
  ASSERT_OK(fresh);
  EXPECT_THAT(
      Field(fresh->state, "fragments"),
      HasSubstr(absl::StrCat(std::string(10, 'a' + written % 26), written)));
}

TEST_F(SlowClientTest, ClientThatCatchesUpInTimeLosesNothing) {
  SessionClient writer = NewClient();
  SessionClient normal = NewClient();
  SessionClient lagging = NewClient();
  ASSERT_NE(lagging.ws, nullptr);
  // Well within the kernel buffers: the gateway's queue never fills.
  const int kChanges = 40;
  uint64_t normal_index = 2;
  for (int i = 0; i < kChanges; ++i) {
    WriteAndCheck(writer, normal, i, 1000, &normal_index);
    ASSERT_FALSE(HasFatalFailure());
  }
  absl::StatusOr<std::vector<std::string>> before =
      Barrier(*lagging.ws, lagging.fetched.scope_index);
  ASSERT_OK(before);
  ASSERT_THAT(*before, SizeIs(kChanges));
  for (int i = 0; i < kChanges; ++i) {
    EXPECT_EQ(UintField((*before)[i], "index"), 3 + i);
  }
  EXPECT_EQ(GatewayGauge(gateway_->metrics_port(), kSessions).value_or(-1), 3);
}

// A client that reads but never acknowledges: past --max_unacked_messages
// its session ends (4097, "too-many-unacknowledged-messages"). Here the
// changes come from a session on a second gateway, so the ending session is
// its gateway's only subscriber of the scope when the commit arrives.
class UnackingClientTest : public SystemFixture {
 protected:
  std::vector<std::string> GatewayFlags() override {
    return {"--ping_interval=1h", "--max_unacked_messages=3"};
  }
};

TEST_F(UnackingClientTest, SessionPastTheUnackedLimitEndsAndTheGatewayGoesOn) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> second =
      ChildProcess::StartListening(
          "gateway/gateway",
          {"--port=0", "--sync_service=" + sync_service_->address(),
           "--ping_interval=1h"});
  ASSERT_OK(second);
  auto writer = WsTestClient::Connect("127.0.0.1", (*second)->port());
  ASSERT_OK(writer);
  ASSERT_OK((*writer)->CreateSession());
  absl::StatusOr<Fetched> fw = FetchState(**writer, "Canvas");
  ASSERT_OK(fw);

  auto quiet = ConnectWithSession();  // on the first gateway
  ASSERT_NE(quiet, nullptr);
  ASSERT_TRUE(FetchState(*quiet, "Canvas").ok());  // unacked: 1, 2

  // Changes 3 and 4 reach the quiet session: the second is one too many.
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<uint64_t> sync = (*writer)->SendScopeSync(
        fw->scope_index, FragmentList({ChangeFragment(
                             fw->root_uuid, "Canvas",
                             absl::StrCat(R"({"name":"n)", i, R"("})"))}));
    ASSERT_OK(sync);
    ASSERT_OK(ReadUntilReply(**writer, *sync));
  }
  absl::StatusOr<CloseInfo> close = quiet->WaitForClose();
  ASSERT_OK(close);
  EXPECT_EQ(close->code, 4097);
  EXPECT_EQ(CloseReasonType(*close), "too-many-unacknowledged-messages");

  // The first gateway still serves the scope, live.
  auto fresh = ConnectWithSession();
  ASSERT_NE(fresh, nullptr);
  absl::StatusOr<Fetched> ff = FetchState(*fresh, "Canvas");
  ASSERT_OK(ff);
  EXPECT_THAT(Field(ff->state, "fragments"), HasSubstr(R"("name":"n1")"));
  absl::StatusOr<uint64_t> sync = (*writer)->SendScopeSync(
      fw->scope_index, FragmentList({ChangeFragment(fw->root_uuid, "Canvas",
                                                    R"({"name":"later"})")}));
  ASSERT_OK(sync);
  ASSERT_OK(ReadUntilReply(**writer, *sync));
  absl::StatusOr<std::string> m = fresh->NextMessage();
  ASSERT_OK(m);
  EXPECT_EQ(MessageType(*m), "ScopeSync");
  EXPECT_THAT(Field(*m, "fragments"), HasSubstr(R"("name":"later")"));
}

}  // namespace
}  // namespace jetstream::testing
