// File: common/value.h
//
// Value is a property value as it travels on the wire inside a SyncFragment:
// null, a boolean, a number, a string, or a flat array of those
// (docs/protocol.md#fragment-parse forbids nested arrays and objects).
// References to model objects are strings holding a canonical lower-case UUID;
// Dates are numbers of seconds since the epoch (docs/protocol.md#d2-dates). The
// schema gives a value its meaning; Value itself knows nothing of schemas.

#ifndef JETSTREAM_COMMON_VALUE_H_
#define JETSTREAM_COMMON_VALUE_H_

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"

namespace jetstream {

class Value {
 public:
  using Array = std::vector<Value>;
  enum class Kind { kNull = 0, kBool, kNumber, kString, kArray };

  Value() = default;
  static Value Null() { return Value(); }
  static Value Bool(bool b) { return Value(Rep(std::in_place_index<1>, b)); }
  static Value Number(double n) {
    return Value(Rep(std::in_place_index<2>, n));
  }
  static Value String(std::string s) {
    return Value(Rep(std::in_place_index<3>, std::move(s)));
  }
  static Value ArrayOf(Array a) {
    return Value(Rep(std::in_place_index<4>, std::move(a)));
  }

  Kind kind() const { return static_cast<Kind>(rep_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_number() const { return kind() == Kind::kNumber; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_array() const { return kind() == Kind::kArray; }

  // Accessors; calling one that does not match kind() is a bug.
  bool as_bool() const { return std::get<1>(rep_); }
  double as_number() const { return std::get<2>(rep_); }
  const std::string& as_string() const { return std::get<3>(rep_); }
  std::string& mutable_string() { return std::get<3>(rep_); }
  const Array& as_array() const { return std::get<4>(rep_); }
  Array& mutable_array() { return std::get<4>(rep_); }

  friend bool operator==(const Value& a, const Value& b) {
    return a.rep_ == b.rep_;
  }
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }

  // A short human-readable rendering for logs and test failures (JSON-like).
  std::string DebugString() const;

 private:
  using Rep = std::variant<std::monostate, bool, double, std::string, Array>;
  explicit Value(Rep rep) : rep_(std::move(rep)) {}
  Rep rep_;
};

// The name of a Kind as used in error messages ("null", "boolean", ...).
absl::string_view KindName(Value::Kind kind);

// Properties of a fragment in wire order. Keys are unique (the JSON decoder
// keeps the last of duplicate keys, as JSON.parse does).
using PropertyList = std::vector<std::pair<std::string, Value>>;

// SetProperty()
//
// Replaces the value of `key` in `properties`, or appends it in last place
// (as a validator's modifications are merged,
// docs/protocol.md#d3-modifications).
void SetProperty(PropertyList& properties, const std::string& key,
                 const Value& value);

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_VALUE_H_
