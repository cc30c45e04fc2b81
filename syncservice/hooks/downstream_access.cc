#include "syncservice/hooks/downstream_access.h"

#include <memory>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "syncservice/hooks/hook_proto.h"

namespace jetstream::hooks {

void DownstreamAccess::AuthorizeSession(
    SessionRequest request, std::function<void(SessionDecision)> done) {
  if (!config_->session_authorizer) {
    done(SessionDecision{});
    return;
  }
  const HookSpec& spec = *config_->session_authorizer;
  v1::AuthorizeSessionRequest proto;
  proto.set_session_id(request.session_id);
  proto.set_params_json(request.params_json);
  for (const auto& [k, v] : request.connection_params) {
    (*proto.mutable_connection_params())[k] = v;
  }
  proto.set_client_version(request.client_version);
  proto.set_origin(request.origin);
  proto.set_client_address(request.client_address);
  clients_->AuthorizeSession(
      spec, std::move(proto), absl::InfiniteFuture(),
      [&spec, done = std::move(done)](
          absl::StatusOr<v1::AuthorizeSessionResponse> response) {
        SessionDecision decision;
        if (!response.ok()) {
          if (spec.failure == FailurePolicy::kOpen) {
            LOG(WARNING) << "session authorizer " << spec.name
                         << " unavailable; failing open";
            done(std::move(decision));
            return;
          }
          decision.allow = false;
          decision.error = DownstreamUnavailable(spec.name);
          done(std::move(decision));
          return;
        }
        decision.allow = response->allow();
        if (decision.allow) {
          decision.principal = FromProto(response->principal());
        } else {
          decision.error = WireError{response->message(), ""};
        }
        done(std::move(decision));
      });
}

// Asks the matching scope authorizers one after the other.
class DownstreamAccess::ScopeRun
    : public std::enable_shared_from_this<ScopeRun> {
 public:
  ScopeRun(HookClients* clients, std::vector<const HookSpec*> hooks,
           v1::AuthorizeScopeRequest request,
           std::function<void(ScopeDecision)> done)
      : clients_(clients),
        hooks_(std::move(hooks)),
        request_(std::move(request)),
        done_(std::move(done)) {}

  void Next() {
    if (next_ == hooks_.size()) {
      done_(std::move(decision_));
      return;
    }
    const HookSpec& spec = *hooks_[next_++];
    clients_->AuthorizeScope(
        spec, request_, absl::InfiniteFuture(),
        [self = shared_from_this(),
         &spec](absl::StatusOr<v1::AuthorizeScopeResponse> response) {
          self->OnResponse(spec, std::move(response));
        });
  }

 private:
  void OnResponse(const HookSpec& spec,
                  absl::StatusOr<v1::AuthorizeScopeResponse> response) {
    if (!response.ok()) {
      if (spec.failure == FailurePolicy::kOpen) {
        LOG(WARNING) << "scope authorizer " << spec.name
                     << " unavailable; failing open";
        Next();
        return;
      }
      Deny(DownstreamUnavailable(spec.name));
      return;
    }
    switch (response->access()) {
      case v1::AuthorizeScopeResponse::READ_WRITE:
        break;
      case v1::AuthorizeScopeResponse::READ_ONLY:
        decision_.access = ScopeAccess::kReadOnly;
        break;
      default:
        Deny(WireError{response->message().empty()
                           ? std::string(kScopeAccessDenied)
                           : response->message(),
                       ""});
        return;
    }
    Next();
  }

  void Deny(WireError error) {
    ScopeDecision decision;
    decision.access = ScopeAccess::kDeny;
    decision.error = std::move(error);
    done_(std::move(decision));
  }

  HookClients* const clients_;
  const std::vector<const HookSpec*> hooks_;
  const v1::AuthorizeScopeRequest request_;
  const std::function<void(ScopeDecision)> done_;
  size_t next_ = 0;
  ScopeDecision decision_;
};

void DownstreamAccess::AuthorizeScope(const Principal& principal,
                                      const std::string& scope,
                                      const std::string& params_json,
                                      std::function<void(ScopeDecision)> done) {
  std::vector<const HookSpec*> hooks;
  for (const HookSpec& spec : config_->scope_authorizers) {
    if (spec.AppliesToScope(scope)) hooks.push_back(&spec);
  }
  if (hooks.empty()) {
    done(ScopeDecision{});
    return;
  }
  v1::AuthorizeScopeRequest request;
  ToProto(principal, request.mutable_principal());
  request.set_scope(scope);
  request.set_params_json(params_json);
  auto run = std::make_shared<ScopeRun>(clients_, std::move(hooks),
                                        std::move(request), std::move(done));
  run->Next();
}

}  // namespace jetstream::hooks
