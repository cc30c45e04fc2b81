#include "common/procedure_name.h"

#include <vector>

#include "absl/strings/str_split.h"

namespace jetstream {

std::optional<ProcedureName> ParseProcedureName(absl::string_view procedure) {
  std::vector<absl::string_view> parts = absl::StrSplit(procedure, '.');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
    return std::nullopt;
  }
  return ProcedureName{std::string(parts[0]), std::string(parts[1])};
}

}  // namespace jetstream
