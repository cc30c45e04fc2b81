// File: syncservice/scope_config.h
//
// The scopes file: which scopes the sync service holds from startup, and
// templates that create a scope the first time a client fetches a matching
// name. Loaded once at startup into plain structs; BuildScope() turns a spec
// into a live engine Scope.
//
// Format (syncservice/config/demo_scopes.json):
//
//   {
//     "scopes": [
//       {"name": "Canvas",
//        "root": {"clsName": "Canvas", "properties": {"name": "Shapes Demo"}}},
//       {"name": "ChatRoom",
//        "root": {"clsName": "ChatRoom", "properties": {
//          "name": "Chat Demo",
//          "attributes": {"clsName": "ChatRoomAttributes",
//                         "properties": {"status": 0, "topic": "Welcome"}}}}}
//     ],
//     "templates": [
//       {"pattern": "canvas/*",
//        "root": {"clsName": "Canvas", "properties": {"name": "Canvas"}}}
//     ]
//   }
//
// * `root` is the root object: its `clsName` is the scope's root model and
//   its `properties` are set on it.
// * A property value is a wire value (null, boolean, number, string, or a
//   flat array of those), or a JSON object with "clsName" (and optionally
//   "properties"): a nested new object. Nested objects may also be elements
//   of an array (`"shapes": [{"clsName": "Shape", ...}, ...]`) and may nest
//   further. Each becomes an `add` fragment with a fresh random UUID every
//   time a scope is built from the spec, and the property holds its UUID.
// * Template patterns: `*` matches any run of characters (also none); every
//   other character matches itself. The first matching template wins, and a
//   static scope of the same name always takes precedence.
// * Both lists are optional. Scope names are unique; unknown keys are
//   errors (they are usually typos).
//
// Every error names the file and the scope or template it concerns.

#ifndef JETSTREAM_SYNCSERVICE_SCOPE_CONFIG_H_
#define JETSTREAM_SYNCSERVICE_SCOPE_CONFIG_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/value.h"
#include "syncservice/engine/schema.h"
#include "syncservice/engine/scope.h"

namespace jetstream {

struct ObjectSpec;

// ConfigValue
//
// A property value in the scopes file: a plain wire value, a nested new
// object, or an array whose elements are plain values or nested objects.
struct ConfigValue {
  enum class Kind { kValue, kObject, kArray };
  Kind kind = Kind::kValue;
  Value value;                               // kValue
  std::shared_ptr<const ObjectSpec> object;  // kObject
  std::vector<ConfigValue> elements;         // kArray (no nested arrays)
};

// ObjectSpec
//
// An object to create: its model and the properties to set, in file order.
struct ObjectSpec {
  std::string cls_name;
  std::vector<std::pair<std::string, ConfigValue>> properties;
};

// A scope created at startup.
struct ScopeSpec {
  std::string name;
  ObjectSpec root;
};

// A scope created on the first fetch of a name matching `pattern`.
struct TemplateSpec {
  std::string pattern;
  ObjectSpec root;
};

// ScopeConfig
//
// The parsed scopes file. `source` is the file path, for error messages.
struct ScopeConfig {
  std::string source;
  std::vector<ScopeSpec> scopes;
  std::vector<TemplateSpec> templates;

  // ScopeConfig::FindTemplate()
  //
  // The first template whose pattern matches `name`, or nullptr. Does not
  // look at `scopes`: callers check static scopes first.
  const TemplateSpec* FindTemplate(absl::string_view name) const;
};

// ParseScopeConfig()
//
// Parses the scopes file text. `source` names it in errors. Structural
// errors are kInvalidArgument, e.g.
// `demo_scopes.json: scope 'Canvas': property 'shapes': ...`. Models and
// properties are checked when a scope is built (BuildScope()); the
// registry builds every static scope and a trial instance of every template
// at startup.
absl::StatusOr<ScopeConfig> ParseScopeConfig(absl::string_view json,
                                             absl::string_view source);

// LoadScopeConfigFile()
//
// Reads and parses the file at `path`. A missing file is kNotFound, an
// unreadable one kUnavailable, both naming the path.
absl::StatusOr<ScopeConfig> LoadScopeConfigFile(const std::string& path);

// BuildScope()
//
// A new Scope from `root`: Scope::Create() with a random root UUID, then ONE
// atomic changeset holding an `add` for every nested object (fresh random
// UUIDs) and a `change` of the root's properties. `what` names the spec in
// errors (e.g. "syncservice/config/demo_scopes.json: scope 'Canvas'"). Fails
// with kInvalidArgument if the model is unknown or any fragment is refused;
// the message carries the engine's reason.
absl::StatusOr<std::unique_ptr<Scope>> BuildScope(
    std::shared_ptr<const Schema> schema, const ObjectSpec& root,
    absl::string_view what);

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_SCOPE_CONFIG_H_
