// File: syncservice/core/scope_pattern.h
//
// Scope-name patterns, as the scopes file's templates and the hooks file's
// scope lists write them ("canvas/*").

#ifndef JETSTREAM_SYNCSERVICE_CORE_SCOPE_PATTERN_H_
#define JETSTREAM_SYNCSERVICE_CORE_SCOPE_PATTERN_H_

#include "absl/strings/string_view.h"

namespace jetstream {

// MatchPattern()
//
// True if `name` matches `pattern`, where `*` matches any run of characters
// (including the empty one) and every other character matches itself.
bool MatchPattern(absl::string_view pattern, absl::string_view name);

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_CORE_SCOPE_PATTERN_H_
