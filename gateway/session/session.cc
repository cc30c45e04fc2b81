#include "gateway/session/session.h"

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "common/fragment_proto.h"
#include "common/logging.h"
#include "common/trace_context.h"
#include "gateway/protocol/iso_dates.h"
#include "gateway/protocol/server_message.h"

namespace jetstream::gateway {
namespace net = boost::asio;

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

// The per-fragment error of a changeset for a read-only scope.
const WireError kScopeReadOnly{"Scope is read-only for this session",
                               "scope-read-only"};

// Every fragment fails with the same error.
std::vector<FragmentReply> AllFail(size_t n, const WireError& error) {
  return std::vector<FragmentReply>(n, FragmentReply{error, {}});
}

}  // namespace

Session::Session(SessionHost& host, HubExecutor hub,
                 const GatewayOptions& options, std::string id,
                 std::string token, std::string params_json,
                 sync::v1::Principal principal, bool iso_dates)
    : host_(host),
      hub_(hub),
      options_(options),
      id_(std::move(id)),
      token_(std::move(token)),
      params_json_(std::move(params_json)),
      principal_(std::move(principal)),
      iso_dates_(iso_dates),
      message_rate_(static_cast<double>(options.max_messages_per_second),
                    kRateLimitBurst * options.max_messages_per_second,
                    host_.Now()),
      byte_rate_(static_cast<double>(options.max_bytes_per_second),
                 kRateLimitBurst * options.max_bytes_per_second, host_.Now()),
      ping_timer_(hub),
      expiry_timer_(hub),
      last_activity_(host_.Now()) {}

Session::~Session() = default;

void Session::Start(ConnectionPtr connection) {
  connection_ = std::move(connection);
  // SessionCreateReply is index 0: unsequenced, never resent
  // (docs/protocol.md#indexes).
  Sent("SessionCreateReply");
  EnqueueEphemeral(EncodeSessionCreateReply(token_));
  ArmPingTimer();
  ArmExpiryTimer();
}

void Session::Attach(ConnectionPtr connection) {
  if (connection_ != nullptr && connection_ != connection) {
    connection_->Close(1000, "Session resumed on another connection");
  }
  connection_ = std::move(connection);
  VLOG(1) << "session " << id_ << " resumed from " << connection_->peer();
  // Everything the client has not acknowledged goes out now
  // (docs/protocol.md#d7-flush-on-resume), not only
  // what was never sent: messages written to the old connection may have
  // been lost with it, and sending only the later ones would show the
  // client a gap in the indexes, which it treats as a broken connection
  // (docs/protocol.md#client-receive). Clients ignore indexes they already
  // have.
  outbox_.clear();
  AddUnackedToOutbox();
  ScheduleFlush();
  ArmPingTimer();
}

void Session::Detach(const Connection* connection) {
  if (connection_.get() != connection) return;
  connection_ = nullptr;
  ping_timer_.cancel();
  outbox_.clear();
  VLOG(1) << "session " << id_ << " disconnected; " << unacked_.size()
          << " messages unacknowledged";
}

void Session::End(uint16_t code, std::string reason) {
  if (ended_) return;
  ended_ = true;
  std::shared_ptr<Session> self = shared_from_this();  // Forget() drops ours
  ping_timer_.cancel();
  expiry_timer_.cancel();
  const Connection* last = connection_.get();
  if (connection_ != nullptr) {
    Flush();
    connection_->Close(code, std::move(reason));
  }
  // Before the scopes are cleared: the manager leaves exactly those.
  host_.Forget(*this, last);
  connection_ = nullptr;
  unacked_.clear();
  outbox_.clear();
  scopes_.clear();
  read_only_.clear();
}

void Session::OnFrame(size_t frame_bytes,
                      absl::StatusOr<std::vector<ClientMessage>> messages) {
  if (ended_) return;
  // A frame over the byte rate is still read (its messages are answered),
  // but none of them is acted on. Frames that do not parse cost bytes too.
  const bool over_bytes =
      !byte_rate_.Take(static_cast<double>(frame_bytes), host_.Now());
  if (!messages.ok()) {
    // The whole frame is dropped, as the original does
    // (docs/protocol.md#r-frame-2).
    VLOG(1) << "session " << id_
            << ": frame dropped: " << messages.status().message();
    return;
  }
  OnMessages(*std::move(messages), over_bytes);
}

void Session::OnMessages(std::vector<ClientMessage> messages, bool over_bytes) {
  const absl::Time now = host_.Now();
  for (ClientMessage& m : messages) {
    if (m.index != 0) {
      if (m.index <= last_client_index_) {
        VLOG(1) << "session " << id_ << ": duplicate index " << m.index
                << " dropped";
        continue;
      }
      if (m.index != last_client_index_ + 1) {
        // Accepted as the original does (docs/protocol.md#d15-index-gaps);
        // the skipped indexes will be
        // treated as duplicates.
        VLOG(1) << "session " << id_ << ": index gap " << last_client_index_
                << " -> " << m.index;
      }
      last_client_index_ = m.index;
    }
    last_activity_ = now;
    VLOG(1) << "session " << id_ << " <- " << ClientMessageTypeName(m.type)
            << " index " << m.index;
    if (over_bytes) {
      RefuseRateLimited(m,
                        WireError{absl::StrCat("Session is over its limit of ",
                                               options_.max_bytes_per_second,
                                               " bytes per second"),
                                  "rate-limited"});
      continue;
    }
    if (!message_rate_.Take(1, now)) {
      RefuseRateLimited(m,
                        WireError{absl::StrCat("Session is over its limit of ",
                                               options_.max_messages_per_second,
                                               " messages per second"),
                                  "rate-limited"});
      continue;
    }
    switch (m.type) {
      case ClientMessageType::kPing:
        HandlePing(m);
        break;
      case ClientMessageType::kScopeFetch:
        HandleScopeFetch(m);
        break;
      case ClientMessageType::kScopeSync:
        HandleScopeSync(std::move(m));
        break;
      default:
        // Parsed but not acted on by a server (docs/protocol.md#msg-ignored).
        break;
    }
    if (ended_) return;
  }
}

void Session::RefuseRateLimited(const ClientMessage& message,
                                const WireError& error) {
  host_.CountRateLimited();
  VLOG(1) << "session " << id_ << ": " << ClientMessageTypeName(message.type)
          << " index " << message.index << " refused: " << error.message;
  uint64_t index;
  switch (message.type) {
    case ClientMessageType::kScopeFetch:
      index = NextIndex();
      Sent("ScopeFetchReply");
      Enqueue(index, EncodeScopeFetchReplyError(index, message.index, error));
      break;
    case ClientMessageType::kScopeSync:
      index = NextIndex();
      Sent("ScopeSyncReply");
      Enqueue(index,
              EncodeScopeSyncReply(index, message.index,
                                   AllFail(message.fragments.size(), error)));
      break;
    default:
      break;  // nothing to answer (a Ping, or a message servers ignore)
  }
}

void Session::HandlePing(const ClientMessage& message) {
  // Cumulative acknowledgement (docs/protocol.md#acks).
  while (!unacked_.empty() && unacked_.front().index <= message.ack) {
    unacked_.pop_front();
  }
  if (!message.resend_missing) return;
  // Reply Ping first, then everything still unacknowledged, in one frame.
  outbox_.clear();
  Sent("Ping");
  outbox_.Add(
      ServerMessage(EncodePing(last_client_index_, /*resend_missing=*/true)));
  AddUnackedToOutbox();
  Flush();
}

void Session::HandleScopeFetch(const ClientMessage& message) {
  const uint64_t reply_to = message.index;
  bool known = false;
  for (const std::string& s : scopes_) known = known || s == message.name;
  if (!known && scopes_.size() >= options_.max_scopes_per_session) {
    uint64_t index = NextIndex();
    Sent("ScopeFetchReply");
    Enqueue(
        index,
        EncodeScopeFetchReplyError(
            index, reply_to,
            WireError{absl::StrCat("Session has fetched the maximum of ",
                                   options_.max_scopes_per_session, " scopes"),
                      "too-many-scopes"}));
    return;
  }
  std::weak_ptr<Session> weak = weak_from_this();
  host_.Fetch(
      *this, message.name, message.params_json,
      [weak, reply_to,
       name = message.name](absl::StatusOr<sync::v1::FetchResult> result) {
        std::shared_ptr<Session> self = weak.lock();
        if (self == nullptr || self->ended_) return;
        if (!result.ok() || result->has_error()) {
          WireError error;
          if (!result.ok()) {
            error = WireError{std::string(result.status().message()),
                              "sync-service-unavailable"};
          } else {
            error =
                WireError{result->error().message(), result->error().type()};
          }
          uint64_t index = self->NextIndex();
          self->Sent("ScopeFetchReply");
          self->Enqueue(index,
                        EncodeScopeFetchReplyError(index, reply_to, error));
          return;
        }
        // The same scope fetched again keeps its scopeIndex
        // (docs/protocol.md#d11-fetch-twice).
        uint64_t scope_index = self->scopes_.size();
        for (size_t i = 0; i < self->scopes_.size(); ++i) {
          if (self->scopes_[i] == name) scope_index = i;
        }
        if (scope_index == self->scopes_.size()) {
          self->scopes_.push_back(name);
          self->read_only_.push_back(false);
        }
        self->read_only_[scope_index] = result->read_only();
        self->host_.Subscribe(*self, name, scope_index, result->snapshot());
        uint64_t index = self->NextIndex();
        self->Sent("ScopeFetchReply");
        self->Enqueue(index,
                      EncodeScopeFetchReply(index, reply_to, scope_index));
        self->SendScopeState(scope_index, result->snapshot());
        VLOG(1) << "session " << self->id_ << " fetched scope '" << name
                << "' at version " << result->snapshot().version()
                << " as scopeIndex " << scope_index;
      });
}

void Session::HandleScopeSync(ClientMessage message) {
  const uint64_t reply_to = message.index;
  const size_t n = message.fragments.size();
  const absl::Time received = host_.Now();
  auto reply = [this, reply_to,
                received](const std::vector<FragmentReply>& replies) {
    ObserveChangeset(received);
    uint64_t index = NextIndex();
    Sent("ScopeSyncReply");
    Enqueue(index, EncodeScopeSyncReply(index, reply_to, replies));
  };
  if (message.scope_index >= scopes_.size()) {
    reply(AllFail(n,
                  WireError{absl::StrCat("Scope at index ", message.scope_index,
                                         " was not found"),
                            "scope-index-not-found"}));
    return;
  }
  if (read_only_[message.scope_index] && n > 0) {
    // Nothing reaches the sync service (the scope authorizer's decision).
    // An empty changeset changes nothing and still goes through, so it
    // keeps its place in the scope's order.
    reply(AllFail(n, kScopeReadOnly));
    return;
  }
  if (n > options_.max_fragments_per_changeset) {
    reply(AllFail(
        n,
        WireError{absl::StrCat("Changeset has ", n, " fragments; the limit is ",
                               options_.max_fragments_per_changeset),
                  "changeset-too-large"}));
    return;
  }
  sync::v1::ApplyRequest request;
  request.set_scope(scopes_[message.scope_index]);
  request.set_session_id(id_);
  request.set_atomic(message.atomic.value_or(false));
  request.set_procedure(message.procedure);
  // Followed through the sync service into every hook call.
  request.set_traceparent(NewTraceparent());
  VLOG(1) << "session " << id_ << " changeset scope=" << request.scope()
          << " fragments=" << n
          << " trace_id=" << TraceIdOf(request.traceparent());
  *request.mutable_principal() = principal_;
  request.mutable_fragments()->Reserve(static_cast<int>(n));
  for (const SyncFragment& f : message.fragments) {
    ToProto(f, request.add_fragments());
  }
  std::weak_ptr<Session> weak = weak_from_this();
  host_.Apply(
      *this, std::move(request),
      [weak, reply_to, n,
       received](absl::StatusOr<sync::v1::ApplyResult> result) {
        std::shared_ptr<Session> self = weak.lock();
        if (self == nullptr || self->ended_) return;
        std::vector<FragmentReply> replies;
        if (!result.ok() && (absl::IsUnknown(result.status()) ||
                             absl::IsDeadlineExceeded(result.status()))) {
          // Sent, never answered: if it was applied, the commit reaches
          // this session as a ScopeSync.
          replies = AllFail(n, OutcomeUnknown(result.status().message()));
        } else if (!result.ok()) {
          replies = AllFail(n, CouldNotApply(result.status().message()));
        } else {
          replies.reserve(result->replies_size());
          for (const auto& r : result->replies())
            replies.push_back(FromProto(r));
        }
        self->ObserveChangeset(received);
        uint64_t index = self->NextIndex();
        self->Sent("ScopeSyncReply");
        self->Enqueue(index, EncodeScopeSyncReply(index, reply_to, replies));
      });
}

bool Session::SendScopeSync(uint64_t scope_index,
                            const std::shared_ptr<const std::string>& body) {
  if (ended_) return false;
  uint64_t index = NextIndex();
  Enqueue(index, EncodeScopeSyncMessage(index, scope_index, body));
  return true;
}

void Session::SendScopeState(uint64_t scope_index,
                             const sync::v1::ScopeSnapshot& snapshot) {
  if (ended_) return;
  uint64_t index = NextIndex();
  if (iso_dates_ && snapshot.date_properties_size() > 0) {
    const DateProperties dates(snapshot.date_properties().begin(),
                               snapshot.date_properties().end());
    Sent("ScopeState");
    Enqueue(index, EncodeScopeState(
                       index, scope_index, snapshot.root_uuid(),
                       DatesAsIsoStrings(snapshot.fragments_json(), dates)));
    return;
  }
  Sent("ScopeState");
  Enqueue(index, EncodeScopeState(index, scope_index, snapshot.root_uuid(),
                                  snapshot.fragments_json()));
}

void Session::Enqueue(uint64_t index, ServerMessage message) {
  unacked_.push_back(Unacked{index, message});
  if (unacked_.size() > options_.max_unacked_messages) {
    if (ending_) return;
    ending_ = true;
    LOG(WARNING) << "session " << id_ << ": more than "
                 << options_.max_unacked_messages
                 << " unacknowledged messages; ending it";
    // Not from here: the caller may be the manager walking a scope's
    // subscribers, which End() changes (it may even drop the scope).
    net::post(hub_, [self = shared_from_this()] {
      self->End(
          kCloseClosedConnection,
          EncodeCloseReason(WireError{"Too many unacknowledged messages",
                                      "too-many-unacknowledged-messages"}));
    });
    return;
  }
  if (connection_ == nullptr)
    return;  // sent on resume (docs/protocol.md#d7-flush-on-resume)
  outbox_.Add(std::move(message));
  ScheduleFlush();
}

void Session::EnqueueEphemeral(std::string message) {
  if (connection_ == nullptr) return;
  outbox_.Add(ServerMessage(std::move(message)));
  ScheduleFlush();
}

void Session::ScheduleFlush() {
  // Messages queued during one turn of the hub go out as one frame
  // (docs/protocol.md#r-frame-1).
  // The manager flushes every such session in one later hub turn.
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  host_.ScheduleFlush(shared_from_this());
}

void Session::AddUnackedToOutbox() {
  for (const Unacked& u : unacked_) outbox_.Add(u.message);
  if (GatewayMetrics* metrics = host_.metrics()) {
    metrics->Resent(unacked_.size());
  }
}

void Session::Sent(absl::string_view type) {
  if (GatewayMetrics* metrics = host_.metrics()) metrics->MessageSent(type);
}

void Session::ObserveChangeset(absl::Time received) {
  if (GatewayMetrics* metrics = host_.metrics()) {
    metrics->ObserveChangeset(host_.Now() - received);
  }
}

void Session::Flush() {
  flush_scheduled_ = false;
  if (connection_ == nullptr || outbox_.empty()) return;
  if (GatewayMetrics* metrics = host_.metrics()) {
    metrics->BytesSent(outbox_.size());
  }
  connection_->Send(std::move(outbox_));
  outbox_.clear();
}

void Session::ArmPingTimer() {
  // Uniform in [interval - jitter, interval + jitter)
  // (docs/protocol.md#timers).
  thread_local absl::BitGen gen;
  absl::Duration delay = options_.ping_interval +
                         absl::Uniform(gen, -1.0, 1.0) * options_.ping_jitter;
  ping_timer_.expires_after(ToChrono(delay));
  ping_timer_.async_wait([weak =
                              weak_from_this()](boost::system::error_code ec) {
    std::shared_ptr<Session> self = weak.lock();
    if (ec || self == nullptr || self->ended_ || self->connection_ == nullptr) {
      return;
    }
    self->Sent("Ping");
    self->EnqueueEphemeral(
        EncodePing(self->last_client_index_, /*resend_missing=*/false));
    self->ArmPingTimer();
  });
}

void Session::ArmExpiryTimer() {
  absl::Time deadline = last_activity_ + options_.session_expiry;
  expiry_timer_.expires_after(
      ToChrono(std::max(deadline - host_.Now(), absl::ZeroDuration())));
  expiry_timer_.async_wait(
      [weak = weak_from_this()](boost::system::error_code ec) {
        std::shared_ptr<Session> self = weak.lock();
        if (ec || self == nullptr || self->ended_) return;
        if (self->host_.Now() - self->last_activity_ <
            self->options_.session_expiry) {
          self->ArmExpiryTimer();  // activity since: wait for the remainder
          return;
        }
        LOG(INFO) << "session " << self->id_ << " expired";
        self->End(kCloseClosedConnection, "");
      });
}

}  // namespace jetstream::gateway
