// The gateway's operational side, with the real binaries: a metrics port of
// its own (and /metrics no longer on the public port), and a drain on
// SIGTERM that turns readiness off, takes no new clients and ends the
// sessions with 4097 spread over the drain window, then exits cleanly.

#include <signal.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/e2e/system_fixture.h"

namespace jetstream::testing {
namespace {

// GET `target` on 127.0.0.1:`port`: the status code, or -1 if the
// connection failed.
int HttpStatus(int port, const std::string& target) {
  const HttpResult r = HttpGet(port, target);
  return r.status == 0 ? -1 : static_cast<int>(r.status);
}

// Polls GET `target` until it answers `status` or `timeout` passes: the
// gateway is ready only once its link to the sync service is up, which it
// reaches on its own schedule. Returns the last status seen.
int WaitForHttpStatus(int port, const std::string& target, int status,
                      absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  int seen = HttpStatus(port, target);
  while (seen != status && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
    seen = HttpStatus(port, target);
  }
  return seen;
}

class DrainTest : public SystemFixture {
 protected:
  std::vector<std::string> GatewayFlags() override {
    return {"--metrics_listen=127.0.0.1:0", "--drain_window=2s"};
  }
};

TEST_F(DrainTest, MetricsHaveAPortOfTheirOwn) {
  const int metrics = gateway_->metrics_port();
  ASSERT_GT(metrics, 0) << "no METRICS line";
  EXPECT_EQ(HttpStatus(metrics, "/metrics"), 200);
  EXPECT_EQ(HttpStatus(metrics, "/healthz"), 200);
  EXPECT_EQ(WaitForHttpStatus(metrics, "/readyz", 200, absl::Seconds(30)), 200);
  // The public port keeps them private, and the pages are not here.
  EXPECT_EQ(HttpStatus(gateway_->port(), "/metrics"), 404);
  EXPECT_EQ(HttpStatus(gateway_->port(), "/healthz"), 200);
  EXPECT_EQ(HttpStatus(metrics, "/index.html"), 404);
}

TEST_F(DrainTest, ASigtermEndsTheSessionsSpreadOverTheDrainWindow) {
  const int metrics = gateway_->metrics_port();
  ASSERT_GT(metrics, 0);
  constexpr int kSessions = 8;
  std::vector<std::unique_ptr<WsTestClient>> clients;
  for (int i = 0; i < kSessions; ++i) {
    clients.push_back(ConnectWithSession());
    ASSERT_NE(clients.back(), nullptr);
  }
  ASSERT_EQ(WaitForHttpStatus(metrics, "/readyz", 200, absl::Seconds(30)), 200);
  const absl::Time term = absl::Now();
  gateway_->Signal(SIGTERM);
  // Readiness turns off, and nobody new gets in.
  EXPECT_EQ(WaitForHttpStatus(metrics, "/readyz", 503, absl::Seconds(30)), 503);
  EXPECT_FALSE(
      WsTestClient::Connect("127.0.0.1", gateway_->port(), "/", {}).ok());
  // Every session ends with 4097, and not all at once (each client waits
  // for its close on a thread of its own).
  std::vector<absl::Duration> closed_after(kSessions);
  std::vector<int> codes(kSessions);
  std::vector<std::thread> waiters;
  for (int i = 0; i < kSessions; ++i) {
    waiters.emplace_back([&, i] {
      absl::StatusOr<CloseInfo> close =
          clients[i]->WaitForClose(absl::Seconds(30));
      codes[i] = close.ok() ? close->code : -1;
      closed_after[i] = absl::Now() - term;
    });
  }
  for (std::thread& t : waiters) t.join();
  EXPECT_THAT(codes, ::testing::Each(4097));
  std::sort(closed_after.begin(), closed_after.end());
  EXPECT_GE(closed_after.back() - closed_after.front(), absl::Milliseconds(500))
      << "the sessions were ended together";
  EXPECT_TRUE(gateway_->Terminate(absl::Seconds(30))) << "no clean exit";
}

}  // namespace
}  // namespace jetstream::testing
