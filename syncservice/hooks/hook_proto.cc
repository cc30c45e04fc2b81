#include "syncservice/hooks/hook_proto.h"

#include "absl/strings/str_cat.h"
#include "common/fragment_proto.h"

namespace jetstream::hooks {

WireError DownstreamUnavailable(absl::string_view name,
                                absl::string_view prefix) {
  return WireError{
      absl::StrCat(prefix, "downstream service '", name, "' unavailable"),
      std::string(kDownstreamUnavailable)};
}

void ToProto(const Principal& principal, sync::v1::Principal* out) {
  out->set_identity(principal.identity);
  for (const auto& [k, v] : principal.claims) (*out->mutable_claims())[k] = v;
}

Principal FromProto(const sync::v1::Principal& principal) {
  Principal out;
  out.identity = principal.identity();
  for (const auto& [k, v] : principal.claims()) out.claims[k] = v;
  return out;
}

void ToProto(const ObjectSnapshot& object, v1::ObjectState* out) {
  out->set_uuid(object.uuid.ToString());
  out->set_cls_name(object.cls_name);
  jetstream::ToProto(object.properties, out->mutable_properties());
}

}  // namespace jetstream::hooks
