#include "syncservice/hooks/hook_config.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/fragment_json.h"
#include "common/json.h"
#include "syncservice/core/scope_pattern.h"

namespace jetstream::hooks {
namespace {

class Parser {
 public:
  explicit Parser(absl::string_view file) : file_(file) {}

  absl::StatusOr<HookConfig> Parse(const JsonValue& root) {
    if (!root.IsObject()) return Error("", "must be a JSON object");
    for (auto it = root.MemberBegin(); it != root.MemberEnd(); ++it) {
      const std::string key(it->name.GetString(), it->name.GetStringLength());
      if (key != "hooks" && key != "procedures") {
        return Error("", absl::StrCat("unknown key '", key, "'"));
      }
      if (!it->value.IsArray()) {
        return Error("", absl::StrCat("'", key, "' must be an array"));
      }
    }
    HookConfig config;
    std::set<std::string> names;
    if (root.HasMember("hooks")) {
      const JsonValue& hooks = root["hooks"];
      for (rapidjson::SizeType i = 0; i < hooks.Size(); ++i) {
        absl::StatusOr<HookSpec> spec =
            ReadEntry(absl::StrCat("hooks[", i, "]"), hooks[i], false);
        if (!spec.ok()) return spec.status();
        if (!names.insert(spec->name).second) {
          return Error(absl::StrCat("hooks[", i, "]"),
                       absl::StrCat("duplicate name '", spec->name, "'"));
        }
        switch (spec->kind) {
          case HookKind::kSessionAuthorizer:
            if (config.session_authorizer) {
              return Error(absl::StrCat("hooks[", i, "]"),
                           "only one session_authorizer may be configured");
            }
            config.session_authorizer = *std::move(spec);
            break;
          case HookKind::kScopeAuthorizer:
            config.scope_authorizers.push_back(*std::move(spec));
            break;
          case HookKind::kValidator:
            config.validators.push_back(*std::move(spec));
            break;
        }
      }
    }
    std::stable_sort(
        config.validators.begin(), config.validators.end(),
        [](const HookSpec& a, const HookSpec& b) { return a.order < b.order; });
    if (root.HasMember("procedures")) {
      const JsonValue& procedures = root["procedures"];
      for (rapidjson::SizeType i = 0; i < procedures.Size(); ++i) {
        const std::string where = absl::StrCat("procedures[", i, "]");
        absl::StatusOr<HookSpec> spec = ReadEntry(where, procedures[i], true);
        if (!spec.ok()) return spec.status();
        std::vector<absl::string_view> parts = absl::StrSplit(spec->name, '.');
        if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
          return Error(where, "name must be \"ModelName.procedureName\"");
        }
        std::string name = spec->name;
        if (!config.procedures.emplace(name, *std::move(spec)).second) {
          return Error(where, absl::StrCat("duplicate procedure '", name, "'"));
        }
      }
    }
    return config;
  }

 private:
  absl::Status Error(absl::string_view where, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("hooks file '", file_, "'",
                                                   where.empty() ? "" : ": ",
                                                   where, ": ", what));
  }

  static std::string Str(const JsonValue& v) {
    return std::string(v.GetString(), v.GetStringLength());
  }

  absl::StatusOr<std::vector<std::string>> ReadStrings(absl::string_view where,
                                                       absl::string_view key,
                                                       const JsonValue& v) {
    if (!v.IsArray()) {
      return Error(where,
                   absl::StrCat("'", key, "' must be an array of strings"));
    }
    std::vector<std::string> out;
    for (const JsonValue& e : v.GetArray()) {
      if (!e.IsString()) {
        return Error(where,
                     absl::StrCat("'", key, "' must be an array of strings"));
      }
      out.push_back(Str(e));
    }
    return out;
  }

  absl::StatusOr<HookSpec> ReadEntry(const std::string& where,
                                     const JsonValue& json, bool procedure) {
    if (!json.IsObject()) return Error(where, "must be an object");
    HookSpec spec;
    bool has_kind = false;
    for (auto it = json.MemberBegin(); it != json.MemberEnd(); ++it) {
      const std::string key = Str(it->name);
      const JsonValue& v = it->value;
      if (key == "name" || key == "endpoint" || (key == "kind" && !procedure) ||
          (key == "failure" && !procedure)) {
        if (!v.IsString() || v.GetStringLength() == 0) {
          return Error(where,
                       absl::StrCat("'", key, "' must be a non-empty string"));
        }
        std::string s = Str(v);
        if (key == "name") {
          spec.name = s;
        } else if (key == "endpoint") {
          spec.endpoint = s;
        } else if (key == "kind") {
          has_kind = true;
          if (s == "session_authorizer") {
            spec.kind = HookKind::kSessionAuthorizer;
          } else if (s == "scope_authorizer") {
            spec.kind = HookKind::kScopeAuthorizer;
          } else if (s == "validator") {
            spec.kind = HookKind::kValidator;
          } else {
            return Error(where,
                         absl::StrCat("unknown kind '", s,
                                      "' (session_authorizer, scope_authorizer "
                                      "or validator)"));
          }
        } else {
          if (s == "closed") {
            spec.failure = FailurePolicy::kClosed;
          } else if (s == "open") {
            spec.failure = FailurePolicy::kOpen;
          } else {
            return Error(where, absl::StrCat("unknown failure policy '", s,
                                             "' (closed or open)"));
          }
        }
      } else if (key == "scopes") {
        absl::StatusOr<std::vector<std::string>> s = ReadStrings(where, key, v);
        if (!s.ok()) return s.status();
        spec.scopes = *std::move(s);
      } else if (key == "models" && !procedure) {
        absl::StatusOr<std::vector<std::string>> s = ReadStrings(where, key, v);
        if (!s.ok()) return s.status();
        spec.models = *std::move(s);
      } else if (key == "deadline_ms") {
        if (!v.IsInt64() || v.GetInt64() <= 0) {
          return Error(where, "'deadline_ms' must be a positive integer");
        }
        spec.deadline = absl::Milliseconds(v.GetInt64());
      } else if (key == "order" && !procedure) {
        if (!v.IsInt()) return Error(where, "'order' must be an integer");
        spec.order = v.GetInt();
      } else if (key == "constraints" && procedure) {
        if (!v.IsArray()) return Error(where, "'constraints' must be an array");
        for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
          absl::StatusOr<ProcedureConstraint> c = ReadConstraint(
              absl::StrCat(where, ".constraints[", i, "]"), v[i]);
          if (!c.ok()) return c.status();
          spec.constraints.push_back(*std::move(c));
        }
      } else {
        return Error(where, absl::StrCat("unknown key '", key, "'"));
      }
    }
    if (spec.name.empty()) return Error(where, "'name' is required");
    if (spec.endpoint.empty()) return Error(where, "'endpoint' is required");
    if (!procedure && !has_kind) return Error(where, "'kind' is required");
    return spec;
  }

  absl::StatusOr<ProcedureConstraint> ReadConstraint(const std::string& where,
                                                     const JsonValue& json) {
    if (!json.IsObject()) return Error(where, "must be an object");
    ProcedureConstraint c;
    bool has_type = false;
    for (auto it = json.MemberBegin(); it != json.MemberEnd(); ++it) {
      const std::string key = Str(it->name);
      const JsonValue& v = it->value;
      if (key == "type") {
        if (v.IsString() && Str(v) == "add") {
          c.type = FragmentType::kAdd;
        } else if (v.IsString() && Str(v) == "change") {
          c.type = FragmentType::kChange;
        } else {
          return Error(where, "'type' must be \"add\" or \"change\"");
        }
        has_type = true;
      } else if (key == "clsName") {
        if (!v.IsString() || v.GetStringLength() == 0) {
          return Error(where, "'clsName' must be a non-empty string");
        }
        c.cls_name = Str(v);
      } else if (key == "allowAdditionalProperties") {
        if (!v.IsBool()) {
          return Error(where, "'allowAdditionalProperties' must be a boolean");
        }
        c.allow_additional_properties = v.GetBool();
      } else if (key == "properties") {
        if (!v.IsObject())
          return Error(where, "'properties' must be an object");
        for (auto p = v.MemberBegin(); p != v.MemberEnd(); ++p) {
          const std::string name = Str(p->name);
          absl::StatusOr<PropertyConstraint> pc =
              ReadPropertyConstraint(where, name, p->value);
          if (!pc.ok()) return pc.status();
          c.properties.emplace_back(name, *std::move(pc));
        }
      } else {
        return Error(where, absl::StrCat("unknown key '", key, "'"));
      }
    }
    if (!has_type) return Error(where, "'type' is required");
    if (c.cls_name.empty()) return Error(where, "'clsName' is required");
    return c;
  }

  absl::StatusOr<PropertyConstraint> ReadPropertyConstraint(
      const std::string& where, const std::string& name, const JsonValue& v) {
    PropertyConstraint pc;
    if (v.IsObject()) {
      if (v.MemberCount() == 1 && v.HasMember("$hasNewValue") &&
          v["$hasNewValue"].IsBool() && v["$hasNewValue"].GetBool()) {
        pc.kind = PropertyConstraint::Kind::kHasNewValue;
        return pc;
      }
      if (v.MemberCount() == 1 && v.HasMember("$array") &&
          v["$array"].IsString()) {
        const std::string how = Str(v["$array"]);
        if (how == "insert") {
          pc.kind = PropertyConstraint::Kind::kArrayInsert;
          return pc;
        }
        if (how == "remove") {
          pc.kind = PropertyConstraint::Kind::kArrayRemove;
          return pc;
        }
      }
      return Error(where,
                   absl::StrCat("property '", name,
                                "': an object must be {\"$hasNewValue\": true} "
                                "or {\"$array\": \"insert\"|\"remove\"}"));
    }
    absl::StatusOr<Value> value = DecodeValue(name, v);
    if (!value.ok()) {
      return Error(where, absl::StrCat("property '", name,
                                       "': ", value.status().message()));
    }
    pc.kind = PropertyConstraint::Kind::kEquals;
    pc.value = *std::move(value);
    return pc;
  }

  const std::string file_;
};

}  // namespace

bool HookSpec::AppliesToScope(absl::string_view scope) const {
  if (scopes.empty()) return true;
  for (const std::string& pattern : scopes) {
    if (MatchPattern(pattern, scope)) return true;
  }
  return false;
}

bool HookSpec::AppliesToFragments(
    const std::vector<SyncFragment>& fragments) const {
  if (models.empty()) return true;
  for (const SyncFragment& f : fragments) {
    if (std::find(models.begin(), models.end(), f.cls_name) != models.end()) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<HookConfig> ParseHookConfig(absl::string_view json,
                                           absl::string_view file) {
  JsonDocument doc;
  if (absl::Status s = ParseJson(json, doc); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("hooks file '", file, "': ", s.message()));
  }
  return Parser(file).Parse(doc);
}

absl::StatusOr<HookConfig> LoadHookConfigFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path, "hooks file");
  if (!text.ok()) return text.status();
  return ParseHookConfig(*text, path);
}

}  // namespace jetstream::hooks
