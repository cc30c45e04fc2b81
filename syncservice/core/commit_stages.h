// File: syncservice/core/commit_stages.h
//
// The pluggable stages of a scope's commit pipeline (see scope_host.h):
//
//   validate (ChangesetValidator)  ->  apply (engine)  ->  persist
//   (CommitPersister)  ->  publish (reply, broadcast)
//
// A stage is asynchronous: it is handed a callback and may complete on any
// thread. Only one changeset of a scope is in the validate stage at a time,
// so validators see the scope exactly as the changeset will find it; other
// scopes go on meanwhile. Persisting overlaps: a scope may apply its next
// changeset while the previous one is being written, but replies and
// broadcasts leave strictly in commit order, each once it is durable.

#ifndef JETSTREAM_SYNCSERVICE_CORE_COMMIT_STAGES_H_
#define JETSTREAM_SYNCSERVICE_CORE_COMMIT_STAGES_H_

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/sync_fragment.h"
#include "syncservice/core/principal.h"
#include "syncservice/engine/scope.h"

namespace jetstream {

// Where a changeset comes from.
struct ChangesetContext {
  // The client session that sent it; empty for server-side writes, which are
  // broadcast to every session (docs/protocol.md#broadcast).
  std::string origin_session_id;
  Principal principal;
  // "Model.procedure" (docs/protocol.md#procedures), or empty.
  std::string procedure;
  // The deadline of the call that brought the changeset (a backend's
  // ApplyChangeset); downstream hook calls never outlive it.
  absl::Time deadline = absl::InfiniteFuture();
  // W3C traceparent (common/trace_context.h), passed on to hook calls.
  std::string traceparent;
};

// The state of an existing object before the changeset: every declared
// property.
struct ObjectSnapshot {
  Uuid uuid;
  std::string cls_name;
  PropertyList properties;
};

// What the validate stage decided.
struct ValidationOutcome {
  // Refuse the whole changeset: every reply carries this error and nothing
  // is applied.
  std::optional<WireError> reject_all;
  // Refuse single fragments (by position): they are not applied and reply
  // with the error. For an atomic changeset any refusal refuses all
  // (docs/protocol.md#d1-atomic).
  std::vector<std::pair<size_t, WireError>> rejections;
  // Values changed by a validator, by fragment position
  // (docs/protocol.md#d3-modifications): applied,
  // broadcast, and returned to the originator as `modifications`.
  std::vector<std::pair<size_t, PropertyList>> modifications;
  // Follow-up fragments of a procedure: applied after the changeset as a
  // server-side change, broadcast to every session.
  std::vector<SyncFragment> follow_up;
};

// ChangesetValidator
//
// Downstream validation, procedures and anything else that must see a
// changeset before it is applied.
class ChangesetValidator {
 public:
  virtual ~ChangesetValidator() = default;

  // True if Validate() must run for this changeset of `scope`. Cheap and
  // synchronous; false lets the changeset skip the stage.
  virtual bool Applies(const std::string& scope, const Changeset& changeset,
                       const ChangesetContext& context) const = 0;

  // Decides about `changeset`. `current` holds the existing objects its
  // fragments name. `done` must be called exactly once, from any thread,
  // possibly before Validate returns.
  virtual void Validate(const std::string& scope, const Changeset& changeset,
                        const ChangesetContext& context,
                        std::vector<ObjectSnapshot> current,
                        std::function<void(ValidationOutcome)> done) = 0;
};

// A committed changeset on its way to storage.
struct PendingCommit {
  std::string scope;
  uint64_t version = 0;
  // The changeset as applied (after validator modifications, rejected
  // fragments removed): replaying it through Scope::Apply on the previous
  // state reproduces this version exactly.
  std::string request_json;
  bool atomic = false;
  // The applied fragments (what watchers received), a JSON array.
  std::string applied_json;
  std::string origin_session_id;
  // The epoch of the scope's lease it is committed under (0: none).
  uint64_t lease_epoch = 0;
  // Set on every ScopeHostOptions::snapshot_every-th version: the full
  // scope at `version` (Scope::WriteSnapshotFragments), for the persister to
  // save as the scope's snapshot (compaction) once the commit is queued.
  std::string root_model;
  std::shared_ptr<const std::string> snapshot_json;
};

// CommitPersister
//
// Makes commits durable. Persist() is called in commit order per scope,
// under the scope's lock. `done` must be called exactly once, from any
// thread, when the commit is durable (OK) or can never be (an error: the
// scope's in-memory state is then ahead of storage and the host stops
// serving it).
//
// `done` must never be called inline, from within Persist(): ScopeHost
// calls Persist() from QueueResultLocked() holding the host's absl::Mutex,
// and `done` (ScopeHost::OnPersisted) takes that same lock, which is not
// reentrant, so an inline call would deadlock the scope. An implementation
// that completes at once must hand `done` to another thread. StorePersister
// meets this because ScopeStore::Append() calls back on the store's writer
// thread, never inline.
class CommitPersister {
 public:
  virtual ~CommitPersister() = default;
  virtual void Persist(PendingCommit commit,
                       std::function<void(absl::Status)> done) = 0;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_CORE_COMMIT_STAGES_H_
