#include "syncservice/engine/schema.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_number.h"

namespace jetstream {

bool Enumeration::Contains(const Value& value) const {
  for (const Value& v : values) {
    if (v == value) return true;
  }
  return false;
}

std::string Enumeration::ValuesJson() const {
  return absl::StrCat("[",
                      absl::StrJoin(values, ",",
                                    [](std::string* out, const Value& v) {
                                      absl::StrAppend(out, v.DebugString());
                                    }),
                      "]");
}

std::string PropertyType::ElementName() const {
  switch (base) {
    case BaseType::kString:
      return "String";
    case BaseType::kNumber:
      return "Number";
    case BaseType::kBoolean:
      return "Boolean";
    case BaseType::kDate:
      return "Date";
    case BaseType::kEnumeration:
      return enumeration->name;
    case BaseType::kModel:
      return model->name();
  }
  return "?";
}

std::string PropertyType::Name() const {
  return collection ? absl::StrCat("[", ElementName(), "]") : ElementName();
}

const Property* ModelType::FindProperty(absl::string_view name) const {
  auto it = property_index_.find(name);
  return it == property_index_.end() ? nullptr : &properties_[it->second];
}

bool ModelType::IsA(const ModelType& other) const {
  for (const ModelType* t = this; t != nullptr; t = t->base_) {
    if (t == &other) return true;
  }
  return false;
}

const ModelType* Schema::FindModel(absl::string_view name) const {
  auto it = model_by_name_.find(name);
  return it == model_by_name_.end() ? nullptr : it->second;
}

const Enumeration* Schema::FindEnumeration(absl::string_view name) const {
  auto it = enumeration_by_name_.find(name);
  return it == enumeration_by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> DateProperties(const Schema& schema) {
  std::vector<std::string> out;
  for (const auto& model : schema.models()) {
    for (const Property& p : model->properties()) {
      if (p.type.base == BaseType::kDate) {
        out.push_back(absl::StrCat(model->name(), ".", p.name));
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace jetstream
