#include "common/value.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_number.h"

namespace jetstream {

std::string Value::DebugString() const {
  switch (kind()) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return as_bool() ? "true" : "false";
    case Kind::kNumber:
      return FormatJsonNumber(as_number());
    case Kind::kString:
      return absl::StrCat("\"", as_string(), "\"");
    case Kind::kArray:
      return absl::StrCat("[",
                          absl::StrJoin(as_array(), ",",
                                        [](std::string* out, const Value& v) {
                                          absl::StrAppend(out, v.DebugString());
                                        }),
                          "]");
  }
  return "?";
}

absl::string_view KindName(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::kNull:
      return "null";
    case Value::Kind::kBool:
      return "boolean";
    case Value::Kind::kNumber:
      return "number";
    case Value::Kind::kString:
      return "string";
    case Value::Kind::kArray:
      return "array";
  }
  return "?";
}

void SetProperty(PropertyList& properties, const std::string& key,
                 const Value& value) {
  auto it = std::find_if(properties.begin(), properties.end(),
                         [&](const auto& kv) { return kv.first == key; });
  if (it != properties.end()) {
    it->second = value;
  } else {
    properties.emplace_back(key, value);
  }
}

}  // namespace jetstream
