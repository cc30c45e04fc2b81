// File: syncservice/engine/schema.h
//
// The schema: which model types exist, their properties and property types,
// enumerations, and inheritance. A Schema is immutable once built (see
// schema_loader.h) and shared by every scope that uses it; all pointers it
// hands out live as long as the Schema.
//
// Property types (docs/protocol.md#property-types): String, Number,
// Boolean, Date (seconds since the
// epoch, docs/protocol.md#d2-dates), an enumeration (string- or
// integer-valued), a reference to a model, and arrays of any of those.

#ifndef JETSTREAM_SYNCSERVICE_ENGINE_SCHEMA_H_
#define JETSTREAM_SYNCSERVICE_ENGINE_SCHEMA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "common/value.h"

namespace jetstream {

class ModelType;

// Enumeration
//
// A closed set of raw values. Number-based enumerations name integers
// (`{"Open": 0, "Closed": 1}`); string-based ones list strings.
struct Enumeration {
  std::string name;
  bool numeric = false;
  std::vector<std::string> labels;  // numeric only: the name of each value
  std::vector<Value> values;        // in declaration order

  bool Contains(const Value& value) const;
  // The values as a JSON array, as used in error messages: `[0,1]`.
  std::string ValuesJson() const;
};

enum class BaseType { kString, kNumber, kBoolean, kDate, kEnumeration, kModel };

// PropertyType
//
// The declared type of a property: a base type, optionally as a collection.
struct PropertyType {
  BaseType base = BaseType::kString;
  bool collection = false;
  const Enumeration* enumeration = nullptr;  // set iff base is kEnumeration
  const ModelType* model = nullptr;          // set iff base is kModel

  bool is_reference() const { return base == BaseType::kModel; }
  // The element type's name: "Number", "ChatRoomStatus", "Shape".
  std::string ElementName() const;
  // "Number" or "[Shape]".
  std::string Name() const;
};

struct Property {
  std::string name;
  PropertyType type;
  // The value of a new object: null, [] for collections, or the declared
  // default.
  Value default_value;
  // Position in ModelType::properties(), stable for the schema's lifetime.
  uint32_t index = 0;
};

// ModelType
//
// A model class. properties() lists inherited properties first (in the base's
// order), then the model's own, in declaration order; that order is the order
// of ScopeState traversal and serialisation.
class ModelType {
 public:
  const std::string& name() const { return name_; }
  const ModelType* base() const { return base_; }
  const std::vector<Property>& properties() const { return properties_; }
  // Indexes of the model-typed (reference) properties, in order.
  const std::vector<uint32_t>& reference_properties() const {
    return reference_properties_;
  }

  // The property named `name`, or nullptr.
  const Property* FindProperty(absl::string_view name) const;

  // True if this type is `other` or derives from it.
  bool IsA(const ModelType& other) const;

  // True if an object of `type` may be added to a scope whose root is of this
  // type: `type` is reachable from this type through property declarations,
  // or derives from a reachable type (docs/protocol.md#apply-errors, "No such
  // class type").
  bool CanContain(const ModelType& type) const {
    return containable_.contains(&type);
  }

 private:
  friend class SchemaBuilder;

  std::string name_;
  const ModelType* base_ = nullptr;
  std::vector<Property> properties_;
  std::vector<uint32_t> reference_properties_;
  absl::flat_hash_map<std::string, uint32_t> property_index_;
  absl::flat_hash_set<const ModelType*> containable_;
};

// Schema
//
// Immutable after construction; thread-safe for concurrent reads.
class Schema {
 public:
  const ModelType* FindModel(absl::string_view name) const;
  const Enumeration* FindEnumeration(absl::string_view name) const;
  // All models, in declaration order.
  const std::vector<std::unique_ptr<ModelType>>& models() const {
    return models_;
  }

 private:
  friend class SchemaBuilder;

  std::vector<std::unique_ptr<ModelType>> models_;
  std::vector<std::unique_ptr<Enumeration>> enumerations_;
  absl::flat_hash_map<std::string, const ModelType*> model_by_name_;
  absl::flat_hash_map<std::string, const Enumeration*> enumeration_by_name_;
};

// "Model.property" for every Date or [Date] property of every model of
// `schema`, inherited ones listed under each subclass too, sorted: what a
// gateway needs to write Dates in another form for some clients.
std::vector<std::string> DateProperties(const Schema& schema);

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_ENGINE_SCHEMA_H_
