#include "tests/hooks/hook_system.h"

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

std::string WriteTempFile(const std::string& name, const std::string& text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return path;
}

}  // namespace

void HookSystemTest::TearDown() {
  if (!release_.HasBeenNotified()) release_.Notify();
  gateway_.reset();
  sync_service_.reset();
}

void HookSystemTest::StartSystem(const std::string& hooks_json,
                                 const std::vector<std::string>& gateway_flags,
                                 const std::vector<std::string>& sync_flags) {
  absl::StatusOr<TestPki> pki = MakeTestPki(TestTmpDir("pki"));
  ASSERT_OK(pki);
  pki_ = *std::move(pki);
  std::vector<std::string> flags = {
      "--listen=127.0.0.1:0",
      "--tls_cert=" + pki_.server_cert,
      "--tls_key=" + pki_.server_key,
      "--schema=" + Runfile("syncservice/config/demo_schema.json"),
      "--scopes=" + Runfile("syncservice/config/demo_scopes.json"),
      "--auth_tokens_file=" +
          WriteTempFile("tokens.txt",
                        absl::StrCat("# test\n", kTestToken, "\n")),
      "--store=memory",
      "--v=1"};
  if (!hooks_json.empty()) {
    flags.push_back("--hooks=" + WriteTempFile("hooks.json", hooks_json));
  }
  flags.insert(flags.end(), sync_flags.begin(), sync_flags.end());
  auto sync = ChildProcess::StartListening("syncservice/syncservice", flags);
  ASSERT_OK(sync);
  sync_service_ = *std::move(sync);
  std::vector<std::string> gateway_args = {
      "--port=0", "--sync_service=" + sync_service_->address(),
      "--sync_service_tls_ca=" + pki_.ca_cert,
      absl::StrCat("--sync_service_token=", kTestToken)};
  gateway_args.insert(gateway_args.end(), gateway_flags.begin(),
                      gateway_flags.end());
  auto gateway = ChildProcess::StartListening("gateway/gateway", gateway_args);
  ASSERT_OK(gateway);
  gateway_ = *std::move(gateway);
}

std::unique_ptr<WsTestClient> HookSystemTest::Connect(
    const std::map<std::string, std::string>& headers) {
  auto client =
      WsTestClient::Connect("127.0.0.1", gateway_->port(), "/", headers);
  EXPECT_OK(client);
  return client.ok() ? *std::move(client) : nullptr;
}

std::unique_ptr<WsTestClient> HookSystemTest::ConnectWithSession(
    const std::string& params) {
  std::unique_ptr<WsTestClient> client = Connect();
  if (client == nullptr) return nullptr;
  auto token = client->CreateSession("0.2.0", params);
  EXPECT_OK(token);
  return token.ok() ? std::move(client) : nullptr;
}

std::unique_ptr<sync::v1::SyncService::Stub> HookSystemTest::BackendStub() {
  return sync::v1::SyncService::NewStub(grpc::CreateChannel(
      sync_service_->address(), TlsChannelCredentials(pki_)));
}

void HookSystemTest::Authorize(grpc::ClientContext* context,
                               const std::string& token) {
  if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
}

}  // namespace jetstream::testing
