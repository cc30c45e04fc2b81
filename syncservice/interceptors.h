// File: syncservice/interceptors.h
//
// Cross-cutting work on the sync service's gRPC calls, kept out of the
// handlers:
//
// * CallMetrics: per-method call counts, failures and latency, shared by
//   the server interceptor (calls into the SyncService) and the client
//   interceptor (calls out to downstream hooks). Every finished call is
//   logged at VLOG(1) with its method, status code and latency.
// * MetricsServerInterceptorFactory / MetricsClientInterceptorFactory: the
//   gRPC interceptors that feed CallMetrics.
// * CallAuthenticator: who may call the SyncService API. Callers present
//   `authorization: Bearer <token>` with a token from the tokens file
//   (--auth_tokens_file), and/or a client certificate the server verifies
//   against --tls_client_ca (mTLS; the TLS handshake itself refuses clients
//   without one). gRPC C++ server interceptors cannot end a call with a
//   status of their own, so the check runs at the entry of every SyncService
//   method (Connect, GetScope, ListScopes, ApplyChangeset) and a refused
//   call finishes with UNAUTHENTICATED before touching any scope.
//
// Thread-safety: all classes are thread-safe; gRPC calls them from its own
// threads.

#ifndef JETSTREAM_SYNCSERVICE_INTERCEPTORS_H_
#define JETSTREAM_SYNCSERVICE_INTERCEPTORS_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/server_interceptor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace jetstream {

// CallMetrics
//
// Counters per fully-qualified method ("/jetstream.sync.v1.SyncService/
// GetScope"). Record() is cheap (one mutex); Snapshot() copies.
class CallMetrics {
 public:
  struct Method {
    uint64_t calls = 0;
    uint64_t failures = 0;  // finished with a non-OK status
    absl::Duration total_latency;
    absl::Duration max_latency;
  };

  void Record(const std::string& method, grpc::StatusCode code,
              absl::Duration latency);
  std::map<std::string, Method> Snapshot() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, Method> methods_ ABSL_GUARDED_BY(mu_);
};

// Server side: one interceptor per call; counts and logs it when its status
// is sent. `metrics` must outlive the server.
class MetricsServerInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsServerInterceptorFactory(CallMetrics* metrics)
      : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  CallMetrics* const metrics_;
};

// Client side (hook channels): counts and logs each call when its status
// arrives, tagged with the hook's name. `metrics` must outlive the channel.
class MetricsClientInterceptorFactory
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  MetricsClientInterceptorFactory(CallMetrics* metrics, std::string hook)
      : metrics_(metrics), hook_(std::move(hook)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override;

 private:
  CallMetrics* const metrics_;
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
// Decides whether a SyncService call may proceed. With no tokens configured
// every call is accepted (mTLS, if configured, has already verified the
// peer during the handshake).
class CallAuthenticator {
 public:
  explicit CallAuthenticator(AuthOptions options)
      : options_(std::move(options)) {}

  // OK, or kUnauthenticated naming what is missing. Also counts refusals.
  absl::Status Check(const grpc::ServerContextBase& context) const;

  uint64_t refused() const;

 private:
  const AuthOptions options_;
  mutable absl::Mutex mu_;
  mutable uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_INTERCEPTORS_H_
