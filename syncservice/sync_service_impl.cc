#include "syncservice/sync_service_impl.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/fragment_proto.h"
#include "common/logging.h"
#include "common/status_util.h"
#include "common/trace_context.h"
#include "syncservice/sync_proto.h"

namespace jetstream {
namespace {

// A backend's call for a scope held elsewhere.
grpc::Status RedirectStatus(grpc::CallbackServerContext* context,
                            const std::string& scope, const Member& to) {
  if (!to.address.empty()) {
    context->AddTrailingMetadata(kRedirectAddressMetadata, to.address);
  }
  return grpc::Status(
      grpc::StatusCode::FAILED_PRECONDITION,
      to.id.empty()
          ? absl::StrCat("scope '", scope,
                         "' is moving between replicas: call again")
          : absl::StrCat("scope '", scope, "' is served by replica ", to.id,
                         " (", to.address, "): call it there"));
}

}  // namespace

SyncServiceImpl::SyncServiceImpl(ScopeRegistry* registry,
                                 SyncServiceOptions options)
    : registry_(registry), options_(std::move(options)) {
  deps_.registry = registry_;
  deps_.access = options_.access;
  deps_.procedures_enabled = options_.procedures_enabled;
  deps_.max_frame_bytes = options_.max_frame_bytes;
  deps_.opened = [this](const std::shared_ptr<Outbox>& outbox) {
    StreamOpened(outbox);
  };
  deps_.closed = [this](const Outbox* outbox) { StreamClosed(outbox); };
}

SyncServiceImpl::~SyncServiceImpl() = default;

sync::v1::ServiceEvent SyncServiceImpl::MembershipEvent(
    const MemberView& view) const {
  sync::v1::ServiceEvent event;
  const bool standalone =
      options_.cluster == nullptr || options_.cluster->standalone();
  MembershipToProto(
      options_.cluster != nullptr ? options_.cluster->self() : options_.self,
      view, standalone, event.mutable_membership());
  return event;
}

void SyncServiceImpl::StreamOpened(const std::shared_ptr<Outbox>& outbox) {
  MemberView view = options_.cluster != nullptr
                        ? options_.cluster->members()
                        : MemberView{{options_.self}, 0};
  {
    absl::MutexLock lock(&mu_);
    streams_.push_back(outbox);
  }
  outbox->Push(MembershipEvent(view));
}

void SyncServiceImpl::StreamClosed(const Outbox* outbox) {
  absl::MutexLock lock(&mu_);
  streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                [outbox](const std::shared_ptr<Outbox>& o) {
                                  return o.get() == outbox;
                                }),
                 streams_.end());
}

void SyncServiceImpl::OnMembersChanged(const MemberView& view) {
  std::vector<std::shared_ptr<Outbox>> streams;
  {
    absl::MutexLock lock(&mu_);
    streams = streams_;
  }
  const sync::v1::ServiceEvent event = MembershipEvent(view);
  for (const std::shared_ptr<Outbox>& outbox : streams) {
    outbox->Push(sync::v1::ServiceEvent(event));
  }
}

size_t SyncServiceImpl::open_streams() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

bool SyncServiceImpl::WaitForNoStreamsForTest(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return streams_.empty();
  };
  return mu_.AwaitWithTimeout(absl::Condition(&none), timeout);
}

grpc::ServerBidiReactor<sync::v1::GatewayFrame, sync::v1::ServiceFrame>*
SyncServiceImpl::Connect(grpc::CallbackServerContext* context) {
  return NewConnectReactor(&deps_, context->peer());
}

grpc::ServerUnaryReactor* SyncServiceImpl::GetScope(
    grpc::CallbackServerContext* context,
    const sync::v1::GetScopeRequest* request,
    sync::v1::GetScopeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const std::string scope = request->scope();
  registry_->Acquire(
      scope, RoutingHints{},
      [context, reactor, response, scope](ScopeLookup found) {
        if (found.redirect.has_value()) {
          return reactor->Finish(
              RedirectStatus(context, scope, *found.redirect));
        }
        if (found.host == nullptr) {
          return reactor->Finish(ToGrpcStatus(found.status));
        }
        if (!found.host->Fetch(
                nullptr,
                [reactor, response](const ScopeSnapshot& s) {
                  SnapshotToProto(s, response->mutable_snapshot());
                  reactor->Finish(grpc::Status::OK);
                },
                [reactor](const absl::Status& why) {
                  reactor->Finish(
                      grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                   absl::StrCat("the scope is unavailable: ",
                                                why.message())));
                })) {
          reactor->Finish(
              grpc::Status(grpc::StatusCode::UNAVAILABLE,
                           "the scope is unavailable here: call again"));
        }
      });
  return reactor;
}

grpc::ServerUnaryReactor* SyncServiceImpl::ListScopes(
    grpc::CallbackServerContext* context,
    const sync::v1::ListScopesRequest* /*request*/,
    sync::v1::ListScopesResponse* response) {
  for (const std::shared_ptr<ScopeHost>& host : registry_->List()) {
    ScopeHostInfo info = host->Info();
    sync::v1::ScopeInfo* out = response->add_scopes();
    out->set_scope(info.scope);
    out->set_root_model(info.root_model);
    out->set_version(info.version);
    out->set_object_count(info.object_count);
    out->set_watchers(info.watchers);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* SyncServiceImpl::ApplyChangeset(
    grpc::CallbackServerContext* context,
    const sync::v1::ApplyChangesetRequest* request,
    sync::v1::ApplyChangesetResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::vector<SyncFragment>> fragments =
      ConvertFragments(request->fragments());
  if (!fragments.ok()) {
    reactor->Finish(ToGrpcStatus(fragments.status()));
    return reactor;
  }
  // Server-originated: no origin session, so every session receives it.
  // Downstream validators get no more time than the caller gave us.
  const std::string scope = request->scope();
  auto changeset = std::make_shared<Changeset>(
      Changeset{*std::move(fragments), request->atomic()});
  const absl::Time deadline = absl::FromChrono(context->deadline());
  // A backend may pass its own trace on; otherwise one starts here.
  std::string traceparent;
  if (auto it = context->client_metadata().find("traceparent");
      it != context->client_metadata().end()) {
    traceparent = std::string(it->second.data(), it->second.size());
  }
  if (!IsValidTraceparent(traceparent)) traceparent = NewTraceparent();
  registry_->Acquire(
      scope, RoutingHints{},
      [context, reactor, response, scope, changeset, deadline,
       traceparent](ScopeLookup found) {
        if (found.redirect.has_value()) {
          return reactor->Finish(
              RedirectStatus(context, scope, *found.redirect));
        }
        if (found.host == nullptr) {
          return reactor->Finish(ToGrpcStatus(found.status));
        }
        ChangesetContext changeset_context;
        changeset_context.deadline = deadline;
        changeset_context.traceparent = traceparent;
        if (!found.host->Apply(
                std::move(*changeset), std::move(changeset_context),
                [reactor, response, scope](const ChangesetResult& result) {
                  for (const FragmentReply& reply : result.replies) {
                    ToProto(reply, response->add_replies());
                  }
                  response->set_version(result.version);
                  VLOG(1) << "backend apply scope=" << scope
                          << " version=" << result.version;
                  reactor->Finish(grpc::Status::OK);
                })) {
          reactor->Finish(
              grpc::Status(grpc::StatusCode::UNAVAILABLE,
                           "the scope is unavailable here: call again"));
        }
      });
  return reactor;
}

}  // namespace jetstream
