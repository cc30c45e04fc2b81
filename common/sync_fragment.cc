#include "common/sync_fragment.h"

#include "absl/strings/str_cat.h"

namespace jetstream {

WireError CouldNotApply(absl::string_view reason, absl::string_view type) {
  return WireError{absl::StrCat(kCouldNotApplyPrefix, reason),
                   std::string(type)};
}

WireError OutcomeUnknown(absl::string_view why) {
  return CouldNotApply(absl::StrCat("the outcome is unknown (", why, ")"),
                       kOutcomeUnknown);
}

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
