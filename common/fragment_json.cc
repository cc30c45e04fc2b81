#include "common/fragment_json.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/json_number.h"

namespace jetstream {
namespace {

absl::Status NotAValue(absl::string_view key) {
  return absl::InvalidArgumentError(absl::StrCat(
      "Property '", key, "' not a string, number, boolean, array, date, null"));
}

// Decodes a JSON scalar; nullopt when `json` is not one.
std::optional<Value> DecodeScalar(const JsonValue& json) {
  if (json.IsNull()) return Value::Null();
  if (json.IsBool()) return Value::Bool(json.GetBool());
  if (json.IsNumber()) return Value::Number(JsonNumber(json));
  if (json.IsString()) {
    return Value::String(std::string(json.GetString(), json.GetStringLength()));
  }
  return std::nullopt;
}

absl::Status FragmentError(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<Value> DecodeValue(absl::string_view key,
                                  const JsonValue& json) {
  if (std::optional<Value> scalar = DecodeScalar(json)) return *scalar;
  if (!json.IsArray()) return NotAValue(key);
  Value::Array elements;
  elements.reserve(json.Size());
  for (const JsonValue& element : json.GetArray()) {
    std::optional<Value> scalar = DecodeScalar(element);
    if (!scalar) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Property '", key, "' array elements must not be arrays or objects"));
    }
    if (!elements.empty() && scalar->kind() != elements.front().kind()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Property '", key, "' array elements must all be of one type"));
    }
    elements.push_back(*std::move(scalar));
  }
  return Value::ArrayOf(std::move(elements));
}

absl::StatusOr<SyncFragment> DecodeFragment(const JsonValue& json) {
  if (!json.IsObject()) return FragmentError("SyncFragment must be an object");
  SyncFragment fragment;

  auto type = json.FindMember("type");
  if (type == json.MemberEnd() || !type->value.IsString()) {
    return FragmentError("SyncFragment requires type");
  }
  absl::string_view type_name(type->value.GetString(),
                              type->value.GetStringLength());
  if (type_name == "add") {
    fragment.type = FragmentType::kAdd;
  } else if (type_name == "change") {
    fragment.type = FragmentType::kChange;
  } else {
    return FragmentError(
        absl::StrCat("SyncFragment has invalid type '", type_name, "'"));
  }

  auto uuid = json.FindMember("uuid");
  if (uuid == json.MemberEnd() || !uuid->value.IsString()) {
    return FragmentError("SyncFragment requires uuid");
  }
  std::optional<Uuid> id = Uuid::Parse(absl::string_view(
      uuid->value.GetString(), uuid->value.GetStringLength()));
  if (!id) return FragmentError("SyncFragment uuid is not a UUID");
  fragment.uuid = *id;

  auto cls = json.FindMember("clsName");
  if (cls == json.MemberEnd() || !cls->value.IsString()) {
    return FragmentError("Requires clsName or modelObject");
  }
  fragment.cls_name.assign(cls->value.GetString(),
                           cls->value.GetStringLength());

  // A falsy `properties` (absent, null, false, 0, "") means none
  // (docs/protocol.md#d12-no-properties).
  auto props = json.FindMember("properties");
  if (props != json.MemberEnd()) {
    const JsonValue& p = props->value;
    bool falsy = p.IsNull() || (p.IsBool() && !p.GetBool()) ||
                 (p.IsNumber() && p.GetDouble() == 0) ||
                 (p.IsString() && p.GetStringLength() == 0);
    if (!falsy) {
      if (!p.IsObject()) {
        return FragmentError("SyncFragment properties must be an object");
      }
      fragment.properties.reserve(p.MemberCount());
      for (const auto& member : p.GetObject()) {
        std::string key(member.name.GetString(), member.name.GetStringLength());
        absl::StatusOr<Value> value = DecodeValue(key, member.value);
        if (!value.ok()) return value.status();
        // Duplicate keys: the last one wins, in the position of the first,
        // as with JSON.parse.
        bool replaced = false;
        for (auto& [k, v] : fragment.properties) {
          if (k == key) {
            v = *std::move(value);
            replaced = true;
            break;
          }
        }
        if (!replaced)
          fragment.properties.emplace_back(std::move(key), *std::move(value));
      }
    }
  }
  return fragment;
}

absl::StatusOr<std::vector<SyncFragment>> DecodeFragments(
    const JsonValue& json) {
  if (!json.IsArray()) return FragmentError("SyncFragments not on `fragments`");
  std::vector<SyncFragment> fragments;
  fragments.reserve(json.Size());
  for (const JsonValue& element : json.GetArray()) {
    absl::StatusOr<SyncFragment> fragment = DecodeFragment(element);
    if (!fragment.ok()) return fragment.status();
    fragments.push_back(*std::move(fragment));
  }
  return fragments;
}

absl::StatusOr<std::vector<SyncFragment>> ParseFragmentsJson(
    absl::string_view json) {
  JsonDocument doc;
  if (absl::Status s = ParseJson(json, doc); !s.ok()) return s;
  return DecodeFragments(doc);
}

namespace {

// Gives access to the protected output stream of rapidjson::Writer; forming
// the member pointer through a derived class is what the access rules allow.
struct WriterBufferAccess : JsonWriter {
  static rapidjson::StringBuffer& Get(JsonWriter& writer) {
    return *(writer.*(&WriterBufferAccess::os_));
  }
};

// rapidjson::Writer::WriteString's escape table: 'u' for \u00XX, another
// letter for a two-character escape, 0 for a byte written as is.
constexpr char kEscape[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b',  't', 'n', 'u', 'f', 'r',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',  'u', 'u', 'u', 'u', 'u',
    'u', 'u', 'u', 'u', 0,   0,   '"', 0,   0,    0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,    0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,    0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,    0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   '\\', 0,   0,   0,
};

}  // namespace

rapidjson::StringBuffer& WriterBuffer(JsonWriter& writer) {
  return WriterBufferAccess::Get(writer);
}

void AppendJsonString(rapidjson::StringBuffer& out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  // Room for the worst case (every byte as \u00XX), the rest given back.
  const size_t reserved = 2 + s.size() * 6;
  char* const begin = out.Push(reserved);
  char* p = begin;
  *p++ = '"';
  for (char c : s) {
    const char e = kEscape[static_cast<unsigned char>(c)];
    if (e == 0) {
      *p++ = c;
      continue;
    }
    *p++ = '\\';
    *p++ = e;
    if (e == 'u') {
      *p++ = '0';
      *p++ = '0';
      *p++ = kHex[static_cast<unsigned char>(c) >> 4];
      *p++ = kHex[static_cast<unsigned char>(c) & 0xF];
    }
  }
  *p++ = '"';
  out.Pop(reserved - static_cast<size_t>(p - begin));
}

void AppendJsonValue(rapidjson::StringBuffer& out, const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kNull:
      AppendRaw(out, "null");
      return;
    case Value::Kind::kBool:
      AppendRaw(out, value.as_bool() ? "true" : "false");
      return;
    case Value::Kind::kNumber: {
      char* p = out.Push(kMaxJsonNumberLength);
      out.Pop(kMaxJsonNumberLength - FormatJsonNumberTo(value.as_number(), p));
      return;
    }
    case Value::Kind::kString:
      AppendJsonString(out, value.as_string());
      return;
    case Value::Kind::kArray: {
      *out.Push(1) = '[';
      bool first = true;
      for (const Value& element : value.as_array()) {
        if (!first) *out.Push(1) = ',';
        first = false;
        AppendJsonValue(out, element);
      }
      *out.Push(1) = ']';
      return;
    }
  }
}

void WriteValue(JsonWriter& writer, const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kNull:
      writer.Null();
      return;
    case Value::Kind::kBool:
      writer.Bool(value.as_bool());
      return;
    case Value::Kind::kNumber:
      writer.Number(value.as_number());
      return;
    case Value::Kind::kString:
      writer.String(value.as_string());
      return;
    case Value::Kind::kArray: {
      writer.StartArray();
      rapidjson::StringBuffer& out = WriterBuffer(writer);
      bool first = true;
      for (const Value& element : value.as_array()) {
        if (!first) *out.Push(1) = ',';
        first = false;
        AppendJsonValue(out, element);
      }
      writer.EndArray();
      return;
    }
  }
}

namespace {

// The members of a properties object, without the braces.
void AppendPropertyMembers(rapidjson::StringBuffer& out,
                           const PropertyList& properties) {
  bool first = true;
  for (const auto& [key, value] : properties) {
    if (!first) *out.Push(1) = ',';
    first = false;
    AppendJsonString(out, key);
    *out.Push(1) = ':';
    AppendJsonValue(out, value);
  }
}

}  // namespace

void WriteProperties(JsonWriter& writer, const PropertyList& properties) {
  writer.StartObject();
  AppendPropertyMembers(WriterBuffer(writer), properties);
  writer.EndObject();
}

void WriteFragment(JsonWriter& writer, const SyncFragment& fragment) {
  writer.StartObject();
  rapidjson::StringBuffer& out = WriterBuffer(writer);
  AppendRaw(out, fragment.type == FragmentType::kAdd
                     ? R"("type":"add","uuid":")"
                     : R"("type":"change","uuid":")");
  fragment.uuid.FormatTo(out.Push(kUuidTextLength));
  AppendRaw(out, R"(","clsName":)");
  AppendJsonString(out, fragment.cls_name);
  AppendRaw(out, R"(,"properties":{)");
  AppendPropertyMembers(out, fragment.properties);
  *out.Push(1) = '}';
  writer.EndObject();
}

void WriteWireError(JsonWriter& writer, const WireError& error) {
  writer.StartObject();
  writer.Key("message");
  writer.String(error.message);
  if (!error.type.empty()) {
    writer.Key("type");
    writer.String(error.type);
  }
  writer.EndObject();
}

void WriteFragmentReply(JsonWriter& writer, const FragmentReply& reply) {
  writer.StartObject();
  if (reply.error) {
    writer.Key("error");
    WriteWireError(writer, *reply.error);
  }
  if (!reply.modifications.empty()) {
    writer.Key("modifications");
    WriteProperties(writer, reply.modifications);
  }
  writer.EndObject();
}

std::string EncodeFragments(const std::vector<SyncFragment>& fragments) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartArray();
  for (const SyncFragment& f : fragments) WriteFragment(writer, f);
  writer.EndArray();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string EncodeFragment(const SyncFragment& fragment) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  WriteFragment(writer, fragment);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace jetstream
