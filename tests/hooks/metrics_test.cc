// The sync service's /metrics endpoint, scraped from the real binary after
// real calls: SyncService calls per method (and their failures), calls out
// to a validator hook, refused authentication, scopes loaded and versions.

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/substitute.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/hooks/hook_system.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

constexpr char kListScopes[] = "/jetstream.sync.v1.SyncService/ListScopes";
constexpr char kGetScope[] = "/jetstream.sync.v1.SyncService/GetScope";
constexpr char kValidate[] =
    "/jetstream.hooks.v1.ChangesetValidator/ValidateChangeset";

// GET http://<address><target>; the status and body.
struct HttpResult {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};
HttpResult HttpGet(const std::string& address, const std::string& target) {
  HttpResult result;
  size_t colon = address.rfind(':');
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  net::ip::tcp::endpoint endpoint(
      net::ip::make_address(address.substr(0, colon)),
      static_cast<unsigned short>(std::stoi(address.substr(colon + 1))));
  beast::error_code ec;
  stream.connect(endpoint, ec);
  if (ec) return result;
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "localhost");
  http::write(stream, request, ec);
  if (ec) return result;
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response, ec);
  if (ec) return result;
  result.status = response.result_int();
  result.content_type = std::string(response[http::field::content_type]);
  result.body = response.body();
  return result;
}

// The value of the sample `name` (with its labels, as printed), or -1.
double Sample(const std::string& text, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, name) && absl::ConsumePrefix(&line, " ")) {
      double v = 0;
      if (absl::SimpleAtod(line, &v)) return v;
    }
  }
  return -1;
}

std::string Method(const std::string& metric, const char* method) {
  return absl::StrCat(metric, "{method=\"", method, "\"}");
}

class MetricsTest : public HookSystemTest {
 protected:
  // The address the sync service announced with "METRICS ip:port".
  std::string MetricsAddress() {
    for (const std::string& line : sync_service_->earlier_lines()) {
      absl::string_view rest = line;
      if (absl::ConsumePrefix(&rest, "METRICS ")) return std::string(rest);
    }
    ADD_FAILURE() << "no METRICS line";
    return "";
  }
  std::string Scrape() {
    HttpResult r = HttpGet(MetricsAddress(), "/metrics");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.content_type, "text/plain; version=0.0.4");
    return r.body;
  }
};

TEST_F(MetricsTest, CountersMoveWithRealCalls) {
  StartSystem(absl::Substitute(R"({"hooks": [
      {"name": "shapes", "kind": "validator", "endpoint": "$0",
       "models": ["Shape"]}]})",
                               hooks_.address()));
  const std::string before = Scrape();
  EXPECT_EQ(Sample(before, "jetstream_sync_scopes_loaded"), 2);  // demo
  EXPECT_EQ(Sample(before, Method("jetstream_sync_calls_total", kListScopes)),
            -1);
  EXPECT_EQ(Sample(before, "jetstream_sync_auth_refused_total"), 0);

  // Two listings, a GetScope of a scope that does not exist (a failure),
  // and one call without the token (refused before any method).
  auto stub = BackendStub();
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext context;
    Authorize(&context, kTestToken);
    sync::v1::ListScopesResponse scopes;
    ASSERT_TRUE(
        stub->ListScopes(&context, sync::v1::ListScopesRequest(), &scopes)
            .ok());
  }
  {
    grpc::ClientContext context;
    Authorize(&context, kTestToken);
    sync::v1::GetScopeRequest request;
    request.set_scope("NoSuchScope");
    sync::v1::GetScopeResponse state;
    EXPECT_FALSE(stub->GetScope(&context, request, &state).ok());
  }
  {
    grpc::ClientContext context;
    sync::v1::ListScopesResponse scopes;
    EXPECT_EQ(stub->ListScopes(&context, sync::v1::ListScopesRequest(), &scopes)
                  .error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  // A changeset through the gateway: one validator call, one commit.
  auto a = ConnectWithSession();
  ASSERT_NE(a, nullptr);
  absl::StatusOr<Fetched> fa = FetchState(*a, "canvas/metrics");
  ASSERT_OK(fa);
  const std::string version =
      "jetstream_sync_scope_version{scope=\"canvas/metrics\"}";
  const double fetched_version = Sample(Scrape(), version);
  EXPECT_GE(fetched_version, 1);
  const std::string shape = TestUuid(9, 1);
  absl::StatusOr<uint64_t> sync = a->SendScopeSync(
      fa->scope_index,
      FragmentList({AddShapeFragment(shape, 1, 2),
                    SetShapesFragment(fa->root_uuid, {shape})}));
  ASSERT_OK(sync);
  ASSERT_OK(ReadUntilReply(*a, *sync));

  const std::string after = Scrape();
  EXPECT_EQ(Sample(after, Method("jetstream_sync_calls_total", kListScopes)), 2)
      << after;
  EXPECT_EQ(
      Sample(after, Method("jetstream_sync_call_failures_total", kListScopes)),
      0);
  EXPECT_GE(Sample(after, Method("jetstream_sync_call_latency_seconds_sum",
                                 kListScopes)),
            0);
  EXPECT_EQ(Sample(after, Method("jetstream_sync_calls_total", kGetScope)), 1);
  EXPECT_EQ(
      Sample(after, Method("jetstream_sync_call_failures_total", kGetScope)),
      1);
  EXPECT_EQ(Sample(after, "jetstream_sync_auth_refused_total"), 1);
  const std::string hook =
      absl::StrCat("{hook=\"shapes\",method=\"", kValidate, "\"}");
  EXPECT_EQ(Sample(after, "jetstream_hook_calls_total" + hook), 1) << after;
  EXPECT_EQ(Sample(after, "jetstream_hook_call_failures_total" + hook), 0);
  EXPECT_GE(Sample(after, "jetstream_hook_call_latency_seconds_sum" + hook), 0);
  EXPECT_EQ(Sample(after, "jetstream_sync_scopes_loaded"), 3);
  EXPECT_EQ(Sample(after, version), fetched_version + 1);  // one commit
  EXPECT_EQ(
      Sample(after, "jetstream_sync_scope_watchers{scope=\"canvas/metrics\"}"),
      1);
}

TEST_F(MetricsTest, HealthzAndUnknownPaths) {
  StartSystem("");
  HttpResult health = HttpGet(MetricsAddress(), "/healthz");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(health.body, "ok\n");
  EXPECT_EQ(HttpGet(MetricsAddress(), "/nothing").status, 404u);
}

}  // namespace
}  // namespace jetstream::testing
