#include "syncservice/scope_config.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/fragment_json.h"
#include "common/json.h"
#include "common/sync_fragment.h"
#include "common/uuid.h"
#include "syncservice/core/scope_pattern.h"

namespace jetstream {
namespace {

std::string Str(const JsonValue& v) {
  return std::string(v.GetString(), v.GetStringLength());
}

// Parses the JSON of the scopes file; every error names the file and the
// scope or template being read.
class ConfigParser {
 public:
  explicit ConfigParser(absl::string_view source) : source_(source) {}

  absl::StatusOr<ScopeConfig> Parse(const JsonValue& root);

 private:
  absl::Status Error(absl::string_view where, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": ", where, where.empty() ? "" : ": ", what));
  }

  // Reads the `root` member of a scope or template entry.
  absl::StatusOr<ObjectSpec> ReadEntryRoot(absl::string_view where,
                                           const JsonValue& entry,
                                           absl::string_view key_name,
                                           std::string* key);
  absl::StatusOr<ObjectSpec> ReadObject(absl::string_view where,
                                        const JsonValue& json, int depth);
  absl::StatusOr<ConfigValue> ReadValue(absl::string_view where,
                                        absl::string_view key,
                                        const JsonValue& json, int depth);

  std::string source_;
};

// Nested objects deeper than this are refused (a runaway or cyclic-looking
// file, and a bound on BuildScope's recursion).
constexpr int kMaxDepth = 64;

absl::StatusOr<ScopeConfig> ConfigParser::Parse(const JsonValue& root) {
  if (!root.IsObject()) {
    return Error("", "the scopes file must be a JSON object");
  }
  ScopeConfig config;
  config.source = source_;
  absl::flat_hash_set<std::string> names;
  for (const auto& member : root.GetObject()) {
    const std::string key = Str(member.name);
    const bool is_scopes = key == "scopes";
    if (!is_scopes && key != "templates") {
      return Error("",
                   absl::StrCat("unknown key '", key,
                                "' (expected \"scopes\" and \"templates\")"));
    }
    if (!member.value.IsArray()) {
      return Error("", absl::StrCat("\"", key, "\" must be an array"));
    }
    size_t i = 0;
    for (const JsonValue& entry : member.value.GetArray()) {
      std::string where =
          absl::StrCat(is_scopes ? "scope" : "template", " #", i++);
      std::string id;
      absl::StatusOr<ObjectSpec> object =
          ReadEntryRoot(where, entry, is_scopes ? "name" : "pattern", &id);
      if (!object.ok()) return object.status();
      if (is_scopes) {
        if (!names.insert(id).second) {
          return Error(absl::StrCat("scope '", id, "'"),
                       "duplicate scope name");
        }
        config.scopes.push_back(ScopeSpec{std::move(id), *std::move(object)});
      } else {
        config.templates.push_back(
            TemplateSpec{std::move(id), *std::move(object)});
      }
    }
  }
  return config;
}

absl::StatusOr<ObjectSpec> ConfigParser::ReadEntryRoot(
    absl::string_view where, const JsonValue& entry, absl::string_view key_name,
    std::string* key) {
  if (!entry.IsObject()) return Error(where, "must be a JSON object");
  auto id =
      entry.FindMember(rapidjson::StringRef(key_name.data(), key_name.size()));
  if (id == entry.MemberEnd() || !id->value.IsString() ||
      id->value.GetStringLength() == 0) {
    return Error(
        where, absl::StrCat("requires a non-empty string \"", key_name, "\""));
  }
  *key = Str(id->value);
  const std::string named =
      absl::StrCat(key_name == "name" ? "scope '" : "template '", *key, "'");
  for (const auto& member : entry.GetObject()) {
    absl::string_view k(member.name.GetString(), member.name.GetStringLength());
    if (k != key_name && k != "root") {
      return Error(named, absl::StrCat("unknown key '", k, "'"));
    }
  }
  auto root = entry.FindMember("root");
  if (root == entry.MemberEnd()) return Error(named, "requires \"root\"");
  return ReadObject(named, root->value, 0);
}

absl::StatusOr<ObjectSpec> ConfigParser::ReadObject(absl::string_view where,
                                                    const JsonValue& json,
                                                    int depth) {
  if (depth > kMaxDepth) {
    return Error(where, absl::StrCat("objects nested deeper than ", kMaxDepth));
  }
  if (!json.IsObject()) {
    return Error(where,
                 "an object must be {\"clsName\": ..., \"properties\": {...}}");
  }
  ObjectSpec spec;
  auto cls = json.FindMember("clsName");
  if (cls == json.MemberEnd() || !cls->value.IsString() ||
      cls->value.GetStringLength() == 0) {
    return Error(where, "an object requires a non-empty string \"clsName\"");
  }
  spec.cls_name = Str(cls->value);
  for (const auto& member : json.GetObject()) {
    absl::string_view k(member.name.GetString(), member.name.GetStringLength());
    if (k != "clsName" && k != "properties") {
      return Error(where, absl::StrCat("unknown key '", k, "' in a ",
                                       spec.cls_name, " object"));
    }
  }
  auto properties = json.FindMember("properties");
  if (properties == json.MemberEnd() || properties->value.IsNull()) return spec;
  if (!properties->value.IsObject()) {
    return Error(where, absl::StrCat("\"properties\" of a ", spec.cls_name,
                                     " object must be a JSON object"));
  }
  for (const auto& member : properties->value.GetObject()) {
    std::string key = Str(member.name);
    for (const auto& [existing, unused] : spec.properties) {
      if (existing == key) {
        return Error(where, absl::StrCat("property '", key, "' given twice"));
      }
    }
    absl::StatusOr<ConfigValue> value =
        ReadValue(where, key, member.value, depth);
    if (!value.ok()) return value.status();
    spec.properties.emplace_back(std::move(key), *std::move(value));
  }
  return spec;
}

absl::StatusOr<ConfigValue> ConfigParser::ReadValue(absl::string_view where,
                                                    absl::string_view key,
                                                    const JsonValue& json,
                                                    int depth) {
  ConfigValue out;
  const std::string here = absl::StrCat(where, ": property '", key, "'");
  if (json.IsObject()) {
    absl::StatusOr<ObjectSpec> nested = ReadObject(here, json, depth + 1);
    if (!nested.ok()) return nested.status();
    out.kind = ConfigValue::Kind::kObject;
    out.object = std::make_shared<const ObjectSpec>(*std::move(nested));
    return out;
  }
  if (json.IsArray()) {
    out.kind = ConfigValue::Kind::kArray;
    for (const JsonValue& element : json.GetArray()) {
      if (element.IsArray()) {
        return Error(here, "arrays must not contain arrays");
      }
      absl::StatusOr<ConfigValue> e = ReadValue(where, key, element, depth);
      if (!e.ok()) return e.status();
      out.elements.push_back(*std::move(e));
    }
    return out;
  }
  absl::StatusOr<Value> value = DecodeValue(key, json);
  if (!value.ok()) return Error(here, value.status().message());
  out.value = *std::move(value);
  return out;
}

// Turns specs into fragments: one `add` per nested object, with fresh UUIDs.
class FragmentBuilder {
 public:
  // The wire value of `value`; appends the adds of nested objects.
  Value Materialize(const ConfigValue& value) {
    switch (value.kind) {
      case ConfigValue::Kind::kValue:
        return value.value;
      case ConfigValue::Kind::kObject:
        return Value::String(AddObject(*value.object).ToString());
      case ConfigValue::Kind::kArray: {
        Value::Array elements;
        elements.reserve(value.elements.size());
        for (const ConfigValue& e : value.elements) {
          elements.push_back(Materialize(e));
        }
        return Value::ArrayOf(std::move(elements));
      }
    }
    return Value::Null();
  }

  PropertyList Properties(const ObjectSpec& spec) {
    PropertyList properties;
    properties.reserve(spec.properties.size());
    for (const auto& [key, value] : spec.properties) {
      properties.emplace_back(key, Materialize(value));
    }
    return properties;
  }

  std::vector<SyncFragment>& adds() { return adds_; }

 private:
  Uuid AddObject(const ObjectSpec& spec) {
    SyncFragment add;
    add.type = FragmentType::kAdd;
    add.uuid = Uuid::Random();
    add.cls_name = spec.cls_name;
    const Uuid id = add.uuid;
    // Reserve the slot first so parents precede their children in the list.
    const size_t slot = adds_.size();
    adds_.push_back(std::move(add));
    PropertyList properties = Properties(spec);
    adds_[slot].properties = std::move(properties);
    return id;
  }

  std::vector<SyncFragment> adds_;
};

}  // namespace

const TemplateSpec* ScopeConfig::FindTemplate(absl::string_view name) const {
  for (const TemplateSpec& t : templates) {
    if (MatchPattern(t.pattern, name)) return &t;
  }
  return nullptr;
}

absl::StatusOr<ScopeConfig> ParseScopeConfig(absl::string_view json,
                                             absl::string_view source) {
  JsonDocument doc;
  if (absl::Status s = ParseJson(json, doc); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not valid JSON: ", s.message()));
  }
  return ConfigParser(source).Parse(doc);
}

absl::StatusOr<ScopeConfig> LoadScopeConfigFile(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFileToString(path, "scopes file");
  if (!contents.ok()) return contents.status();
  return ParseScopeConfig(*contents, path);
}

absl::StatusOr<std::unique_ptr<Scope>> BuildScope(
    std::shared_ptr<const Schema> schema, const ObjectSpec& root,
    absl::string_view what) {
  absl::StatusOr<std::unique_ptr<Scope>> scope =
      Scope::Create(std::move(schema), root.cls_name);
  if (!scope.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", scope.status().message()));
  }
  FragmentBuilder builder;
  SyncFragment change;
  change.type = FragmentType::kChange;
  change.uuid = (*scope)->root().uuid();
  change.cls_name = root.cls_name;
  change.properties = builder.Properties(root);

  std::vector<SyncFragment> fragments = std::move(builder.adds());
  fragments.push_back(std::move(change));
  // Describes fragment i for an error message.
  std::vector<std::string> describe;
  describe.reserve(fragments.size());
  for (const SyncFragment& f : fragments) {
    describe.push_back(f.type == FragmentType::kChange
                           ? absl::StrCat("the root ", f.cls_name)
                           : absl::StrCat("a nested ", f.cls_name, " object"));
  }

  ChangesetResult result =
      (*scope)->Apply(Changeset{std::move(fragments), /*atomic=*/true});
  // With atomic changesets every reply carries an error once one fragment
  // failed; report the fragment that failed first, not the consequences.
  for (size_t i = 0; i < result.replies.size(); ++i) {
    const FragmentReply& reply = result.replies[i];
    if (!reply.ok() && reply.error->type != "atomic-changeset-rejected") {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": ", describe[i], " is refused: ", reply.error->message));
    }
  }
  if (!result.all_ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the initial objects are refused"));
  }
  return scope;
}

}  // namespace jetstream
