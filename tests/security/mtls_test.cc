// mTLS between the sync service and its callers: the real syncservice
// binary with --tls_cert/--tls_key/--tls_client_ca, certificates made at
// test time (test_pki.h). A backend with a certificate from the trusted CA
// may call; one without a certificate, or with one from another CA, is
// refused in the handshake. The gateway reaches the service over mTLS with
// its --sync_service_tls_ca/_cert/_key flags and WebSocket clients work
// through it; with a foreign certificate it cannot reach it.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/sync/v1/sync_service.grpc.pb.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/security/test_pki.h"
#include "tests/testing/process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/ws_test_client.h"

namespace jetstream::testing {
namespace {

using ::testing::HasSubstr;

class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = MakeTestPki(TestTmpDir("pki"));
    ASSERT_OK(pki);
    pki_ = *pki;
    auto sync = ChildProcess::StartListening(
        "syncservice/syncservice",
        {"--listen=127.0.0.1:0",
         "--schema=" + Runfile("syncservice/config/demo_schema.json"),
         "--scopes=" + Runfile("syncservice/config/demo_scopes.json"),
         "--store=memory", "--tls_cert=" + pki_.server_cert,
         "--tls_key=" + pki_.server_key, "--tls_client_ca=" + pki_.ca_cert});
    ASSERT_OK(sync);
    sync_ = *std::move(sync);
  }

  std::unique_ptr<sync::v1::SyncService::Stub> Stub(const std::string& cert,
                                                    const std::string& key) {
    return sync::v1::SyncService::NewStub(grpc::CreateChannel(
        sync_->address(), TlsChannelCredentials(pki_, cert, key)));
  }

  static grpc::Status List(sync::v1::SyncService::Stub& stub,
                           sync::v1::ListScopesResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    return stub.ListScopes(&context, sync::v1::ListScopesRequest(), response);
  }

  std::unique_ptr<ChildProcess> StartGateway(const std::string& cert,
                                             const std::string& key) {
    auto gateway = ChildProcess::StartListening(
        "gateway/gateway",
        {"--port=0", "--sync_service=" + sync_->address(),
         "--sync_service_tls_ca=" + pki_.ca_cert,
         "--sync_service_tls_cert=" + cert, "--sync_service_tls_key=" + key});
    EXPECT_OK(gateway);
    return gateway.ok() ? *std::move(gateway) : nullptr;
  }

  TestPki pki_;
  std::unique_ptr<ChildProcess> sync_;
};

TEST_F(MtlsTest, ClientWithCertificateFromTheTrustedCaCanCall) {
  auto stub = Stub(pki_.client_cert, pki_.client_key);
  sync::v1::ListScopesResponse scopes;
  grpc::Status listed = List(*stub, &scopes);
  ASSERT_TRUE(listed.ok()) << listed.error_message();
  std::vector<std::string> names;
  for (const auto& scope : scopes.scopes()) names.push_back(scope.scope());
  EXPECT_THAT(names, ::testing::Contains("Canvas"));

  grpc::ClientContext context;
  sync::v1::GetScopeRequest request;
  request.set_scope("Canvas");
  sync::v1::GetScopeResponse state;
  grpc::Status got = stub->GetScope(&context, request, &state);
  ASSERT_TRUE(got.ok()) << got.error_message();
  EXPECT_TRUE(state.has_snapshot());
}

TEST_F(MtlsTest, ClientWithoutCertificateIsRefused) {
  auto stub = Stub("", "");
  sync::v1::ListScopesResponse scopes;
  grpc::Status status = List(*stub, &scopes);
  // The handshake fails, so no call is ever made.
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_EQ(scopes.scopes_size(), 0);
}

TEST_F(MtlsTest, ClientWithCertificateFromAnotherCaIsRefused) {
  auto stub = Stub(pki_.foreign_client_cert, pki_.foreign_client_key);
  sync::v1::ListScopesResponse scopes;
  grpc::Status status = List(*stub, &scopes);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_EQ(scopes.scopes_size(), 0);
}

TEST_F(MtlsTest, ClientThatDoesNotTrustTheServerRefusesIt) {
  // The client's roots are the foreign CA: the server's certificate fails
  // verification on the client side.
  TestPki other = pki_;
  other.ca_cert = pki_.foreign_ca_cert;
  auto stub = sync::v1::SyncService::NewStub(grpc::CreateChannel(
      sync_->address(),
      TlsChannelCredentials(other, pki_.client_cert, pki_.client_key)));
  sync::v1::ListScopesResponse scopes;
  EXPECT_EQ(List(*stub, &scopes).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(MtlsTest, WebSocketClientsWorkThroughAGatewayOverMtls) {
  auto gateway = StartGateway(pki_.client_cert, pki_.client_key);
  ASSERT_NE(gateway, nullptr);
  auto connect = [&]() -> std::unique_ptr<WsTestClient> {
    auto client = WsTestClient::Connect("127.0.0.1", gateway->port(), "/");
    EXPECT_OK(client);
    if (!client.ok()) return nullptr;
    auto token = (*client)->CreateSession();
    EXPECT_OK(token);
    return token.ok() ? *std::move(client) : nullptr;
  };
  auto a = connect();
  auto b = connect();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  absl::StatusOr<Fetched> fa = FetchState(*a, "Canvas");
  ASSERT_OK(fa);
  absl::StatusOr<Fetched> fb = FetchState(*b, "Canvas");
  ASSERT_OK(fb);

  // A's change is applied by the sync service and reaches B.
  const std::string shape = TestUuid(7, 1);
  auto index = a->SendScopeSync(
      fa->scope_index,
      FragmentList({AddShapeFragment(shape, 10, 20),
                    SetShapesFragment(fa->root_uuid, {shape})}));
  ASSERT_OK(index);
  absl::StatusOr<std::string> reply = a->WaitForReply(*index);
  ASSERT_OK(reply);
  EXPECT_THAT(*reply, HasSubstr("\"fragmentReplies\""));
  EXPECT_THAT(*reply, ::testing::Not(HasSubstr("error")));
  absl::StatusOr<std::string> sync = b->WaitFor("ScopeSync");
  ASSERT_OK(sync);
  EXPECT_THAT(*sync, HasSubstr(shape));
}

TEST_F(MtlsTest, GatewayWithForeignCertificateCannotReachTheService) {
  auto gateway =
      StartGateway(pki_.foreign_client_cert, pki_.foreign_client_key);
  ASSERT_NE(gateway, nullptr);
  auto client = WsTestClient::Connect("127.0.0.1", gateway->port(), "/");
  ASSERT_OK(client);
  // Session creation asks the sync service, which the gateway cannot reach:
  // the session is denied.
  absl::StatusOr<std::string> token = (*client)->CreateSession();
  ASSERT_FALSE(token.ok());
  EXPECT_THAT(std::string(token.status().message()),
              HasSubstr("Session creation denied"));
}

TEST_F(MtlsTest, GatewayNeverSendsATokenInClear) {
  auto gateway = ChildProcess::StartListening(
      "gateway/gateway", {"--port=0", "--sync_service=" + sync_->address(),
                          "--sync_service_token=secret"});
  ASSERT_FALSE(gateway.ok());
  EXPECT_EQ(gateway.status().code(), absl::StatusCode::kUnavailable)
      << gateway.status();  // exited before listening
}

}  // namespace
}  // namespace jetstream::testing
