// Randomized property tests of Scope::Apply.
//
// A seeded generator produces changesets (as JSON text, parsed with
// ParseFragmentsJson like the gateway does) on four schemas: the demo schema
// with a Canvas root and with a ChatRoom root, and an inline schema of nodes
// with deep trees, cycles (also through the root) and inheritance, rooted at
// a Node and at a Graph. Changesets mix valid adds with and without parents,
// duplicate adds, adds of unknown classes, changes to existing, missing and
// same-changeset objects, class mismatches
// (docs/protocol.md#d8-change-class), wrong-typed values, unknown
// properties, references to missing and wrong-class objects, moves between
// parents, shrinking collections and nulled references, upper-case UUIDs
// (fragment and reference), fragments without properties, empty changesets,
// and `atomic` true and false.
//
// After every changeset the test asserts:
//   (a) atomicity (docs/protocol.md#d1-atomic): the scope is compared with a
//   full replica that gets
//       the same changeset non-atomically. An atomic changeset with any
//       failure leaves state JSON, size() and version() untouched and every
//       reply is an error (the failing fragments their own, the others
//       `atomic-changeset-rejected` naming the first failure); an atomic
//       changeset without failure ends exactly like the replica.
//   (b) Scope::FromState(State()) reproduces state JSON and version, and
//       WriteStateFragments() is byte-identical to EncodeFragments(State()).
//   (c) CheckInvariants() holds after every commit.
//   (d) an independent reference model (uuid -> {class, values}) that
//       implements docs/protocol.md (apply errors, the changeset algorithm,
//       orphans, the state, and the decisions D1, D8-D10, D12) directly
//       agrees on every reply (message and type), the applied fragments, the
//       version, every object (reachable or not) and the state JSON.
//   (e) replies.size() == fragments.size(); version grows by exactly one iff
//       `applied` is non-empty.
//
// Reproducing a failure: the seed and step are in the failure trace. Run one
// seed with --test_env=SCOPE_RANDOM_SEED=<seed> (and optionally
// SCOPE_RANDOM_STEPS=<n>).

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/fragment_json.h"
#include "common/json.h"
#include "gtest/gtest.h"
#include "syncservice/engine/schema_loader.h"
#include "syncservice/engine/scope.h"
#include "tests/testing/engine_fixtures.h"
#include "tests/testing/status_matchers.h"

namespace jetstream {
namespace {

using ::jetstream::testing::DemoSchema;
using ::jetstream::testing::StateJson;

constexpr int kStepsPerSeed = 300;
constexpr uint32_t kSeeds[] = {1,   2,    3,    5,    8,    13,   21,
                               34,  55,   89,   144,  233,  377,  610,
                               987, 1597, 2584, 4181, 6765, 10946};

// Deeper trees, cycles (through `next`, `children`, and back to the root when
// the root is a Node), inheritance (Special is a Node), a string enumeration,
// defaults, and a class (Tag) that is a wrong target for Node references.
constexpr char kNodeSchema[] = R"({
  "enumerations": {
    "Color": {"type": "String", "values": ["Red", "Green", "Blue"]}
  },
  "models": {
    "Node": {"properties": {
      "label": "String",
      "children": "[Node]",
      "next": "Node",
      "weight": {"type": "Number", "default": 1},
      "tag": "Tag",
      "flags": "[Boolean]",
      "created": "Date",
      "color": "Color",
      "scores": "[Number]"
    }},
    "Special": {"extends": "Node", "properties": {"extra": "Boolean"}},
    "Tag": {"properties": {
      "name": "String",
      "owner": "Node",
      "aliases": "[String]"
    }},
    "Graph": {"properties": {
      "title": "String",
      "nodes": "[Node]",
      "head": "Node",
      "specials": "[Special]",
      "tags": "[Tag]"
    }}
  }
})";

std::shared_ptr<const Schema> NodeSchema() {
  static const auto* schema = [] {
    auto s = ParseSchema(kNodeSchema, "kNodeSchema");
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
      std::abort();
    }
    return new std::shared_ptr<const Schema>(*s);
  }();
  return *schema;
}

// ---------------------------------------------------------------------------
// Small helpers shared by the model and the generator.

bool IsA(const ModelType* type, const ModelType* other) {
  for (const ModelType* t = type; t != nullptr; t = t->base()) {
    if (t == other) return true;
  }
  return false;
}

// The classes an `add` may name under a root of `root`
// (docs/protocol.md#apply-errors): reachable from the root's type through
// property declarations, or derived from such a class. Computed here
// independently of ModelType::CanContain.
std::set<const ModelType*> ContainableTypes(const Schema& schema,
                                            const ModelType* root) {
  std::set<const ModelType*> out;
  std::vector<const ModelType*> pending = {root};
  std::set<const ModelType*> expanded;
  while (!pending.empty()) {
    const ModelType* t = pending.back();
    pending.pop_back();
    if (!expanded.insert(t).second) continue;
    for (const Property& p : t->properties()) {
      if (!p.type.is_reference()) continue;
      for (const auto& m : schema.models()) {
        if (IsA(m.get(), p.type.model) && out.insert(m.get()).second) {
          pending.push_back(m.get());
        }
      }
    }
  }
  return out;
}

std::string Lower(std::string s) {
  absl::AsciiStrToLower(&s);
  return s;
}

std::string Upper(std::string s) {
  absl::AsciiStrToUpper(&s);
  return s;
}

WireError Err(std::string message) { return WireError{std::move(message), ""}; }

std::string ErrorString(const std::optional<WireError>& e) {
  if (!e) return "ok";
  return e->type.empty() ? e->message
                         : absl::StrCat(e->message, " [", e->type, "]");
}

std::string ReplyString(const FragmentReply& r) { return ErrorString(r.error); }

// ---------------------------------------------------------------------------
// The reference model: a plain map of lower-case UUID text to object, with the
// changeset rules of docs/protocol.md written out step by step. Slow and
// simple.

class ReferenceModel {
 public:
  struct Obj {
    const ModelType* type;
    std::vector<Value> values;  // by property index
  };

  struct Result {
    std::vector<std::optional<WireError>> replies;
    std::vector<SyncFragment> applied;
  };

  ReferenceModel(std::shared_ptr<const Schema> schema, const ModelType* root,
                 std::string root_id)
      : schema_(std::move(schema)),
        root_type_(root),
        root_id_(std::move(root_id)),
        containable_(ContainableTypes(*schema_, root)) {
    objects_[root_id_] = NewObj(root);
  }

  const std::map<std::string, Obj>& objects() const { return objects_; }
  const std::string& root_id() const { return root_id_; }
  uint64_t version() const { return version_; }
  const std::set<const ModelType*>& containable() const { return containable_; }

  Result Apply(std::vector<SyncFragment> fragments, bool atomic) {
    const size_t n = fragments.size();
    Result result;
    result.replies.resize(n);
    const std::map<std::string, Obj> snapshot = objects_;

    // New objects of this changeset that are still alive.
    std::map<std::string, Obj> fresh;
    std::vector<bool> is_new(n, false);
    auto id_of = [&](size_t i) { return fragments[i].uuid.ToString(); };
    auto lookup = [&](const std::string& id) -> const Obj* {
      if (auto it = objects_.find(id); it != objects_.end()) return &it->second;
      if (auto it = fresh.find(id); it != fresh.end()) return &it->second;
      return nullptr;
    };

    // Step 4: temporary objects for all adds, duplicates and unknown classes
    // refused (docs/protocol.md#d10-duplicate-adds: a second add of one UUID
    // fails).
    for (size_t i = 0; i < n; ++i) {
      const SyncFragment& f = fragments[i];
      if (f.type != FragmentType::kAdd) continue;
      std::string id = id_of(i);
      if (objects_.count(id) || fresh.count(id)) {
        result.replies[i] = Err(
            absl::StrCat("ModelObject with UUID '", id, "' already exists"));
        continue;
      }
      const ModelType* type = schema_->FindModel(f.cls_name);
      if (type == nullptr || !containable_.count(type)) {
        result.replies[i] =
            Err(absl::StrCat("No such class type '", f.cls_name, "'"));
        continue;
      }
      fresh[id] = NewObj(type);
      is_new[i] = true;
    }

    // Step 5: add properties in order; a failed add is withdrawn.
    auto withdraw = [&](size_t i, WireError e) {
      result.replies[i] = std::move(e);
      fresh.erase(id_of(i));
      is_new[i] = false;
    };
    for (size_t i = 0; i < n; ++i) {
      if (!is_new[i]) continue;
      Obj& obj = fresh[id_of(i)];
      if (auto e = Validate(*obj.type, fragments[i].properties, lookup)) {
        withdraw(i, *e);
        continue;
      }
      Set(obj, fragments[i].properties);
    }
    // docs/protocol.md#d10-duplicate-adds: adds referencing withdrawn objects
    // fail too, transitively.
    for (bool again = true; again;) {
      again = false;
      for (size_t i = 0; i < n; ++i) {
        if (!is_new[i]) continue;
        const ModelType& type = *fresh[id_of(i)].type;
        if (auto e = Validate(type, fragments[i].properties, lookup)) {
          withdraw(i, *e);
          again = true;
        }
      }
    }

    // Step 6: changes in request order, on objects that were in the scope.
    for (size_t i = 0; i < n; ++i) {
      const SyncFragment& f = fragments[i];
      if (f.type != FragmentType::kChange) continue;
      std::string id = id_of(i);
      auto it = objects_.find(id);
      if (it == objects_.end()) {
        result.replies[i] = Err("ModelObject not found");
        continue;
      }
      if (it->second.type->name() !=
          f.cls_name) {  // docs/protocol.md#d8-change-class
        result.replies[i] = Err(absl::StrCat("ModelObject '", id, "' is a '",
                                             it->second.type->name(),
                                             "', not a '", f.cls_name, "'"));
        continue;
      }
      if (auto e =
              Validate(*it->second.type, fragments[i].properties, lookup)) {
        result.replies[i] = *e;
        continue;
      }
      Set(it->second, fragments[i].properties);
    }

    // Step 7: new objects without a parent fail; repeat since that can take
    // the only parent of another new object.
    for (bool again = true; again;) {
      again = false;
      std::map<std::string, int> refs = CountReferences(fresh);
      for (size_t i = 0; i < n; ++i) {
        if (is_new[i] && refs[id_of(i)] == 0) {
          withdraw(i, Err("No parents, parent sync fragment failed"));
          again = true;
        }
      }
    }
    for (auto& [id, obj] : fresh) objects_[id] = std::move(obj);
    fresh.clear();

    // Step 8: orphan collection by parent count (7.5), until none is left.
    for (bool again = true; again;) {
      again = false;
      std::map<std::string, int> refs = CountReferences({});
      for (auto it = objects_.begin(); it != objects_.end();) {
        if (it->first != root_id_ && refs[it->first] == 0) {
          it = objects_.erase(it);
          again = true;
        } else {
          ++it;
        }
      }
    }

    // docs/protocol.md#d1-atomic.
    std::optional<size_t> first_failure;
    for (size_t i = 0; i < n && !first_failure; ++i) {
      if (result.replies[i]) first_failure = i;
    }
    if (atomic && first_failure) {
      objects_ = snapshot;
      std::string message =
          absl::StrCat("Atomic changeset rejected: fragment ", *first_failure,
                       " failed: ", result.replies[*first_failure]->message);
      for (auto& r : result.replies) {
        if (!r) r = WireError{message, "atomic-changeset-rejected"};
      }
      return result;
    }
    for (size_t i = 0; i < n; ++i) {
      if (!result.replies[i]) result.applied.push_back(fragments[i]);
    }
    if (!result.applied.empty()) ++version_;
    return result;
  }

  // docs/protocol.md#scope-state: depth-first pre-order from the root over
  // references in declaration order, each object once; the root as `change`;
  // all properties, null single references omitted.
  std::vector<SyncFragment> State() const {
    std::vector<SyncFragment> out;
    std::set<std::string> seen;
    // Explicit stack of (object id, children still to visit).
    struct Frame {
      std::vector<std::string> children;
      size_t next = 0;
    };
    std::vector<Frame> stack;
    auto visit = [&](const std::string& id) {
      seen.insert(id);
      const Obj& obj = objects_.at(id);
      SyncFragment f;
      f.type = id == root_id_ ? FragmentType::kChange : FragmentType::kAdd;
      f.uuid = *Uuid::Parse(id);
      f.cls_name = obj.type->name();
      Frame frame;
      for (const Property& p : obj.type->properties()) {
        const Value& v = obj.values[p.index];
        if (p.type.is_reference()) {
          if (v.is_string()) frame.children.push_back(v.as_string());
          if (v.is_array()) {
            for (const Value& e : v.as_array()) {
              frame.children.push_back(e.as_string());
            }
          }
          if (!p.type.collection && v.is_null()) continue;
        }
        f.properties.emplace_back(p.name, v);
      }
      out.push_back(std::move(f));
      stack.push_back(std::move(frame));
    };
    visit(root_id_);
    while (!stack.empty()) {
      Frame& top = stack.back();
      if (top.next == top.children.size()) {
        stack.pop_back();
        continue;
      }
      std::string child = top.children[top.next++];
      if (!seen.count(child)) visit(child);
    }
    return out;
  }

 private:
  Obj NewObj(const ModelType* type) const {
    Obj obj{type, {}};
    for (const Property& p : type->properties()) {
      obj.values.push_back(p.default_value);
    }
    return obj;
  }

  void Set(Obj& obj, const PropertyList& properties) const {
    for (const auto& [key, value] : properties) {
      obj.values[obj.type->FindProperty(key)->index] = value;
    }
  }

  // References to each object from the scope's objects and `extra`.
  std::map<std::string, int> CountReferences(
      const std::map<std::string, Obj>& extra) const {
    std::map<std::string, int> refs;
    auto count = [&](const Obj& obj) {
      for (const Property& p : obj.type->properties()) {
        if (!p.type.is_reference()) continue;
        const Value& v = obj.values[p.index];
        if (v.is_string()) ++refs[v.as_string()];
        if (v.is_array()) {
          for (const Value& e : v.as_array()) ++refs[e.as_string()];
        }
      }
    };
    for (const auto& [id, obj] : objects_) count(obj);
    for (const auto& [id, obj] : extra) count(obj);
    return refs;
  }

  // docs/protocol.md#apply-errors, key by key; the first bad key's error.
  // Reference UUIDs are lower-cased in place.
  static std::optional<WireError> Validate(
      const ModelType& type, PropertyList& properties,
      const std::function<const Obj*(const std::string&)>& lookup) {
    for (auto& [key, value] : properties) {
      const Property* p = type.FindProperty(key);
      if (p == nullptr) return Err(absl::StrCat("No property at '", key, "'"));
      if (auto e = ValidateValue(key, p->type, value, lookup)) return e;
    }
    return std::nullopt;
  }

  static std::optional<WireError> ValidateValue(
      const std::string& key, const PropertyType& t, Value& value,
      const std::function<const Obj*(const std::string&)>& lookup) {
    auto not_valid = [&](const std::string& should_be) {
      return Err(
          absl::StrCat("Not valid type at '", key, "', should be ", should_be));
    };
    if (t.is_reference()) {
      if (!t.collection) {
        if (value.is_null()) return std::nullopt;
        if (!value.is_string()) {
          return Err(
              absl::StrCat("Cannot set property at '", key, "' as non-UUID"));
        }
        value = Value::String(Lower(value.as_string()));
        const Obj* target = lookup(value.as_string());
        if (target == nullptr) {
          return Err(absl::StrCat("No such ModelObject '", value.as_string(),
                                  "' at '", key, "'"));
        }
        // docs/protocol.md#d9-reference-class
        if (!IsA(target->type, t.model)) return not_valid(t.model->name());
        return std::nullopt;
      }
      if (!value.is_array()) return not_valid("array of UUIDs");
      std::vector<std::string> missing;
      for (Value& e : value.mutable_array()) {
        if (!e.is_string()) return not_valid("array of UUIDs");
        e = Value::String(Lower(e.as_string()));
        const Obj* target = lookup(e.as_string());
        if (target == nullptr) {
          missing.push_back(absl::StrCat("\"", e.as_string(), "\""));
          continue;
        }
        if (!IsA(target->type, t.model)) return not_valid(t.model->name());
      }
      if (!missing.empty()) {
        return Err(absl::StrCat("No such ModelObjects '[",
                                absl::StrJoin(missing, ","), "]' at '", key,
                                "'"));
      }
      return std::nullopt;
    }
    auto element_ok = [&](const Value& v) {
      switch (t.base) {
        case BaseType::kString:
          return v.is_string();
        case BaseType::kNumber:
        case BaseType::kDate:
          return v.is_number();
        case BaseType::kBoolean:
          return v.is_bool();
        case BaseType::kEnumeration:
          for (const Value& allowed : t.enumeration->values) {
            if (allowed == v) return true;
          }
          return false;
        case BaseType::kModel:
          return false;
      }
      return false;
    };
    auto type_error = [&]() {
      if (t.base == BaseType::kEnumeration) {
        std::vector<std::string> values;
        for (const Value& v : t.enumeration->values) {
          values.push_back(v.DebugString());
        }
        return not_valid(
            absl::StrCat("one of [", absl::StrJoin(values, ","), "]"));
      }
      return not_valid(t.ElementName());
    };
    if (t.collection) {
      if (!value.is_array()) {
        return Err(
            absl::StrCat("Collection type without array value at '", key, "'"));
      }
      for (const Value& e : value.as_array()) {
        if (!element_ok(e)) return type_error();
      }
      return std::nullopt;
    }
    if (value.is_null() || element_ok(value)) return std::nullopt;
    return type_error();
  }

  std::shared_ptr<const Schema> schema_;
  const ModelType* root_type_;
  std::string root_id_;
  std::set<const ModelType*> containable_;
  std::map<std::string, Obj> objects_;
  uint64_t version_ = 0;
};

// ---------------------------------------------------------------------------
// The changeset generator. It reads the reference model to know what exists
// (both are checked to agree after every step).

class Generator {
 public:
  Generator(uint32_t seed, std::shared_ptr<const Schema> schema,
            const ReferenceModel& model, std::vector<std::string>& universe)
      : rng_(seed),
        schema_(std::move(schema)),
        model_(model),
        universe_(universe) {
    for (const ModelType* t : model_.containable()) containable_.push_back(t);
    std::sort(containable_.begin(), containable_.end(),
              [](const ModelType* a, const ModelType* b) {
                return a->name() < b->name();
              });
  }

  std::string RandomUuid() {
    std::string s;
    static constexpr char kHex[] = "0123456789abcdef";
    for (int i = 0; i < 32; ++i) {
      if (i == 8 || i == 12 || i == 16 || i == 20) s += '-';
      char c = kHex[Uniform(16)];
      if (i == 12) c = '4';
      if (i == 16) c = kHex[8 + Uniform(4)];
      s += c;
    }
    return s;
  }

  std::string FreshUuid() {
    std::string id = RandomUuid();
    universe_.push_back(id);
    return id;
  }

  // A JSON array of fragments; sets *atomic.
  std::string NextChangeset(bool* atomic) {
    *atomic = Chance(0.5);
    // A clean changeset has no deliberately invalid value and no fragment
    // that is bound to fail; the scope grows through those.
    clean_ = Chance(0.5);
    gens_.clear();
    planned_.clear();
    news_.clear();
    existing_.clear();
    for (const auto& [id, obj] : model_.objects()) {
      existing_.push_back({id, obj.type});
    }

    size_t count = Chance(0.01) ? 0 : 1 + Uniform(Chance(0.2) ? 12 : 5);
    bool big = existing_.size() > 120;
    for (size_t k = 0; k < count; ++k) {
      int op = static_cast<int>(Uniform(100));
      if (big && op < 30) op += 60;  // prefer removals when the scope is big
      if (op < 28) {
        GenAdd(/*with_parent=*/clean_ || !Chance(0.15));
      } else if (op < 32) {
        if (clean_) {
          GenAdd(true);
        } else {
          GenAddBadClass();
        }
      } else if (op < 60) {
        GenChangeExisting();
      } else if (op < 66) {
        if (clean_) {
          GenMove();
        } else {
          GenChangeMissing();
        }
      } else if (op < 78) {
        GenMove();
      } else if (op < 94) {
        GenRemove();
      } else {
        GenCycle();
      }
    }
    if (Chance(0.25)) {
      for (size_t i = gens_.size(); i > 1; --i) {
        std::swap(gens_[i - 1], gens_[Uniform(i)]);
      }
    }

    rapidjson::StringBuffer buffer;
    JsonWriter w(buffer);
    w.StartArray();
    for (const Gen& g : gens_) {
      w.StartObject();
      w.Key("type");
      w.String(g.add ? "add" : "change");
      w.Key("uuid");
      w.String(Chance(0.1) ? Upper(g.id) : g.id);
      w.Key("clsName");
      w.String(g.cls);
      int mode = static_cast<int>(Uniform(100));
      if (mode < 2 && g.props.empty()) {
        // docs/protocol.md#d12-no-properties: no `properties` at all.
      } else if (mode < 4 && g.props.empty()) {
        w.Key("properties");
        w.Null();
      } else {
        w.Key("properties");
        WriteProperties(w, g.props);
      }
      w.EndObject();
    }
    w.EndArray();
    return std::string(buffer.GetString(), buffer.GetSize());
  }

 private:
  struct Gen {
    bool add;
    std::string id;
    std::string cls;
    PropertyList props;
  };
  struct Known {
    std::string id;
    const ModelType* type;
  };

  size_t Uniform(size_t n) { return n == 0 ? 0 : rng_() % n; }
  bool Chance(double p) { return (rng_() % 1000000) < p * 1000000; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Uniform(v.size())];
  }

  std::string MaybeUpper(const std::string& id) {
    return Chance(0.1) ? Upper(id) : id;
  }

  // Objects (existing or added in this changeset) that may be referenced by
  // a property of model type `model`.
  std::vector<Known> Targets(const ModelType* model, bool include_new = true) {
    std::vector<Known> out;
    for (const Known& k : existing_) {
      if (IsA(k.type, model)) out.push_back(k);
    }
    if (include_new) {
      for (const Known& k : news_) {
        if (IsA(k.type, model)) out.push_back(k);
      }
    }
    return out;
  }
  std::vector<Known> NonTargets(const ModelType* model) {
    std::vector<Known> out;
    for (const Known& k : existing_) {
      if (!IsA(k.type, model)) out.push_back(k);
    }
    return out;
  }

  std::string MissingUuid() {
    // An object that left the scope (or never was in it), or a fresh one.
    if (!universe_.empty() && Chance(0.6)) {
      for (int tries = 0; tries < 8; ++tries) {
        const std::string& id = Pick(universe_);
        if (!model_.objects().count(id)) return id;
      }
    }
    return FreshUuid();
  }

  Value Scalar(const PropertyType& t) {
    switch (t.base) {
      case BaseType::kString: {
        static const char* kStrings[] = {
            "", "a", "hello", "Ünïcødé ✓", "quote\"back\\slash", "line\nbreak"};
        return Value::String(kStrings[Uniform(6)]);
      }
      case BaseType::kNumber: {
        static const double kNumbers[] = {
            0, 1, -3, 42.5, 1e21, 4279308287.0, 1e-7, 0.1};
        if (Chance(0.5))
          return Value::Number(static_cast<double>(Uniform(1000)));
        return Value::Number(kNumbers[Uniform(8)]);
      }
      case BaseType::kDate:
        return Value::Number(1450582561.123 +
                             static_cast<double>(Uniform(100000)));
      case BaseType::kBoolean:
        return Value::Bool(Chance(0.5));
      case BaseType::kEnumeration:
        return Pick(t.enumeration->values);
      case BaseType::kModel:
        break;
    }
    return Value();
  }

  // A value of the wrong JSON type or out of range for an element of `t`.
  Value BadScalar(const PropertyType& t) {
    switch (t.base) {
      case BaseType::kString:
        return Chance(0.5) ? Value::Number(7) : Value::Bool(true);
      case BaseType::kNumber:
      case BaseType::kDate:
        return Chance(0.5) ? Value::String("12") : Value::Bool(false);
      case BaseType::kBoolean:
        return Chance(0.5) ? Value::Number(1) : Value::String("true");
      case BaseType::kEnumeration:
        if (t.enumeration->numeric) {
          return Chance(0.5) ? Value::Number(7) : Value::String("Open");
        }
        return Chance(0.5) ? Value::String("Purple") : Value::Number(0);
      case BaseType::kModel:
        break;
    }
    return Value::Number(1);
  }

  Value RefValue(const ModelType* model) {
    std::vector<Known> targets = Targets(model);
    if (targets.empty() || Chance(0.15)) return Value();
    return Value::String(MaybeUpper(Pick(targets).id));
  }

  Value RefArray(const ModelType* model, size_t max) {
    std::vector<Known> targets = Targets(model);
    Value::Array a;
    if (!targets.empty()) {
      size_t len = Uniform(max + 1);
      for (size_t i = 0; i < len; ++i) {
        a.push_back(Value::String(MaybeUpper(Pick(targets).id)));
      }
    }
    return Value::ArrayOf(std::move(a));
  }

  Value ValidValue(const Property& p) {
    const PropertyType& t = p.type;
    if (t.is_reference()) {
      return t.collection ? RefArray(t.model, 3) : RefValue(t.model);
    }
    if (t.collection) {
      Value::Array a;
      size_t len = Uniform(4);
      for (size_t i = 0; i < len; ++i) a.push_back(Scalar(t));
      return Value::ArrayOf(std::move(a));
    }
    if (Chance(0.1)) return Value();
    return Scalar(t);
  }

  Value InvalidValue(const Property& p) {
    const PropertyType& t = p.type;
    if (t.is_reference()) {
      std::vector<Known> wrong = NonTargets(t.model);
      if (!t.collection) {
        switch (Uniform(6)) {
          case 0:
            return Value::Number(5);
          case 1:
            return Value::String("not-a-uuid");
          case 2:
            if (!wrong.empty())
              return Value::String(MaybeUpper(Pick(wrong).id));
            [[fallthrough]];
          case 3:
            return Value::String(MaybeUpper(MissingUuid()));
          case 4:
            return Value::ArrayOf({Value::String(MissingUuid())});
          default:
            return Value::Bool(true);
        }
      }
      Value base = RefArray(t.model, 2);
      switch (Uniform(6)) {
        case 0:
          return Value::String(MissingUuid());
        case 1:
          return Value();
        case 2:
          return Value::ArrayOf({Value::Number(1), Value::Number(2)});
        case 3:
          if (!wrong.empty()) {
            base.mutable_array().push_back(Value::String(Pick(wrong).id));
            return base;
          }
          [[fallthrough]];
        default:
          base.mutable_array().insert(base.mutable_array().begin() +
                                          Uniform(base.as_array().size() + 1),
                                      Value::String(MaybeUpper(MissingUuid())));
          if (Chance(0.3))
            base.mutable_array().push_back(Value::String(MissingUuid()));
          return base;
      }
    }
    if (t.collection) {
      switch (Uniform(4)) {
        case 0:
          return Value();
        case 1:
          return Scalar(t).is_string() ? Value::Number(3) : Value::String("x");
        case 2:
          return Value::ArrayOf({Value(), Value()});
        default:
          return Value::ArrayOf({BadScalar(t)});
      }
    }
    if (Chance(0.2)) return Value::ArrayOf({Scalar(t)});
    return BadScalar(t);
  }

  // Random properties of `type`: each with probability `density`, mostly
  // valid, sometimes an unknown key.
  // For an existing object (`owner` non-null), reference collections are
  // mostly edited (an element appended or dropped) rather than replaced.
  PropertyList RandomProperties(const ModelType* type, double density,
                                double invalid, const Known* owner = nullptr) {
    PropertyList props;
    if (clean_) invalid = 0;
    for (const Property& p : type->properties()) {
      if (!Chance(density)) continue;
      if (Chance(invalid)) {
        props.emplace_back(p.name, InvalidValue(p));
      } else if (owner != nullptr && p.type.is_reference() &&
                 p.type.collection && Chance(0.85)) {
        Value v = Planned(owner->id, p);
        auto& a = v.mutable_array();
        if (!a.empty() && Chance(0.3)) {
          a.erase(a.begin() + Uniform(a.size()));
        } else {
          std::vector<Known> targets = Targets(p.type.model);
          size_t more = targets.empty() ? 0 : 1 + Uniform(2);
          for (size_t i = 0; i < more; ++i) {
            a.push_back(Value::String(MaybeUpper(Pick(targets).id)));
          }
        }
        props.emplace_back(p.name, std::move(v));
      } else {
        props.emplace_back(p.name, ValidValue(p));
      }
    }
    if (!clean_ && Chance(0.03)) props.emplace_back("bogus", Value::Number(1));
    return props;
  }

  // A reference value the generator can extend: null or a UUID string for
  // single references, an array of strings for collections.
  static bool WellShaped(const Property& p, const Value& v) {
    if (!p.type.collection) return v.is_null() || v.is_string();
    if (!v.is_array()) return false;
    for (const Value& e : v.as_array()) {
      if (!e.is_string()) return false;
    }
    return true;
  }

  // The value this changeset will have given (object, property) so far.
  Value& Planned(const std::string& id, const Property& p) {
    auto key = std::make_pair(id, p.index);
    auto it = planned_.find(key);
    if (it != planned_.end()) return it->second;
    const auto& obj = model_.objects().at(id);
    return planned_[key] = obj.values[p.index];
  }

  void EmitChange(const std::string& id, const ModelType* type,
                  const Property& p, Value value) {
    gens_.push_back(Gen{false, id, type->name(), {{p.name, std::move(value)}}});
  }

  // Makes some parent reference `child` (of `type`): an existing object via
  // a change, or a new object of this changeset via its add's properties.
  void AttachSomewhere(const std::string& child, const ModelType* type) {
    struct Slot {
      bool existing;
      size_t index;  // into existing_ or gens_
      const Property* property;
    };
    std::vector<Slot> slots;
    for (size_t i = 0; i < existing_.size(); ++i) {
      for (const Property& p : existing_[i].type->properties()) {
        if (p.type.is_reference() && IsA(type, p.type.model)) {
          slots.push_back({true, i, &p});
        }
      }
    }
    for (size_t i = 0; i < gens_.size(); ++i) {
      if (!gens_[i].add || gens_[i].id == child) continue;
      const ModelType* t = schema_->FindModel(gens_[i].cls);
      if (t == nullptr) continue;
      for (const Property& p : t->properties()) {
        if (p.type.is_reference() && IsA(type, p.type.model)) {
          slots.push_back({false, i, &p});
        }
      }
    }
    if (slots.empty()) return;
    // Prefer the root and other existing objects: keeps the tree connected.
    Slot s = Pick(slots);
    if (Chance(0.4)) {
      for (int tries = 0; tries < 4 && !(s.existing && existing_[s.index].id ==
                                                           model_.root_id());
           ++tries) {
        s = Pick(slots);
      }
    }
    Value ref = Value::String(MaybeUpper(child));
    if (s.existing) {
      const Known& parent = existing_[s.index];
      Value& v = Planned(parent.id, *s.property);
      if (s.property->type.collection) {
        if (!v.is_array()) v = Value::ArrayOf({});
        v.mutable_array().push_back(ref);
      } else {
        v = ref;
      }
      EmitChange(parent.id, parent.type, *s.property, v);
      return;
    }
    Gen& g = gens_[s.index];
    for (auto& [k, v] : g.props) {
      if (k != s.property->name) continue;
      if (s.property->type.collection && v.is_array() &&
          (v.as_array().empty() || v.as_array()[0].is_string())) {
        v.mutable_array().push_back(ref);
      } else {
        v = s.property->type.collection ? Value::ArrayOf({ref}) : ref;
      }
      return;
    }
    g.props.emplace_back(s.property->name, s.property->type.collection
                                               ? Value::ArrayOf({ref})
                                               : ref);
  }

  void GenAdd(bool with_parent) {
    const ModelType* type = Pick(containable_);
    std::string id;
    if (clean_) {
      id = FreshUuid();
    } else if (Chance(0.05) && !existing_.empty()) {
      id = Pick(existing_).id;  // already exists
    } else if (Chance(0.04) && !news_.empty()) {
      id = Pick(news_).id;  // second add in this changeset
                            // (docs/protocol.md#d10-duplicate-adds)
    } else {
      id = FreshUuid();
    }
    gens_.push_back(
        Gen{true, id, type->name(), RandomProperties(type, 0.5, 0.06)});
    news_.push_back({id, type});
    if (with_parent) AttachSomewhere(id, type);
    // Sometimes a subtree: a child added under the new object.
    if (Chance(0.2)) {
      const ModelType* child_type = Pick(containable_);
      std::string child = FreshUuid();
      gens_.push_back(Gen{true, child, child_type->name(),
                          RandomProperties(child_type, 0.3, 0.03)});
      news_.push_back({child, child_type});
      AttachSomewhere(child, child_type);
    }
  }

  void GenAddBadClass() {
    std::vector<std::string> names = {"NoSuchModel", "shape", ""};
    for (const auto& m : schema_->models()) {
      if (!model_.containable().count(m.get())) names.push_back(m->name());
    }
    gens_.push_back(Gen{true, FreshUuid(), Pick(names), {}});
    if (Chance(0.5)) {
      news_.push_back({gens_.back().id, schema_->models().front().get()});
    }
  }

  void GenChangeExisting() {
    const Known& target = Chance(0.3) ? existing_.front() : Pick(existing_);
    const Known* k = &target;
    for (const Known& e : existing_) {
      if (Chance(0.3) && e.id == model_.root_id()) k = &e;
    }
    std::string cls = k->type->name();
    if (!clean_ && Chance(0.05)) {
      cls = schema_->models()[Uniform(schema_->models().size())]->name();
    }
    double density = 2.0 / (k->type->properties().size() + 1);
    PropertyList props = RandomProperties(k->type, density, 0.15, k);
    // Keep the planned values in step for reference properties we set.
    for (auto& [key, v] : props) {
      const Property* p = k->type->FindProperty(key);
      if (p != nullptr && p->type.is_reference() && WellShaped(*p, v)) {
        Planned(k->id, *p) = v;
      }
    }
    gens_.push_back(Gen{false, k->id, cls, std::move(props)});
  }

  void GenChangeMissing() {
    std::string id;
    const ModelType* type = Pick(containable_);
    if (!news_.empty() && Chance(0.4)) {
      id = news_.back().id;  // added in this very changeset
      type = news_.back().type;
    } else {
      id = MissingUuid();
    }
    gens_.push_back(
        Gen{false, id, type->name(), RandomProperties(type, 0.3, 0.1)});
  }

  // (object id, property) pairs that reference `child` in the model.
  std::vector<std::pair<size_t, const Property*>> ParentsOf(
      const std::string& child) {
    std::vector<std::pair<size_t, const Property*>> out;
    for (size_t i = 0; i < existing_.size(); ++i) {
      for (const Property& p : existing_[i].type->properties()) {
        if (!p.type.is_reference()) continue;
        const Value& v = Planned(existing_[i].id, p);
        bool refers = v.is_string() && Lower(v.as_string()) == child;
        if (v.is_array()) {
          for (const Value& e : v.as_array()) {
            refers = refers || (e.is_string() && Lower(e.as_string()) == child);
          }
        }
        if (refers) out.push_back({i, &p});
      }
    }
    return out;
  }

  void Detach(const std::string& child, size_t parent, const Property& p,
              bool all) {
    const Known& k = existing_[parent];
    Value& v = Planned(k.id, p);
    if (v.is_array()) {
      auto& a = v.mutable_array();
      for (size_t i = 0; i < a.size();) {
        if (a[i].is_string() && Lower(a[i].as_string()) == child) {
          a.erase(a.begin() + i);
          if (!all) break;
        } else {
          ++i;
        }
      }
    } else {
      v = Value();
    }
    EmitChange(k.id, k.type, p, v);
  }

  void GenMove() {
    if (existing_.size() < 2) return GenAdd(true);
    const Known child = Pick(existing_);
    if (child.id == model_.root_id()) return GenRemove();
    auto parents = ParentsOf(child.id);
    if (!parents.empty()) {
      auto [parent, p] = Pick(parents);
      Detach(child.id, parent, *p, Chance(0.7));
    }
    if (Chance(0.9)) AttachSomewhere(child.id, child.type);
  }

  void GenRemove() {
    // Shrink a collection, empty it, or null a single reference.
    std::vector<std::pair<size_t, const Property*>> slots;
    for (size_t i = 0; i < existing_.size(); ++i) {
      for (const Property& p : existing_[i].type->properties()) {
        if (!p.type.is_reference()) continue;
        const Value& v = Planned(existing_[i].id, p);
        if (v.is_string() || (v.is_array() && !v.as_array().empty())) {
          slots.push_back({i, &p});
        }
      }
    }
    if (slots.empty()) return GenAdd(true);
    auto [i, p] = Pick(slots);
    const Known& k = existing_[i];
    Value& v = Planned(k.id, *p);
    if (v.is_array() && Chance(0.8)) {
      auto& a = v.mutable_array();
      size_t drop = Chance(0.85) ? 1 : 1 + Uniform(a.size());
      for (size_t d = 0; d < drop && !a.empty(); ++d)
        a.erase(a.begin() + Uniform(a.size()));
    } else {
      v = p->type.collection ? Value::ArrayOf({}) : Value();
    }
    EmitChange(k.id, k.type, *p, v);
  }

  // New objects that reference each other (a cycle), attached or not; or a
  // reference from an existing object back up to an ancestor.
  void GenCycle() {
    std::vector<std::pair<const ModelType*, const Property*>> self_refs;
    for (const ModelType* t : containable_) {
      for (const Property& p : t->properties()) {
        if (p.type.is_reference() && IsA(t, p.type.model))
          self_refs.push_back({t, &p});
      }
    }
    if (self_refs.empty()) return GenAdd(true);
    if (Chance(0.5)) {
      // Existing object pointing at another existing one (maybe the root).
      std::vector<Known> sources;
      for (const Known& k : existing_) {
        for (auto& [t, p] : self_refs) {
          if (k.type == t) sources.push_back(k);
        }
      }
      if (!sources.empty()) {
        const Known& s = Pick(sources);
        for (auto& [t, p] : self_refs) {
          if (s.type != t) continue;
          std::vector<Known> targets = Targets(p->type.model, false);
          if (targets.empty()) break;
          Value& v = Planned(s.id, *p);
          Value ref = Value::String(MaybeUpper(Pick(targets).id));
          if (p->type.collection) {
            if (!v.is_array()) v = Value::ArrayOf({});
            v.mutable_array().push_back(ref);
          } else {
            v = ref;
          }
          EmitChange(s.id, s.type, *p, v);
          return;
        }
      }
    }
    auto [t, p] = Pick(self_refs);
    size_t len = 2 + Uniform(3);
    std::vector<std::string> ids;
    for (size_t i = 0; i < len; ++i) ids.push_back(FreshUuid());
    for (size_t i = 0; i < len; ++i) {
      Value ref = Value::String(ids[(i + 1) % len]);
      gens_.push_back(
          Gen{true,
              ids[i],
              t->name(),
              {{p->name, p->type.collection ? Value::ArrayOf({ref}) : ref}}});
      news_.push_back({ids[i], t});
    }
    if (Chance(0.5)) AttachSomewhere(ids[0], t);
  }

  std::mt19937 rng_;
  std::shared_ptr<const Schema> schema_;
  const ReferenceModel& model_;
  std::vector<std::string>& universe_;
  std::vector<const ModelType*> containable_;

  // Per changeset.
  std::vector<Gen> gens_;
  std::vector<Known> existing_;  // the root first (std::map order is not)
  std::vector<Known> news_;
  std::map<std::pair<std::string, uint32_t>, Value> planned_;
  bool clean_ = false;
};

// ---------------------------------------------------------------------------
// Checks.

std::string RandomUuidFrom(std::mt19937& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) s += '-';
    s += i == 12 ? '4' : kHex[rng() % 16];
  }
  return s;
}

// A complete replica of `scope`: the ScopeState plus every unreachable object
// (detached cycles stay in a scope, docs/protocol.md#orphans) as extra `add`s,
// loaded by Scope::FromState in one go, so the version is kept.
std::unique_ptr<Scope> Replicate(const Scope& scope,
                                 std::shared_ptr<const Schema> schema,
                                 const std::vector<std::string>& universe,
                                 size_t* detached) {
  ScopeState state = scope.State();
  std::set<Uuid> in_state;
  for (const SyncFragment& f : state.fragments) in_state.insert(f.uuid);
  *detached = 0;
  for (const std::string& id : universe) {
    Uuid u = *Uuid::Parse(id);
    const ModelObject* o = scope.Find(u);
    if (o == nullptr || !in_state.insert(u).second) continue;
    SyncFragment f;
    f.type = FragmentType::kAdd;
    f.uuid = u;
    f.cls_name = o->type().name();
    for (const Property& p : o->type().properties()) {
      f.properties.emplace_back(p.name, o->values()[p.index]);
    }
    state.fragments.push_back(std::move(f));
    ++*detached;
  }
  auto copy = Scope::FromState(std::move(schema), std::move(state.fragments),
                               state.version);
  EXPECT_OK(copy);
  return copy.ok() ? *std::move(copy) : nullptr;
}

// Every object of the universe: present in both or neither, same class,
// same values. Returns a description of the first difference, or "".
std::string CompareObjects(const Scope& a, const Scope& b,
                           const std::vector<std::string>& universe) {
  if (a.size() != b.size()) {
    return absl::StrCat("size ", a.size(), " vs ", b.size());
  }
  for (const std::string& id : universe) {
    Uuid u = *Uuid::Parse(id);
    const ModelObject* x = a.Find(u);
    const ModelObject* y = b.Find(u);
    if ((x == nullptr) != (y == nullptr)) {
      return absl::StrCat(id, " present in only one");
    }
    if (x == nullptr) continue;
    if (x->type().name() != y->type().name() || x->values() != y->values()) {
      return absl::StrCat(id, " differs");
    }
  }
  return "";
}

std::string CompareWithModel(const Scope& scope, const ReferenceModel& model,
                             const std::vector<std::string>& universe) {
  if (scope.size() != model.objects().size()) {
    return absl::StrCat("size ", scope.size(), " vs model ",
                        model.objects().size());
  }
  for (const std::string& id : universe) {
    const ModelObject* o = scope.Find(*Uuid::Parse(id));
    auto it = model.objects().find(id);
    if ((o == nullptr) != (it == model.objects().end())) {
      return absl::StrCat(id, o ? " only in the scope" : " only in the model");
    }
    if (o == nullptr) continue;
    if (o->type().name() != it->second.type->name()) {
      return absl::StrCat(id, " class ", o->type().name(), " vs ",
                          it->second.type->name());
    }
    for (const Property& p : o->type().properties()) {
      if (o->values()[p.index] != it->second.values[p.index]) {
        return absl::StrCat(id, ".", p.name, " = ",
                            o->values()[p.index].DebugString(), " vs model ",
                            it->second.values[p.index].DebugString());
      }
    }
  }
  return "";
}

std::string WrittenState(const Scope& scope) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  scope.WriteStateFragments(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// The fragments as JSON through rapidjson's own writer only, value by value
// (as the codec did before its fast path): the yardstick for the byte output
// of EncodeFragments() and Scope::WriteStateFragments().
void SlowWriteValue(JsonWriter& w, const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull:
      w.Null();
      return;
    case Value::Kind::kBool:
      w.Bool(v.as_bool());
      return;
    case Value::Kind::kNumber:
      w.Number(v.as_number());
      return;
    case Value::Kind::kString:
      w.String(absl::string_view(v.as_string()));
      return;
    case Value::Kind::kArray:
      w.StartArray();
      for (const Value& e : v.as_array()) SlowWriteValue(w, e);
      w.EndArray();
      return;
  }
}

std::string SlowEncodeFragments(const std::vector<SyncFragment>& fragments) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartArray();
  for (const SyncFragment& f : fragments) {
    w.StartObject();
    w.Key(absl::string_view("type"));
    w.String(FragmentTypeName(f.type));
    w.Key(absl::string_view("uuid"));
    w.String(absl::string_view(f.uuid.ToString()));
    w.Key(absl::string_view("clsName"));
    w.String(absl::string_view(f.cls_name));
    w.Key(absl::string_view("properties"));
    w.StartObject();
    for (const auto& [key, value] : f.properties) {
      w.Key(absl::string_view(key));
      SlowWriteValue(w, value);
    }
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::vector<std::string> Replies(const ChangesetResult& r) {
  std::vector<std::string> out;
  for (const FragmentReply& reply : r.replies)
    out.push_back(ReplyString(reply));
  return out;
}

struct Case {
  const char* name;
  std::shared_ptr<const Schema> (*schema)();
  const char* root;
};

const Case kCases[] = {
    {"Canvas", &DemoSchema, "Canvas"},
    {"ChatRoom", &DemoSchema, "ChatRoom"},
    {"NodeRoot", &NodeSchema, "Node"},
    {"Graph", &NodeSchema, "Graph"},
};

struct Stats {
  size_t changesets = 0, atomic = 0, atomic_rejected = 0, fragments = 0,
         failed = 0, max_size = 0, max_detached = 0, empty_applied = 0;
  // Reply errors by kind (the message up to its first quote or digit).
  std::map<std::string, size_t> errors;
};

std::string ErrorKind(const std::string& message) {
  size_t end = message.find_first_of("'0123456789");
  return message.substr(0, end);
}

void RunSeed(const Case& c, uint32_t seed, int steps, Stats& stats) {
  SCOPED_TRACE(absl::StrCat("case ", c.name, " seed ", seed,
                            " (rerun: --test_env=SCOPE_RANDOM_SEED=", seed,
                            ")"));
  std::shared_ptr<const Schema> schema = c.schema();
  std::mt19937 root_rng(seed * 7919u + 17u);
  std::string root_id = RandomUuidFrom(root_rng);
  std::vector<std::string> universe = {root_id};

  auto created = Scope::Create(schema, c.root, *Uuid::Parse(root_id));
  ASSERT_OK(created);
  std::unique_ptr<Scope> scope = *std::move(created);
  ReferenceModel model(schema, schema->FindModel(c.root), root_id);
  Generator gen(seed, schema, model, universe);

  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE(absl::StrCat("step ", step));
    bool atomic = false;
    std::string json = gen.NextChangeset(&atomic);
    SCOPED_TRACE(absl::StrCat("atomic=", atomic, " changeset=", json));
    absl::StatusOr<std::vector<SyncFragment>> parsed = ParseFragmentsJson(json);
    ASSERT_OK(parsed);
    const std::vector<SyncFragment>& fragments = *parsed;

    const std::string before_json = StateJson(*scope);
    const size_t before_size = scope->size();
    const uint64_t before_version = scope->version();
    size_t detached = 0;
    std::unique_ptr<Scope> copy =
        Replicate(*scope, schema, universe, &detached);
    ASSERT_NE(copy, nullptr);
    ASSERT_EQ(CompareObjects(*scope, *copy, universe), "") << "bad replica";
    ASSERT_EQ(copy->version(), before_version);

    ChangesetResult r = scope->Apply(Changeset{fragments, atomic});
    ChangesetResult cr = copy->Apply(Changeset{fragments, /*atomic=*/false});
    ReferenceModel::Result mr = model.Apply(fragments, atomic);
    const std::string after_json = StateJson(*scope);

    // (e) One reply per fragment; the version grows iff something applied.
    ASSERT_EQ(r.replies.size(), fragments.size());
    ASSERT_EQ(cr.replies.size(), fragments.size());
    EXPECT_EQ(r.version, before_version + (r.applied.empty() ? 0 : 1));
    EXPECT_EQ(scope->version(), r.version);
    EXPECT_EQ(r.changed(), !r.applied.empty());

    // (c) Structural invariants after every commit (and of the replica).
    absl::Status invariants = scope->CheckInvariants();
    ASSERT_OK(invariants);
    absl::Status copy_invariants = copy->CheckInvariants();
    ASSERT_OK(copy_invariants);

    // (a) Atomic: all or nothing, measured against the non-atomic replica.
    std::vector<size_t> failures;
    for (size_t i = 0; i < cr.replies.size(); ++i) {
      if (!cr.replies[i].ok()) failures.push_back(i);
    }
    if (atomic && !failures.empty()) {
      EXPECT_EQ(after_json, before_json);
      EXPECT_EQ(scope->size(), before_size);
      EXPECT_EQ(scope->version(), before_version);
      EXPECT_TRUE(r.applied.empty());
      const size_t first = failures.front();
      const std::string rejected =
          absl::StrCat("Atomic changeset rejected: fragment ", first,
                       " failed: ", cr.replies[first].error->message);
      for (size_t i = 0; i < r.replies.size(); ++i) {
        SCOPED_TRACE(absl::StrCat("reply ", i));
        ASSERT_FALSE(r.replies[i].ok());
        if (std::count(failures.begin(), failures.end(), i)) {
          EXPECT_EQ(*r.replies[i].error, *cr.replies[i].error);
        } else {
          EXPECT_EQ(r.replies[i].error->message, rejected);
          EXPECT_EQ(r.replies[i].error->type, "atomic-changeset-rejected");
        }
      }
      ++stats.atomic_rejected;
    } else {
      // Non-atomic, or atomic without failure: exactly like the replica.
      EXPECT_EQ(Replies(r), Replies(cr));
      EXPECT_TRUE(r.applied == cr.applied);
      EXPECT_EQ(r.version, cr.version);
      EXPECT_EQ(after_json, StateJson(*copy));
      EXPECT_EQ(CompareObjects(*scope, *copy, universe), "");
      if (atomic) {
        EXPECT_TRUE(r.all_ok());
      }
    }

    // (b) A ScopeState loads back into the same state and version, and the
    // direct writer matches the fragment encoder.
    auto loaded =
        Scope::FromState(schema, scope->State().fragments, scope->version());
    ASSERT_OK(loaded);
    EXPECT_EQ(StateJson(**loaded), after_json);
    EXPECT_EQ((*loaded)->version(), scope->version());
    EXPECT_OK((*loaded)->CheckInvariants());
    EXPECT_EQ(WrittenState(*scope), after_json);
    EXPECT_EQ(SlowEncodeFragments(scope->State().fragments), after_json);
    EXPECT_EQ(SlowEncodeFragments(r.applied), EncodeFragments(r.applied));

    // (d) The reference model agrees on everything.
    std::vector<std::string> model_replies;
    for (const auto& e : mr.replies) model_replies.push_back(ErrorString(e));
    EXPECT_EQ(Replies(r), model_replies);
    EXPECT_TRUE(r.applied == mr.applied)
        << "engine applied " << EncodeFragments(r.applied) << "\nmodel applied "
        << EncodeFragments(mr.applied);
    EXPECT_EQ(scope->version(), model.version());
    EXPECT_EQ(CompareWithModel(*scope, model, universe), "");
    EXPECT_EQ(after_json, EncodeFragments(model.State()));

    ++stats.changesets;
    stats.atomic += atomic;
    stats.fragments += fragments.size();
    for (const FragmentReply& reply : r.replies) {
      if (reply.ok()) continue;
      ++stats.failed;
      ++stats.errors[ErrorKind(reply.error->message)];
    }
    stats.empty_applied += r.applied.empty();
    stats.max_size = std::max(stats.max_size, scope->size());
    stats.max_detached = std::max(stats.max_detached, detached);
    if (::testing::Test::HasFailure()) return;  // the first failing step only
  }
}

std::vector<uint32_t> Seeds() {
  if (const char* s = std::getenv("SCOPE_RANDOM_SEED")) {
    return {static_cast<uint32_t>(std::strtoul(s, nullptr, 10))};
  }
  return std::vector<uint32_t>(std::begin(kSeeds), std::end(kSeeds));
}

int Steps() {
  if (const char* s = std::getenv("SCOPE_RANDOM_STEPS")) return std::atoi(s);
  return kStepsPerSeed;
}

class ScopeRandomTest
    : public ::testing::TestWithParam<std::tuple<size_t, uint32_t>> {};

TEST_P(ScopeRandomTest, ChangesetProperties) {
  const Case& c = kCases[std::get<0>(GetParam())];
  const uint32_t seed = std::get<1>(GetParam());
  Stats stats;
  RunSeed(c, seed, Steps(), stats);
  std::printf(
      "%s seed %u: %zu changesets (%zu atomic, %zu rejected as a whole), %zu "
      "fragments, %zu failed, %zu changed nothing; max %zu objects, max %zu "
      "detached\n",
      c.name, seed, stats.changesets, stats.atomic, stats.atomic_rejected,
      stats.fragments, stats.failed, stats.empty_applied, stats.max_size,
      stats.max_detached);
  for (const auto& [kind, count] : stats.errors) {
    std::printf("  %6zu  %s\n", count, kind.c_str());
  }
}

// The fast JSON appenders against rapidjson's writer: every byte value, alone
// and inside text, and random strings rich in escapes and UTF-8.
TEST(JsonAppendTest, StringsMatchRapidJsonByteForByte) {
  auto both = [](const std::string& s) {
    rapidjson::StringBuffer slow;
    rapidjson::Writer<rapidjson::StringBuffer> writer(slow);
    writer.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    rapidjson::StringBuffer fast;
    AppendJsonString(fast, s);
    return std::make_pair(std::string(slow.GetString(), slow.GetSize()),
                          std::string(fast.GetString(), fast.GetSize()));
  };
  for (int c = 0; c < 256; ++c) {
    std::string one(1, static_cast<char>(c));
    auto [slow, fast] = both(one);
    EXPECT_EQ(fast, slow) << "byte " << c;
    std::tie(slow, fast) = both("a" + one + "z");
    EXPECT_EQ(fast, slow) << "byte " << c;
  }
  std::mt19937 rng(20240601);
  const std::string alphabet =
      std::string("\"\\/\b\f\n\r\t\x01\x1f\x7f azAZ09") +
      "\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\xff" + std::string(1, '\0');
  for (int i = 0; i < 5000; ++i) {
    std::string s;
    size_t len = rng() % 48;
    for (size_t k = 0; k < len; ++k) s += alphabet[rng() % alphabet.size()];
    auto [slow, fast] = both(s);
    ASSERT_EQ(fast, slow) << "input #" << i;
  }
}

// The integer fast path of FormatJsonNumberTo prints plain decimal digits.
TEST(JsonAppendTest, IntegersPrintAsDecimalDigits) {
  std::mt19937_64 rng(7);
  std::vector<double> values = {
      1,    -1,    9007199254740991.0, -9007199254740991.0, 4279308287.0,
      1e15, -1e15, 123456789};
  for (int i = 0; i < 20000; ++i) {
    int64_t v = static_cast<int64_t>(rng() >> (11 + rng() % 53));
    values.push_back(static_cast<double>(rng() % 2 ? v : -v));
  }
  for (double v : values) {
    if (v == 0) continue;
    rapidjson::StringBuffer fast;
    AppendJsonValue(fast, Value::Number(v));
    EXPECT_EQ(std::string(fast.GetString(), fast.GetSize()),
              absl::StrFormat("%.0f", v));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Seeds, ScopeRandomTest,
    ::testing::Combine(::testing::Range<size_t>(0, std::size(kCases)),
                       ::testing::ValuesIn(Seeds())),
    [](const ::testing::TestParamInfo<std::tuple<size_t, uint32_t>>& info) {
      return absl::StrCat(kCases[std::get<0>(info.param)].name, "_seed",
                          std::get<1>(info.param));
    });

}  // namespace
}  // namespace jetstream
