// File: syncservice/engine/scope.h
//
// A Scope is a named tree of typed model objects under one root, and the one
// place where they change. Scope::Apply() applies a changeset as
// docs/protocol.md#changeset-algorithm and docs/protocol.md#apply-errors
// describe, with the decisions D1 and D8 to D12 of
// docs/protocol.md#differences:
//
//   * `add` fragments are processed before `change` fragments; every
//     fragment gets exactly one reply, in request order;
//   * a new object needs a parent by the end of the changeset;
//   * an object whose parent count drops to zero leaves the scope, and so,
//     in cascade, do the objects that only it referenced (collection by
//     parent count: a detached cycle stays, as in the original server);
//   * `atomic: true` applies all fragments or none
//   (docs/protocol.md#d1-atomic).
//
// Changes are applied in place and recorded in an undo log, so a rejected
// atomic changeset is rolled back without ever copying the scope.
//
// Example:
//   auto scope = Scope::Create(schema, "Canvas").value();
//   ChangesetResult r = scope->Apply(Changeset{std::move(fragments)});
//   // r.replies: one per fragment; r.applied: what to broadcast.
//
// Thread-safety: none. A Scope is owned by one caller that serialises all
// access (the sync service runs each scope's changesets in order).

#ifndef JETSTREAM_SYNCSERVICE_ENGINE_SCOPE_H_
#define JETSTREAM_SYNCSERVICE_ENGINE_SCOPE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/json.h"
#include "common/sync_fragment.h"
#include "common/uuid.h"
#include "common/value.h"
#include "syncservice/engine/schema.h"

namespace jetstream {

// What a client's ScopeSync asks for.
struct Changeset {
  std::vector<SyncFragment> fragments;
  bool atomic = false;
};

// ChangesetResult
//
// The outcome of Scope::Apply(). `replies` has one entry per request fragment,
// in request order. `applied` holds the fragments that took effect (request
// order, reference UUIDs in canonical lower case): exactly what other
// sessions must receive. `version` is the scope version after the changeset;
// it grew by one iff `applied` is non-empty.
struct ChangesetResult {
  std::vector<FragmentReply> replies;
  std::vector<SyncFragment> applied;
  uint64_t version = 0;

  bool changed() const { return !applied.empty(); }
  bool all_ok() const;
};

// The full state of a scope (docs/protocol.md#scope-state): the root first, as
// a `change` fragment, then every object reachable from it as an `add` fragment
// carrying all its properties, in depth-first pre-order.
struct ScopeState {
  Uuid root_uuid;
  uint64_t version = 0;
  std::vector<SyncFragment> fragments;
};

// ModelObject
//
// One object of a scope. Owned by its Scope; pointers stay valid until the
// object leaves the scope.
class ModelObject {
 public:
  ModelObject(Uuid uuid, const ModelType* type);

  Uuid uuid() const { return uuid_; }
  const ModelType& type() const { return *type_; }
  // Values by property index (ModelType::properties()).
  const std::vector<Value>& values() const { return values_; }
  // The value of property `name`, or nullptr if the type has no such one.
  const Value* Get(absl::string_view name) const;
  // Number of distinct (parent, property) relationships.
  size_t parent_count() const { return parents_.size(); }

 private:
  friend class Scope;
  enum class State : uint8_t { kPending, kCommitted };
  struct ParentLink {
    ModelObject* parent;
    uint32_t property;
    uint32_t count;  // references from that parent through that property
  };

  Uuid uuid_;
  const ModelType* type_;
  std::vector<Value> values_;
  absl::InlinedVector<ParentLink, 1> parents_;
  State state_ = State::kPending;
};

class Scope {
 public:
  // Scope::Create()
  //
  // A scope whose root is a new `root_model` object with default values and
  // `root_uuid`, at version 0. Fails if the schema has no such model.
  static absl::StatusOr<std::unique_ptr<Scope>> Create(
      std::shared_ptr<const Schema> schema, absl::string_view root_model,
      Uuid root_uuid = Uuid::Random());

  // Scope::FromState()
  //
  // Rebuilds a scope from ScopeState fragments (root `change` first, then
  // `add`s), e.g. a snapshot. Fails if any fragment does not apply.
  static absl::StatusOr<std::unique_ptr<Scope>> FromState(
      std::shared_ptr<const Schema> schema, std::vector<SyncFragment> fragments,
      uint64_t version);

  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope();

  // Scope::Apply()
  //
  // Applies `changeset` and returns one reply per fragment. Never fails as a
  // whole: errors are per fragment (or, when atomic, on every fragment).
  ChangesetResult Apply(Changeset changeset);

  // Scope::RejectAll()
  //
  // The result for a changeset refused before it reached the scope (a hook
  // failed, say): every reply carries
  // `Could not apply SyncMessage: <reason>`, typed
  // `could-not-apply-sync-message`. The scope is untouched.
  ChangesetResult RejectAll(size_t fragment_count,
                            absl::string_view reason) const;

  // The full state, as sent in ScopeState.
  ScopeState State() const;
  // Writes the state's fragments as a JSON array straight from the objects
  // (no intermediate copies); byte-identical to encoding State().fragments.
  void WriteStateFragments(JsonWriter& writer) const;
  // Scope::WriteSnapshotFragments()
  //
  // Like WriteStateFragments(), for storage: the root first as `change`,
  // then the reachable objects in state order, then every object that is
  // not reachable (kept alive by a detached cycle) as an `add`, by uuid.
  // FromState() on it rebuilds exactly this scope, so replaying commits on
  // top of it reproduces their versions and replies.
  void WriteSnapshotFragments(JsonWriter& writer) const;

  uint64_t version() const { return version_; }
  const ModelObject& root() const { return *root_; }
  const Schema& schema() const { return *schema_; }
  // Number of objects, the root included.
  size_t size() const { return objects_.size(); }
  // The object with `uuid`, or nullptr.
  const ModelObject* Find(Uuid uuid) const;

  // Verifies the structural invariants: every object but the root has a
  // parent, every reference names an object of the scope of the declared
  // type, and parent links match references exactly. For tests.
  absl::Status CheckInvariants() const;

 private:
  void WriteFragmentsImpl(JsonWriter& writer, bool all_objects) const;

  struct UndoEntry {
    enum class Kind : uint8_t { kAssign, kInsert, kErase };
    Kind kind;
    ModelObject* object;
    uint32_t property = 0;
    Value old_value;                      // kAssign
    std::unique_ptr<ModelObject> erased;  // kErase
  };

  Scope(std::shared_ptr<const Schema> schema, const ModelType* root_type,
        Uuid root_uuid);

  ModelObject* FindMutable(Uuid uuid) const;
  // Looks up a reference value (a UUID string).
  ModelObject* Resolve(const std::string& text) const;

  // Validates `properties` for `object` and normalises reference UUIDs to
  // lower case. Returns the error of the first invalid key.
  std::optional<WireError> Validate(const ModelObject& object,
                                    PropertyList& properties) const;
  std::optional<WireError> ValidateValue(const Property& property,
                                         Value& value) const;
  // Sets validated properties.
  void AssignAll(ModelObject& object, const PropertyList& properties);
  // Sets one value, keeping parent links in step; logs the old value.
  void Assign(ModelObject& object, uint32_t property, Value value, bool log);
  void Link(ModelObject& child, ModelObject& parent, uint32_t property,
            int delta);
  template <typename F>
  void ForEachReference(const Value& value, F&& f) const;

  void InsertPending(std::unique_ptr<ModelObject> object);
  // Clears the object's references and removes it from the scope (logged).
  void Remove(ModelObject& object);
  void CollectOrphans();
  void Rollback();

  std::shared_ptr<const Schema> schema_;
  const ModelType* root_type_;
  ModelObject* root_;
  uint64_t version_ = 0;
  absl::flat_hash_map<Uuid, std::unique_ptr<ModelObject>> objects_;

  // Per-Apply scratch state; empty between calls.
  std::vector<UndoEntry> undo_;
  std::vector<ModelObject*> orphan_candidates_;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_ENGINE_SCOPE_H_
