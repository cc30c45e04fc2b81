// File: syncservice/hooks/hook_proto.h
//
// Conversions between the sync service's own types (commit_stages.h) and the
// hook contract's messages (proto/hooks/v1/hooks.proto, proto/sync/v1/
// model.proto), and the typed errors hooks produce. Pure.

#ifndef JETSTREAM_SYNCSERVICE_HOOKS_HOOK_PROTO_H_
#define JETSTREAM_SYNCSERVICE_HOOKS_HOOK_PROTO_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/sync_fragment.h"
#include "proto/hooks/v1/hooks.pb.h"
#include "proto/sync/v1/model.pb.h"
#include "syncservice/core/commit_stages.h"

namespace jetstream::hooks {

// The typed error of a hook that could not be reached or did not answer in
// time under "failure": "closed" (docs/protocol.md#d13-clear-errors).
inline constexpr absl::string_view kDownstreamUnavailable =
    "downstream-unavailable";

// {"message":"downstream service '<name>' unavailable",
//  "type":"downstream-unavailable"}, the message prefixed with `prefix`.
WireError DownstreamUnavailable(absl::string_view name,
                                absl::string_view prefix = "");

void ToProto(const Principal& principal, sync::v1::Principal* out);
Principal FromProto(const sync::v1::Principal& principal);
void ToProto(const ObjectSnapshot& object, v1::ObjectState* out);

}  // namespace jetstream::hooks

#endif  // JETSTREAM_SYNCSERVICE_HOOKS_HOOK_PROTO_H_
