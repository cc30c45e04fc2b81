#include "syncservice/engine/scope.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fragment_json.h"
#include "common/iso_date.h"

namespace jetstream {
namespace {

WireError Untyped(std::string message) {
  return WireError{std::move(message), ""};
}

std::string Quoted(absl::string_view key) {
  return absl::StrCat("'", key, "'");
}

WireError NotValidType(absl::string_view key, absl::string_view should_be) {
  return Untyped(absl::StrCat("Not valid type at ", Quoted(key), ", should be ",
                              should_be));
}

}  // namespace

bool ChangesetResult::all_ok() const {
  for (const FragmentReply& r : replies) {
    if (!r.ok()) return false;
  }
  return true;
}

ModelObject::ModelObject(Uuid uuid, const ModelType* type)
    : uuid_(uuid), type_(type) {
  values_.reserve(type->properties().size());
  for (const Property& p : type->properties())
    values_.push_back(p.default_value);
}

const Value* ModelObject::Get(absl::string_view name) const {
  const Property* p = type_->FindProperty(name);
  return p == nullptr ? nullptr : &values_[p->index];
}

Scope::Scope(std::shared_ptr<const Schema> schema, const ModelType* root_type,
             Uuid root_uuid)
    : schema_(std::move(schema)), root_type_(root_type) {
  auto root = std::make_unique<ModelObject>(root_uuid, root_type);
  root->state_ = ModelObject::State::kCommitted;
  root_ = root.get();
  objects_.emplace(root_uuid, std::move(root));
}

Scope::~Scope() = default;

absl::StatusOr<std::unique_ptr<Scope>> Scope::Create(
    std::shared_ptr<const Schema> schema, absl::string_view root_model,
    Uuid root_uuid) {
  const ModelType* type = schema->FindModel(root_model);
  if (type == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("No such model '", root_model, "' for a scope root"));
  }
  return std::unique_ptr<Scope>(new Scope(std::move(schema), type, root_uuid));
}

absl::StatusOr<std::unique_ptr<Scope>> Scope::FromState(
    std::shared_ptr<const Schema> schema, std::vector<SyncFragment> fragments,
    uint64_t version) {
  if (fragments.empty() || fragments.front().type != FragmentType::kChange) {
    return absl::InvalidArgumentError(
        "a scope state starts with the root as a change fragment");
  }
  const SyncFragment& root = fragments.front();
  absl::StatusOr<std::unique_ptr<Scope>> scope =
      Create(std::move(schema), root.cls_name, root.uuid);
  if (!scope.ok()) return scope.status();
  ChangesetResult result =
      (*scope)->Apply(Changeset{std::move(fragments), /*atomic=*/true});
  for (size_t i = 0; i < result.replies.size(); ++i) {
    if (!result.replies[i].ok()) {
      return absl::DataLossError(
          absl::StrCat("scope state fragment ", i,
                       " does not apply: ", result.replies[i].error->message));
    }
  }
  (*scope)->version_ = version;
  return scope;
}

ModelObject* Scope::FindMutable(Uuid uuid) const {
  auto it = objects_.find(uuid);
  return it == objects_.end() ? nullptr : it->second.get();
}

const ModelObject* Scope::Find(Uuid uuid) const { return FindMutable(uuid); }

ModelObject* Scope::Resolve(const std::string& text) const {
  std::optional<Uuid> id = Uuid::Parse(text);
  return id ? FindMutable(*id) : nullptr;
}

template <typename F>
void Scope::ForEachReference(const Value& value, F&& f) const {
  if (value.is_string()) {
    if (ModelObject* o = Resolve(value.as_string())) f(*o);
  } else if (value.is_array()) {
    for (const Value& e : value.as_array()) {
      if (ModelObject* o = Resolve(e.as_string())) f(*o);
    }
  }
}

std::optional<WireError> Scope::ValidateValue(const Property& property,
                                              Value& value) const {
  const std::string& key = property.name;
  const PropertyType& type = property.type;

  if (type.is_reference()) {
    // Checks one UUID string: exists, right class. Lower-cases it in place.
    auto check = [&](std::string& text,
                     bool* missing) -> std::optional<WireError> {
      absl::AsciiStrToLower(&text);
      ModelObject* target = Resolve(text);
      if (target == nullptr) {
        *missing = true;
        return std::nullopt;
      }
      if (!target->type_->IsA(*type.model)) {
        return NotValidType(
            key, type.model->name());  // docs/protocol.md#d9-reference-class
      }
      return std::nullopt;
    };
    if (!type.collection) {
      if (value.is_null()) return std::nullopt;
      if (!value.is_string()) {
        return Untyped(absl::StrCat("Cannot set property at ", Quoted(key),
                                    " as non-UUID"));
      }
      bool missing = false;
      if (auto e = check(value.mutable_string(), &missing)) return e;
      if (missing) {
        return Untyped(absl::StrCat("No such ModelObject '", value.as_string(),
                                    "' at ", Quoted(key)));
      }
      return std::nullopt;
    }
    if (!value.is_array()) return NotValidType(key, "array of UUIDs");
    std::vector<std::string> missing_ids;
    for (Value& element : value.mutable_array()) {
      if (!element.is_string()) return NotValidType(key, "array of UUIDs");
      bool missing = false;
      if (auto e = check(element.mutable_string(), &missing)) return e;
      if (missing) missing_ids.push_back(element.as_string());
    }
    if (!missing_ids.empty()) {
      std::string list = absl::StrCat(
          "[",
          absl::StrJoin(missing_ids, ",",
                        [](std::string* out, const std::string& id) {
                          absl::StrAppend(out, "\"", id, "\"");
                        }),
          "]");
      return Untyped(
          absl::StrCat("No such ModelObjects '", list, "' at ", Quoted(key)));
    }
    return std::nullopt;
  }

  if (type.base == BaseType::kDate) {
    // An ISO-8601 string (the original JavaScript client's JSON.stringify)
    // is taken as the seconds it names: Dates are stored as seconds
    // (docs/protocol.md#d2-dates). Anything else fails the check below.
    auto to_seconds = [](Value& v) {
      if (!v.is_string()) return;
      if (std::optional<double> s = ParseIsoDate(v.as_string())) {
        v = Value::Number(*s);
      }
    };
    if (value.is_array()) {
      for (Value& element : value.mutable_array()) to_seconds(element);
    } else {
      to_seconds(value);
    }
  }

  // Value types: is `v` (not null) a valid element?
  auto element_ok = [&](const Value& v) {
    switch (type.base) {
      case BaseType::kString:
        return v.is_string();
      case BaseType::kNumber:
      case BaseType::kDate:  // seconds since the epoch
                             // (docs/protocol.md#d2-dates)
        return v.is_number();
      case BaseType::kBoolean:
        return v.is_bool();
      case BaseType::kEnumeration:
        return type.enumeration->Contains(v);
      case BaseType::kModel:
        return false;
    }
    return false;
  };
  auto type_error = [&]() {
    if (type.base == BaseType::kEnumeration) {
      return NotValidType(
          key, absl::StrCat("one of ", type.enumeration->ValuesJson()));
    }
    return NotValidType(key, type.ElementName());
  };
  if (type.collection) {
    if (!value.is_array()) {
      return Untyped(
          absl::StrCat("Collection type without array value at ", Quoted(key)));
    }
    for (const Value& element : value.as_array()) {
      if (!element_ok(element)) return type_error();
    }
    return std::nullopt;
  }
  // Any single value property may be null, enumerations included (the
  // original refused null enumerations: docs/protocol.md#d14-server-bugs).
  if (value.is_null() || element_ok(value)) return std::nullopt;
  return type_error();
}

std::optional<WireError> Scope::Validate(const ModelObject& object,
                                         PropertyList& properties) const {
  for (auto& [key, value] : properties) {
    const Property* property = object.type_->FindProperty(key);
    if (property == nullptr) {
      return Untyped(absl::StrCat("No property at ", Quoted(key)));
    }
    if (auto error = ValidateValue(*property, value)) return error;
  }
  return std::nullopt;
}

void Scope::AssignAll(ModelObject& object, const PropertyList& properties) {
  for (const auto& [key, value] : properties) {
    Assign(object, object.type_->FindProperty(key)->index, value, /*log=*/true);
  }
}

void Scope::Assign(ModelObject& object, uint32_t property, Value value,
                   bool log) {
  Value& slot = object.values_[property];
  if (object.type_->properties()[property].type.is_reference()) {
    // Link the new targets before unlinking the old ones, so an object kept
    // by the assignment is never seen as orphaned.
    ForEachReference(
        value, [&](ModelObject& child) { Link(child, object, property, +1); });
    ForEachReference(
        slot, [&](ModelObject& child) { Link(child, object, property, -1); });
  }
  if (log) {
    undo_.push_back(UndoEntry{UndoEntry::Kind::kAssign, &object, property,
                              std::move(slot), nullptr});
  }
  slot = std::move(value);
}

void Scope::Link(ModelObject& child, ModelObject& parent, uint32_t property,
                 int delta) {
  auto& links = child.parents_;
  for (auto it = links.begin(); it != links.end(); ++it) {
    if (it->parent == &parent && it->property == property) {
      it->count += delta;
      if (it->count == 0) {
        links.erase(it);
        if (links.empty() && &child != root_ &&
            child.state_ == ModelObject::State::kCommitted) {
          orphan_candidates_.push_back(&child);
        }
      }
      return;
    }
  }
  // A new relationship; only ever reached with delta == +1.
  links.push_back(ModelObject::ParentLink{&parent, property, 1});
}

void Scope::InsertPending(std::unique_ptr<ModelObject> object) {
  ModelObject* raw = object.get();
  objects_.emplace(raw->uuid_, std::move(object));
  undo_.push_back(
      UndoEntry{UndoEntry::Kind::kInsert, raw, 0, Value(), nullptr});
}

void Scope::Remove(ModelObject& object) {
  for (uint32_t p : object.type_->reference_properties()) {
    const Property& property = object.type_->properties()[p];
    Assign(object, p, property.default_value, /*log=*/true);
  }
  auto it = objects_.find(object.uuid_);
  std::unique_ptr<ModelObject> owned = std::move(it->second);
  objects_.erase(it);
  undo_.push_back(UndoEntry{UndoEntry::Kind::kErase, owned.get(), 0, Value(),
                            std::move(owned)});
}

void Scope::CollectOrphans() {
  // Removing an orphan clears its references, which may orphan its children:
  // the loop runs until no candidate is left (docs/protocol.md#orphans).
  while (!orphan_candidates_.empty()) {
    ModelObject* candidate = orphan_candidates_.back();
    orphan_candidates_.pop_back();
    auto it = objects_.find(candidate->uuid_);
    if (it == objects_.end() || it->second.get() != candidate) continue;
    if (candidate->parents_.empty() && candidate != root_) Remove(*candidate);
  }
}

void Scope::Rollback() {
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    switch (it->kind) {
      case UndoEntry::Kind::kAssign:
        Assign(*it->object, it->property, std::move(it->old_value),
               /*log=*/false);
        break;
      case UndoEntry::Kind::kInsert:
        objects_.erase(it->object->uuid_);
        break;
      case UndoEntry::Kind::kErase: {
        Uuid id = it->erased->uuid_;
        objects_.emplace(id, std::move(it->erased));
        break;
      }
    }
  }
  undo_.clear();
  orphan_candidates_.clear();
}

ChangesetResult Scope::Apply(Changeset changeset) {
  std::vector<SyncFragment>& fragments = changeset.fragments;
  const size_t n = fragments.size();
  ChangesetResult result;
  result.replies.resize(n);
  auto fail = [&](size_t i, WireError error) {
    result.replies[i].error = std::move(error);
  };

  // The object each `add` created, or nullptr once that add failed.
  std::vector<ModelObject*> added(n, nullptr);

  // 1. Create the objects of all `add`s (docs/protocol.md#changeset-algorithm,
  // step 1).
  for (size_t i = 0; i < n; ++i) {
    SyncFragment& f = fragments[i];
    if (f.type != FragmentType::kAdd) continue;
    if (objects_.contains(f.uuid)) {  // also a second add in this changeset
      fail(i, Untyped(absl::StrCat("ModelObject with UUID '", f.uuid.ToString(),
                                   "' already exists")));
      continue;
    }
    const ModelType* type = schema_->FindModel(f.cls_name);
    if (type == nullptr || !root_type_->CanContain(*type)) {
      fail(i, Untyped(absl::StrCat("No such class type '", f.cls_name, "'")));
      continue;
    }
    auto object = std::make_unique<ModelObject>(f.uuid, type);
    added[i] = object.get();
    InsertPending(std::move(object));
  }

  // 2. Set the properties of the new objects, in order (step 2). References
  // may name any object of the scope or of this changeset.
  bool withdrawn_any = false;
  for (size_t i = 0; i < n; ++i) {
    if (added[i] == nullptr) continue;
    if (auto error = Validate(*added[i], fragments[i].properties)) {
      fail(i, *std::move(error));
      Remove(*added[i]);
      added[i] = nullptr;
      withdrawn_any = true;
      continue;
    }
    AssignAll(*added[i], fragments[i].properties);
  }
  // An `add` that references an object whose own `add` failed fails too
  // (docs/protocol.md#d10-duplicate-adds), and so on transitively.
  for (bool again = withdrawn_any; again;) {
    again = false;
    for (size_t i = 0; i < n; ++i) {
      if (added[i] == nullptr) continue;
      if (auto error = Validate(*added[i], fragments[i].properties)) {
        fail(i, *std::move(error));
        Remove(*added[i]);
        added[i] = nullptr;
        again = true;
      }
    }
  }

  // 3. Apply the `change`s in request order (step 3). A change cannot
  // target an object added by this changeset.
  for (size_t i = 0; i < n; ++i) {
    SyncFragment& f = fragments[i];
    if (f.type != FragmentType::kChange) continue;
    ModelObject* object = FindMutable(f.uuid);
    if (object == nullptr || object->state_ != ModelObject::State::kCommitted) {
      fail(i, Untyped("ModelObject not found"));
      continue;
    }
    if (object->type_->name() !=
        f.cls_name) {  // docs/protocol.md#d8-change-class
      fail(i, Untyped(absl::StrCat("ModelObject '", f.uuid.ToString(),
                                   "' is a '", object->type_->name(),
                                   "', not a '", f.cls_name, "'")));
      continue;
    }
    if (auto error = Validate(*object, f.properties)) {
      fail(i, *std::move(error));
      continue;
    }
    AssignAll(*object, f.properties);
  }

  // 4. Commit the new objects that have a parent (step 4). Withdrawing one
  // may leave another without its only parent, hence the loop.
  for (bool again = true; again;) {
    again = false;
    for (size_t i = 0; i < n; ++i) {
      if (added[i] == nullptr || !added[i]->parents_.empty()) continue;
      fail(i, Untyped("No parents, parent sync fragment failed"));
      Remove(*added[i]);
      added[i] = nullptr;
      again = true;
    }
  }
  for (ModelObject* object : added) {
    if (object != nullptr) object->state_ = ModelObject::State::kCommitted;
  }

  // 5. Objects that lost their last parent leave, in cascade (step 5).
  CollectOrphans();

  // 6. All or nothing for atomic changesets (docs/protocol.md#d1-atomic).
  size_t first_failure = n;
  for (size_t i = 0; i < n && first_failure == n; ++i) {
    if (!result.replies[i].ok()) first_failure = i;
  }
  if (changeset.atomic && first_failure < n) {
    Rollback();
    const std::string& cause = result.replies[first_failure].error->message;
    for (size_t i = 0; i < n; ++i) {
      if (result.replies[i].ok()) {
        result.replies[i].error =
            WireError{absl::StrCat("Atomic changeset rejected: fragment ",
                                   first_failure, " failed: ", cause),
                      "atomic-changeset-rejected"};
      }
    }
    result.version = version_;
    return result;
  }

  undo_.clear();
  for (size_t i = 0; i < n; ++i) {
    if (result.replies[i].ok())
      result.applied.push_back(std::move(fragments[i]));
  }
  if (!result.applied.empty()) ++version_;
  result.version = version_;
  return result;
}

ChangesetResult Scope::RejectAll(size_t fragment_count,
                                 absl::string_view reason) const {
  ChangesetResult result;
  result.replies.assign(fragment_count,
                        FragmentReply{CouldNotApply(reason), {}});
  result.version = version_;
  return result;
}

namespace {

// Depth-first pre-order over references in declaration order, each object
// once (docs/protocol.md#scope-state). Iterative, so deep chains cannot exhaust
// the stack.
template <typename Resolve, typename Visit>
void TraverseFromRoot(const ModelObject& root, Resolve&& resolve,
                      Visit&& visit) {
  absl::flat_hash_set<const ModelObject*> seen;
  std::vector<const ModelObject*> stack = {&root};
  std::vector<const ModelObject*> children;
  while (!stack.empty()) {
    const ModelObject* object = stack.back();
    stack.pop_back();
    if (!seen.insert(object).second) continue;
    visit(*object);
    children.clear();
    for (uint32_t p : object->type().reference_properties()) {
      const Value& v = object->values()[p];
      if (v.is_string()) {
        if (const ModelObject* c = resolve(v.as_string()))
          children.push_back(c);
      } else if (v.is_array()) {
        for (const Value& e : v.as_array()) {
          if (const ModelObject* c = resolve(e.as_string()))
            children.push_back(c);
        }
      }
    }
    for (auto it = children.rbegin(); it != children.rend(); ++it) {
      if (!seen.contains(*it)) stack.push_back(*it);
    }
  }
}

}  // namespace

ScopeState Scope::State() const {
  ScopeState state;
  state.root_uuid = root_->uuid_;
  state.version = version_;
  state.fragments.reserve(objects_.size());
  TraverseFromRoot(
      *root_, [this](const std::string& s) { return Resolve(s); },
      [&](const ModelObject& object) {
        SyncFragment f;
        f.type = &object == root_ ? FragmentType::kChange : FragmentType::kAdd;
        f.uuid = object.uuid_;
        f.cls_name = object.type_->name();
        const auto& props = object.type_->properties();
        f.properties.reserve(props.size());
        for (const Property& p : props) {
          const Value& v = object.values_[p.index];
          // A null single reference is omitted; null values are kept.
          if (p.type.is_reference() && !p.type.collection && v.is_null()) {
            continue;
          }
          f.properties.emplace_back(p.name, v);
        }
        state.fragments.push_back(std::move(f));
      });
  return state;
}

void Scope::WriteStateFragments(JsonWriter& writer) const {
  WriteFragmentsImpl(writer, /*all_objects=*/false);
}

void Scope::WriteSnapshotFragments(JsonWriter& writer) const {
  WriteFragmentsImpl(writer, /*all_objects=*/true);
}

void Scope::WriteFragmentsImpl(JsonWriter& writer, bool all_objects) const {
  // The fragments are appended straight to the writer's buffer inside the
  // writer's own array (see AppendJsonValue): same bytes, a fraction of the
  // time of going through the writer value by value.
  writer.StartArray();
  rapidjson::StringBuffer& out = WriterBuffer(writer);
  bool first = true;
  absl::flat_hash_set<const ModelObject*> written;
  auto write_object = [&](const ModelObject& object) {
    AppendRaw(out, first ? "" : ",");
    first = false;
    AppendRaw(out, &object == root_ ? R"({"type":"change","uuid":")"
                                    : R"({"type":"add","uuid":")");
    object.uuid_.FormatTo(out.Push(kUuidTextLength));
    AppendRaw(out, R"(","clsName":)");
    AppendJsonString(out, object.type_->name());
    AppendRaw(out, R"(,"properties":{)");
    bool first_property = true;
    for (const Property& p : object.type_->properties()) {
      const Value& v = object.values_[p.index];
      // A null single reference is omitted; null values are kept.
      if (p.type.is_reference() && !p.type.collection && v.is_null()) {
        continue;
      }
      AppendRaw(out, first_property ? "" : ",");
      first_property = false;
      AppendJsonString(out, p.name);
      AppendRaw(out, ":");
      AppendJsonValue(out, v);
    }
    AppendRaw(out, "}}");
  };
  TraverseFromRoot(
      *root_, [this](const std::string& s) { return Resolve(s); },
      [&](const ModelObject& object) {
        if (all_objects) written.insert(&object);
        write_object(object);
      });
  if (all_objects && written.size() < objects_.size()) {
    // Objects kept alive only by a detached cycle: not part of the state
    // clients see, but part of the scope, so a rebuilt scope replays the
    // same. Sorted by uuid so the snapshot bytes are deterministic.
    std::vector<const ModelObject*> rest;
    for (const auto& [id, object] : objects_) {
      if (!written.contains(object.get())) rest.push_back(object.get());
    }
    std::sort(rest.begin(), rest.end(),
              [](const ModelObject* a, const ModelObject* b) {
                return a->uuid_ < b->uuid_;
              });
    for (const ModelObject* object : rest) write_object(*object);
  }
  writer.EndArray();
}

absl::Status Scope::CheckInvariants() const {
  // Expected parent links, recomputed from the references.
  absl::flat_hash_map<
      std::pair<const ModelObject*, std::pair<const ModelObject*, uint32_t>>,
      uint32_t>
      expected;
  for (const auto& [id, object] : objects_) {
    if (id != object->uuid_) return absl::InternalError("object keyed wrongly");
    if (object->state_ != ModelObject::State::kCommitted) {
      return absl::InternalError(
          absl::StrCat(id.ToString(), " is not committed"));
    }
    for (uint32_t p : object->type_->reference_properties()) {
      const Property& property = object->type_->properties()[p];
      const Value& v = object->values_[p];
      std::vector<const Value*> refs;
      if (v.is_string()) refs.push_back(&v);
      if (v.is_array()) {
        for (const Value& e : v.as_array()) refs.push_back(&e);
      }
      for (const Value* r : refs) {
        if (!r->is_string()) {
          return absl::InternalError(absl::StrCat(
              id.ToString(), ".", property.name, " holds a non-UUID"));
        }
        const ModelObject* target = Resolve(r->as_string());
        if (target == nullptr) {
          return absl::InternalError(
              absl::StrCat(id.ToString(), ".", property.name,
                           " references missing ", r->as_string()));
        }
        if (r->as_string() != target->uuid_.ToString()) {
          return absl::InternalError("reference not in canonical form");
        }
        if (!target->type_->IsA(*property.type.model)) {
          return absl::InternalError(
              absl::StrCat(id.ToString(), ".", property.name, " references a ",
                           target->type_->name()));
        }
        ++expected[{target, {object.get(), p}}];
      }
    }
  }
  size_t links = 0;
  for (const auto& [id, object] : objects_) {
    if (object.get() != root_ && object->parents_.empty()) {
      return absl::InternalError(absl::StrCat(id.ToString(), " has no parent"));
    }
    for (const auto& link : object->parents_) {
      auto it = expected.find({object.get(), {link.parent, link.property}});
      if (it == expected.end() || it->second != link.count) {
        return absl::InternalError(absl::StrCat(
            id.ToString(), " has a parent link with no reference"));
      }
      ++links;
    }
  }
  if (links != expected.size()) {
    return absl::InternalError("a reference has no parent link");
  }
  return absl::OkStatus();
}

}  // namespace jetstream
