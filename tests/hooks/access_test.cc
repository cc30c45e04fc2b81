// End-to-end tests of session and scope authorization by downstream hooks,
// and of the SyncService's backend API with its bearer-token check: the
// real binaries, a hook server in this process.

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
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
using ::testing::MatchesRegex;
using ::testing::SizeIs;
namespace v1 = hooks::v1;

constexpr char kAuthorizers[] = R"({"hooks": [
  {"name": "users", "kind": "session_authorizer", "endpoint": "$0"},
  {"name": "scopes", "kind": "scope_authorizer", "endpoint": "$0",
   "scopes": ["*"]}]})";

// Sessions need a "user" param; "role" becomes a claim.
grpc::Status AuthorizeSession(const v1::AuthorizeSessionRequest& request,
                              v1::AuthorizeSessionResponse* response) {
  JsonDocument doc = ParseOrDie(request.params_json());
  if (!doc.IsObject() || !doc.HasMember("user")) {
    response->set_allow(false);
    response->set_message("no user");
    return grpc::Status::OK;
  }
  response->set_allow(true);
  response->mutable_principal()->set_identity(doc["user"].GetString());
  if (doc.HasMember("role")) {
    (*response->mutable_principal()->mutable_claims())["role"] =
        doc["role"].GetString();
  }
  return grpc::Status::OK;
}

// "secret/..." is denied; viewers read only.
grpc::Status AuthorizeScope(const v1::AuthorizeScopeRequest& request,
                            v1::AuthorizeScopeResponse* response) {
  if (absl::StartsWith(request.scope(), "secret/")) {
    response->set_access(v1::AuthorizeScopeResponse::DENY);
    response->set_message("Not your scope");
    return grpc::Status::OK;
  }
  auto role = request.principal().claims().find("role");
  response->set_access(role != request.principal().claims().end() &&
                               role->second == "viewer"
                           ? v1::AuthorizeScopeResponse::READ_ONLY
                           : v1::AuthorizeScopeResponse::READ_WRITE);
  return grpc::Status::OK;
}

// A scope of its own for each test (template "canvas/*").
std::string TestScope() {
  return absl::StrCat(
      "canvas/",
      ::testing::UnitTest::GetInstance()->current_test_info()->name());
}

class AccessTest : public HookSystemTest {
 protected:
  void SetUp() override {
    hooks_.OnSession(AuthorizeSession);
    hooks_.OnScope(AuthorizeScope);
  }
};

TEST_F(AccessTest, DeniedSessionGetsTheFixedReplyAndTheSocketStaysOpen) {
  StartSystem(absl::Substitute(kAuthorizers, hooks_.address()));
  auto denied = Connect({{"X-Jetstream-Tenant", "acme"}});
  ASSERT_NE(denied, nullptr);
  ASSERT_TRUE(denied
                  ->SendText(R"({"type":"SessionCreate","index":0,)"
                             R"("version":"0.2.0","params":{"token":"x"}})")
                  .ok());
  absl::StatusOr<std::string> frame = denied->ReceiveFrame();
  ASSERT_OK(frame);
  EXPECT_EQ(
      *frame,
      R"([{"type":"SessionCreateReply","index":0,"error":{"message":"Session creation denied"}}])");
  // Nothing more is processed for it, and it is not closed.
  ASSERT_OK(denied->SendScopeFetch(TestScope()));
  absl::StatusOr<std::string> more =
      denied->ReceiveFrame(absl::Milliseconds(500));
  // (Not kUnavailable: the server did not close it.)
  EXPECT_EQ(more.status().code(), absl::StatusCode::kDeadlineExceeded)
      << (more.ok() ? *more : std::string(more.status().message()));

  // The hook saw both kinds of params (docs/protocol.md#d16-session-params) and
  // the client version.
  std::vector<v1::AuthorizeSessionRequest> calls = hooks_.session_requests();
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_THAT(calls[0].params_json(), HasSubstr(R"("token":"x")"));
  EXPECT_EQ(calls[0].connection_params().at("tenant"), "acme");
  EXPECT_EQ(calls[0].client_version(), "0.2.0");
  EXPECT_FALSE(calls[0].session_id().empty());

  // An allowed client gets a session.
  EXPECT_NE(ConnectWithSession(R"({"user":"alice"})"), nullptr);
}

TEST_F(AccessTest, TheSessionAuthorizerSeesTheOriginAndTheClientAddress) {
  // The loopback peer is a proxy the gateway trusts.
  StartSystem(absl::Substitute(kAuthorizers, hooks_.address()),
              {"--trusted_proxies=127.0.0.1"});
  // A browser behind that proxy (and a hop the client claims itself, to the
  // left of the proxy's: not believed past the first untrusted address).
  auto browser = Connect({{"Origin", "https://app.example.com"},
                          {"X-Forwarded-For", "6.6.6.6, 203.0.113.9"}});
  ASSERT_NE(browser, nullptr);
  ASSERT_OK(browser->CreateSession("0.2.0", R"({"user":"alice"})"));
  // A client that is not a browser, connecting to the gateway directly.
  auto direct = Connect();
  ASSERT_NE(direct, nullptr);
  ASSERT_OK(direct->CreateSession("0.2.0", R"({"user":"bob"})"));

  std::vector<v1::AuthorizeSessionRequest> calls = hooks_.session_requests();
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_EQ(calls[0].origin(), "https://app.example.com");
  EXPECT_EQ(calls[0].client_address(), "203.0.113.9");
  EXPECT_EQ(calls[1].origin(), "");
  EXPECT_EQ(calls[1].client_address(), "127.0.0.1");
}

TEST_F(AccessTest, XForwardedForFromAnUntrustedPeerIsIgnored) {
  StartSystem(absl::Substitute(kAuthorizers, hooks_.address()));
  auto client = Connect({{"X-Forwarded-For", "203.0.113.9"}});
  ASSERT_NE(client, nullptr);
  ASSERT_OK(client->CreateSession("0.2.0", R"({"user":"alice"})"));
  std::vector<v1::AuthorizeSessionRequest> calls = hooks_.session_requests();
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].client_address(), "127.0.0.1");
}

TEST_F(AccessTest, DeniedScopeGetsAFetchError) {
  StartSystem(absl::Substitute(kAuthorizers, hooks_.address()));
  auto a = ConnectWithSession(R"({"user":"alice"})");
  ASSERT_NE(a, nullptr);
  absl::StatusOr<Fetched> secret = FetchState(*a, "secret/plans");
  ASSERT_FALSE(secret.ok());
  EXPECT_THAT(std::string(secret.status().message()),
              HasSubstr(R"("error":{"message":"Not your scope"})"));
  std::vector<v1::AuthorizeScopeRequest> calls = hooks_.scope_requests();
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].scope(), "secret/plans");
  EXPECT_EQ(calls[0].principal().identity(), "alice");
  EXPECT_EQ(calls[0].params_json(), "{}");
  // Other scopes are fine, and get the next scopeIndex.
  absl::StatusOr<Fetched> canvas = FetchState(*a, TestScope());
  ASSERT_OK(canvas);
  EXPECT_EQ(canvas->scope_index, 0u);
}

TEST_F(AccessTest, ReadOnlySessionCannotWriteButSeesChanges) {
  StartSystem(absl::Substitute(kAuthorizers, hooks_.address()));
  auto viewer = ConnectWithSession(R"({"user":"val","role":"viewer"})");
  auto editor = ConnectWithSession(R"({"user":"ed"})");
  ASSERT_NE(viewer, nullptr);
  ASSERT_NE(editor, nullptr);
  absl::StatusOr<Fetched> fv = FetchState(*viewer, TestScope());
  absl::StatusOr<Fetched> fe = FetchState(*editor, TestScope());
  ASSERT_TRUE(fv.ok() && fe.ok());

  const std::string s1 = TestUuid(1, 1), s2 = TestUuid(1, 2);
  absl::StatusOr<uint64_t> sync = viewer->SendScopeSync(
      fv->scope_index, FragmentList({AddShapeFragment(s1, 1, 1),
                                     SetShapesFragment(fv->root_uuid, {s1})}));
  ASSERT_OK(sync);
  absl::StatusOr<UntilReply> r = ReadUntilReply(*viewer, *sync);
  ASSERT_OK(r);
  const std::string error =
      R"({"error":{"message":"Scope is read-only for this session","type":"scope-read-only"}})";
  EXPECT_EQ(Field(r->reply, "fragmentReplies"),
            absl::StrCat("[", error, ",", error, "]"));
  absl::StatusOr<std::vector<std::string>> seen =
      Barrier(*editor, fe->scope_index);
  ASSERT_OK(seen);
  EXPECT_THAT(WithoutPings(*seen), IsEmpty());

  // The editor writes; the viewer receives it.
  sync = editor->SendScopeSync(
      fe->scope_index, FragmentList({AddShapeFragment(s2, 2, 2),
                                     SetShapesFragment(fe->root_uuid, {s2})}));
  ASSERT_OK(sync);
  r = ReadUntilReply(*editor, *sync);
  ASSERT_OK(r);
  EXPECT_EQ(Field(r->reply, "fragmentReplies"), "[{},{}]");
  seen = Barrier(*viewer, fv->scope_index);
  ASSERT_OK(seen);
  ASSERT_THAT(WithoutPings(*seen), SizeIs(1));
  EXPECT_THAT(WithoutPings(*seen)[0], HasSubstr(s2));
}

TEST_F(AccessTest, UnreachableSessionAuthorizerDeniesWhenClosed) {
  StartSystem(absl::Substitute(
      R"({"hooks": [{"name": "users", "kind": "session_authorizer",
          "endpoint": "$0", "deadline_ms": 1000}]})",
      UnusedAddress()));
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  absl::StatusOr<std::string> token = c->CreateSession("0.2.0", "{}");
  ASSERT_FALSE(token.ok());
  EXPECT_THAT(std::string(token.status().message()),
              HasSubstr("Session creation denied"));
}

// ------------------------------------------------------------ backends

sync::v1::SyncFragment ProtoFragment(sync::v1::SyncFragment::Type type,
                                     const std::string& uuid,
                                     const std::string& cls) {
  sync::v1::SyncFragment f;
  f.set_type(type);
  f.set_uuid(uuid);
  f.set_cls_name(cls);
  return f;
}

void AddNumber(sync::v1::SyncFragment* f, const std::string& name, double v) {
  sync::v1::Property* p = f->add_properties();
  p->set_name(name);
  p->mutable_value()->set_number_value(v);
}

// Adds shape `uuid` to the canvas `root` as a backend.
sync::v1::ApplyChangesetRequest AddShapeRequest(const std::string& root,
                                                const std::string& uuid) {
  sync::v1::ApplyChangesetRequest request;
  request.set_scope(TestScope());
  request.set_atomic(true);
  sync::v1::SyncFragment* add = request.add_fragments();
  *add = ProtoFragment(sync::v1::SyncFragment::ADD, uuid, "Shape");
  AddNumber(add, "x", 5);
  AddNumber(add, "y", 6);
  sync::v1::SyncFragment* change = request.add_fragments();
  *change = ProtoFragment(sync::v1::SyncFragment::CHANGE, root, "Canvas");
  sync::v1::Property* shapes = change->add_properties();
  shapes->set_name("shapes");
  shapes->mutable_value()->mutable_list_value()->add_values()->set_string_value(
      uuid);
  return request;
}

TEST_F(AccessTest, ServerSideWriteOverGrpcReachesEveryClient) {
  StartSystem(absl::Substitute(kAuthorizers, hooks_.address()));
  auto a = ConnectWithSession(R"({"user":"alice"})");
  auto b = ConnectWithSession(R"({"user":"bob"})");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  absl::StatusOr<Fetched> fa = FetchState(*a, TestScope());
  absl::StatusOr<Fetched> fb = FetchState(*b, TestScope());
  ASSERT_TRUE(fa.ok() && fb.ok());

  const std::string s1 = TestUuid(3, 1);
  auto stub = BackendStub();
  grpc::ClientContext context;
  Authorize(&context, kTestToken);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  sync::v1::ApplyChangesetResponse response;
  grpc::Status status = stub->ApplyChangeset(
      &context, AddShapeRequest(fa->root_uuid, s1), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.replies_size(), 2);
  EXPECT_FALSE(response.replies(0).has_error());
  EXPECT_FALSE(response.replies(1).has_error());

  for (auto* client : {a.get(), b.get()}) {
    absl::StatusOr<std::vector<std::string>> seen = Barrier(*client, 0);
    ASSERT_OK(seen);
    ASSERT_THAT(WithoutPings(*seen), SizeIs(1));
    EXPECT_EQ(MessageType(WithoutPings(*seen)[0]), "ScopeSync");
    EXPECT_THAT(WithoutPings(*seen)[0], HasSubstr(s1));
  }

  grpc::ClientContext list_context;
  Authorize(&list_context, kTestToken);
  sync::v1::ListScopesResponse scopes;
  ASSERT_TRUE(
      stub->ListScopes(&list_context, sync::v1::ListScopesRequest(), &scopes)
          .ok());
  EXPECT_GE(scopes.scopes_size(), 1);
}

TEST_F(AccessTest, UnauthenticatedBackendCallIsRefused) {
  StartSystem("");
  auto a = ConnectWithSession();  // no hooks: every session is accepted
  ASSERT_NE(a, nullptr);
  absl::StatusOr<Fetched> fa = FetchState(*a, TestScope());
  ASSERT_OK(fa);

  auto stub = BackendStub();
  for (const std::string token : {"", "wrong-token"}) {
    grpc::ClientContext context;
    Authorize(&context, token);
    sync::v1::ApplyChangesetResponse response;
    grpc::Status status = stub->ApplyChangeset(
        &context, AddShapeRequest(fa->root_uuid, TestUuid(3, 2)), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << token << ": " << status.error_message();
    grpc::ClientContext list_context;
    Authorize(&list_context, token);
    sync::v1::ListScopesResponse scopes;
    EXPECT_EQ(
        stub->ListScopes(&list_context, sync::v1::ListScopesRequest(), &scopes)
            .error_code(),
        grpc::StatusCode::UNAUTHENTICATED);
    grpc::ClientContext get_context;
    Authorize(&get_context, token);
    sync::v1::GetScopeRequest get;
    get.set_scope(TestScope());
    sync::v1::GetScopeResponse state;
    EXPECT_EQ(stub->GetScope(&get_context, get, &state).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  // Nothing changed.
  absl::StatusOr<std::vector<std::string>> seen = Barrier(*a, 0);
  ASSERT_OK(seen);
  EXPECT_THAT(WithoutPings(*seen), IsEmpty());
  // A gateway stream without the token is refused too.
  grpc::ClientContext stream_context;
  auto stream = stub->Connect(&stream_context);
  sync::v1::ServiceFrame frame;
  EXPECT_FALSE(stream->Read(&frame));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// Tracing: every changeset a client sends gets a W3C trace at the gateway,
// which reaches the validator as `traceparent` metadata (a span of its own
// in that trace); a backend's ApplyChangeset continues the trace it sends.
TEST_F(AccessTest, EveryChangesetCarriesItsTraceToTheValidator) {
  StartSystem(absl::Substitute(R"({"hooks": [
      {"name": "shapes", "kind": "validator", "endpoint": "$0",
       "models": ["Shape"]}]})",
                               hooks_.address()));
  auto a = ConnectWithSession();
  ASSERT_NE(a, nullptr);
  absl::StatusOr<Fetched> fa = FetchState(*a, TestScope());
  ASSERT_OK(fa);
  for (int i = 0; i < 2; ++i) {
    const std::string shape = TestUuid(5, i);
    absl::StatusOr<uint64_t> sync = a->SendScopeSync(
        fa->scope_index,
        FragmentList({AddShapeFragment(shape, i, i),
                      SetShapesFragment(fa->root_uuid, {shape})}));
    ASSERT_OK(sync);
    ASSERT_OK(ReadUntilReply(*a, *sync));
  }
  constexpr char kBackendTrace[] =
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto stub = BackendStub();
  grpc::ClientContext context;
  Authorize(&context, kTestToken);
  context.AddMetadata("traceparent", kBackendTrace);
  sync::v1::ApplyChangesetResponse response;
  grpc::Status status = stub->ApplyChangeset(
      &context, AddShapeRequest(fa->root_uuid, TestUuid(5, 9)), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  std::vector<std::string> traces = hooks_.validate_traceparents();
  ASSERT_THAT(traces, SizeIs(3));
  for (const std::string& t : traces) {
    EXPECT_THAT(t, MatchesRegex("00-[0-9a-f]{32}-[0-9a-f]{16}-01"));
  }
  // One trace per changeset.
  EXPECT_NE(traces[0].substr(3, 32), traces[1].substr(3, 32));
  // The backend's trace, in a span of the sync service's own.
  EXPECT_EQ(traces[2].substr(0, 36), std::string(kBackendTrace).substr(0, 36));
  EXPECT_NE(traces[2], kBackendTrace);
}

// Deadline propagation: a backend's ApplyChangeset deadline bounds the
// validator call it causes, although the hook's own deadline_ms is a
// minute. Without a caller deadline (a WebSocket client's changeset) the
// hook gets its own.
TEST_F(AccessTest, BackendDeadlineBoundsTheValidatorCall) {
  StartSystem(absl::Substitute(R"({"hooks": [
      {"name": "shapes", "kind": "validator", "endpoint": "$0",
       "models": ["Shape"], "deadline_ms": 60000}]})",
                               hooks_.address()));
  auto a = ConnectWithSession();
  ASSERT_NE(a, nullptr);
  absl::StatusOr<Fetched> fa = FetchState(*a, TestScope());
  ASSERT_OK(fa);

  auto stub = BackendStub();
  grpc::ClientContext context;
  Authorize(&context, kTestToken);
  const absl::Time backend_deadline = absl::Now() + absl::Seconds(5);
  context.set_deadline(absl::ToChronoTime(backend_deadline));
  sync::v1::ApplyChangesetResponse response;
  grpc::Status status = stub->ApplyChangeset(
      &context, AddShapeRequest(fa->root_uuid, TestUuid(3, 7)), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  const std::string s2 = TestUuid(3, 8);
  absl::StatusOr<uint64_t> sync = a->SendScopeSync(
      fa->scope_index, FragmentList({AddShapeFragment(s2, 1, 2),
                                     SetShapesFragment(fa->root_uuid, {s2})}));
  ASSERT_OK(sync);
  ASSERT_OK(ReadUntilReply(*a, *sync));

  std::vector<absl::Time> deadlines = hooks_.validate_deadlines();
  ASSERT_THAT(deadlines, SizeIs(2));
  // gRPC sends a deadline as a timeout rounded up, hence the second of
  // slack; without propagation it would be a minute away.
  EXPECT_LE(deadlines[0], backend_deadline + absl::Seconds(1));
  EXPECT_GT(deadlines[1], backend_deadline + absl::Seconds(30));
  EXPECT_NE(deadlines[1], absl::InfiniteFuture());
}

}  // namespace
}  // namespace jetstream::testing
