// File: syncservice/engine/schema_loader.h
//
// Builds a Schema from its JSON description. The format (see
// README.md, "Schema files", and syncservice/config/demo_schema.json):
//
//   {
//     "enumerations": {
//       "ChatRoomStatus": {"type": "Number", "values": {"Open": 0, "Closed":
//       1}}, "Mood": {"type": "String", "values": ["Happy", "Sad"]}
//     },
//     "models": {
//       "Canvas": {"properties": {"name": "String", "shapes": "[Shape]"}},
//       "Shape":  {"properties": {"x": {"type": "Number", "default": 0}}},
//       "Circle": {"extends": "Shape", "properties": {"radius": "Number"}}
//     }
//   }
//
// Property types are "String", "Number", "Boolean", "Date", an enumeration
// name, a model name, or any of those in brackets for an array. Member order
// is declaration order. Every error names the file, the model or enumeration,
// and the property.

#ifndef JETSTREAM_SYNCSERVICE_ENGINE_SCHEMA_LOADER_H_
#define JETSTREAM_SYNCSERVICE_ENGINE_SCHEMA_LOADER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "syncservice/engine/schema.h"

namespace jetstream {

// ParseSchema()
//
// Builds a schema from JSON text. `source` names the text in error messages
// (normally the file path). Errors are kInvalidArgument.
absl::StatusOr<std::shared_ptr<const Schema>> ParseSchema(
    absl::string_view json, absl::string_view source);

// LoadSchemaFile()
//
// Reads and parses the schema file at `path`. A missing or unreadable file is
// kNotFound / kUnavailable naming the path.
absl::StatusOr<std::shared_ptr<const Schema>> LoadSchemaFile(
    const std::string& path);

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_ENGINE_SCHEMA_LOADER_H_
