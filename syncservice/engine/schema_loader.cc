#include "syncservice/engine/schema_loader.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/fragment_json.h"
#include "common/json.h"

namespace jetstream {

// Builds a Schema in stages; any stage may fail with a message that names the
// file, the model or enumeration, and the property.
class SchemaBuilder {
 public:
  explicit SchemaBuilder(absl::string_view source)
      : source_(source), schema_(std::make_shared<Schema>()) {}

  absl::StatusOr<std::shared_ptr<const Schema>> Build(const JsonValue& root);

 private:
  absl::Status Error(absl::string_view where, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": ", where, where.empty() ? "" : ": ", what));
  }
  static std::string ModelWhere(absl::string_view model) {
    return absl::StrCat("model '", model, "'");
  }
  static std::string PropertyWhere(absl::string_view model,
                                   absl::string_view property) {
    return absl::StrCat("model '", model, "', property '", property, "'");
  }

  absl::Status ReadEnumerations(const JsonValue& json);
  absl::Status ReadEnumeration(absl::string_view name, const JsonValue& json);
  absl::Status DeclareModels(const JsonValue& json);
  absl::Status ResolveBases(const JsonValue& json);
  absl::Status ReadProperties(ModelType& model, const JsonValue& json);
  absl::StatusOr<PropertyType> ResolveType(absl::string_view where,
                                           absl::string_view spec) const;
  absl::Status CheckDefault(absl::string_view where, const Property& p) const;
  void ComputeContainable();
  bool IsReservedName(absl::string_view name) const;

  std::string source_;
  std::shared_ptr<Schema> schema_;
  // Models with their bases before them.
  std::vector<ModelType*> ordered_;
};

namespace {

std::string Str(const JsonValue& v) {
  return std::string(v.GetString(), v.GetStringLength());
}

bool IsValidName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return !(name[0] >= '0' && name[0] <= '9');
}

}  // namespace

bool SchemaBuilder::IsReservedName(absl::string_view name) const {
  return name == "String" || name == "Number" || name == "Boolean" ||
         name == "Date";
}

absl::StatusOr<std::shared_ptr<const Schema>> SchemaBuilder::Build(
    const JsonValue& root) {
  if (!root.IsObject()) return Error("", "the schema must be a JSON object");
  for (const auto& member : root.GetObject()) {
    std::string key = Str(member.name);
    if (key != "enumerations" && key != "models") {
      return Error("", absl::StrCat("unknown key '", key,
                                    "' (expected 'enumerations', 'models')"));
    }
  }
  auto enums = root.FindMember("enumerations");
  if (enums != root.MemberEnd()) {
    if (absl::Status s = ReadEnumerations(enums->value); !s.ok()) return s;
  }
  auto models = root.FindMember("models");
  if (models == root.MemberEnd() || !models->value.IsObject() ||
      models->value.MemberCount() == 0) {
    return Error("", "'models' must be a non-empty object");
  }
  if (absl::Status s = DeclareModels(models->value); !s.ok()) return s;
  if (absl::Status s = ResolveBases(models->value); !s.ok()) return s;
  for (ModelType* model : ordered_) {
    const JsonValue& json = models->value[model->name_.c_str()];
    if (absl::Status s = ReadProperties(*model, json); !s.ok()) return s;
  }
  ComputeContainable();
  return std::shared_ptr<const Schema>(std::move(schema_));
}

absl::Status SchemaBuilder::ReadEnumerations(const JsonValue& json) {
  if (!json.IsObject()) return Error("", "'enumerations' must be an object");
  for (const auto& member : json.GetObject()) {
    if (absl::Status s = ReadEnumeration(Str(member.name), member.value);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status SchemaBuilder::ReadEnumeration(absl::string_view name,
                                            const JsonValue& json) {
  std::string where = absl::StrCat("enumeration '", name, "'");
  if (!IsValidName(name)) {
    return Error(where, "a name needs letters, digits or '_'");
  }
  if (IsReservedName(name)) return Error(where, "the name is a built-in type");
  if (schema_->enumeration_by_name_.contains(name)) {
    return Error(where, "defined twice");
  }
  if (!json.IsObject()) return Error(where, "must be an object");
  auto type = json.FindMember("type");
  if (type == json.MemberEnd() || !type->value.IsString() ||
      (Str(type->value) != "String" && Str(type->value) != "Number")) {
    return Error(where, "'type' must be \"String\" or \"Number\"");
  }
  auto enumeration = std::make_unique<Enumeration>();
  enumeration->name = std::string(name);
  enumeration->numeric = Str(type->value) == "Number";
  auto values = json.FindMember("values");
  if (values == json.MemberEnd()) return Error(where, "requires 'values'");
  const JsonValue& v = values->value;
  if (enumeration->numeric) {
    if (!v.IsObject() || v.MemberCount() == 0) {
      return Error(where,
                   "'values' must be a non-empty object of names to integers");
    }
    for (const auto& member : v.GetObject()) {
      const JsonValue& n = member.value;
      if (!n.IsNumber() || std::trunc(n.GetDouble()) != n.GetDouble()) {
        return Error(where, absl::StrCat("value '", Str(member.name),
                                         "' is not an integer"));
      }
      Value value = Value::Number(n.GetDouble());
      if (enumeration->Contains(value)) {
        return Error(where, absl::StrCat("value '", Str(member.name),
                                         "' repeats an earlier value"));
      }
      enumeration->labels.push_back(Str(member.name));
      enumeration->values.push_back(std::move(value));
    }
  } else {
    if (!v.IsArray() || v.Size() == 0) {
      return Error(where, "'values' must be a non-empty array of strings");
    }
    for (const JsonValue& s : v.GetArray()) {
      if (!s.IsString()) return Error(where, "every value must be a string");
      Value value = Value::String(Str(s));
      if (enumeration->Contains(value)) {
        return Error(where, absl::StrCat("value \"", Str(s), "\" is repeated"));
      }
      enumeration->values.push_back(std::move(value));
    }
  }
  schema_->enumeration_by_name_[enumeration->name] = enumeration.get();
  schema_->enumerations_.push_back(std::move(enumeration));
  return absl::OkStatus();
}

absl::Status SchemaBuilder::DeclareModels(const JsonValue& json) {
  for (const auto& member : json.GetObject()) {
    std::string name = Str(member.name);
    std::string where = ModelWhere(name);
    if (!IsValidName(name)) {
      return Error(where, "a name needs letters, digits or '_'");
    }
    if (IsReservedName(name))
      return Error(where, "the name is a built-in type");
    if (schema_->enumeration_by_name_.contains(name)) {
      return Error(where, "the name is already an enumeration");
    }
    if (schema_->model_by_name_.contains(name)) {
      return Error(where, "defined twice");
    }
    if (!member.value.IsObject()) return Error(where, "must be an object");
    for (const auto& key : member.value.GetObject()) {
      std::string k = Str(key.name);
      if (k != "extends" && k != "properties") {
        return Error(where,
                     absl::StrCat("unknown key '", k,
                                  "' (expected 'extends', 'properties')"));
      }
    }
    auto model = std::make_unique<ModelType>();
    model->name_ = name;
    schema_->model_by_name_[name] = model.get();
    schema_->models_.push_back(std::move(model));
  }
  return absl::OkStatus();
}

absl::Status SchemaBuilder::ResolveBases(const JsonValue& json) {
  for (auto& model : schema_->models_) {
    const JsonValue& m = json[model->name_.c_str()];
    auto extends = m.FindMember("extends");
    if (extends == m.MemberEnd()) continue;
    std::string where = ModelWhere(model->name_);
    if (!extends->value.IsString()) {
      return Error(where, "'extends' must be a model name");
    }
    const ModelType* base = schema_->FindModel(Str(extends->value));
    if (base == nullptr) {
      return Error(where, absl::StrCat("extends unknown model '",
                                       Str(extends->value), "'"));
    }
    model->base_ = base;
  }
  // Order bases first; a model reached again while being visited is a cycle.
  absl::flat_hash_map<const ModelType*, int> state;  // 1 visiting, 2 done
  for (auto& model : schema_->models_) {
    std::vector<ModelType*> chain;
    for (ModelType* t = model.get(); t != nullptr;
         t = const_cast<ModelType*>(t->base_)) {
      if (state[t] == 2) break;
      if (state[t] == 1) {
        return Error(ModelWhere(t->name_), "inheritance forms a cycle");
      }
      state[t] = 1;
      chain.push_back(t);
    }
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      state[*it] = 2;
      ordered_.push_back(*it);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PropertyType> SchemaBuilder::ResolveType(
    absl::string_view where, absl::string_view spec) const {
  PropertyType type;
  absl::string_view name = spec;
  if (spec.size() >= 2 && spec.front() == '[' && spec.back() == ']') {
    type.collection = true;
    name = spec.substr(1, spec.size() - 2);
  }
  if (name == "String") {
    type.base = BaseType::kString;
  } else if (name == "Number") {
    type.base = BaseType::kNumber;
  } else if (name == "Boolean") {
    type.base = BaseType::kBoolean;
  } else if (name == "Date") {
    type.base = BaseType::kDate;
  } else if (const Enumeration* e = schema_->FindEnumeration(name)) {
    type.base = BaseType::kEnumeration;
    type.enumeration = e;
  } else if (const ModelType* m = schema_->FindModel(name)) {
    type.base = BaseType::kModel;
    type.model = m;
  } else {
    return Error(where, absl::StrCat("unknown type '", spec, "'"));
  }
  return type;
}

absl::Status SchemaBuilder::CheckDefault(absl::string_view where,
                                         const Property& p) const {
  const Value& v = p.default_value;
  if (p.type.is_reference()) {
    if ((p.type.collection && v.is_array() && v.as_array().empty()) ||
        (!p.type.collection && v.is_null())) {
      return absl::OkStatus();
    }
    return Error(where, "a reference cannot have a default");
  }
  auto element_ok = [&](const Value& e) {
    switch (p.type.base) {
      case BaseType::kString:
        return e.is_string();
      case BaseType::kNumber:
      case BaseType::kDate:
        return e.is_number();
      case BaseType::kBoolean:
        return e.is_bool();
      case BaseType::kEnumeration:
        return p.type.enumeration->Contains(e);
      case BaseType::kModel:
        return false;
    }
    return false;
  };
  bool ok;
  if (p.type.collection) {
    ok = v.is_array();
    if (ok) {
      for (const Value& e : v.as_array()) ok = ok && element_ok(e);
    }
  } else {
    ok = v.is_null() || element_ok(v);
  }
  if (ok) return absl::OkStatus();
  return Error(where, absl::StrCat("default ", v.DebugString(),
                                   " is not a valid ", p.type.Name()));
}

absl::Status SchemaBuilder::ReadProperties(ModelType& model,
                                           const JsonValue& json) {
  if (model.base_ != nullptr) {
    model.properties_ = model.base_->properties_;
    model.reference_properties_ = model.base_->reference_properties_;
    model.property_index_ = model.base_->property_index_;
  }
  auto props = json.FindMember("properties");
  if (props == json.MemberEnd()) return absl::OkStatus();
  if (!props->value.IsObject()) {
    return Error(ModelWhere(model.name_), "'properties' must be an object");
  }
  for (const auto& member : props->value.GetObject()) {
    std::string name = Str(member.name);
    std::string where = PropertyWhere(model.name_, name);
    if (name.empty()) return Error(where, "a property needs a name");
    if (const Property* existing = model.FindProperty(name)) {
      bool inherited = model.base_ != nullptr &&
                       existing->index < model.base_->properties_.size();
      return Error(where, inherited ? "already defined by a base model"
                                    : "defined twice");
    }
    const JsonValue* spec = &member.value;
    const JsonValue* default_json = nullptr;
    if (spec->IsObject()) {
      for (const auto& key : spec->GetObject()) {
        std::string k = Str(key.name);
        if (k != "type" && k != "default") {
          return Error(where, absl::StrCat("unknown key '", k,
                                           "' (expected 'type', 'default')"));
        }
      }
      auto d = spec->FindMember("default");
      if (d != spec->MemberEnd()) default_json = &d->value;
      auto t = spec->FindMember("type");
      if (t == spec->MemberEnd()) return Error(where, "requires 'type'");
      spec = &t->value;
    }
    if (!spec->IsString()) {
      return Error(where, "the type must be a string such as \"Number\"");
    }
    absl::StatusOr<PropertyType> type = ResolveType(where, Str(*spec));
    if (!type.ok()) return type.status();

    Property property;
    property.name = name;
    property.type = *type;
    property.index = static_cast<uint32_t>(model.properties_.size());
    property.default_value =
        type->collection ? Value::ArrayOf({}) : Value::Null();
    if (default_json != nullptr) {
      absl::StatusOr<Value> v = DecodeValue(name, *default_json);
      if (!v.ok()) return Error(where, v.status().message());
      property.default_value = *std::move(v);
      if (absl::Status s = CheckDefault(where, property); !s.ok()) return s;
    }
    if (type->is_reference()) {
      model.reference_properties_.push_back(property.index);
    }
    model.property_index_[name] = property.index;
    model.properties_.push_back(std::move(property));
  }
  return absl::OkStatus();
}

void SchemaBuilder::ComputeContainable() {
  // Derived types of each model, transitively.
  absl::flat_hash_map<const ModelType*, std::vector<const ModelType*>> derived;
  for (auto& m : schema_->models_) {
    for (const ModelType* b = m->base_; b != nullptr; b = b->base_) {
      derived[b].push_back(m.get());
    }
  }
  for (auto& root : schema_->models_) {
    std::vector<const ModelType*> pending;
    auto reach = [&](const ModelType* t) {
      if (root->containable_.insert(t).second) pending.push_back(t);
      for (const ModelType* d : derived[t]) {
        if (root->containable_.insert(d).second) pending.push_back(d);
      }
    };
    for (uint32_t i : root->reference_properties_) {
      reach(root->properties_[i].type.model);
    }
    while (!pending.empty()) {
      const ModelType* t = pending.back();
      pending.pop_back();
      for (uint32_t i : t->reference_properties_) {
        reach(t->properties_[i].type.model);
      }
    }
  }
}

absl::StatusOr<std::shared_ptr<const Schema>> ParseSchema(
    absl::string_view json, absl::string_view source) {
  JsonDocument doc;
  if (absl::Status s = ParseJson(json, doc); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", s.message()));
  }
  return SchemaBuilder(source).Build(doc);
}

absl::StatusOr<std::shared_ptr<const Schema>> LoadSchemaFile(
    const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFileToString(path, "schema file");
  if (!contents.ok()) return contents.status();
  return ParseSchema(*contents, path);
}

}  // namespace jetstream
