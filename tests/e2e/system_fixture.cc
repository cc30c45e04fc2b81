#include "tests/e2e/system_fixture.h"

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {

void SystemFixture::SetUp() {
  StartSyncService();
  StartGateway();
}

void SystemFixture::TearDown() {
  gateway_.reset();
  sync_service_.reset();
}

void SystemFixture::StartSyncService(int port) {
  std::vector<std::string> flags = {
      absl::StrCat("--listen=127.0.0.1:", port),
      "--schema=" + Runfile("syncservice/config/demo_schema.json"),
      "--scopes=" + Runfile("syncservice/config/demo_scopes.json")};
  for (const std::string& f : SyncServiceFlags()) flags.push_back(f);
  auto process = ChildProcess::StartListening("syncservice/syncservice", flags);
  ASSERT_OK(process);
  sync_service_ = *std::move(process);
}

void SystemFixture::StartGateway() {
  // Tests refuse many handshakes from 127.0.0.1; the tarpit is off unless a
  // test turns it on in GatewayFlags() (a later flag wins).
  std::vector<std::string> flags = {
      "--port=0", "--sync_service=" + sync_service_->address(),
      "--tarpit_max_delay=0"};
  for (const std::string& f : GatewayFlags()) flags.push_back(f);
  auto process = ChildProcess::StartListening("gateway/gateway", flags);
  ASSERT_OK(process);
  gateway_ = *std::move(process);
}

std::unique_ptr<WsTestClient> SystemFixture::Connect(
    const std::string& target,
    const std::map<std::string, std::string>& headers) {
  auto client =
      WsTestClient::Connect("127.0.0.1", gateway_->port(), target, headers);
  EXPECT_OK(client);
  return client.ok() ? *std::move(client) : nullptr;
}

std::unique_ptr<WsTestClient> SystemFixture::ConnectWithSession() {
  std::unique_ptr<WsTestClient> client = Connect();
  if (client == nullptr) return nullptr;
  auto token = client->CreateSession();
  EXPECT_OK(token);
  return client;
}

std::string Field(absl::string_view message_json, const char* key) {
  JsonDocument doc = ParseOrDie(message_json);
  if (!doc.IsObject() || !doc.HasMember(key)) return "<absent>";
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc[key].Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace jetstream::testing
