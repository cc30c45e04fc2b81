#include "syncservice/sync_proto.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fragment_proto.h"
#include "common/procedure_name.h"

namespace jetstream {

Principal PrincipalFromProto(const sync::v1::Principal& p) {
  Principal out;
  out.identity = p.identity();
  for (const auto& [k, v] : p.claims()) out.claims[k] = v;
  return out;
}

void PrincipalToProto(const Principal& p, sync::v1::Principal* out) {
  out->set_identity(p.identity);
  for (const auto& [k, v] : p.claims) (*out->mutable_claims())[k] = v;
}

void SnapshotToProto(const ScopeSnapshot& s, sync::v1::ScopeSnapshot* out) {
  out->set_scope(s.scope);
  out->set_epoch(s.epoch);
  out->set_version(s.version);
  out->set_root_uuid(s.root_uuid.ToString());
  if (s.fragments_json != nullptr) out->set_fragments_json(*s.fragments_json);
  if (s.date_properties != nullptr) {
    for (const std::string& p : *s.date_properties) {
      out->add_date_properties(p);
    }
  }
}

absl::StatusOr<std::vector<SyncFragment>> ConvertFragments(
    const google::protobuf::RepeatedPtrField<sync::v1::SyncFragment>& in) {
  std::vector<SyncFragment> out;
  out.reserve(in.size());
  for (int i = 0; i < in.size(); ++i) {
    absl::StatusOr<SyncFragment> f = FromProto(in[i]);
    if (!f.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("fragment ", i, ": ", f.status().message()));
    }
    out.push_back(*std::move(f));
  }
  return out;
}

void RejectAll(
    int fragment_count, absl::string_view reason,
    google::protobuf::RepeatedPtrField<sync::v1::FragmentReply>* out) {
  const WireError refused = CouldNotApply(reason);
  for (int i = 0; i < fragment_count; ++i) {
    sync::v1::Error* error = out->Add()->mutable_error();
    error->set_message(refused.message);
    error->set_type(refused.type);
  }
}

std::string ProcedureError(absl::string_view procedure) {
  std::optional<ProcedureName> parsed = ParseProcedureName(procedure);
  if (!parsed.has_value()) return std::string(kBadProcedureName);
  return absl::StrCat("No such procedure '", parsed->name, "' for model '",
                      parsed->model, "'");
}

RoutingHints HintsFromProto(const sync::v1::Routing& routing) {
  RoutingHints hints;
  hints.take_over = routing.take_over();
  hints.rerouted = routing.rerouted();
  return hints;
}

void RedirectToProto(const Member& to, sync::v1::Redirect* out) {
  out->set_member_id(to.id);
  out->set_address(to.address);
}

void MembershipToProto(const Member& self, const MemberView& view,
                       bool standalone, sync::v1::Membership* out) {
  out->mutable_self()->set_id(self.id);
  out->mutable_self()->set_address(self.address);
  out->set_standalone(standalone);
  out->set_as_of_micros(view.as_of_micros);
  if (standalone) return;
  for (const Member& m : view.members) {
    sync::v1::Member* member = out->add_members();
    member->set_id(m.id);
    member->set_address(m.address);
  }
}

}  // namespace jetstream
