#include "gateway/session/session_manager.h"

#include <sys/random.h>

#include <algorithm>
#include <random>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "boost/asio/post.hpp"
#include "common/logging.h"
#include "common/uuid.h"
#include "gateway/protocol/server_message.h"

namespace jetstream::gateway {
namespace net = boost::asio;

namespace {

// Typed denial errors (docs/protocol.md#close-codes). The
// unrecognized-handshake text is the original's minus the word "message": RFC
// 6455 caps a close reason at 123 bytes and the original's did not fit.
const WireError kUnrecognizedHandshake{
    "Unrecognized handshake, should send SessionCreate as first and only "
    "message",
    "unrecognized-handshake"};
const WireError kTokenUnrecognized{"Session token unrecognized",
                                   "session-token-unrecognized"};
const WireError kEstablishTimedOut{
    "Session took long to establish and timed out",
    "session-establish-timedout"};
// What a session shed by the overload policy is closed with
// (docs/protocol.md#overload).
const WireError kServerOverloaded{"Server overloaded", "server-overloaded"};
// What a denied client receives, whatever the reason
// (docs/protocol.md#authorization).
const WireError kSessionDenied{"Session creation denied", ""};

const std::string* FindParam(const ConnectionParams& params,
                             absl::string_view name) {
  for (const auto& [key, value] : params) {
    if (absl::EqualsIgnoreCase(key, name)) return &value;
  }
  return nullptr;
}

}  // namespace

std::string NewSessionToken() {
  unsigned char bytes[64];
  size_t filled = 0;
  while (filled < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + filled, sizeof(bytes) - filled, 0);
    if (n > 0) filled += static_cast<size_t>(n);
  }
  std::string encoded = absl::Base64Escape(
      absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
  std::string token;
  for (char c : encoded) {
    if (absl::ascii_isalnum(c)) token.push_back(c);
  }
  return token;
}

size_t HubOfSessionToken(absl::string_view token, size_t hubs) {
  if (hubs <= 1) return 0;
  return std::hash<std::string_view>{}(
             std::string_view(token.data(), token.size())) %
         hubs;
}

size_t HubOfConnection(const ConnectionParams& params, size_t accepting_hub,
                       size_t hubs) {
  const std::string* token = FindParam(params, "sessiontoken");
  return token == nullptr ? accepting_hub : HubOfSessionToken(*token, hubs);
}

SessionManager::SessionManager(HubExecutor hub, const GatewayOptions& options,
                               SyncClient& sync, const Clock& clock,
                               GatewayMetrics* metrics, HubPlacement placement)
    : hub_(hub),
      options_(options),
      sync_(sync),
      clock_(clock),
      metrics_(metrics),
      placement_(placement),
      flushes_(hub),
      own_gate_(placement.gate != nullptr
                    ? nullptr
                    : std::make_unique<ConnectionGate>(hub, options, clock)),
      gate_(placement.gate != nullptr ? *placement.gate : *own_gate_),
      shedder_(options.max_delivery_lag) {
  sync_.SetListener(this);
}

std::string SessionManager::NewTokenOfThisHub() const {
  // Each try names this hub with chance 1/count.
  std::string token = NewSessionToken();
  while (HubOfSessionToken(token, placement_.count) != placement_.index) {
    token = NewSessionToken();
  }
  return token;
}

SessionManager::~SessionManager() = default;

void SessionManager::OnConnectionOpened(ConnectionPtr connection,
                                        ConnectionParams params) {
  net::post(hub_, [this, connection = std::move(connection),
                   params = std::move(params)]() mutable {
    OpenOnHub(std::move(connection), std::move(params));
  });
}

void SessionManager::OnFrame(
    ConnectionPtr connection, size_t frame_bytes,
    absl::StatusOr<std::vector<ClientMessage>> messages) {
  net::post(hub_, [this, connection = std::move(connection), frame_bytes,
                   messages = std::move(messages)]() mutable {
    FrameOnHub(std::move(connection), frame_bytes, std::move(messages));
  });
}

void SessionManager::OnConnectionClosed(ConnectionPtr connection) {
  net::post(hub_, [this, connection = std::move(connection)] {
    ClosedOnHub(connection);
  });
}

void SessionManager::OnCloseCode(uint16_t code) {
  if (metrics_ != nullptr) metrics_->Closed(code);
}

void SessionManager::OnWriteQueueOverflow(ConnectionPtr connection) {
  if (metrics_ != nullptr) metrics_->WriteQueueOverflow();
  net::post(hub_, [this, connection = std::move(connection)] {
    auto it = by_connection_.find(connection->id());
    if (it == by_connection_.end()) return;
    std::shared_ptr<Session> session = it->second;
    LOG(WARNING) << "session " << session->id()
                 << " ended: its client does not read fast enough";
    session->End(kCloseClosedConnection,
                 EncodeCloseReason(WireError{
                     "Client does not read fast enough; write queue overflow",
                     "write-queue-overflow"}));
  });
}

void SessionManager::Shutdown() {
  net::post(hub_, [this] {
    std::vector<std::shared_ptr<Session>> sessions;
    for (auto& [token, session] : by_token_) sessions.push_back(session);
    for (auto& session : sessions) session->End(kCloseClosedConnection, "");
    CloseUnestablished();
  });
}

void SessionManager::Drain(absl::Duration window, std::function<void()> done) {
  net::post(hub_, [this, window, done = std::move(done)]() mutable {
    CloseUnestablished();
    std::vector<std::weak_ptr<Session>> sessions;
    for (auto& [token, session] : by_token_) sessions.push_back(session);
    std::shuffle(sessions.begin(), sessions.end(),
                 std::mt19937_64(std::random_device()()));
    if (sessions.empty()) {
      done();
      return;
    }
    auto left = std::make_shared<size_t>(sessions.size());
    auto finished = std::make_shared<std::function<void()>>(std::move(done));
    const absl::Duration step = window / static_cast<int64_t>(sessions.size());
    for (size_t i = 0; i < sessions.size(); ++i) {
      auto timer = std::make_shared<boost::asio::steady_timer>(
          hub_, absl::ToChronoNanoseconds(step * static_cast<int64_t>(i)));
      timer->async_wait([timer, session = sessions[i], left,
                         finished](boost::system::error_code) {
        if (std::shared_ptr<Session> s = session.lock()) {
          s->End(kCloseClosedConnection, "");
        }
        if (--*left == 0) (*finished)();
      });
    }
  });
}

void SessionManager::OpenOnHub(ConnectionPtr connection,
                               ConnectionParams params) {
  ++connection_count_;
  if (!gate_.Admit(connection)) return;
  if (const std::string* token = FindParam(params, "sessiontoken")) {
    auto it = by_token_.find(*token);
    if (it == by_token_.end()) {
      LOG(INFO) << "connection " << connection->peer()
                << ": unknown session token, denied";
      gate_.Deny(connection, kTokenUnrecognized, ConnectionGate::Hold::kTarpit);
      return;
    }
    std::shared_ptr<Session> session = it->second;
    by_connection_[connection->id()] = session;
    session->Attach(std::move(connection));
    return;
  }
  // A new session: the first frame must be SessionCreate
  // (docs/protocol.md#handshake).
  Handshake handshake;
  handshake.connection = connection;
  handshake.params = std::move(params);
  handshake.timer = std::make_unique<net::steady_timer>(hub_);
  handshake.timer->expires_after(
      absl::ToChronoNanoseconds(options_.handshake_timeout));
  handshake.timer->async_wait(
      [this, id = connection->id()](boost::system::error_code ec) {
        if (ec) return;
        auto it = handshakes_.find(id);
        if (it == handshakes_.end() || it->second.consumed) return;
        ConnectionPtr c = it->second.connection;
        handshakes_.erase(it);
        LOG(INFO) << "connection " << c->peer() << ": handshake timed out";
        // It has been held for the whole timeout already.
        gate_.Deny(c, kEstablishTimedOut, ConnectionGate::Hold::kNone);
      });
  handshakes_.emplace(connection->id(), std::move(handshake));
}

void SessionManager::FrameOnHub(
    ConnectionPtr connection, size_t frame_bytes,
    absl::StatusOr<std::vector<ClientMessage>> messages) {
  if (metrics_ != nullptr) {
    metrics_->BytesReceived(frame_bytes);
    if (!messages.ok()) {
      metrics_->MessageReceived("invalid");
    } else {
      for (const ClientMessage& m : *messages) {
        metrics_->MessageReceived(ClientMessageTypeName(m.type));
      }
    }
  }
  if (auto it = by_connection_.find(connection->id());
      it != by_connection_.end()) {
    std::shared_ptr<Session> session = it->second;
    session->OnFrame(frame_bytes, std::move(messages));
    return;
  }
  if (auto it = handshakes_.find(connection->id()); it != handshakes_.end()) {
    HandleHandshakeFrame(it->second, std::move(messages));
    return;
  }
  // A connection whose session was denied: nothing more is processed.
}

void SessionManager::HandleHandshakeFrame(
    Handshake& handshake, absl::StatusOr<std::vector<ClientMessage>> messages) {
  if (handshake.consumed) return;  // frames before acceptance are lost
  handshake.consumed = true;
  handshake.timer->cancel();
  ConnectionPtr connection = handshake.connection;
  ConnectionParams params = std::move(handshake.params);
  handshakes_.erase(connection->id());
  if (!messages.ok()) {
    LOG(INFO) << "connection " << connection->peer()
              << ": handshake refused: " << messages.status().message();
    gate_.Deny(connection,
               WireError{std::string(messages.status().message()), ""},
               ConnectionGate::Hold::kTarpit);
    return;
  }
  // One SessionCreate, alone or in a one-element array
  // (docs/protocol.md#d5-handshake-array).
  if (messages->size() != 1 ||
      messages->front().type != ClientMessageType::kSessionCreate) {
    gate_.Deny(connection, kUnrecognizedHandshake,
               ConnectionGate::Hold::kTarpit);
    return;
  }
  AuthorizeSession(connection, messages->front(), std::move(params));
}

void SessionManager::AuthorizeSession(const ConnectionPtr& connection,
                                      const ClientMessage& create,
                                      ConnectionParams params) {
  std::string id = Uuid::Random().ToString();
  sync::v1::AuthorizeSessionRequest request;
  request.set_session_id(id);
  request.set_params_json(create.params_json);
  for (auto& [key, value] : params) {
    (*request.mutable_connection_params())[key] = std::move(value);
  }
  request.set_client_version(create.version);
  request.set_origin(connection->origin());
  request.set_client_address(connection->address());
  authorizing_.emplace(connection->id(), connection);
  sync_.AuthorizeSession(
      std::move(request),
      [this, connection, create,
       id](absl::StatusOr<sync::v1::SessionAuthorization> decision) mutable {
        if (authorizing_.erase(connection->id()) == 0) return;  // closed
        if (!decision.ok() || !decision->allow()) {
          LOG(INFO) << "connection " << connection->peer()
                    << ": session denied: "
                    << (decision.ok() ? decision->error().message()
                                      : decision.status().message());
          // The socket stays open; nothing more is processed for it.
          connection->Send(ServerFrame(
              ServerMessage(EncodeSessionCreateReplyError(kSessionDenied))));
          return;
        }
        CreateSession(connection, create, std::move(id),
                      std::move(*decision->mutable_principal()));
      });
}

void SessionManager::CreateSession(const ConnectionPtr& connection,
                                   const ClientMessage& create, std::string id,
                                   sync::v1::Principal principal) {
  auto session = std::make_shared<Session>(
      *this, hub_, options_, std::move(id), NewTokenOfThisHub(),
      create.params_json, std::move(principal), ReadsIsoDates(create.version));
  by_token_[session->token()] = session;
  by_id_[session->id()] = Registered{session.get(), next_order_};
  by_age_.emplace(next_order_++, session.get());
  by_connection_[connection->id()] = session;
  ++session_count_;
  if (metrics_ != nullptr) metrics_->SessionStarted();
  LOG(INFO) << "session " << session->id() << " created for "
            << connection->peer() << " (client version " << create.version
            << (session->principal().identity().empty()
                    ? ""
                    : ", principal " + session->principal().identity())
            << ")";
  session->Start(connection);
}

void SessionManager::CloseUnestablished() {
  for (auto& [id, handshake] : handshakes_) {
    handshake.timer->cancel();
    handshake.connection->Close(1001, "Server shutting down");
  }
  handshakes_.clear();
  for (auto& [id, connection] : authorizing_) {
    connection->Close(1001, "Server shutting down");
  }
  authorizing_.clear();
  gate_.ReleaseHeld();
}

void SessionManager::ClosedOnHub(const ConnectionPtr& connection) {
  --connection_count_;
  if (gate_.Closed(*connection)) return;  // it was held
  if (auto it = handshakes_.find(connection->id()); it != handshakes_.end()) {
    it->second.timer->cancel();
    handshakes_.erase(it);
    return;
  }
  if (authorizing_.erase(connection->id()) > 0) return;
  auto it = by_connection_.find(connection->id());
  if (it == by_connection_.end()) return;
  std::shared_ptr<Session> session = it->second;
  by_connection_.erase(it);
  session->Detach(connection.get());
}

void SessionManager::Fetch(Session& session, std::string scope,
                           std::string params_json,
                           SyncClient::FetchCallback done) {
  sync::v1::FetchRequest request;
  request.set_scope(scope);
  request.set_params_json(std::move(params_json));
  request.set_session_id(session.id());
  *request.mutable_principal() = session.principal();
  ++scopes_[scope].fetches_in_flight;
  sync_.Fetch(std::move(request),
              [this, scope, done = std::move(done)](
                  absl::StatusOr<sync::v1::FetchResult> result) {
                ScopeWatch& watch = scopes_[scope];
                --watch.fetches_in_flight;
                if (result.ok() && !result->has_error()) {
                  const sync::v1::ScopeSnapshot& s = result->snapshot();
                  if (!watch.epoch.empty() && watch.epoch != s.epoch()) {
                    // The service's scope is a new incarnation (restarted
                    // or reloaded) and this fetch saw it first: the
                    // sessions already here get its state, as on a Resync.
                    OnResync(s);
                  } else {
                    NoteVersion(scope, s.epoch(), s.version());
                  }
                }
                done(std::move(result));
                MaybeUnwatch(scope);
              });
}

void SessionManager::Apply(Session& session, sync::v1::ApplyRequest request,
                           SyncClient::ApplyCallback done) {
  std::string scope = request.scope();
  sync_.Apply(
      std::move(request),
      [this, scope = std::move(scope), id = session.id(),
       done = std::move(done)](
          absl::StatusOr<sync::v1::ApplyResult> result) mutable {
        if (result.ok() && !result->has_redirect() && result->version() > 0) {
          if (auto it = scopes_.find(scope);
              it != scopes_.end() && result->version() > it->second.version) {
            it->second.answered[result->version()] = id;
          }
        }
        done(std::move(result));
      });
}

void SessionManager::ForgetAnswered(ScopeWatch& watch, uint64_t version) {
  if (watch.answered.empty()) return;
  for (auto it = watch.answered.begin(); it != watch.answered.end();) {
    if (it->first <= version) {
      watch.answered.erase(it++);
    } else {
      ++it;
    }
  }
}

void SessionManager::Subscribe(Session& session, const std::string& scope,
                               uint64_t scope_index,
                               const sync::v1::ScopeSnapshot& snapshot) {
  ScopeWatch& watch = scopes_[scope];
  watch.subscribers[&session] =
      Subscriber{scope_index, snapshot.epoch(), snapshot.version()};
  NoteDates(watch, snapshot);
}

void SessionManager::Forget(Session& session, const Connection* connection) {
  // Keep the session alive until this function returns.
  std::shared_ptr<Session> keep;
  if (auto it = by_token_.find(session.token()); it != by_token_.end()) {
    keep = it->second;
    by_token_.erase(it);
    --session_count_;
    if (metrics_ != nullptr) metrics_->SessionEnded();
  }
  if (auto it = by_id_.find(session.id());
      it != by_id_.end() && it->second.session == &session) {
    by_age_.erase(it->second.order);
    by_id_.erase(it);
  }
  if (connection != nullptr) {
    if (auto it = by_connection_.find(connection->id());
        it != by_connection_.end() && it->second.get() == &session) {
      by_connection_.erase(it);
    }
  }
  for (const std::string& scope : session.scopes()) {
    auto it = scopes_.find(scope);
    if (it == scopes_.end()) continue;
    if (it->second.subscribers.erase(&session) > 0 &&
        it->second.subscribers.empty()) {
      MaybeUnwatch(scope);
    }
  }
  LOG(INFO) << "session " << session.id() << " ended";
}

void SessionManager::ScheduleFlush(std::shared_ptr<Session> session) {
  flushes_.Schedule(std::move(session));
}

void SessionManager::MaybeUnwatch(const std::string& scope) {
  auto it = scopes_.find(scope);
  if (it == scopes_.end()) return;
  if (!it->second.subscribers.empty() || it->second.fetches_in_flight > 0) {
    return;
  }
  scopes_.erase(it);
  // Also after a failed first fetch: the client forgets where it routed it.
  sync_.Unwatch(scope);
}

void SessionManager::NoteVersion(const std::string& scope,
                                 const std::string& epoch, uint64_t version) {
  ScopeWatch& watch = scopes_[scope];
  // Only the first fetch places the stream. A later one may come from a
  // replica ahead of the stream (the scope just moved there): the stream
  // still owes the sessions already here every commit up to it, and the
  // new session skips those it has (Subscriber::state_version).
  if (watch.epoch.empty()) {
    watch.epoch = epoch;
    watch.version = version;
  }
}

void SessionManager::NoteDates(ScopeWatch& watch,
                               const sync::v1::ScopeSnapshot& snapshot) {
  if (watch.dates != nullptr && static_cast<int>(watch.dates->size()) ==
                                    snapshot.date_properties_size()) {
    return;  // a scope's schema does not change while it is watched
  }
  watch.dates = std::make_shared<const DateProperties>(
      snapshot.date_properties().begin(), snapshot.date_properties().end());
}

void SessionManager::OnCommit(const sync::v1::Commit& commit) {
  Deliver(commit, nullptr);
}

void SessionManager::OnFannedOutCommit(const FannedOutCommit& commit) {
  const absl::Time now = clock_.Now();
  if (metrics_ != nullptr) metrics_->ObserveHubDelay(now - commit.received);
  if (size_t shed =
          shedder_.SessionsToShed(commit.received, now, by_age_.size());
      shed > 0) {
    LOG(WARNING) << "hub " << placement_.index << " is "
                 << absl::FormatDuration(now - commit.received)
                 << " behind (over --max_delivery_lag): ending its " << shed
                 << " newest sessions";
    Shed(shed);
  }
  Deliver(*commit.commit, commit.encoded);
}

void SessionManager::Shed(size_t count) {
  std::vector<std::shared_ptr<Session>> newest;
  for (auto it = by_age_.rbegin(); it != by_age_.rend() && count > 0;
       ++it, --count) {
    if (auto s = by_token_.find(it->second->token()); s != by_token_.end()) {
      newest.push_back(s->second);
    }
  }
  const std::string reason = EncodeCloseReason(kServerOverloaded);
  for (const std::shared_ptr<Session>& session : newest) {
    session->End(kCloseClosedConnection, reason);
  }
  shed_total_ += newest.size();
  if (metrics_ != nullptr) metrics_->SessionsShed(newest.size());
}

void SessionManager::Deliver(const sync::v1::Commit& commit,
                             std::shared_ptr<const std::string> body) {
  auto it = scopes_.find(commit.scope());
  if (it == scopes_.end()) return;
  ScopeWatch& watch = it->second;
  if (watch.epoch.empty()) return;  // its first fetch places the stream
  if (watch.epoch == commit.epoch() && commit.version() <= watch.version) {
    VLOG(1) << "scope '" << commit.scope() << "' commit " << commit.version()
            << " already seen (at " << watch.version << ")";
    return;  // already seen (a replay overlapping a fetch)
  }
  if (watch.epoch != commit.epoch() || commit.version() != watch.version + 1) {
    // A gap: delivering it would skip commits for good. Watched afresh
    // from what the sessions have, the scope's holder replays the rest (or
    // sends its state).
    if (!watch.catching_up) {
      LOG(WARNING) << "scope '" << commit.scope() << "' commit "
                   << commit.version() << " does not follow " << watch.version
                   << ": watching again";
      watch.catching_up = true;
      sync_.Unwatch(commit.scope());
      Rewatch(commit.scope(), watch);
    }
    return;
  }
  VLOG(1) << "scope '" << commit.scope() << "' commit " << commit.version()
          << (commit.replayed() ? " replayed" : "") << " to "
          << watch.subscribers.size() << " sessions";
  watch.version = commit.version();
  watch.catching_up = false;
  if (metrics_ != nullptr && commit.committed_unix_micros() > 0) {
    metrics_->ObserveDeliveryLag(
        absl::Now() - absl::FromUnixMicros(commit.committed_unix_micros()));
  }
  // The originator already has its changes and gets its reply instead
  // (docs/protocol.md#broadcast), but only if the reply reached it. An
  // apply's result comes before its commit (SyncClient), so an originator
  // that did not get its reply was told the apply failed: it timed out (the
  // commit follows its late result) or its stream broke (the commit is a
  // replay on the next stream). That originator gets the change like every
  // other session.
  Session* origin = nullptr;
  auto a = watch.answered.find(commit.version());
  const bool answered =
      a != watch.answered.end() && a->second == commit.origin_session_id();
  ForgetAnswered(watch, commit.version());
  if (answered && !commit.origin_session_id().empty()) {
    if (auto o = by_id_.find(commit.origin_session_id()); o != by_id_.end()) {
      origin = o->second.session;
    }
  }
  // Encoded once (by the fan-out, for every hub); every session shares the
  // body (only its indexes differ). Sessions that read Dates as ISO
  // strings share a second one.
  std::shared_ptr<const std::string> iso_body;
  size_t sent = 0;
  for (const auto& [session, subscriber] : watch.subscribers) {
    if (session == origin) continue;
    if (subscriber.state_epoch == commit.epoch() &&
        commit.version() <= subscriber.state_version) {
      continue;  // its fetch brought a state that includes it
    }
    if (session->iso_dates() && watch.dates != nullptr &&
        !watch.dates->empty()) {
      if (iso_body == nullptr) {
        iso_body = EncodeScopeSyncBody(
            DatesAsIsoStrings(commit.fragments_json(), *watch.dates));
      }
      sent += session->SendScopeSync(subscriber.scope_index, iso_body);
      continue;
    }
    if (body == nullptr) body = EncodeScopeSyncBody(commit.fragments_json());
    sent += session->SendScopeSync(subscriber.scope_index, body);
  }
  if (metrics_ != nullptr) metrics_->MessageSent("ScopeSync", sent);
}

void SessionManager::OnResync(const sync::v1::ScopeSnapshot& snapshot) {
  auto it = scopes_.find(snapshot.scope());
  if (it == scopes_.end()) return;
  it->second.epoch = snapshot.epoch();
  it->second.version = snapshot.version();
  it->second.catching_up = false;
  ForgetAnswered(it->second, snapshot.version());
  NoteDates(it->second, snapshot);
  LOG(INFO) << "scope '" << snapshot.scope() << "' resynchronised at version "
            << snapshot.version() << " for " << it->second.subscribers.size()
            << " sessions";
  for (auto& [session, subscriber] : it->second.subscribers) {
    if (subscriber.state_epoch == snapshot.epoch() &&
        subscriber.state_version >= snapshot.version()) {
      continue;  // it already has this state
    }
    session->SendScopeState(subscriber.scope_index, snapshot);
    subscriber.state_epoch = snapshot.epoch();
    subscriber.state_version = snapshot.version();
  }
}

void SessionManager::OnStreamStarted() {
  for (const auto& [scope, watch] : scopes_) Rewatch(scope, watch);
}

void SessionManager::OnScopeLost(const std::string& scope) {
  // The service that held it (or its successor, wherever routing now points)
  // answers with a Resync: the state including what other replicas committed.
  auto it = scopes_.find(scope);
  if (it != scopes_.end()) Rewatch(scope, it->second);
}

void SessionManager::Rewatch(const std::string& scope,
                             const ScopeWatch& watch) {
  if (watch.epoch.empty()) return;  // its first fetch is still in flight
  sync::v1::WatchRequest request;
  request.set_scope(scope);
  request.set_epoch(watch.epoch);
  request.set_after_version(watch.version);
  sync_.Watch(std::move(request));
}

}  // namespace jetstream::gateway
