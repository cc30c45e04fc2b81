// File: common/sync_fragment.h
//
// The unit of change of the Jetstream protocol (docs/protocol.md#fragments) and
// the per-fragment reply a server sends back
// (docs/protocol.md#msg-scope-sync-reply). These are plain, schema-free data
// types shared by the gateway and the sync service.

#ifndef JETSTREAM_COMMON_SYNC_FRAGMENT_H_
#define JETSTREAM_COMMON_SYNC_FRAGMENT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/uuid.h"
#include "common/value.h"

namespace jetstream {

enum class FragmentType { kAdd, kChange };

// "add" or "change".
absl::string_view FragmentTypeName(FragmentType type);

// SyncFragment
//
// `add` creates an object of `cls_name` with `uuid` and sets `properties`;
// `change` sets `properties` on an existing object. Collections are always
// whole arrays, never deltas.
struct SyncFragment {
  FragmentType type = FragmentType::kChange;
  Uuid uuid;
  std::string cls_name;
  PropertyList properties;

  // The value of property `key`, or nullptr if the fragment does not set it.
  const Value* Find(absl::string_view key) const;

  friend bool operator==(const SyncFragment& a, const SyncFragment& b) {
    return a.type == b.type && a.uuid == b.uuid && a.cls_name == b.cls_name &&
           a.properties == b.properties;
  }
};

// An error on the wire: {"message": ..., "type"?: ...}. `type` is the slug
// of the server's typed errors (docs/protocol.md#typed-errors) and empty for
// untyped ones.
struct WireError {
  std::string message;
  std::string type;

  friend bool operator==(const WireError& a, const WireError& b) {
    return a.message == b.message && a.type == b.type;
  }
};

// The errors of a changeset refused or failed as a whole, given to every
// one of its fragments (docs/protocol.md#typed-errors). Both processes
// write them: the sync service (validators, procedures, stores), the
// gateway (no service to send to, an unknown outcome).
inline constexpr absl::string_view kCouldNotApplyPrefix =
    "Could not apply SyncMessage: ";
inline constexpr absl::string_view kCouldNotApply =
    "could-not-apply-sync-message";
inline constexpr absl::string_view kOutcomeUnknown = "outcome-unknown";

// {"message":"Could not apply SyncMessage: <reason>", "type": `type`}.
WireError CouldNotApply(absl::string_view reason,
                        absl::string_view type = kCouldNotApply);
// {"message":"Could not apply SyncMessage: the outcome is unknown (<why>)",
//  "type":"outcome-unknown"}: sent, never answered; if it was applied, its
// commit reaches every session.
WireError OutcomeUnknown(absl::string_view why);

// FragmentReply
//
// One entry of ScopeSyncReply.fragmentReplies: success is `{}`, failure
// carries `error`; `modifications` holds values a downstream validator
// changed (docs/protocol.md#d3-modifications) and is applied by the client to
// the fragment's object.
struct FragmentReply {
  std::optional<WireError> error;
  PropertyList modifications;

  bool ok() const { return !error.has_value(); }
};

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_SYNC_FRAGMENT_H_
