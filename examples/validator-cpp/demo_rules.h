// File: examples/validator-cpp/demo_rules.h
//
// The demo's validation rules, as a downstream ChangesetValidator hook
// applies them (proto/hooks/v1/hooks.proto):
//
// * Shapes stay inside the 0..10000 canvas: a Shape fragment whose x, y,
//   width or height would put the shape outside is rejected (that fragment
//   only; an atomic changeset is then refused whole by the sync service).
//   Values the fragment does not set are taken from the object's current
//   state.
// * Chat messages: a Message whose text is empty (or only whitespace) is
//   rejected; a text longer than 500 characters is cut to 500 (a
//   modification: the sender receives it in `modifications`, everybody else
//   the shortened text).
//
// Pure; no gRPC. Copy it and change the rules.

#ifndef JETSTREAM_EXAMPLES_VALIDATOR_CPP_DEMO_RULES_H_
#define JETSTREAM_EXAMPLES_VALIDATOR_CPP_DEMO_RULES_H_

#include "proto/hooks/v1/hooks.pb.h"

namespace jetstream::examples {

inline constexpr double kCanvasSize = 10000;
inline constexpr size_t kMaxMessageLength = 500;  // characters (code points)

void ApplyDemoRules(const hooks::v1::ValidateChangesetRequest& request,
                    hooks::v1::ValidateChangesetResponse* response);

}  // namespace jetstream::examples

#endif  // JETSTREAM_EXAMPLES_VALIDATOR_CPP_DEMO_RULES_H_
