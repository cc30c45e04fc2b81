// Both processes' /metrics, scraped from the real binaries after real work:
// WebSocket sessions sending changesets through the gateway, backend calls
// (one refused for its token, one failing), a validator hook, a SQLite
// store. Every scrape passes `promtool check metrics`; the histograms
// counted the operations done; every metric docs/metrics.md lists is
// exported; and /metrics is served only on the metrics ports.

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
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
#include "tests/security/test_pki.h"
#include "tests/testing/process.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

using Labels = std::map<std::string, std::string>;

// One scrape, parsed: the families' types and every sample.
struct Scrape {
  struct Sample {
    std::string name;
    Labels labels;
    double value = 0;
  };
  std::string text;
  std::map<std::string, std::string> types;  // family name -> type
  std::vector<Sample> samples;

  // The sum of the samples named `name` whose labels include `labels`;
  // -1 if there is none.
  double Value(const std::string& name, const Labels& labels = {}) const {
    double sum = 0;
    bool found = false;
    for (const Sample& s : samples) {
      if (s.name != name) continue;
      bool match = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        match = match && it != s.labels.end() && it->second == v;
      }
      if (!match) continue;
      sum += s.value;
      found = true;
    }
    return found ? sum : -1;
  }
};

Scrape Parse(const std::string& text) {
  Scrape scrape;
  scrape.text = text;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty()) continue;
    if (absl::ConsumePrefix(&line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() == 2) scrape.types[parts[0]] = parts[1];
      continue;
    }
    if (line[0] == '#') continue;
    Scrape::Sample sample;
    const size_t brace = line.find('{');
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) continue;
    if (brace != absl::string_view::npos && brace < space) {
      sample.name = std::string(line.substr(0, brace));
      const size_t close = line.rfind('}');
      absl::string_view labels = line.substr(brace + 1, close - brace - 1);
      // Label values here never hold '"' or ',' (names, codes, methods).
      for (absl::string_view pair : absl::StrSplit(labels, ',')) {
        std::pair<std::string, std::string> kv =
            absl::StrSplit(pair, absl::MaxSplits('=', 1));
        sample.labels[kv.first] = std::string(
            absl::StripSuffix(absl::StripPrefix(kv.second, "\""), "\""));
      }
    } else {
      sample.name = std::string(line.substr(0, space));
    }
    if (!absl::SimpleAtod(line.substr(space + 1), &sample.value)) continue;
    scrape.samples.push_back(std::move(sample));
  }
  return scrape;
}

// What `promtool check metrics` says about `text` (exit status and output).
struct PromtoolResult {
  int status = -1;
  std::string output;
};
PromtoolResult PromtoolCheck(const std::string& text, const std::string& tag) {
  const std::string dir = TestTmpDir("promtool");
  const std::string in = dir + "/" + tag + ".txt";
  const std::string out = dir + "/" + tag + ".out";
  std::ofstream(in) << text;
  PromtoolResult result;
  result.status = std::system(
      absl::StrCat("promtool check metrics < ", in, " > ", out, " 2>&1")
          .c_str());
  result.output = ReadTextFile(out);
  return result;
}

// The metric names of one table of a markdown file (the section headed
// `heading`, first column, in backticks).
std::vector<std::string> DocumentedMetrics(
    const std::string& heading, const std::string& file = "docs/metrics.md",
    const std::string& level = "## ") {
  std::vector<std::string> names;
  bool in_section = false;
  for (absl::string_view line :
       absl::StrSplit(ReadTextFile(Runfile(file)), '\n')) {
    if (absl::StartsWith(line, "#")) {
      in_section =
          absl::StartsWith(line, level) && line.substr(level.size()) == heading;
      continue;
    }
    if (!in_section || !absl::ConsumePrefix(&line, "| `")) continue;
    names.emplace_back(line.substr(0, line.find('`')));
  }
  return names;
}

constexpr char kValidator[] = R"({"hooks": [
    {"name": "shapes", "kind": "validator", "endpoint": "$0",
     "models": ["Shape"]}]})";

class ObservabilityTest : public HookSystemTest {
 protected:
  void Start() {
    StartSystem(absl::Substitute(kValidator, hooks_.address()),
                {"--metrics_listen=127.0.0.1:0"},
                {"--metrics_listen=127.0.0.1:0",
                 "--store=sqlite:" + TestTmpDir("store") + "/jetstream.db"});
    ASSERT_GT(gateway_->metrics_port(), 0) << "gateway: no METRICS line";
    ASSERT_GT(sync_service_->metrics_port(), 0) << "sync: no METRICS line";
  }
  // One ListScopes call with the token, which must succeed.
  void ListScopesAsBackend() {
    grpc::ClientContext context;
    Authorize(&context, kTestToken);
    sync::v1::ListScopesResponse scopes;
    ASSERT_TRUE(
        BackendStub()
            ->ListScopes(&context, sync::v1::ListScopesRequest(), &scopes)
            .ok());
  }
  Scrape ScrapeOf(const ChildProcess& process) {
    HttpResult r = HttpGet(process.metrics_port(), "/metrics");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.content_type, "text/plain; version=0.0.4");
    return Parse(r.body);
  }
};

TEST_F(ObservabilityTest, ScrapesPassPromtoolAndCountTheWorkDone) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const Scrape gateway_before = ScrapeOf(*gateway_);
  EXPECT_EQ(gateway_before.Value("jetstream_gateway_changeset_seconds_count"),
            0);

  // Two sessions on one scope; a sends kChangesets changesets, b receives
  // each as a ScopeSync.
  constexpr int kChangesets = 12;
  auto a = ConnectWithSession();
  auto b = ConnectWithSession();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  absl::StatusOr<Fetched> fa = FetchState(*a, "canvas/observability");
  absl::StatusOr<Fetched> fb = FetchState(*b, "canvas/observability");
  ASSERT_OK(fa);
  ASSERT_OK(fb);
  std::vector<std::string> shapes;
  for (int i = 0; i < kChangesets; ++i) {
    shapes.push_back(TestUuid(11, i));
    absl::StatusOr<uint64_t> sync = a->SendScopeSync(
        fa->scope_index,
        FragmentList({AddShapeFragment(shapes.back(), i, i),
                      SetShapesFragment(fa->root_uuid, shapes)}));
    ASSERT_OK(sync);
    ASSERT_OK(ReadUntilReply(*a, *sync));
  }
  // b has every commit once its barrier (an empty changeset) is answered.
  ASSERT_OK(Barrier(*b, fb->scope_index));

  // Backend calls: a listing, a GetScope that fails, one without a token.
  auto stub = BackendStub();
  ASSERT_NO_FATAL_FAILURE(ListScopesAsBackend());
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
  // b leaves with a normal close.
  b->Close();
  ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(),
                           "jetstream_gateway_connections", 1));

  const Scrape gateway = ScrapeOf(*gateway_);
  const Scrape sync = ScrapeOf(*sync_service_);

  for (const auto& [name, scrape] :
       {std::pair<std::string, const Scrape*>{"gateway", &gateway},
        {"syncservice", &sync}}) {
    PromtoolResult checked = PromtoolCheck(scrape->text, name);
    EXPECT_EQ(checked.status, 0)
        << name << ": promtool check metrics failed (is Debian's prometheus "
        << "package installed?): " << checked.output;
    EXPECT_EQ(checked.output, "") << name;
    EXPECT_EQ(scrape->Value("jetstream_build_info", {{"component", name}}), 1)
        << scrape->text;
    EXPECT_GT(scrape->Value("process_resident_memory_bytes"), 0) << name;
    EXPECT_GT(scrape->Value("process_open_fds"), 0) << name;
  }

  // Gateway: every changeset was read, answered and timed; every commit
  // reached b and its delivery lag was measured.
  EXPECT_EQ(gateway.Value("jetstream_gateway_messages_received_total",
                          {{"type", "ScopeSync"}}),
            kChangesets + 1);  // and b's barrier
  EXPECT_EQ(gateway.Value("jetstream_gateway_changeset_seconds_count"),
            kChangesets + 1);
  EXPECT_EQ(gateway.Value("jetstream_gateway_changeset_seconds_bucket",
                          {{"le", "+Inf"}}),
            kChangesets + 1);
  EXPECT_EQ(gateway.Value("jetstream_gateway_messages_sent_total",
                          {{"type", "ScopeSyncReply"}}),
            kChangesets + 1);
  EXPECT_GE(gateway.Value("jetstream_gateway_messages_sent_total",
                          {{"type", "ScopeSync"}}),
            kChangesets);
  EXPECT_EQ(gateway.Value("jetstream_gateway_messages_received_total",
                          {{"type", "ScopeFetch"}}),
            2);
  EXPECT_GE(gateway.Value("jetstream_gateway_delivery_lag_seconds_count"),
            kChangesets);
  EXPECT_EQ(gateway.Value("jetstream_gateway_sessions_started_total"), 2);
  EXPECT_EQ(gateway.Value("jetstream_gateway_closes_total", {{"code", "1000"}}),
            1);
  EXPECT_GT(gateway.Value("jetstream_gateway_received_bytes_total"), 0);
  EXPECT_GT(gateway.Value("jetstream_gateway_sent_bytes_total"),
            gateway_before.Value("jetstream_gateway_sent_bytes_total"));
  EXPECT_EQ(gateway.Value("jetstream_gateway_sync_links_up"), 1);
  EXPECT_EQ(gateway.Value("jetstream_gateway_connections"), 1);
  EXPECT_EQ(
      gateway.Value("grpc_client_started_total",
                    {{"grpc_method", "Connect"}, {"grpc_type", "bidi_stream"}}),
      1);

  // Sync service: the gRPC server metrics by service, method and code.
  const Labels list_ok = {{"grpc_service", "jetstream.sync.v1.SyncService"},
                          {"grpc_method", "ListScopes"},
                          {"grpc_type", "unary"},
                          {"grpc_code", "OK"}};
  EXPECT_EQ(sync.Value("grpc_server_handled_total", list_ok), 1);
  EXPECT_EQ(sync.Value("grpc_server_handled_total",
                       {{"grpc_method", "GetScope"}, {"grpc_code", "OK"}}),
            -1);
  EXPECT_EQ(
      sync.Value("grpc_server_handled_total", {{"grpc_method", "GetScope"}}),
      1);
  EXPECT_EQ(sync.Value("grpc_server_handling_seconds_count",
                       {{"grpc_method", "ListScopes"}}),
            1);
  EXPECT_EQ(sync.Value("jetstream_sync_auth_refused_total"), 1);
  // Each changeset with a Shape went through the validator, every one was
  // applied, persisted (SQLite) and released; the barriers touch no Shape.
  EXPECT_EQ(sync.Value("jetstream_sync_hook_call_seconds_count",
                       {{"hook", "shapes"}, {"grpc_code", "OK"}}),
            kChangesets);
  EXPECT_EQ(
      sync.Value("grpc_client_handled_total",
                 {{"grpc_method", "ValidateChangeset"}, {"grpc_code", "OK"}}),
      kChangesets);
  EXPECT_EQ(sync.Value("jetstream_sync_commit_stage_seconds_count",
                       {{"stage", "validate"}}),
            kChangesets);
  EXPECT_EQ(
      sync.Value("jetstream_sync_changesets_total", {{"outcome", "committed"}}),
      kChangesets);
  for (const char* stage : {"apply", "persist", "release"}) {
    EXPECT_GE(sync.Value("jetstream_sync_commit_stage_seconds_count",
                         {{"stage", stage}}),
              kChangesets)
        << stage;
  }
  EXPECT_GE(sync.Value("jetstream_sync_commit_batch_size_count"), 1);
  EXPECT_GE(sync.Value("jetstream_sync_commit_batch_size_sum"), kChangesets);
  EXPECT_GE(sync.Value("jetstream_sync_store_write_seconds_count"), 1);
  EXPECT_EQ(sync.Value("jetstream_sync_store_errors_total"), 0);
  EXPECT_GE(sync.Value("jetstream_sync_scope_load_seconds_count"), 1);
  EXPECT_EQ(sync.Value("jetstream_sync_scope_watchers",
                       {{"scope", "canvas/observability"}}),
            1);
  EXPECT_EQ(sync.Value("jetstream_sync_cluster_members"), 1);
}

TEST_F(ObservabilityTest, EveryDocumentedMetricIsExported) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // Label-keyed families appear once something was counted: one changeset.
  auto a = ConnectWithSession();
  ASSERT_NE(a, nullptr);
  absl::StatusOr<Fetched> fa = FetchState(*a, "canvas/documented");
  ASSERT_OK(fa);
  const std::string shape = TestUuid(12, 1);
  absl::StatusOr<uint64_t> sync = a->SendScopeSync(
      fa->scope_index,
      FragmentList({AddShapeFragment(shape, 1, 1),
                    SetShapesFragment(fa->root_uuid, {shape})}));
  ASSERT_OK(sync);
  ASSERT_OK(ReadUntilReply(*a, *sync));
  a->Close();
  // A finished call for the grpc_server_handled_* families.
  ASSERT_NO_FATAL_FAILURE(ListScopesAsBackend());
  ASSERT_TRUE(WaitForGauge(gateway_->metrics_port(),
                           "jetstream_gateway_connections", 0));

  const Scrape gateway = ScrapeOf(*gateway_);
  const Scrape sync_service = ScrapeOf(*sync_service_);
  std::vector<std::string> both = DocumentedMetrics("Both processes");
  std::vector<std::string> gateway_only = DocumentedMetrics("Gateway");
  std::vector<std::string> sync_only = DocumentedMetrics("Sync service");
  ASSERT_GT(both.size(), 5u);
  ASSERT_GT(gateway_only.size(), 15u);
  ASSERT_GT(sync_only.size(), 15u);
  auto exported = [](const Scrape& s, const std::string& name) {
    // Families are typed by their name; counters' samples end in _total.
    return s.types.count(name) > 0 ||
           s.types.count(std::string(absl::StripSuffix(name, "_total"))) > 0;
  };
  for (const std::string& name : both) {
    EXPECT_TRUE(exported(gateway, name)) << "gateway lacks " << name;
    EXPECT_TRUE(exported(sync_service, name)) << "sync lacks " << name;
  }
  for (const std::string& name : gateway_only) {
    // The gateway's one call is its stream to the sync service, which ends
    // only with the gateway: its handled_* series come then.
    if (absl::StartsWith(name, "grpc_client_handl")) {
      EXPECT_TRUE(exported(gateway, "grpc_client_started_total")) << name;
      continue;
    }
    EXPECT_TRUE(exported(gateway, name)) << "gateway lacks " << name;
  }
  for (const std::string& name : sync_only) {
    EXPECT_TRUE(exported(sync_service, name)) << "sync lacks " << name;
  }
}

// The README's tables (its front door for operators) list the same
// metrics as docs/metrics.md, which the dashboard and rules tests read.
TEST(MetricsDocsTest, ReadmeListsTheSameMetrics) {
  for (const char* heading : {"Both processes", "Gateway", "Sync service"}) {
    std::vector<std::string> doc = DocumentedMetrics(heading);
    EXPECT_GT(doc.size(), 5u) << heading;
    EXPECT_EQ(DocumentedMetrics(heading, "README.md", "### "), doc) << heading;
  }
}

TEST_F(ObservabilityTest, MetricsAreOnlyOnTheMetricsPorts) {
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_EQ(HttpGet(gateway_->port(), "/metrics").status, 404u);
  EXPECT_EQ(HttpGet(gateway_->metrics_port(), "/metrics").status, 200u);
  HttpResult health = HttpGet(sync_service_->metrics_port(), "/healthz");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(health.body, "ok\n");
  EXPECT_EQ(HttpGet(sync_service_->metrics_port(), "/nothing").status, 404u);
}

TEST_F(ObservabilityTest, PerScopeSeriesAreBoundedToTheBusiestScopes) {
  StartSystem("", {},
              {"--metrics_listen=127.0.0.1:0", "--metrics_top_scopes=2"});
  // Four scopes with 3, 2, 1 and 1 sessions.
  std::vector<std::unique_ptr<WsTestClient>> clients;
  const std::vector<std::pair<std::string, int>> scopes = {{"canvas/top-a", 3},
                                                           {"canvas/top-b", 2},
                                                           {"canvas/top-c", 1},
                                                           {"canvas/top-d", 1}};
  for (const auto& [scope, watchers] : scopes) {
    for (int i = 0; i < watchers; ++i) {
      clients.push_back(ConnectWithSession());
      ASSERT_NE(clients.back(), nullptr);
      ASSERT_OK(FetchState(*clients.back(), scope));
    }
  }
  const Scrape sync = ScrapeOf(*sync_service_);
  // Whatever their ranking (each is watched by the one gateway stream),
  // only two of the four scopes have series.
  int with_series = 0;
  for (const auto& [scope, unused] : scopes) {
    with_series +=
        sync.Value("jetstream_sync_scope_version", {{"scope", scope}}) >= 0;
  }
  EXPECT_EQ(with_series, 2) << sync.text;
}

}  // namespace
}  // namespace jetstream::testing
