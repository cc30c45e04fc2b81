#include "syncservice/connect_reactor.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/fragment_proto.h"
#include "common/logging.h"
#include "common/trace_context.h"

namespace jetstream {
namespace {

using sync::v1::GatewayFrame;
using sync::v1::GatewayRequest;
using sync::v1::ServiceEvent;

// StreamState
//
// What a Connect stream remembers across requests: the scopes it watches,
// which (session, scope) pairs are read-only, and where it was redirected.
// Shared with callbacks that may finish after the reactor is gone (scope
// loads, authorizations): once `closed` is set nothing is added any more.
//
// Lock order: mu, then a scope's lock, then the Outbox's. No scope or
// registry call is made with mu held.
struct StreamState {
  absl::Mutex mu;
  bool closed ABSL_GUARDED_BY(mu) = false;
  absl::flat_hash_map<std::string, std::shared_ptr<ScopeHost>> watched
      ABSL_GUARDED_BY(mu);
  // session_id + '\n' + scope.
  absl::flat_hash_set<std::string> read_only ABSL_GUARDED_BY(mu);
  // Scopes this stream was redirected for, and where to.
  absl::flat_hash_map<std::string, Member> redirected ABSL_GUARDED_BY(mu);

  static std::string Key(const std::string& session, const std::string& scope) {
    return absl::StrCat(session, "\n", scope);
  }

  // Where a request for `scope` must go instead, if the stream was
  // redirected for it and the request is not a resend after that redirect
  // (which clears it).
  std::optional<Member> Redirected(const std::string& scope,
                                   const RoutingHints& hints) {
    absl::MutexLock lock(&mu);
    auto it = redirected.find(scope);
    if (it == redirected.end()) return std::nullopt;
    if (hints.rerouted) {
      redirected.erase(it);
      return std::nullopt;
    }
    return it->second;
  }
  void NoteRedirect(const std::string& scope, const Member& to) {
    absl::MutexLock lock(&mu);
    if (!closed) redirected.insert_or_assign(scope, to);
  }

  // Records that `host` is watched (before it registers the watcher, so a
  // stream that closes meanwhile unwatches it). False if the stream closed.
  bool StartWatching(const std::string& scope,
                     const std::shared_ptr<ScopeHost>& host) {
    absl::MutexLock lock(&mu);
    if (closed) return false;
    watched.insert_or_assign(scope, host);
    return true;
  }
  void StopWatching(const std::string& scope, const ScopeHost* host) {
    absl::MutexLock lock(&mu);
    auto it = watched.find(scope);
    if (it != watched.end() && it->second.get() == host) watched.erase(it);
  }
  bool is_closed() {
    absl::MutexLock lock(&mu);
    return closed;
  }
};

void PushFetchError(Outbox& outbox, uint64_t id, std::string message,
                    std::string type = "") {
  ServiceEvent event;
  sync::v1::FetchResult* result = event.mutable_fetch_result();
  result->set_request_id(id);
  result->mutable_error()->set_message(std::move(message));
  if (!type.empty()) result->mutable_error()->set_type(std::move(type));
  outbox.Push(std::move(event));
}

void PushFetchRedirect(Outbox& outbox, uint64_t id, const Member& to) {
  ServiceEvent event;
  sync::v1::FetchResult* result = event.mutable_fetch_result();
  result->set_request_id(id);
  RedirectToProto(to, result->mutable_redirect());
  outbox.Push(std::move(event));
}

void PushApplyRedirect(Outbox& outbox, uint64_t id, const Member& to) {
  ServiceEvent event;
  sync::v1::ApplyResult* result = event.mutable_apply_result();
  result->set_request_id(id);
  RedirectToProto(to, result->mutable_redirect());
  outbox.Push(std::move(event));
}

void PushApplyRefusal(Outbox& outbox, uint64_t id, int fragments,
                      absl::string_view reason, uint64_t version) {
  ServiceEvent event;
  sync::v1::ApplyResult* result = event.mutable_apply_result();
  result->set_request_id(id);
  RejectAll(fragments, reason, result->mutable_replies());
  result->set_version(version);
  outbox.Push(std::move(event));
}

// "Route it anew": the host stopped between the lookup and the request.
const Member kAnywhere{};

class ConnectReactor final : public ConnectReactorBase {
 public:
  ConnectReactor(const ConnectDeps* deps, std::string peer)
      : deps_(deps),
        peer_(std::move(peer)),
        outbox_(std::make_shared<Outbox>(this, deps->max_frame_bytes)),
        state_(std::make_shared<StreamState>()) {
    LOG(INFO) << "stream opened peer=" << peer_;
    // Tells the gateway at once that the stream is established (it routes
    // scopes only to services it has heard from); the Membership follows.
    StartSendInitialMetadata();
    if (deps_->opened) deps_->opened(outbox_);
    StartRead(&request_);
  }

  // grpc::ServerBidiReactor
  void OnReadDone(bool ok) override {
    if (!ok) {
      outbox_->Close(/*flush=*/true);
      return;
    }
    outbox_->Hold();
    for (GatewayRequest& r : *request_.mutable_requests()) Dispatch(r);
    outbox_->Release();
    request_.Clear();
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override { outbox_->WriteDone(ok); }

  void OnCancel() override { outbox_->Close(/*flush=*/false); }

  void OnDone() override {
    outbox_->Detach();
    absl::flat_hash_map<std::string, std::shared_ptr<ScopeHost>> watched;
    {
      absl::MutexLock lock(&state_->mu);
      state_->closed = true;
      watched = std::move(state_->watched);
      state_->watched.clear();
    }
    for (const auto& [name, host] : watched) host->Unwatch(outbox_.get());
    LOG(INFO) << "stream closed peer=" << peer_ << " scopes=" << watched.size();
    if (deps_->closed) deps_->closed(outbox_.get());
    delete this;
  }

 private:
  // `request` may be moved from.
  void Dispatch(GatewayRequest& request) {
    const uint64_t id = request.request_id();
    switch (request.kind_case()) {
      case GatewayRequest::kFetch:
        return DoFetch(id, request.fetch());
      case GatewayRequest::kApply:
        return DoApply(id, std::move(*request.mutable_apply()));
      case GatewayRequest::kWatch:
        return DoWatch(request.watch());
      case GatewayRequest::kUnwatch:
        return DoUnwatch(request.unwatch());
      case GatewayRequest::kAuthorizeSession:
        return DoAuthorizeSession(id, request.authorize_session());
      case GatewayRequest::KIND_NOT_SET:
        break;
    }
    LOG(WARNING) << "stream peer=" << peer_ << " request_id=" << id
                 << ": empty request ignored";
  }

  void DoAuthorizeSession(uint64_t id,
                          const sync::v1::AuthorizeSessionRequest& request) {
    VLOG(1) << "authorize session peer=" << peer_ << " request_id=" << id
            << " session=" << request.session_id();
    std::shared_ptr<Outbox> outbox = outbox_;
    auto answer = [outbox, id](SessionDecision decision) {
      ServiceEvent event;
      sync::v1::SessionAuthorization* out =
          event.mutable_session_authorization();
      out->set_request_id(id);
      out->set_allow(decision.allow);
      if (decision.allow) {
        PrincipalToProto(decision.principal, out->mutable_principal());
      } else {
        out->mutable_error()->set_message(decision.error.message);
        out->mutable_error()->set_type(decision.error.type);
      }
      outbox->Push(std::move(event));
    };
    if (deps_->access == nullptr) return answer(SessionDecision{});
    SessionRequest session;
    session.session_id = request.session_id();
    session.params_json = request.params_json();
    for (const auto& [k, v] : request.connection_params()) {
      session.connection_params[k] = v;
    }
    session.client_version = request.client_version();
    session.origin = request.origin();
    session.client_address = request.client_address();
    deps_->access->AuthorizeSession(std::move(session), std::move(answer));
  }

  void DoFetch(uint64_t id, const sync::v1::FetchRequest& fetch) {
    VLOG(1) << "fetch peer=" << peer_ << " request_id=" << id
            << " scope=" << fetch.scope() << " session=" << fetch.session_id();
    const RoutingHints hints = HintsFromProto(fetch.routing());
    if (std::optional<Member> to = state_->Redirected(fetch.scope(), hints)) {
      return PushFetchRedirect(*outbox_, id, *to);
    }
    if (deps_->access == nullptr) {
      return Fetch(deps_, state_, outbox_, id, fetch.scope(),
                   fetch.session_id(),
                   /*read_only=*/false, hints);
    }
    // The decision may come later, on another thread: the state and the
    // outbox outlive this reactor if need be.
    deps_->access->AuthorizeScope(
        PrincipalFromProto(fetch.principal()), fetch.scope(),
        fetch.params_json(),
        [deps = deps_, state = state_, outbox = outbox_, id,
         scope = fetch.scope(), session = fetch.session_id(),
         hints](ScopeDecision decision) {
          if (decision.access == ScopeAccess::kDeny) {
            PushFetchError(*outbox, id, decision.error.message,
                           decision.error.type);
            return;
          }
          Fetch(deps, state, outbox, id, scope, session,
                decision.access == ScopeAccess::kReadOnly, hints);
        });
  }

  // After authorization: finds the scope, then queues the snapshot.
  static void Fetch(const ConnectDeps* deps,
                    const std::shared_ptr<StreamState>& state,
                    const std::shared_ptr<Outbox>& outbox, uint64_t id,
                    const std::string& scope, const std::string& session,
                    bool read_only, RoutingHints hints) {
    deps->registry->Acquire(
        scope, hints,
        [state, outbox, id, scope, session, read_only,
         hints](ScopeLookup found) {
          if (std::optional<Member> to = state->Redirected(scope, hints)) {
            return PushFetchRedirect(*outbox, id, *to);
          }
          if (found.redirect.has_value()) {
            state->NoteRedirect(scope, *found.redirect);
            return PushFetchRedirect(*outbox, id, *found.redirect);
          }
          if (found.host == nullptr) {
            return PushFetchError(*outbox, id,
                                  std::string(found.status.message()));
          }
          {
            absl::MutexLock lock(&state->mu);
            if (read_only) {
              state->read_only.insert(StreamState::Key(session, scope));
            } else {
              state->read_only.erase(StreamState::Key(session, scope));
            }
          }
          std::shared_ptr<ScopeHost> host = std::move(found.host);
          if (!state->StartWatching(scope, host)) return;
          // Released under the scope's lock, at the snapshot's place in the
          // scope's order: ordered before the next commit.
          const bool queued = host->Fetch(
              outbox,
              [outbox, id, read_only](const ScopeSnapshot& snapshot) {
                outbox->Push(
                    SnapshotEvent{/*resync=*/false, id, snapshot, read_only});
              },
              // The host stopped before the snapshot's turn came: nothing was
              // sent; the gateway asks again.
              [outbox, id](const absl::Status&) {
                PushFetchRedirect(*outbox, id, kAnywhere);
              });
          if (!queued) {
            state->StopWatching(scope, host.get());
            return PushFetchRedirect(*outbox, id, kAnywhere);
          }
          // Closed while the watcher registered: take it back.
          if (state->is_closed()) host->Unwatch(outbox.get());
        });
  }

  void DoApply(uint64_t id, sync::v1::ApplyRequest apply) {
    VLOG(1) << "apply peer=" << peer_ << " request_id=" << id
            << " scope=" << apply.scope() << " session=" << apply.session_id()
            << " fragments=" << apply.fragments_size();
    const RoutingHints hints = HintsFromProto(apply.routing());
    if (std::optional<Member> to = state_->Redirected(apply.scope(), hints)) {
      return PushApplyRedirect(*outbox_, id, *to);
    }
    const std::string scope = apply.scope();
    deps_->registry->Acquire(
        scope, hints,
        [deps = deps_, state = state_, outbox = outbox_, peer = peer_, id,
         hints, apply = std::move(apply)](ScopeLookup found) {
          const std::string& scope = apply.scope();
          if (std::optional<Member> to = state->Redirected(scope, hints)) {
            return PushApplyRedirect(*outbox, id, *to);
          }
          if (found.redirect.has_value()) {
            state->NoteRedirect(scope, *found.redirect);
            return PushApplyRedirect(*outbox, id, *found.redirect);
          }
          const int n = apply.fragments_size();
          if (found.host == nullptr) {
            return PushApplyRefusal(*outbox, id, n, found.status.message(), 0);
          }
          Apply(deps, state, outbox, peer, id, apply, *found.host);
        });
  }

  // The scope is served here: checks the request, then queues it.
  static void Apply(const ConnectDeps* deps,
                    const std::shared_ptr<StreamState>& state,
                    const std::shared_ptr<Outbox>& outbox,
                    const std::string& peer, uint64_t id,
                    const sync::v1::ApplyRequest& apply, ScopeHost& host) {
    const int n = apply.fragments_size();
    absl::StatusOr<std::vector<SyncFragment>> fragments =
        ConvertFragments(apply.fragments());
    if (!fragments.ok()) {
      LOG(WARNING) << "stream peer=" << peer << " request_id=" << id
                   << ": bad apply: " << fragments.status().message();
      return PushApplyRefusal(*outbox, id, n, fragments.status().message(),
                              host.version());
    }
    if (!apply.procedure().empty() && !deps->procedures_enabled) {
      return PushApplyRefusal(*outbox, id, n, ProcedureError(apply.procedure()),
                              host.version());
    }
    bool read_only = false;
    if (n > 0) {
      absl::MutexLock lock(&state->mu);
      read_only = state->read_only.contains(
          StreamState::Key(apply.session_id(), apply.scope()));
    }
    if (read_only) {
      // The gateway refuses these itself; this is the second line.
      ServiceEvent event;
      sync::v1::ApplyResult* result = event.mutable_apply_result();
      result->set_request_id(id);
      for (int i = 0; i < n; ++i) {
        sync::v1::Error* error = result->add_replies()->mutable_error();
        error->set_message(kScopeReadOnly.message);
        error->set_type(kScopeReadOnly.type);
      }
      result->set_version(host.version());
      outbox->Push(std::move(event));
      return;
    }
    ChangesetContext context;
    context.origin_session_id = apply.session_id();
    context.procedure = apply.procedure();
    context.principal = PrincipalFromProto(apply.principal());
    context.traceparent = IsValidTraceparent(apply.traceparent())
                              ? apply.traceparent()
                              : NewTraceparent();
    VLOG(1) << "apply scope=" << apply.scope()
            << " session=" << apply.session_id()
            << " trace_id=" << TraceIdOf(context.traceparent);
    // The result is queued under the scope's lock, before its own Commit.
    const bool queued = host.Apply(
        Changeset{*std::move(fragments), apply.atomic()}, std::move(context),
        [outbox, id](const ChangesetResult& r) {
          ServiceEvent event;
          sync::v1::ApplyResult* result = event.mutable_apply_result();
          result->set_request_id(id);
          result->mutable_replies()->Reserve(
              static_cast<int>(r.replies.size()));
          for (const FragmentReply& reply : r.replies) {
            ToProto(reply, result->add_replies());
          }
          result->set_version(r.version);
          outbox->Push(std::move(event));
        });
    if (!queued) {
      // The host stopped or is handing off: nothing was applied. Later
      // requests of this stream for the scope follow it, so none overtakes
      // it.
      state->NoteRedirect(apply.scope(), kAnywhere);
      PushApplyRedirect(*outbox, id, kAnywhere);
    }
  }

  void DoWatch(const sync::v1::WatchRequest& watch) {
    const RoutingHints hints = HintsFromProto(watch.routing());
    if (std::optional<Member> to = state_->Redirected(watch.scope(), hints)) {
      return outbox_->PushScopeLost(watch.scope(), "served elsewhere", &*to);
    }
    deps_->registry->Acquire(
        watch.scope(), hints,
        [state = state_, outbox = outbox_, peer = peer_, watch,
         hints](ScopeLookup found) {
          const std::string& scope = watch.scope();
          if (std::optional<Member> to = state->Redirected(scope, hints)) {
            return outbox->PushScopeLost(scope, "served elsewhere", &*to);
          }
          if (found.redirect.has_value()) {
            state->NoteRedirect(scope, *found.redirect);
            return outbox->PushScopeLost(scope, "served elsewhere",
                                         &*found.redirect);
          }
          if (found.host == nullptr) {
            LOG(WARNING) << "stream peer=" << peer << ": cannot watch '"
                         << scope << "': " << found.status.message();
            return outbox->PushScopeLost(scope, found.status.message(),
                                         nullptr);
          }
          std::shared_ptr<ScopeHost> host = std::move(found.host);
          if (!state->StartWatching(scope, host)) return;
          // A scope loaded since (a template scope created, a restart, a
          // move) is a new epoch, hence a Resync.
          ScopeHost::CatchUp how =
              host->Watch(outbox, watch.epoch(), watch.after_version());
          if (how == ScopeHost::CatchUp::kRefused) {
            state->StopWatching(scope, host.get());
            return outbox->PushScopeLost(scope, "the scope's host stopped",
                                         nullptr);
          }
          if (state->is_closed()) host->Unwatch(outbox.get());
          VLOG(1) << "watch peer=" << peer << " scope=" << scope
                  << " after=" << watch.after_version()
                  << (how == ScopeHost::CatchUp::kReplayed ? " replayed"
                                                           : " resync");
        });
  }

  void DoUnwatch(const sync::v1::UnwatchRequest& unwatch) {
    std::shared_ptr<ScopeHost> host;
    {
      absl::MutexLock lock(&state_->mu);
      auto it = state_->watched.find(unwatch.scope());
      if (it == state_->watched.end()) return;
      host = std::move(it->second);
      state_->watched.erase(it);
    }
    host->Unwatch(outbox_.get());
  }

  const ConnectDeps* const deps_;
  const std::string peer_;
  const std::shared_ptr<Outbox> outbox_;
  const std::shared_ptr<StreamState> state_;
  // The frame being read; reused.
  GatewayFrame request_;
};

}  // namespace

ConnectReactorBase* NewConnectReactor(const ConnectDeps* deps,
                                      std::string peer) {
  return new ConnectReactor(deps, std::move(peer));
}

}  // namespace jetstream
