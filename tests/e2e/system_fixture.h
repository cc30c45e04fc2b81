// File: tests/e2e/system_fixture.h
//
// Starts the real binaries, syncservice and gateway, on loopback ports
// chosen by the kernel, and connects test clients to the gateway. Each test
// gets fresh processes, so scopes start from the demo configuration.

#ifndef JETSTREAM_TESTS_E2E_SYSTEM_FIXTURE_H_
#define JETSTREAM_TESTS_E2E_SYSTEM_FIXTURE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/ws_test_client.h"

namespace jetstream::testing {

class SystemFixture : public ::testing::Test {
 protected:
  // Extra gateway flags for a test (e.g. "--session_expiry=1s").
  virtual std::vector<std::string> GatewayFlags() { return {}; }
  // Extra sync service flags. By default nothing is stored (each test starts
  // from the demo configuration); a durability test passes a --store.
  virtual std::vector<std::string> SyncServiceFlags() {
    return {"--store=memory"};
  }

  void SetUp() override;
  void TearDown() override;

  // Starts (or restarts) the sync service on `port` (0: any free port).
  void StartSyncService(int port = 0);
  void StartGateway();

  // A connected client; fails the test if the connection fails.
  std::unique_ptr<WsTestClient> Connect(
      const std::string& target = "/",
      const std::map<std::string, std::string>& headers = {});
  // A connected client with a session.
  std::unique_ptr<WsTestClient> ConnectWithSession();

  std::unique_ptr<ChildProcess> sync_service_;
  std::unique_ptr<ChildProcess> gateway_;
};

// The first element of a JSON array text, and such helpers for assertions.
std::string Field(absl::string_view message_json, const char* key);

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_E2E_SYSTEM_FIXTURE_H_
