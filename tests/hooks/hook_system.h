// File: tests/hooks/hook_system.h
//
// The real syncservice and gateway binaries with a hooks file, for
// end-to-end tests of the downstream hooks. Each test writes its hooks file
// (the text may name the test's TestHookServer by address), starts the
// system, and drives WebSocket clients; backend calls go to the sync
// service's gRPC port with (or without) the bearer token.
//
// The sync service serves TLS with a certificate from a PKI made at test
// time (tests/security/test_pki.h) and requires the token kTestToken
// (--auth_tokens_file); the gateway trusts the PKI's CA
// (--sync_service_tls_ca) and presents the token (--sync_service_token).

#ifndef JETSTREAM_TESTS_HOOKS_HOOK_SYSTEM_H_
#define JETSTREAM_TESTS_HOOKS_HOOK_SYSTEM_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/sync/v1/sync_service.grpc.pb.h"
#include "tests/hooks/test_hook_server.h"
#include "tests/security/test_pki.h"
#include "tests/testing/process.h"
#include "tests/testing/ws_test_client.h"

namespace jetstream::testing {

inline constexpr char kTestToken[] = "test-token-1";

class HookSystemTest : public ::testing::Test {
 protected:
  void TearDown() override;

  // Starts both binaries with `hooks_json` as the hooks file ("" for none)
  // and `gateway_flags` / `sync_flags` added to the gateway's / the sync
  // service's (a later flag wins: "--store=sqlite:..." replaces memory).
  void StartSystem(const std::string& hooks_json,
                   const std::vector<std::string>& gateway_flags = {},
                   const std::vector<std::string>& sync_flags = {});

  // A connected client with a session whose params are `params`.
  std::unique_ptr<WsTestClient> Connect(
      const std::map<std::string, std::string>& headers = {});
  std::unique_ptr<WsTestClient> ConnectWithSession(
      const std::string& params = "{}");

  // A SyncService stub for backend calls over TLS (no client certificate);
  // Authorize() gives a context the bearer token if `token` is not empty.
  std::unique_ptr<sync::v1::SyncService::Stub> BackendStub();
  static void Authorize(grpc::ClientContext* context, const std::string& token);

  TestHookServer hooks_;
  TestPki pki_;
  std::unique_ptr<ChildProcess> sync_service_;
  std::unique_ptr<ChildProcess> gateway_;
  // Released in TearDown, before the hook server stops: handlers that
  // block on it end.
  absl::Notification release_;
};

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_HOOKS_HOOK_SYSTEM_H_
