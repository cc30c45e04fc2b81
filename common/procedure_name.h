// File: common/procedure_name.h
//
// A changeset's procedure, "ModelName.procedureName"
// (docs/protocol.md#procedures): checked by the gateway's parser, resolved
// by the sync service and its hooks.

#ifndef JETSTREAM_COMMON_PROCEDURE_NAME_H_
#define JETSTREAM_COMMON_PROCEDURE_NAME_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace jetstream {

// The error text for a procedure that is not two non-empty names joined by
// one dot (the original server's).
inline constexpr absl::string_view kBadProcedureName =
    "Procedure must be of the format \"ModelName.procedureName\"";

struct ProcedureName {
  std::string model;
  std::string name;
};

// ParseProcedureName()
//
// "Model.procedure" as its two parts; nullopt unless there are exactly two
// and neither is empty.
std::optional<ProcedureName> ParseProcedureName(absl::string_view procedure);

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_PROCEDURE_NAME_H_
