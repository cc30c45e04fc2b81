// File: tests/hooks/test_hook_server.h
//
// A downstream hook service for tests: one gRPC server on 127.0.0.1:0 that
// implements every service of proto/hooks/v1/hooks.proto with handlers the
// test sets (synchronous gRPC API, so a handler may block, e.g. on an
// absl::Notification the test releases). Defaults: allow every session
// (principal = the SessionCreate param "user"), READ_WRITE every scope,
// ACCEPT every changeset, accept every procedure call.
//
// Also: UnusedAddress(), a loopback address nothing listens on.
//
// Thread-safety: handlers run on gRPC threads; setters and accessors are
// thread-safe. Set handlers before the system under test calls them.

#ifndef JETSTREAM_TESTS_HOOKS_TEST_HOOK_SERVER_H_
#define JETSTREAM_TESTS_HOOKS_TEST_HOOK_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/hooks/v1/hooks.grpc.pb.h"

namespace jetstream::testing {

class TestHookServer {
 public:
  template <typename Req, typename Resp>
  using Handler = std::function<grpc::Status(const Req&, Resp*)>;
  using SessionHandler = Handler<hooks::v1::AuthorizeSessionRequest,
                                 hooks::v1::AuthorizeSessionResponse>;
  using ScopeHandler = Handler<hooks::v1::AuthorizeScopeRequest,
                               hooks::v1::AuthorizeScopeResponse>;
  using ValidateHandler = Handler<hooks::v1::ValidateChangesetRequest,
                                  hooks::v1::ValidateChangesetResponse>;
  using ProcedureHandler =
      Handler<hooks::v1::RunProcedureRequest, hooks::v1::RunProcedureResponse>;

  TestHookServer();
  ~TestHookServer();

  // "127.0.0.1:<port>".
  const std::string& address() const { return address_; }

  void OnSession(SessionHandler h);
  void OnScope(ScopeHandler h);
  void OnValidate(ValidateHandler h);
  void OnProcedure(ProcedureHandler h);

  // Requests received so far, in arrival order.
  std::vector<hooks::v1::AuthorizeSessionRequest> session_requests() const;
  std::vector<hooks::v1::AuthorizeScopeRequest> scope_requests() const;
  std::vector<hooks::v1::ValidateChangesetRequest> validate_requests() const;
  std::vector<hooks::v1::RunProcedureRequest> procedure_requests() const;
  // The deadline each ValidateChangeset call arrived with (InfiniteFuture
  // for none), in arrival order.
  std::vector<absl::Time> validate_deadlines() const;
  // The `traceparent` metadata of each ValidateChangeset call ("" for
  // none), in arrival order.
  std::vector<std::string> validate_traceparents() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

// A loopback "host:port" on which nothing listens (a port the kernel just
// handed out and that was closed again).
std::string UnusedAddress();

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_HOOKS_TEST_HOOK_SERVER_H_
