#include "syncservice/hooks/procedure_constraints.h"

#include <algorithm>

namespace jetstream::hooks {
namespace {

// The current array length of `key` on object `uuid`, or -1 if unknown.
long CurrentLength(const std::vector<ObjectSnapshot>& current, const Uuid& uuid,
                   const std::string& key) {
  for (const ObjectSnapshot& o : current) {
    if (!(o.uuid == uuid)) continue;
    for (const auto& [name, value] : o.properties) {
      if (name != key) continue;
      if (value.is_array()) return static_cast<long>(value.as_array().size());
      if (value.is_null()) return 0;
      return -1;
    }
  }
  return -1;
}

}  // namespace

bool MatchesConstraint(const ProcedureConstraint& constraint,
                       const SyncFragment& fragment,
                       const std::vector<ObjectSnapshot>& current) {
  if (constraint.type != fragment.type ||
      constraint.cls_name != fragment.cls_name) {
    return false;
  }
  if (constraint.properties.empty()) {
    return fragment.properties.empty() ||
           constraint.allow_additional_properties;
  }
  if (!constraint.allow_additional_properties &&
      constraint.properties.size() != fragment.properties.size()) {
    return false;
  }
  for (const auto& [key, want] : constraint.properties) {
    const Value* value = fragment.Find(key);
    if (value == nullptr) return false;
    switch (want.kind) {
      case PropertyConstraint::Kind::kEquals:
        if (*value != want.value) return false;
        break;
      case PropertyConstraint::Kind::kHasNewValue:
        break;
      case PropertyConstraint::Kind::kArrayInsert:
      case PropertyConstraint::Kind::kArrayRemove: {
        if (!value->is_array()) return false;
        const long now = static_cast<long>(value->as_array().size());
        const bool insert = want.kind == PropertyConstraint::Kind::kArrayInsert;
        if (fragment.type == FragmentType::kAdd) {
          if (!insert || now == 0) return false;
          break;
        }
        const long before = CurrentLength(current, fragment.uuid, key);
        if (before < 0) return false;
        if (insert ? now <= before : now >= before) return false;
        break;
      }
    }
  }
  return true;
}

bool MatchesConstraints(const std::vector<ProcedureConstraint>& constraints,
                        const std::vector<SyncFragment>& fragments,
                        const std::vector<ObjectSnapshot>& current) {
  std::vector<const SyncFragment*> remaining;
  for (const SyncFragment& f : fragments) remaining.push_back(&f);
  for (const ProcedureConstraint& c : constraints) {
    remaining.erase(std::remove_if(remaining.begin(), remaining.end(),
                                   [&](const SyncFragment* f) {
                                     return MatchesConstraint(c, *f, current);
                                   }),
                    remaining.end());
  }
  return remaining.empty();
}

}  // namespace jetstream::hooks
