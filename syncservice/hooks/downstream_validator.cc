#include "syncservice/hooks/downstream_validator.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fragment_proto.h"
#include "common/logging.h"
#include "common/procedure_name.h"
#include "syncservice/hooks/hook_proto.h"
#include "syncservice/hooks/procedure_constraints.h"

namespace jetstream::hooks {

// One changeset on its way through the validators and the procedure. Owns
// itself through the callbacks it hands to gRPC; `done_` is called once.
class DownstreamValidator::Run : public std::enable_shared_from_this<Run> {
 public:
  Run(HookClients* clients, std::string scope, Changeset changeset,
      ChangesetContext context, std::vector<ObjectSnapshot> current,
      std::vector<const HookSpec*> validators, const HookSpec* procedure,
      std::function<void(ValidationOutcome)> done)
      : clients_(clients),
        scope_(std::move(scope)),
        changeset_(std::move(changeset)),
        context_(std::move(context)),
        current_(std::move(current)),
        validators_(std::move(validators)),
        procedure_(procedure),
        done_(std::move(done)),
        modified_(changeset_.fragments.size()) {}

  void Next() {
    if (next_validator_ < validators_.size()) {
      CallValidator(*validators_[next_validator_++]);
      return;
    }
    if (procedure_ != nullptr) {
      CallProcedure();
      return;
    }
    Finish();
  }

 private:
  void CallValidator(const HookSpec& spec) {
    v1::ValidateChangesetRequest request;
    request.set_scope(scope_);
    ToProto(context_.principal, request.mutable_principal());
    for (const SyncFragment& f : changeset_.fragments) {
      jetstream::ToProto(f, request.add_fragments());
    }
    request.set_atomic(changeset_.atomic);
    for (const ObjectSnapshot& o : current_) ToProto(o, request.add_current());
    clients_->ValidateChangeset(
        spec, std::move(request), context_.deadline, context_.traceparent,
        [self = shared_from_this(),
         &spec](absl::StatusOr<v1::ValidateChangesetResponse> response) {
          self->OnValidated(spec, std::move(response));
        });
  }

  void OnValidated(const HookSpec& spec,
                   absl::StatusOr<v1::ValidateChangesetResponse> response) {
    if (!response.ok()) {
      if (spec.failure == FailurePolicy::kOpen) {
        LOG(WARNING) << "scope " << scope_ << ": validator " << spec.name
                     << " unavailable (" << response.status().message()
                     << "); failing open";
        Next();
        return;
      }
      return Reject(DownstreamUnavailable(spec.name, kCouldNotApplyPrefix));
    }
    if (response->verdict() == v1::ValidateChangesetResponse::REJECT) {
      return Reject(
          CouldNotApply(response->message().empty()
                            ? absl::StrCat("rejected by '", spec.name, "'")
                            : response->message()));
    }
    const size_t n = changeset_.fragments.size();
    for (const v1::FragmentRejection& r : response->rejections()) {
      if (r.fragment() >= n) {
        LOG(WARNING) << "validator " << spec.name << " rejected fragment "
                     << r.fragment() << " of " << n << "; ignored";
        continue;
      }
      // The first rejection of a fragment wins.
      rejections_.try_emplace(
          r.fragment(),
          WireError{r.message().empty()
                        ? absl::StrCat("Rejected by '", spec.name, "'")
                        : r.message(),
                    ""});
    }
    for (const v1::FragmentModification& m : response->modifications()) {
      if (m.fragment() >= n) {
        LOG(WARNING) << "validator " << spec.name << " modified fragment "
                     << m.fragment() << " of " << n << "; ignored";
        continue;
      }
      SyncFragment& target = changeset_.fragments[m.fragment()];
      for (auto& [key, value] : jetstream::FromProto(m.properties())) {
        SetProperty(target.properties, key, value);
        SetProperty(modified_[m.fragment()], key, value);
      }
    }
    Next();
  }

  void CallProcedure() {
    if (!rejections_.empty()) {
      // A procedure call is all or nothing.
      const auto& [index, error] = *rejections_.begin();
      return Reject(
          CouldNotApply(absl::StrCat("fragment ", index, ": ", error.message)));
    }
    v1::RunProcedureRequest request;
    request.set_scope(scope_);
    request.set_procedure(procedure_->name);
    ToProto(context_.principal, request.mutable_principal());
    for (const SyncFragment& f : changeset_.fragments) {
      jetstream::ToProto(f, request.add_fragments());
    }
    for (const ObjectSnapshot& o : current_) ToProto(o, request.add_current());
    clients_->RunProcedure(
        *procedure_, std::move(request), context_.deadline,
        context_.traceparent,
        [self = shared_from_this()](
            absl::StatusOr<v1::RunProcedureResponse> response) {
          self->OnProcedure(std::move(response));
        });
  }

  void OnProcedure(absl::StatusOr<v1::RunProcedureResponse> response) {
    if (!response.ok()) {
      return Reject(
          DownstreamUnavailable(procedure_->name, kCouldNotApplyPrefix));
    }
    if (response->reject()) {
      return Reject(CouldNotApply(
          response->message().empty()
              ? absl::StrCat("procedure '", procedure_->name, "' rejected it")
              : response->message()));
    }
    absl::StatusOr<std::vector<SyncFragment>> updates =
        jetstream::FromProto(response->updates());
    if (!updates.ok()) {
      LOG(WARNING) << "procedure " << procedure_->name
                   << " returned bad updates: " << updates.status().message();
      return Reject(CouldNotApply(absl::StrCat(
          "procedure '", procedure_->name,
          "' returned an invalid update: ", updates.status().message())));
    }
    follow_up_ = *std::move(updates);
    Finish();
  }

  void Reject(WireError error) {
    ValidationOutcome outcome;
    outcome.reject_all = std::move(error);
    done_(std::move(outcome));
  }

  void Finish() {
    ValidationOutcome outcome;
    for (auto& [index, error] : rejections_) {
      outcome.rejections.emplace_back(index, std::move(error));
    }
    for (size_t i = 0; i < modified_.size(); ++i) {
      if (!modified_[i].empty()) {
        outcome.modifications.emplace_back(i, std::move(modified_[i]));
      }
    }
    outcome.follow_up = std::move(follow_up_);
    done_(std::move(outcome));
  }

  HookClients* const clients_;
  const std::string scope_;
  // The fragments as modified so far.
  Changeset changeset_;
  const ChangesetContext context_;
  const std::vector<ObjectSnapshot> current_;
  const std::vector<const HookSpec*> validators_;
  const HookSpec* const procedure_;
  const std::function<void(ValidationOutcome)> done_;

  // Only one callback is outstanding at a time, so these need no lock.
  size_t next_validator_ = 0;
  std::map<size_t, WireError> rejections_;
  std::vector<PropertyList> modified_;  // by fragment
  std::vector<SyncFragment> follow_up_;
};

DownstreamValidator::DownstreamValidator(const HookConfig* config,
                                         HookClients* clients,
                                         const Schema* schema)
    : config_(config), clients_(clients), schema_(schema) {}

bool DownstreamValidator::Applies(const std::string& scope,
                                  const Changeset& changeset,
                                  const ChangesetContext& context) const {
  if (!context.procedure.empty()) return true;
  for (const HookSpec& v : config_->validators) {
    if (v.AppliesToScope(scope) && v.AppliesToFragments(changeset.fragments)) {
      return true;
    }
  }
  return false;
}

void DownstreamValidator::Validate(
    const std::string& scope, const Changeset& changeset,
    const ChangesetContext& context, std::vector<ObjectSnapshot> current,
    std::function<void(ValidationOutcome)> done) {
  auto reject = [&done](WireError error) {
    ValidationOutcome outcome;
    outcome.reject_all = std::move(error);
    done(std::move(outcome));
  };
  const HookSpec* procedure = nullptr;
  if (!context.procedure.empty()) {
    // Resolve, then check the constraints (docs/protocol.md#procedures).
    std::optional<ProcedureName> parsed = ParseProcedureName(context.procedure);
    if (!parsed.has_value()) return reject(CouldNotApply(kBadProcedureName));
    const std::string& model = parsed->model;
    const std::string& name = parsed->name;
    if (schema_ != nullptr && schema_->FindModel(model) == nullptr) {
      return reject(CouldNotApply(
          absl::StrCat("No such model '", model,
                       "' for procedure call with procedure '", name, "'")));
    }
    auto it = config_->procedures.find(context.procedure);
    if (it == config_->procedures.end() || !it->second.AppliesToScope(scope)) {
      return reject(CouldNotApply(absl::StrCat("No such procedure '", name,
                                               "' for model '", model, "'")));
    }
    procedure = &it->second;
    if (!MatchesConstraints(procedure->constraints, changeset.fragments,
                            current)) {
      return reject(
          CouldNotApply("Changes do not match the procedure constraints"));
    }
  }
  std::vector<const HookSpec*> validators;
  for (const HookSpec& v : config_->validators) {
    if (v.AppliesToScope(scope) && v.AppliesToFragments(changeset.fragments)) {
      validators.push_back(&v);
    }
  }
  auto run = std::make_shared<Run>(clients_, scope, changeset, context,
                                   std::move(current), std::move(validators),
                                   procedure, std::move(done));
  run->Next();
}

}  // namespace jetstream::hooks
