#include "common/sync_fragment.h"

namespace jetstream {

absl::string_view FragmentTypeName(FragmentType type) {
  return type == FragmentType::kAdd ? "add" : "change";
}

const Value* SyncFragment::Find(absl::string_view key) const {
  for (const auto& [name, value] : properties) {
    if (name == key) return &value;
  }
  return nullptr;
}

}  // namespace jetstream
