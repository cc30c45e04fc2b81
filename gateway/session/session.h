// File: gateway/session/session.h
//
// One Jetstream protocol session (docs/protocol.md#sessions): its token, the
// per-direction message indexes, the list of messages the client has not
// acknowledged, the keep-alive ping and inactivity expiry timers, and the
// scopes the client fetched (scopeIndex -> scope name). A session outlives
// its connections: a client resumes it on a new one with its token.
//
// A session reaches the hub only through SessionHost (session_host.h).
//
// Thread-safety: every method runs on the hub executor (a strand) owned by
// the SessionHost; nothing here is thread-safe on its own.

#ifndef JETSTREAM_GATEWAY_SESSION_SESSION_H_
#define JETSTREAM_GATEWAY_SESSION_SESSION_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "common/sync_fragment.h"
#include "gateway/core/gateway_options.h"
#include "gateway/core/hub_executor.h"
#include "gateway/protocol/client_message.h"
#include "gateway/protocol/server_frame.h"
#include "gateway/session/connection.h"
#include "gateway/session/rate_limit.h"
#include "gateway/session/session_host.h"
#include "proto/sync/v1/sync_service.pb.h"

namespace jetstream::gateway {

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `principal` is who the sync service's session authorizer said is
  // behind the session; it goes with every fetch and changeset.
  // `host` must outlive the session.
  Session(SessionHost& host, HubExecutor hub, const GatewayOptions& options,
          std::string id, std::string token, std::string params_json,
          sync::v1::Principal principal = {}, bool iso_dates = false);
  ~Session();

  const std::string& id() const { return id_; }
  const std::string& token() const { return token_; }
  const sync::v1::Principal& principal() const { return principal_; }
  bool ended() const { return ended_; }
  bool attached() const { return connection_ != nullptr; }
  // The client reads Dates as ISO-8601 strings (ReadsIsoDates of the
  // version it announced): ScopeState and ScopeSync carry them so.
  bool iso_dates() const { return iso_dates_; }
  size_t unacked_count() const { return unacked_.size(); }
  // The scopes it fetched, by scopeIndex.
  const std::vector<std::string>& scopes() const { return scopes_; }

  // Session::Start()
  //
  // Sends SessionCreateReply on `connection` and starts the timers.
  void Start(ConnectionPtr connection);

  // Session::Attach()
  //
  // Resumes on a new connection (docs/protocol.md#resume). Every unacknowledged
  // message is sent at once (docs/protocol.md#d7-flush-on-resume), so the
  // client sees no gap. A previous connection, if still open, is closed.
  void Attach(ConnectionPtr connection);

  // Session::Detach()
  //
  // The connection closed. Ignored unless it is the current one, so a late
  // close of an old connection never affects a resumed session
  // (docs/protocol.md#d7-flush-on-resume).
  void Detach(const Connection* connection);

  // Session::OnFrame()
  //
  // Handles one frame of `frame_bytes` bytes, parsed or refused by the
  // parser (then dropped whole, docs/protocol.md#r-frame-2). Duplicates are
  // dropped by index, pings acknowledged, fetches and changesets forwarded
  // to the sync service (docs/protocol.md#server-receive). Past the
  // session's message or byte rate (docs/protocol.md#rate-limits) a message
  // is answered with `rate-limited` and nothing else is done with it.
  void OnFrame(size_t frame_bytes,
               absl::StatusOr<std::vector<ClientMessage>> messages);

  // Session::End()
  //
  // Ends the session: timers stop, the connection (if any) closes with
  // `code`. The manager forgets the session.
  void End(uint16_t code, std::string reason);

  // Called by the manager on the scopes this session fetched. `body` is the
  // commit's shared ScopeSync body (EncodeScopeSyncBody), never copied;
  // for an iso_dates() session, the one with Dates as ISO strings.
  // Returns whether it was queued (false once the session ended); the
  // manager counts the fan-out's messages once per commit.
  bool SendScopeSync(uint64_t scope_index,
                     const std::shared_ptr<const std::string>& body);
  void SendScopeState(uint64_t scope_index,
                      const sync::v1::ScopeSnapshot& snapshot);

 private:
  void OnMessages(std::vector<ClientMessage> messages, bool over_bytes);
  // Answers a message refused by a rate limit; a Ping is dropped (its
  // acknowledgement is cumulative: the next one carries it).
  void RefuseRateLimited(const ClientMessage& message, const WireError& error);
  void HandleScopeFetch(const ClientMessage& message);
  void HandleScopeSync(ClientMessage message);
  void HandlePing(const ClientMessage& message);

  // Queues a sequenced message (index already assigned).
  void Enqueue(uint64_t index, std::string message) {
    Enqueue(index, ServerMessage(std::move(message)));
  }
  void Enqueue(uint64_t index, ServerMessage message);
  // Queues an unsequenced message (a Ping), never resent.
  void EnqueueEphemeral(std::string message);
  void ScheduleFlush();
  // Metrics (host_.metrics()), when there are any: a message of `type`
  // queued; a ScopeSync's reply queued, the ScopeSync read at `received`.
  void Sent(absl::string_view type);
  // Resending: every unacknowledged message joins the outbox (counted).
  void AddUnackedToOutbox();
  void ObserveChangeset(absl::Time received);

 public:
  // Session::Flush()
  //
  // Writes the queued messages as one frame. The manager calls it once per
  // hub turn for every session that queued something (ScheduleFlush).
  void Flush();

 private:
  uint64_t NextIndex() { return next_index_++; }

  void ArmPingTimer();
  void ArmExpiryTimer();

  SessionHost& host_;
  HubExecutor hub_;
  const GatewayOptions& options_;
  const std::string id_;
  const std::string token_;
  const std::string params_json_;
  const sync::v1::Principal principal_;
  const bool iso_dates_;

  ConnectionPtr connection_;
  bool ended_ = false;
  // Over the unacknowledged limit: End() is posted, nothing more is queued.
  bool ending_ = false;

  // Next server index; SessionCreateReply takes 0 (docs/protocol.md#indexes).
  uint64_t next_index_ = 1;
  // Highest client index seen (docs/protocol.md#server-receive).
  uint64_t last_client_index_ = 0;
  struct Unacked {
    uint64_t index;
    ServerMessage message;
  };
  std::deque<Unacked> unacked_;
  // Messages for the next frame: sequenced ones (also in unacked_) and pings.
  ServerFrame outbox_;
  bool flush_scheduled_ = false;

  // Fetched scopes; scopeIndex is the position
  // (docs/protocol.md#d11-fetch-twice).
  std::vector<std::string> scopes_;
  // By scopeIndex: the scope authorizer allowed reading only, so
  // changesets are refused here with per-fragment errors.
  std::vector<bool> read_only_;

  // Rate limits (docs/protocol.md#rate-limits): messages and bytes a second.
  TokenBucket message_rate_;
  TokenBucket byte_rate_;

  boost::asio::steady_timer ping_timer_;
  boost::asio::steady_timer expiry_timer_;
  absl::Time last_activity_;
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SESSION_SESSION_H_
