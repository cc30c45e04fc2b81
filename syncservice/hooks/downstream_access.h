// File: syncservice/hooks/downstream_access.h
//
// The AccessPolicy (syncservice/core/access_policy.h) backed by the
// SessionAuthorizer and ScopeAuthorizer hooks of the hooks file.
//
// Sessions: the session authorizer, if configured, decides and names the
// principal; without one every session is accepted with an empty principal.
// Unreachable or late under "failure": "closed" denies (logged as
// downstream-unavailable; the client gets the fixed "Session creation
// denied"); "open" accepts with an empty principal.
//
// Scopes: every scope authorizer whose `scopes` match the name is asked, in
// file order; the most restrictive answer wins (DENY over READ_ONLY over
// READ_WRITE) and the first DENY stops. ACCESS_UNSPECIFIED counts as DENY.
// Without one the scope is read-write. A denial's ScopeFetchReply error is
// {"message": <the hook's message, or "Scope access denied">}; an
// unreachable hook under "closed" gives {"message":"downstream service
// '<name>' unavailable","type":"downstream-unavailable"}; under "open" it
// counts as READ_WRITE.
//
// Thread-safety: thread-safe. Lifetime: `config` and `clients` must outlive
// it, and it must outlive the SyncService using it.

#ifndef JETSTREAM_SYNCSERVICE_HOOKS_DOWNSTREAM_ACCESS_H_
#define JETSTREAM_SYNCSERVICE_HOOKS_DOWNSTREAM_ACCESS_H_

#include <functional>
#include <string>

#include "syncservice/core/access_policy.h"
#include "syncservice/hooks/hook_clients.h"
#include "syncservice/hooks/hook_config.h"

namespace jetstream::hooks {

// The text of a scope denial whose hook gave no message.
inline constexpr absl::string_view kScopeAccessDenied = "Scope access denied";

class DownstreamAccess : public AccessPolicy {
 public:
  DownstreamAccess(const HookConfig* config, HookClients* clients)
      : config_(config), clients_(clients) {}

  // AccessPolicy
  void AuthorizeSession(SessionRequest request,
                        std::function<void(SessionDecision)> done) override;
  void AuthorizeScope(const Principal& principal, const std::string& scope,
                      const std::string& params_json,
                      std::function<void(ScopeDecision)> done) override;

 private:
  class ScopeRun;

  const HookConfig* const config_;
  HookClients* const clients_;
};

}  // namespace jetstream::hooks

#endif  // JETSTREAM_SYNCSERVICE_HOOKS_DOWNSTREAM_ACCESS_H_
