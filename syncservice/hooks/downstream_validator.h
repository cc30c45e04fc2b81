// File: syncservice/hooks/downstream_validator.h
//
// The ChangesetValidator (syncservice/core/commit_stages.h) backed by
// downstream gRPC services: the configured ChangesetValidator hooks, then the
// procedure the changeset calls (docs/protocol.md#procedures). It runs inside
// the scope's ordered commit pipeline, before the changeset is applied; while
// it waits for a hook the scope's other changesets queue, and every other scope
// goes on (ScopeHost never holds its lock across Validate()).
//
// For one changeset of scope S:
//  1. A procedure ("Model.name") is resolved against the schema and the
//     hooks file, and its constraints checked (the messages of
//     docs/protocol.md#procedures).
//  2. Every validator whose `scopes` match S and whose `models` name a
//     fragment's clsName is called, in `order`; each sees the values the
//     earlier ones modified. A REJECT verdict refuses the whole changeset;
//     rejections refuse single fragments; modifications change values
//     (docs/protocol.md#d3-modifications).
//  3. The procedure's handler is called (once, never retried) with the
//     changeset as modified; it may reject it or return follow-up updates,
//     which are applied after the changeset and go to every session.
//
// Errors (every reply of the changeset, or per fragment):
//  * hook unreachable or late under "failure": "closed", and any procedure
//    call that fails: {"message":"Could not apply SyncMessage: downstream
//    service '<name>' unavailable","type":"downstream-unavailable"}
//    ("open": the validator is skipped);
//  * validator REJECT: {"message":"Could not apply SyncMessage: <message>",
//    "type":"could-not-apply-sync-message"};
//  * validator rejection of fragment i: {"message":"<message>"} on that
//    fragment (for an atomic changeset the others get the
//    docs/protocol.md#d1-atomic error);
//  * procedure errors: "Could not apply SyncMessage: " followed by
//    "No such model '<M>' for procedure call with procedure '<p>'",
//    "No such procedure '<p>' for model '<M>'", "Changes do not match the
//    procedure constraints", or the handler's rejection message, typed
//    could-not-apply-sync-message.
//
// Thread-safety: thread-safe; Validate() may run for many scopes at once.
// Lifetime: `config`, `clients` and `schema` must outlive it; it must
// outlive every scope host using it.

#ifndef JETSTREAM_SYNCSERVICE_HOOKS_DOWNSTREAM_VALIDATOR_H_
#define JETSTREAM_SYNCSERVICE_HOOKS_DOWNSTREAM_VALIDATOR_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "syncservice/core/commit_stages.h"
#include "syncservice/engine/schema.h"
#include "syncservice/hooks/hook_clients.h"
#include "syncservice/hooks/hook_config.h"

namespace jetstream::hooks {

class DownstreamValidator : public ChangesetValidator {
 public:
  // `schema` may be null: procedure models are then not checked against it.
  DownstreamValidator(const HookConfig* config, HookClients* clients,
                      const Schema* schema);

  // ChangesetValidator
  bool Applies(const std::string& scope, const Changeset& changeset,
               const ChangesetContext& context) const override;
  void Validate(const std::string& scope, const Changeset& changeset,
                const ChangesetContext& context,
                std::vector<ObjectSnapshot> current,
                std::function<void(ValidationOutcome)> done) override;

 private:
  class Run;

  const HookConfig* const config_;
  HookClients* const clients_;
  const Schema* const schema_;
};

}  // namespace jetstream::hooks

#endif  // JETSTREAM_SYNCSERVICE_HOOKS_DOWNSTREAM_VALIDATOR_H_
