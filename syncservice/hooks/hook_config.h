// File: syncservice/hooks/hook_config.h
//
// The hooks file: which downstream gRPC services (proto/hooks/v1/hooks.proto)
// the sync service calls, for which scopes and models, with which deadline,
// in which order, and what happens when one cannot be reached. Loaded once
// at startup (--hooks=<file>) into plain structs. Without a hooks file no
// hook is called and everything is accepted (the demo default).
//
// Format:
//
//   {
//     "hooks": [
//       {"name": "shapes", "kind": "validator", "endpoint": "127.0.0.1:7001",
//        "scopes": ["Canvas", "canvas/*"], "models": ["Shape"],
//        "deadline_ms": 500, "failure": "closed", "order": 1}
//     ],
//     "procedures": [
//       {"name": "ChatRoom.postMessage", "endpoint": "127.0.0.1:7002",
//        "scopes": ["ChatRoom", "chat/*"], "deadline_ms": 2000,
//        "constraints": [
//          {"type": "add", "clsName": "Message",
//           "properties": {"text": {"$hasNewValue": true}},
//           "allowAdditionalProperties": true},
//          {"type": "change", "clsName": "ChatRoom",
//           "properties": {"messages": {"$array": "insert"}}}]}
//     ]
//   }
//
// hooks[]:
// * `name` (required, unique): used in logs and in the error clients see
//   when the hook is unavailable.
// * `kind` (required): "session_authorizer" (at most one), "scope_authorizer"
//   or "validator".
// * `endpoint` (required): the gRPC target, e.g. "127.0.0.1:7001" or
//   "dns:///validator.internal:443". Plaintext.
// * `scopes`: scope name patterns (`*` matches any run of characters); empty
//   or absent means every scope. Not used by session authorizers.
// * `models`: validators only: the hook sees a changeset only if one of its
//   fragments has one of these clsNames; empty or absent means any.
// * `deadline_ms` (default 1000): per attempt. Authorization and validation
//   are retried once if the first attempt fails with UNAVAILABLE.
// * `failure` (default "closed"): "closed" makes an unreachable or late hook
//   a denial with the typed error `downstream-unavailable`; "open" makes it
//   an acceptance (sessions: no principal; scopes: read-write; validators:
//   skipped).
// * `order` (default 0): validators run in ascending order (file order
//   among equals), each seeing the values the earlier ones modified.
//
// procedures[] (docs/protocol.md#procedures): `name` is "Model.procedure";
// `endpoint`, `scopes` and `deadline_ms` as above. Procedures are never retried
// and always fail closed. `constraints`
// (docs/protocol.md#procedure-constraints): a changeset calling the procedure
// must have every fragment matched by at least one constraint; an empty list
// matches only an empty changeset. A constraint has `type` ("add" or
// "change"), `clsName`, `properties` (key -> a literal value that must be
// equal, {"$hasNewValue": true} for presence only, or
// {"$array": "insert"|"remove"} for a collection that must grow or shrink),
// and `allowAdditionalProperties` (default false, as the original server).
//
// Unknown keys are errors (they are usually typos). Every error names the
// file and the entry.

#ifndef JETSTREAM_SYNCSERVICE_HOOKS_HOOK_CONFIG_H_
#define JETSTREAM_SYNCSERVICE_HOOKS_HOOK_CONFIG_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/sync_fragment.h"
#include "common/value.h"

namespace jetstream::hooks {

enum class HookKind { kSessionAuthorizer, kScopeAuthorizer, kValidator };
enum class FailurePolicy { kClosed, kOpen };

// One property condition of a procedure constraint.
struct PropertyConstraint {
  enum class Kind { kEquals, kHasNewValue, kArrayInsert, kArrayRemove };
  Kind kind = Kind::kEquals;
  Value value;  // kEquals
};

// A procedure constraint (docs/protocol.md#procedure-constraints).
struct ProcedureConstraint {
  FragmentType type = FragmentType::kAdd;
  std::string cls_name;
  // In file order.
  std::vector<std::pair<std::string, PropertyConstraint>> properties;
  bool allow_additional_properties = false;
};

// A hook or a procedure, as configured.
struct HookSpec {
  std::string name;
  HookKind kind = HookKind::kValidator;  // unused for procedures
  std::string endpoint;
  std::vector<std::string> scopes;  // patterns; empty: every scope
  std::vector<std::string> models;  // validators; empty: any
  absl::Duration deadline = absl::Seconds(1);
  FailurePolicy failure = FailurePolicy::kClosed;
  int order = 0;
  // Procedures only.
  std::vector<ProcedureConstraint> constraints;

  // True if `scope` matches `scopes` (or `scopes` is empty).
  bool AppliesToScope(absl::string_view scope) const;
  // True if `models` is empty or names the clsName of a fragment.
  bool AppliesToFragments(const std::vector<SyncFragment>& fragments) const;
};

// HookConfig
//
// Immutable once loaded; safe to read from any thread.
struct HookConfig {
  std::optional<HookSpec> session_authorizer;
  // In file order.
  std::vector<HookSpec> scope_authorizers;
  // Sorted by `order`, file order among equals.
  std::vector<HookSpec> validators;
  // By name ("Model.procedure").
  std::map<std::string, HookSpec> procedures;

  bool empty() const {
    return !session_authorizer && scope_authorizers.empty() &&
           validators.empty() && procedures.empty();
  }
};

// Parses the hooks file's text. `file` names it in errors.
absl::StatusOr<HookConfig> ParseHookConfig(absl::string_view json,
                                           absl::string_view file);
// Reads and parses the hooks file at `path`.
absl::StatusOr<HookConfig> LoadHookConfigFile(const std::string& path);

}  // namespace jetstream::hooks

#endif  // JETSTREAM_SYNCSERVICE_HOOKS_HOOK_CONFIG_H_
