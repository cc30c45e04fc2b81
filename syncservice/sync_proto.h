// File: syncservice/sync_proto.h
//
// Conversions between the SyncService protos (proto/sync/v1) and the sync
// service's own types, shared by the Connect stream and the unary methods:
// principals, snapshots, fragments, whole-changeset refusals, redirects and
// the membership view.

#ifndef JETSTREAM_SYNCSERVICE_SYNC_PROTO_H_
#define JETSTREAM_SYNCSERVICE_SYNC_PROTO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/sync/v1/sync_service.pb.h"
#include "syncservice/cluster/cluster.h"
#include "syncservice/core/commit_stages.h"
#include "syncservice/scope_host.h"
#include "syncservice/scope_registry.h"

namespace jetstream {

// The per-fragment error of a changeset sent for a read-only scope.
inline const WireError kScopeReadOnly{"Scope is read-only for this session",
                                      "scope-read-only"};

Principal PrincipalFromProto(const sync::v1::Principal& p);
void PrincipalToProto(const Principal& p, sync::v1::Principal* out);

void SnapshotToProto(const ScopeSnapshot& s, sync::v1::ScopeSnapshot* out);

// Request fragments as the engine's; the error names the offending fragment.
absl::StatusOr<std::vector<SyncFragment>> ConvertFragments(
    const google::protobuf::RepeatedPtrField<sync::v1::SyncFragment>& in);

// One reply per fragment, each `Could not apply SyncMessage: <reason>`,
// typed kCouldNotApply.
void RejectAll(
    int fragment_count, absl::string_view reason,
    google::protobuf::RepeatedPtrField<sync::v1::FragmentReply>* out);

// The reason a changeset naming `procedure` is refused when procedures are
// off (docs/protocol.md#procedures).
std::string ProcedureError(absl::string_view procedure);

RoutingHints HintsFromProto(const sync::v1::Routing& routing);
void RedirectToProto(const Member& to, sync::v1::Redirect* out);

// The Membership event: this replica, the live members, whether it runs
// without peers.
void MembershipToProto(const Member& self, const MemberView& view,
                       bool standalone, sync::v1::Membership* out);

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_SYNC_PROTO_H_
