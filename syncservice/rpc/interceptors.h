// File: syncservice/rpc/interceptors.h
//
// Cross-cutting work on the sync service's gRPC calls, kept out of the
// handlers:
//
// * HookIdentityInterceptorFactory: on calls out to a downstream hook,
//   tells the hook who calls (x-jetstream-hook) and logs each finished call
//   at VLOG(1). Metrics of calls in both directions are recorded by
//   common/metrics/grpc_metrics.h.
// * CallAuthenticator: who may call the SyncService API, as a gRPC
//   AuthMetadataProcessor installed on the server's TLS credentials.
//   Callers present `authorization: Bearer <token>` with a token from the
//   tokens file (--auth_tokens_file), and/or a client certificate the
//   server verifies against --tls_client_ca (mTLS: the TLS handshake
//   itself refuses clients without one, or with one from another CA).
//
// Why an AuthMetadataProcessor and not a server interceptor. gRPC runs the
// processor in the server's auth filter for every call on a secure port,
// before the call is matched to a method: a refused call ends with
// UNAUTHENTICATED and the message the processor returns, and no handler of
// any method (Connect, GetScope, ListScopes, ApplyChangeset, or one added
// later) ever runs for it. A gRPC 1.51 server interceptor cannot do that;
// interceptors_test.cc (ServerInterceptorRefusal*) records what it can do:
//   - server_context()->TryCancel() at POST_RECV_INITIAL_METADATA: the
//     client gets CANCELLED ("Cancelled on the server side"), not
//     UNAUTHENTICATED, and the method handler still runs afterwards
//     (server.cc calls it once interception finishes; interceptors cannot
//     fail the call's request status, which is all that stops it);
//     ModifySendStatus at PRE_SEND_STATUS is never reached for it;
//   - ModifySendStatus(UNAUTHENTICATED) at PRE_SEND_STATUS alone: the
//     client gets UNAUTHENTICATED, but only after the handler has done its
//     work (ApplyChangeset would have applied the write);
//   - the C core's grpc_call_cancel_with_status(UNAUTHENTICATED) on
//     server_context()->c_call() at POST_RECV_INITIAL_METADATA: the client
//     gets UNAUTHENTICATED, and the handler still runs;
//   - Hijack() is client-only (interceptor.h).
// So with an interceptor the refusal would still need a check inside every
// handler. gRPC only runs a processor on secure credentials
// (InsecureServerCredentials()->SetAuthMetadataProcessor asserts), which
// is why bearer tokens require TLS (SyncServer::Start refuses
// --auth_tokens_file without --tls_cert/--tls_key); tokens must not cross
// the network in clear anyway, and gRPC's own call credentials refuse to.
// The metrics interceptor (grpc_server_*) never sees a refused call (it is
// not dispatched); CallAuthenticator::refused() counts them instead.
//
// Thread-safety: all classes are thread-safe; gRPC calls them from its own
// threads.

#ifndef JETSTREAM_SYNCSERVICE_RPC_INTERCEPTORS_H_
#define JETSTREAM_SYNCSERVICE_RPC_INTERCEPTORS_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/server_interceptor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace jetstream {

// Client side (hook channels): adds `x-jetstream-hook: <hook>` to every
// call and logs it when its status arrives.
class HookIdentityInterceptorFactory
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit HookIdentityInterceptorFactory(std::string hook)
      : hook_(std::move(hook)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override;

 private:
  const std::string hook_;
};

struct AuthOptions {
  // Accepted bearer tokens; empty accepts calls without a token.
  std::set<std::string> tokens;
};

// Reads a tokens file: one token per line; blank lines and lines starting
// with '#' are ignored. Fails if the file cannot be read or holds no token.
absl::StatusOr<std::set<std::string>> LoadTokensFile(const std::string& path);

// CallAuthenticator
//
// Decides whether a SyncService call may proceed, from its metadata. With
// no tokens configured every call is accepted (mTLS, if configured, has
// already verified the peer during the handshake). Installed with
// ServerCredentials::SetAuthMetadataProcessor on TLS credentials; never
// blocks (an in-memory lookup), so gRPC calls Process() inline on its
// own thread.
class CallAuthenticator final : public grpc::AuthMetadataProcessor {
 public:
  explicit CallAuthenticator(AuthOptions options)
      : options_(std::move(options)) {}

  // OK, or kUnauthenticated naming what is missing. Counts refusals.
  absl::Status Check(const InputMetadata& metadata, absl::string_view peer);

  // grpc::AuthMetadataProcessor
  bool IsBlocking() const override { return false; }
  // A refusal ends the call with UNAUTHENTICATED before any handler runs;
  // an accepted token is consumed (handlers do not see it).
  grpc::Status Process(const InputMetadata& auth_metadata,
                       grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

  // Calls refused so far.
  uint64_t refused() const;

 private:
  const AuthOptions options_;
  mutable absl::Mutex mu_;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_RPC_INTERCEPTORS_H_
