#include "syncservice/sync_service_impl.h"

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fragment_proto.h"
#include "common/logging.h"
#include "common/status_util.h"
#include "syncservice/scope_host.h"

namespace jetstream {

namespace {

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

// The per-fragment error of a changeset sent for a read-only scope.
const WireError kScopeReadOnly{"Scope is read-only for this session",
                               "scope-read-only"};

using sync::v1::GatewayFrame;
using sync::v1::GatewayRequest;
using sync::v1::ServiceEvent;
using sync::v1::ServiceFrame;

using Reactor = grpc::ServerBidiReactor<GatewayFrame, ServiceFrame>;

// The typed error of a changeset refused as a whole (docs/protocol.md#typed-errors).
constexpr absl::string_view kCouldNotApply = "could-not-apply-sync-message";

void SnapshotToProto(const ScopeSnapshot& s, sync::v1::ScopeSnapshot* out) {
  out->set_scope(s.scope);
  out->set_epoch(s.epoch);
  out->set_version(s.version);
  out->set_root_uuid(s.root_uuid.ToString());
  if (s.fragments_json != nullptr) out->set_fragments_json(*s.fragments_json);
}

// One reply per fragment, each `Could not apply SyncMessage: <reason>`.
void RejectAll(
    int fragment_count, absl::string_view reason,
    google::protobuf::RepeatedPtrField<sync::v1::FragmentReply>* out) {
  const std::string message =
      absl::StrCat("Could not apply SyncMessage: ", reason);
  for (int i = 0; i < fragment_count; ++i) {
    sync::v1::Error* error = out->Add()->mutable_error();
    error->set_message(message);
    error->set_type(std::string(kCouldNotApply));
  }
}

// Converts request fragments; the error names the offending fragment.
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

// Procedures are not implemented yet: every named one is unknown
// (the messages of docs/protocol.md#procedures), and the changeset is
// refused as a whole.
std::string ProcedureError(absl::string_view procedure) {
  std::vector<absl::string_view> parts = absl::StrSplit(procedure, '.');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
    return "Procedure must be of the format \"ModelName.procedureName\"";
  }
  return absl::StrCat("No such procedure '", parts[1], "' for model '",
                      parts[0], "'");
}

// A commit to send; `replayed` as in ScopeWatcher::OnCommit.
struct CommitEvent {
  CommitPtr commit;
  bool replayed = false;
};

// A snapshot to send: a FetchResult answering `request_id`, or a Resync.
struct SnapshotEvent {
  bool resync = false;
  uint64_t request_id = 0;
  ScopeSnapshot snapshot;
  bool read_only = false;  // FetchResult.read_only
};

// An event waiting in a stream's queue. Commits and snapshots keep their
// shared JSON bytes until the frame is built; the rest is built eagerly.
using OutEvent = std::variant<ServiceEvent, CommitEvent, SnapshotEvent>;

// Roughly the bytes an event adds to a frame.
size_t EstimateBytes(const OutEvent& event) {
  constexpr size_t kOverhead = 64;
  if (const auto* c = std::get_if<CommitEvent>(&event)) {
    return kOverhead + c->commit->fragments_json->size() +
           c->commit->origin_session_id.size() + c->commit->scope.size();
  }
  if (const auto* s = std::get_if<SnapshotEvent>(&event)) {
    return kOverhead + s->snapshot.fragments_json->size() +
           s->snapshot.scope.size();
  }
  return kOverhead + std::get<ServiceEvent>(event).ByteSizeLong();
}

void AppendTo(OutEvent& event, ServiceFrame* frame) {
  ServiceEvent* out = frame->add_events();
  if (auto* event_commit = std::get_if<CommitEvent>(&event)) {
    const CommitRecord& c = *event_commit->commit;
    sync::v1::Commit* proto = out->mutable_commit();
    proto->set_scope(c.scope);
    proto->set_epoch(c.epoch);
    proto->set_version(c.version);
    proto->set_origin_session_id(c.origin_session_id);
    proto->set_fragments_json(*c.fragments_json);
    proto->set_replayed(event_commit->replayed);
  } else if (auto* s = std::get_if<SnapshotEvent>(&event)) {
    if (s->resync) {
      SnapshotToProto(s->snapshot, out->mutable_resync()->mutable_snapshot());
    } else {
      sync::v1::FetchResult* result = out->mutable_fetch_result();
      result->set_request_id(s->request_id);
      result->set_read_only(s->read_only);
      SnapshotToProto(s->snapshot, result->mutable_snapshot());
    }
  } else {
    out->Swap(&std::get<ServiceEvent>(event));
  }
}

// Outbox
//
// The outgoing half of one Connect stream, and the ScopeWatcher of the
// scopes it watches. Shared: scope hosts hold it while it is registered, so
// it may outlive its reactor; once Detach() ran it drops every event and
// never touches the reactor again.
//
// Threads: Push() comes from the reactor's reactions and from any thread
// that commits to a watched scope (under that scope's lock); WriteDone() and
// Close() come from reactions. Lock order: scope lock, then mu_. StartWrite()
// and Finish() are called without mu_.
//
// Invariants: at most one write is in flight (write_in_flight_); `batch_`
// and `frame_` belong to that write; Finish() is called once, only while no
// write is in flight, so the reactor (whose OnDone needs Finish) stays alive
// for as long as a write is in flight.
class Outbox final : public ScopeWatcher {
 public:
  Outbox(Reactor* reactor, size_t max_frame_bytes)
      : max_frame_bytes_(max_frame_bytes), reactor_(reactor) {}

  // ScopeWatcher
  void OnCommit(const CommitPtr& commit, bool replayed) override {
    Push(CommitEvent{commit, replayed});
  }
  void OnResync(const ScopeSnapshot& snapshot) override {
    Push(SnapshotEvent{/*resync=*/true, 0, snapshot});
  }
  void OnLost(const std::string& scope, const absl::Status& why) override {
    ServiceEvent event;
    sync::v1::ScopeLost* lost = event.mutable_scope_lost();
    lost->set_scope(scope);
    lost->mutable_error()->set_message(std::string(why.message()));
    Push(std::move(event));
  }

  // Queues `event` and starts a write if none is in flight. Never blocks
  // beyond mu_. Dropped once the stream is closing.
  void Push(OutEvent event) {
    Reactor* writer = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (reactor_ == nullptr || closing_) return;
      queue_.push_back(std::move(event));
      writer = StartWriteLocked();
    }
    if (writer != nullptr) Write(writer);
  }

  // Hold() / Release(): between them Push() only queues; Release() starts
  // the write of everything queued meanwhile (unless one is in flight,
  // which continues with it). The reactor holds the outbox while it
  // dispatches one GatewayFrame, so the answers its requests produce on
  // the spot leave together in one ServiceFrame.
  void Hold() {
    absl::MutexLock lock(&mu_);
    ++holds_;
  }
  void Release() {
    Reactor* writer = nullptr;
    {
      absl::MutexLock lock(&mu_);
      --holds_;
      writer = StartWriteLocked();
    }
    if (writer != nullptr) Write(writer);
  }

  // If something is queued and no write is in flight or held off, takes
  // the batch and returns the reactor to Write() it to (outside mu_).
  Reactor* StartWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (write_in_flight_ || holds_ > 0 || queue_.empty() ||
        reactor_ == nullptr) {
      return nullptr;
    }
    write_in_flight_ = true;
    TakeBatchLocked();
    return reactor_;
  }

  // OnWriteDone: continue with everything queued meanwhile, or finish.
  void WriteDone(bool ok) {
    Reactor* writer = nullptr;
    bool write_more = false;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        // The stream is broken: nothing more can be delivered.
        closing_ = true;
        queue_.clear();
        SetStatusLocked(
            grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      }
      if (queue_.empty()) {
        write_in_flight_ = false;
        finish = FinishDueLocked();
      } else {
        TakeBatchLocked();
        write_more = true;
      }
      writer = reactor_;
    }
    if (write_more) {
      Write(writer);
    } else if (finish.has_value()) {
      writer->Finish(*finish);
    }
  }

  // The read side ended: `flush` (the gateway half-closed) sends what is
  // queued first; otherwise (cancelled) it is dropped. Either way no new
  // events are accepted and the stream finishes once no write is in flight.
  void Close(bool flush) {
    Reactor* writer = nullptr;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;
      if (!flush) {
        queue_.clear();
        SetStatusLocked(grpc::Status::CANCELLED);
      }
      finish = FinishDueLocked();
      writer = reactor_;
    }
    if (finish.has_value()) writer->Finish(*finish);
  }

  // OnDone: the reactor is going away.
  void Detach() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    queue_.clear();
  }

 private:
  // The status to finish with, if the caller must call Finish() now; marks
  // the stream finished.
  std::optional<grpc::Status> FinishDueLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!closing_ || write_in_flight_ || !queue_.empty() || finished_ ||
        reactor_ == nullptr) {
      return std::nullopt;
    }
    finished_ = true;
    return status_;
  }

  // The first failure wins.
  void SetStatusLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (status_.ok()) status_ = std::move(status);
  }

  // Moves the events of the next frame from queue_ to batch_.
  void TakeBatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_t bytes = 0;
    while (!queue_.empty() && (batch_.empty() || bytes < max_frame_bytes_)) {
      bytes += EstimateBytes(queue_.front());
      batch_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }

  // Builds frame_ from batch_ and starts the write. Only the owner of the
  // in-flight write calls this, without mu_.
  void Write(Reactor* writer) {
    frame_.Clear();
    for (OutEvent& event : batch_) AppendTo(event, &frame_);
    batch_.clear();
    writer->StartWrite(&frame_);
  }

  const size_t max_frame_bytes_;

  absl::Mutex mu_;
  Reactor* reactor_ ABSL_GUARDED_BY(mu_);  // null once detached
  std::deque<OutEvent> queue_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  int holds_ ABSL_GUARDED_BY(mu_) = 0;  // Hold() calls not yet Release()d
  bool closing_ ABSL_GUARDED_BY(mu_) = false;   // accepts no more events
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish() was called
  grpc::Status status_ ABSL_GUARDED_BY(mu_);    // what Finish() reports

  // Owned by the write in flight.
  std::vector<OutEvent> batch_;
  ServiceFrame frame_;
};

// StreamState
//
// What a Connect stream remembers across requests: the scopes it watches
// and which (session, scope) pairs are read-only. Shared with asynchronous
// authorization callbacks, which may finish after the reactor is gone: once
// `closed` is set nothing is added any more.
//
// Lock order: mu, then a scope's lock, then the Outbox's.
struct StreamState {
  absl::Mutex mu;
  bool closed ABSL_GUARDED_BY(mu) = false;
  absl::flat_hash_map<std::string, std::shared_ptr<ScopeHost>> watched
      ABSL_GUARDED_BY(mu);
  // session_id + '\n' + scope.
  absl::flat_hash_set<std::string> read_only ABSL_GUARDED_BY(mu);

  static std::string Key(const std::string& session, const std::string& scope) {
    return absl::StrCat(session, "\n", scope);
  }
};

// Answers FetchRequest `id` with an error for the client.
void PushFetchError(Outbox& outbox, uint64_t id, std::string message,
                    std::string type = "") {
  ServiceEvent event;
  sync::v1::FetchResult* result = event.mutable_fetch_result();
  result->set_request_id(id);
  result->mutable_error()->set_message(std::move(message));
  if (!type.empty()) result->mutable_error()->set_type(std::move(type));
  outbox.Push(std::move(event));
}

// Answers a FetchRequest whose scope access is decided: snapshot, watch.
void FetchAuthorized(const std::shared_ptr<StreamState>& state,
                     const std::shared_ptr<Outbox>& outbox,
                     ScopeRegistry* registry, uint64_t id,
                     const std::string& scope, const std::string& session,
                     bool read_only) {
  absl::MutexLock lock(&state->mu);
  if (state->closed) return;
  absl::StatusOr<std::shared_ptr<ScopeHost>> host = registry->Fetch(scope);
  if (!host.ok()) {
    PushFetchError(*outbox, id, std::string(host.status().message()));
    return;
  }
  if (read_only) {
    state->read_only.insert(StreamState::Key(session, scope));
  } else {
    state->read_only.erase(StreamState::Key(session, scope));
  }
  // Released under the scope's lock, at the snapshot's place in the
  // scope's order: ordered before the next commit.
  auto unavailable = [outbox, id](absl::string_view why) {
    PushFetchError(*outbox, id,
                   absl::StrCat("Scope unavailable, fetch it again (", why, ")"));
  };
  const bool queued = (*host)->Fetch(
      outbox,
      [outbox, id, read_only](const ScopeSnapshot& snapshot) {
        outbox->Push(SnapshotEvent{/*resync=*/false, id, snapshot, read_only});
      },
      // Its host lost the scope before the snapshot's turn came.
      [unavailable](const absl::Status& why) { unavailable(why.message()); });
  if (!queued) {
    unavailable("its host stopped");
    return;
  }
  // A host loaded afresh (its predecessor lost the scope) replaces the old.
  state->watched.insert_or_assign(scope, *std::move(host));
}

}  // namespace

// ConnectReactor
//
// One gateway stream. Reads frames one at a time and dispatches their
// requests in order on the reading thread; writes go through the Outbox.
// Deletes itself in OnDone(), after unwatching every scope it watched.
class SyncServiceImpl::ConnectReactor final : public Reactor {
 public:
  ConnectReactor(SyncServiceImpl* service, std::string peer)
      : service_(service),
        peer_(std::move(peer)),
        outbox_(
            std::make_shared<Outbox>(this, service->options_.max_frame_bytes)),
        state_(std::make_shared<StreamState>()) {
    service_->StreamOpened();
    LOG(INFO) << "stream opened peer=" << peer_;
    // Tells the gateway at once that the stream is established (it routes
    // scopes only to services it has heard from).
    StartSendInitialMetadata();
    StartRead(&request_);
  }

  // grpc::ServerBidiReactor
  void OnReadDone(bool ok) override {
    if (!ok) {
      outbox_->Close(/*flush=*/true);
      return;
    }
    outbox_->Hold();
    for (const GatewayRequest& r : request_.requests()) Dispatch(r);
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
    LOG(INFO) << "stream closed peer=" << peer_
              << " scopes=" << watched.size();
    SyncServiceImpl* service = service_;
    delete this;
    service->StreamClosed();
  }

 private:
  void Dispatch(const GatewayRequest& request) {
    const uint64_t id = request.request_id();
    switch (request.kind_case()) {
      case GatewayRequest::kFetch:
        return DoFetch(id, request.fetch());
      case GatewayRequest::kApply:
        return DoApply(id, request.apply());
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
    AccessPolicy* access = service_->options_.access;
    if (access == nullptr) return answer(SessionDecision{});
    SessionRequest session;
    session.session_id = request.session_id();
    session.params_json = request.params_json();
    for (const auto& [k, v] : request.connection_params()) {
      session.connection_params[k] = v;
    }
    session.client_version = request.client_version();
    access->AuthorizeSession(std::move(session), std::move(answer));
  }

  void DoFetch(uint64_t id, const sync::v1::FetchRequest& fetch) {
    VLOG(1) << "fetch peer=" << peer_ << " request_id=" << id
            << " scope=" << fetch.scope() << " session=" << fetch.session_id();
    ScopeRegistry* registry = service_->registry_;
    AccessPolicy* access = service_->options_.access;
    if (access == nullptr) {
      FetchAuthorized(state_, outbox_, registry, id, fetch.scope(),
                      fetch.session_id(), /*read_only=*/false);
      return;
    }
    // The decision may come later, on another thread: the state and the
    // outbox outlive this reactor if need be.
    access->AuthorizeScope(
        PrincipalFromProto(fetch.principal()), fetch.scope(),
        fetch.params_json(),
        [state = state_, outbox = outbox_, registry, id, scope = fetch.scope(),
         session = fetch.session_id()](ScopeDecision decision) {
          if (decision.access == ScopeAccess::kDeny) {
            PushFetchError(*outbox, id, decision.error.message,
                           decision.error.type);
            return;
          }
          FetchAuthorized(state, outbox, registry, id, scope, session,
                          decision.access == ScopeAccess::kReadOnly);
        });
  }

  void DoApply(uint64_t id, const sync::v1::ApplyRequest& apply) {
    VLOG(1) << "apply peer=" << peer_ << " request_id=" << id
            << " scope=" << apply.scope() << " session=" << apply.session_id()
            << " fragments=" << apply.fragments_size();
    ServiceEvent event;
    sync::v1::ApplyResult* result = event.mutable_apply_result();
    result->set_request_id(id);
    auto refuse = [&](absl::string_view reason, uint64_t version) {
      RejectAll(apply.fragments_size(), reason, result->mutable_replies());
      result->set_version(version);
      outbox_->Push(std::move(event));
    };

    absl::StatusOr<std::shared_ptr<ScopeHost>> host =
        service_->registry_->Fetch(apply.scope());
    if (!host.ok()) return refuse(host.status().message(), 0);
    absl::StatusOr<std::vector<SyncFragment>> fragments =
        ConvertFragments(apply.fragments());
    if (!fragments.ok()) {
      LOG(WARNING) << "stream peer=" << peer_ << " request_id=" << id
                   << ": bad apply: " << fragments.status().message();
      return refuse(fragments.status().message(), (*host)->version());
    }
    if (!apply.procedure().empty() && !service_->options_.procedures_enabled) {
      return refuse(ProcedureError(apply.procedure()), (*host)->version());
    }
    bool read_only = false;
    if (apply.fragments_size() > 0) {
      absl::MutexLock lock(&state_->mu);
      read_only = state_->read_only.contains(
          StreamState::Key(apply.session_id(), apply.scope()));
    }
    if (read_only) {
      // The gateway refuses these itself; this is the second line.
      for (int i = 0; i < apply.fragments_size(); ++i) {
        sync::v1::Error* error = result->add_replies()->mutable_error();
        error->set_message(kScopeReadOnly.message);
        error->set_type(kScopeReadOnly.type);
      }
      result->set_version((*host)->version());
      outbox_->Push(std::move(event));
      return;
    }
    // The result is queued under the scope's lock, before its own Commit.
    ChangesetContext context;
    context.origin_session_id = apply.session_id();
    context.procedure = apply.procedure();
    context.principal = PrincipalFromProto(apply.principal());
    std::shared_ptr<Outbox> outbox = outbox_;
    (*host)->Apply(Changeset{*std::move(fragments), apply.atomic()},
                   std::move(context), [outbox, id](const ChangesetResult& r) {
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
  }

  void DoWatch(const sync::v1::WatchRequest& watch) {
    // A scope created from a template since (or lost with a restart) comes
    // back as a new epoch, hence a Resync.
    absl::StatusOr<std::shared_ptr<ScopeHost>> host =
        service_->registry_->Fetch(watch.scope());
    if (!host.ok()) {
      // The contract has no reply for a watch; the gateway's sessions of
      // this scope get nothing more.
      LOG(WARNING) << "stream peer=" << peer_ << ": cannot watch '"
                   << watch.scope() << "': " << host.status().message();
      return;
    }
    ScopeHost::CatchUp how =
        (*host)->Watch(outbox_, watch.epoch(), watch.after_version());
    VLOG(1) << "watch peer=" << peer_ << " scope=" << watch.scope()
            << " after=" << watch.after_version()
            << (how == ScopeHost::CatchUp::kReplayed ? " replayed" : " resync");
    absl::MutexLock lock(&state_->mu);
    state_->watched.insert_or_assign(watch.scope(), *std::move(host));
  }

  void DoUnwatch(const sync::v1::UnwatchRequest& unwatch) {
    absl::MutexLock lock(&state_->mu);
    auto it = state_->watched.find(unwatch.scope());
    if (it == state_->watched.end()) return;
    it->second->Unwatch(outbox_.get());
    state_->watched.erase(it);
  }

  SyncServiceImpl* const service_;
  const std::string peer_;
  const std::shared_ptr<Outbox> outbox_;
  const std::shared_ptr<StreamState> state_;
  // The frame being read; reused.
  GatewayFrame request_;
};

SyncServiceImpl::SyncServiceImpl(ScopeRegistry* registry,
                                 SyncServiceOptions options)
    : registry_(registry), options_(options) {}

SyncServiceImpl::~SyncServiceImpl() = default;

void SyncServiceImpl::StreamOpened() {
  absl::MutexLock lock(&mu_);
  ++open_streams_;
}

void SyncServiceImpl::StreamClosed() {
  absl::MutexLock lock(&mu_);
  --open_streams_;
}

size_t SyncServiceImpl::open_streams() const {
  absl::MutexLock lock(&mu_);
  return open_streams_;
}

bool SyncServiceImpl::WaitForNoStreamsForTest(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return open_streams_ == 0;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&none), timeout);
}

Reactor* SyncServiceImpl::Connect(grpc::CallbackServerContext* context) {
  return new ConnectReactor(this, context->peer());
}

grpc::ServerUnaryReactor* SyncServiceImpl::GetScope(
    grpc::CallbackServerContext* context,
    const sync::v1::GetScopeRequest* request,
    sync::v1::GetScopeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::shared_ptr<ScopeHost>> host =
      registry_->Fetch(request->scope());
  if (!host.ok()) {
    reactor->Finish(ToGrpcStatus(host.status()));
    return reactor;
  }
  if (!(*host)->Fetch(
          nullptr,
          [reactor, response](const ScopeSnapshot& s) {
            SnapshotToProto(s, response->mutable_snapshot());
            reactor->Finish(grpc::Status::OK);
          },
          [reactor](const absl::Status& why) {
            reactor->Finish(grpc::Status(
                grpc::StatusCode::UNAVAILABLE,
                absl::StrCat("the scope is unavailable: ", why.message())));
          })) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "the scope is unavailable"));
  }
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
  absl::StatusOr<std::shared_ptr<ScopeHost>> host =
      registry_->Fetch(request->scope());
  if (!host.ok()) {
    reactor->Finish(ToGrpcStatus(host.status()));
    return reactor;
  }
  absl::StatusOr<std::vector<SyncFragment>> fragments =
      ConvertFragments(request->fragments());
  if (!fragments.ok()) {
    reactor->Finish(ToGrpcStatus(fragments.status()));
    return reactor;
  }
  // Server-originated: no origin session, so every session receives it.
  // Downstream validators get no more time than the caller gave us.
  std::string scope = request->scope();
  ChangesetContext changeset_context;
  changeset_context.deadline = absl::FromChrono(context->deadline());
  (*host)->Apply(Changeset{*std::move(fragments), request->atomic()},
                 std::move(changeset_context),
                 [reactor, response, scope](const ChangesetResult& result) {
                   for (const FragmentReply& reply : result.replies) {
                     ToProto(reply, response->add_replies());
                   }
                   response->set_version(result.version);
                   VLOG(1) << "backend apply scope=" << scope
                           << " version=" << result.version;
                   reactor->Finish(grpc::Status::OK);
                 });
  return reactor;
}

}  // namespace jetstream
