// File: syncservice/hooks/procedure_constraints.h
//
// Procedure constraints (docs/protocol.md#procedure-constraints): does a
// changeset have the shape a procedure accepts? Pure and synchronous.
//
// Example:
//   if (!MatchesConstraints(spec.constraints, changeset.fragments, current)) {
//     // "Changes do not match the procedure constraints"
//   }

#ifndef JETSTREAM_SYNCSERVICE_HOOKS_PROCEDURE_CONSTRAINTS_H_
#define JETSTREAM_SYNCSERVICE_HOOKS_PROCEDURE_CONSTRAINTS_H_

#include <vector>

#include "common/sync_fragment.h"
#include "syncservice/core/commit_stages.h"
#include "syncservice/hooks/hook_config.h"

namespace jetstream::hooks {

// True if one fragment matches one constraint: same type and clsName; every
// constrained key present (literal values equal; `$hasNewValue` presence
// only; `$array` insert/remove: on `add` the value is a non-empty array for
// insert and never matches remove, on `change` the new array is longer
// (insert) or shorter (remove) than the object's current one); and, unless
// additional properties are allowed, no other keys.
bool MatchesConstraint(const ProcedureConstraint& constraint,
                       const SyncFragment& fragment,
                       const std::vector<ObjectSnapshot>& current);

// True if every fragment is matched by at least one constraint. Constraints
// are applied in order, each removing the fragments it matches. With no
// constraints only an empty changeset matches.
bool MatchesConstraints(const std::vector<ProcedureConstraint>& constraints,
                        const std::vector<SyncFragment>& fragments,
                        const std::vector<ObjectSnapshot>& current);

}  // namespace jetstream::hooks

#endif  // JETSTREAM_SYNCSERVICE_HOOKS_PROCEDURE_CONSTRAINTS_H_
