// Tests of CallAuthenticator as gRPC's AuthMetadataProcessor, and the
// experiment behind that choice: what a gRPC 1.51 server interceptor can do
// to refuse a call (see interceptors.h). A counting ListScopes handler tells
// whether a call reached its method.

#include "syncservice/rpc/interceptors.h"

#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "proto/sync/v1/sync_service.grpc.pb.h"
#include "tests/security/test_pki.h"
#include "tests/testing/status_matchers.h"

namespace jetstream {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::InterceptorBatchMethods;
using testing::MakeTestPki;
using testing::ReadTextFile;
using testing::TestPki;
using testing::TestTmpDir;

// Counts ListScopes handler runs; `ran` is notified on the first.
class CountingService final : public sync::v1::SyncService::CallbackService {
 public:
  grpc::ServerUnaryReactor* ListScopes(grpc::CallbackServerContext* context,
                                       const sync::v1::ListScopesRequest*,
                                       sync::v1::ListScopesResponse*) override {
    if (calls.fetch_add(1) == 0) ran.Notify();
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  std::atomic<int> calls{0};
  absl::Notification ran;
};

// How the experiment's interceptor tries to refuse every call.
enum class Refusal {
  kTryCancel,         // TryCancel() at POST_RECV_INITIAL_METADATA, then
                      // ModifySendStatus(UNAUTHENTICATED) at PRE_SEND_STATUS
  kModifySendStatus,  // only ModifySendStatus(UNAUTHENTICATED)
  kCoreCancel,        // the C core's grpc_call_cancel_with_status(
                      // UNAUTHENTICATED) on server_context()->c_call() at
                      // POST_RECV_INITIAL_METADATA
};

class RefusingInterceptor final : public grpc::experimental::Interceptor {
 public:
  RefusingInterceptor(Refusal how, grpc::experimental::ServerRpcInfo* info)
      : how_(how), info_(info) {}
  void Intercept(InterceptorBatchMethods* methods) override {
    if (how_ == Refusal::kTryCancel &&
        methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      info_->server_context()->TryCancel();
    }
    if (how_ == Refusal::kCoreCancel &&
        methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      grpc_call_cancel_with_status(info_->server_context()->c_call(),
                                   GRPC_STATUS_UNAUTHENTICATED, "refused",
                                   nullptr);
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      methods->ModifySendStatus(
          grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "refused"));
    }
    methods->Proceed();
  }

 private:
  const Refusal how_;
  grpc::experimental::ServerRpcInfo* const info_;
};

class RefusingInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RefusingInterceptorFactory(Refusal how) : how_(how) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RefusingInterceptor(how_, info);
  }

 private:
  const Refusal how_;
};

struct Served {
  std::unique_ptr<grpc::Server> server;
  std::string address;
};

Served Serve(
    CountingService* service,
    std::shared_ptr<grpc::ServerCredentials> credentials,
    std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
        interceptor = nullptr) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", std::move(credentials), &port);
  builder.RegisterService(service);
  if (interceptor != nullptr) {
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        creators;
    creators.push_back(std::move(interceptor));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  Served served;
  served.server = builder.BuildAndStart();
  served.address = absl::StrCat("127.0.0.1:", port);
  return served;
}

grpc::Status ListScopes(const std::string& address,
                        std::shared_ptr<grpc::ChannelCredentials> credentials,
                        const std::string& token = "") {
  auto stub = sync::v1::SyncService::NewStub(
      grpc::CreateChannel(address, std::move(credentials)));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  sync::v1::ListScopesResponse response;
  return stub->ListScopes(&context, sync::v1::ListScopesRequest(), &response);
}

// Experiment 1: TryCancel from the interceptor. The client sees CANCELLED,
// not the status the interceptor wanted, and the handler runs anyway.
TEST(ServerInterceptorRefusal, TryCancelSendsCancelledAndTheHandlerStillRuns) {
  CountingService service;
  Served served =
      Serve(&service, grpc::InsecureServerCredentials(),
            std::make_unique<RefusingInterceptorFactory>(Refusal::kTryCancel));
  grpc::Status status =
      ListScopes(served.address, grpc::InsecureChannelCredentials());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED)
      << status.error_message();
  EXPECT_TRUE(service.ran.WaitForNotificationWithTimeout(absl::Seconds(30)))
      << "the handler did not run";
  served.server->Shutdown();
}

// Experiment 2: rewriting the status. The client sees UNAUTHENTICATED, but
// only after the handler has done the call's work.
TEST(ServerInterceptorRefusal, ModifySendStatusComesAfterTheHandler) {
  CountingService service;
  Served served = Serve(
      &service, grpc::InsecureServerCredentials(),
      std::make_unique<RefusingInterceptorFactory>(Refusal::kModifySendStatus));
  grpc::Status status =
      ListScopes(served.address, grpc::InsecureChannelCredentials());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(service.calls.load(), 1) << "the handler ran before the status";
  served.server->Shutdown();
}

// Experiment 3: cancelling the call in the C core with a status of our
// choosing. The client gets UNAUTHENTICATED, but the handler still runs
// (and with it the method's work, e.g. an ApplyChangeset's write).
TEST(ServerInterceptorRefusal, CoreCancelWithStatusStillRunsTheHandler) {
  CountingService service;
  Served served =
      Serve(&service, grpc::InsecureServerCredentials(),
            std::make_unique<RefusingInterceptorFactory>(Refusal::kCoreCancel));
  grpc::Status status =
      ListScopes(served.address, grpc::InsecureChannelCredentials());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << status.error_message();
  EXPECT_TRUE(service.ran.WaitForNotificationWithTimeout(absl::Seconds(30)))
      << "the handler did not run";
  served.server->Shutdown();
}

class CallAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = MakeTestPki(TestTmpDir("pki"));
    ASSERT_OK(pki);
    pki_ = *pki;
  }
  std::shared_ptr<grpc::ServerCredentials> TlsServer() {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back(
        {ReadTextFile(pki_.server_key), ReadTextFile(pki_.server_cert)});
    return grpc::SslServerCredentials(ssl);
  }
  TestPki pki_;
};

// The design chosen: the processor refuses before dispatch, with
// UNAUTHENTICATED and its message, and the handler never runs.
TEST_F(CallAuthenticatorTest, RefusesBeforeAnyHandlerRuns) {
  auto authenticator =
      std::make_shared<CallAuthenticator>(AuthOptions{{"good-token"}});
  std::shared_ptr<grpc::ServerCredentials> credentials = TlsServer();
  credentials->SetAuthMetadataProcessor(authenticator);
  CountingService service;
  Served served = Serve(&service, credentials);
  auto client = testing::TlsChannelCredentials(pki_);

  grpc::Status missing = ListScopes(served.address, client);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(missing.error_message(), "missing bearer token");
  grpc::Status wrong = ListScopes(served.address, client, "bad-token");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong.error_message(), "unknown bearer token");
  EXPECT_EQ(service.calls.load(), 0);
  EXPECT_EQ(authenticator->refused(), 2u);

  grpc::Status good = ListScopes(served.address, client, "good-token");
  EXPECT_TRUE(good.ok()) << good.error_message();
  // Only the accepted call reached the method.
  EXPECT_EQ(service.calls.load(), 1);
  EXPECT_EQ(authenticator->refused(), 2u);
  served.server->Shutdown();
}

TEST_F(CallAuthenticatorTest, WithoutTokensAcceptsEveryCall) {
  auto authenticator = std::make_shared<CallAuthenticator>(AuthOptions{});
  std::shared_ptr<grpc::ServerCredentials> credentials = TlsServer();
  credentials->SetAuthMetadataProcessor(authenticator);
  CountingService service;
  Served served = Serve(&service, credentials);
  EXPECT_TRUE(
      ListScopes(served.address, testing::TlsChannelCredentials(pki_)).ok());
  EXPECT_EQ(service.calls.load(), 1);
  EXPECT_EQ(authenticator->refused(), 0u);
  served.server->Shutdown();
}

TEST(CallAuthenticator, ChecksTheBearerScheme) {
  CallAuthenticator authenticator(AuthOptions{{"t1"}});
  grpc::AuthMetadataProcessor::InputMetadata metadata;
  metadata.emplace("authorization", "Basic dDE6");
  EXPECT_EQ(authenticator.Check(metadata, "peer").message(),
            "authorization is not a bearer token");
  metadata.clear();
  metadata.emplace("authorization", "bearer t1");
  EXPECT_OK(authenticator.Check(metadata, "peer"));
  EXPECT_EQ(authenticator.refused(), 1u);
}

}  // namespace
}  // namespace jetstream
