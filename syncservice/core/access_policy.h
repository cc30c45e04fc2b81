// File: syncservice/core/access_policy.h
//
// Who may open a client session and which scopes it may read or write: the
// interface the SyncService asks before answering a gateway's
// AuthorizeSessionRequest and FetchRequest. The downstream implementation
// (syncservice/hooks/downstream_access.h) calls the SessionAuthorizer and
// ScopeAuthorizer hooks; with no policy at all every session is accepted
// and every scope is read-write (the demo default).
//
// Callback contract: `done` is called exactly once, from any thread,
// possibly before the method returns. It must not block.

#ifndef JETSTREAM_SYNCSERVICE_CORE_ACCESS_POLICY_H_
#define JETSTREAM_SYNCSERVICE_CORE_ACCESS_POLICY_H_

#include <functional>
#include <map>
#include <string>

#include "common/sync_fragment.h"
#include "syncservice/core/commit_stages.h"
#include "syncservice/core/principal.h"

namespace jetstream {

// A new client session asks to be created
// (docs/protocol.md#d16-session-params).
struct SessionRequest {
  std::string session_id;
  std::string params_json;                               // SessionCreate.params
  std::map<std::string, std::string> connection_params;  // x-jetstream-*
  std::string client_version;
  std::string origin;          // the upgrade's Origin header; may be empty
  std::string client_address;  // docs/protocol.md#client-address
};

struct SessionDecision {
  bool allow = true;
  Principal principal;  // when allowed
  WireError error;      // when denied: logged (clients get the fixed text)
};

enum class ScopeAccess { kReadWrite, kReadOnly, kDeny };

struct ScopeDecision {
  ScopeAccess access = ScopeAccess::kReadWrite;
  WireError error;  // when denied: the ScopeFetchReply error
};

// AccessPolicy
//
// Implementations are thread-safe.
class AccessPolicy {
 public:
  virtual ~AccessPolicy() = default;

  virtual void AuthorizeSession(SessionRequest request,
                                std::function<void(SessionDecision)> done) = 0;

  // `params_json` is ScopeFetch.params.
  virtual void AuthorizeScope(const Principal& principal,
                              const std::string& scope,
                              const std::string& params_json,
                              std::function<void(ScopeDecision)> done) = 0;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_CORE_ACCESS_POLICY_H_
