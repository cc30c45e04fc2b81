// File: gateway/session/session_manager.h
//
// The gateway's hub: it owns every protocol session, runs handshakes and
// resumes (docs/protocol.md#sessions), keeps which local sessions watch which
// scope, and turns the sync service's events into client messages. A committed
// changeset arrives once, already encoded, and goes to every watching session
// but its originator (docs/protocol.md#broadcast).
//
// A gateway has one hub per event-loop thread (HubPlacement), each with its
// own sessions; a session token names its hub (HubOfSessionToken), so a
// resume reaches the hub that holds the session. The hubs share the
// connection gate and the link to the sync service (HubFanout). A hub that
// falls behind sheds sessions (OverloadShedder, docs/protocol.md#overload).
//
// Thread-safety: the public On*() entry points may be called from any
// thread; they hop onto the hub executor (a strand). Everything else runs on
// the hub executor.

#ifndef JETSTREAM_GATEWAY_SESSION_SESSION_MANAGER_H_
#define JETSTREAM_GATEWAY_SESSION_SESSION_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "boost/asio/steady_timer.hpp"
#include "gateway/core/clock.h"
#include "gateway/core/gateway_options.h"
#include "gateway/protocol/client_message.h"
#include "gateway/protocol/iso_dates.h"
#include "gateway/session/connection.h"
#include "gateway/session/connection_gate.h"
#include "gateway/session/flush_scheduler.h"
#include "gateway/session/overload_shedder.h"
#include "gateway/session/session.h"
#include "gateway/session/session_host.h"
#include "gateway/sync/sync_client.h"

namespace jetstream::gateway {

// Where a SessionManager sits among the gateway's hubs.
struct HubPlacement {
  size_t index = 0;  // this hub's, in [0, count)
  size_t count = 1;  // hubs in the gateway
  // The gate every hub shares (it must outlive the manager); null: the
  // manager has one of its own.
  ConnectionGate* gate = nullptr;
};

// The hub (of `hubs`) that holds the session of `token`: the one whose
// manager made it. Stable within a process.
size_t HubOfSessionToken(absl::string_view token, size_t hubs);
// The hub (of `hubs`) a new connection with `params` belongs on: the one
// its session token names (a resume), else `accepting_hub`.
size_t HubOfConnection(const ConnectionParams& params, size_t accepting_hub,
                       size_t hubs);

class SessionManager : public SyncClient::Listener,
                       public ConnectionEvents,
                       public SessionHost {
 public:
  // `sync` and `clock` must outlive the manager; the manager becomes the
  // listener of `sync`. `clock` is read for rate limits, the tarpit and
  // expiry (tests pass their own).
  // `metrics` (null: none) must outlive the manager too.
  SessionManager(HubExecutor hub, const GatewayOptions& options,
                 SyncClient& sync, const Clock& clock = Clock::Real(),
                 GatewayMetrics* metrics = nullptr,
                 HubPlacement placement = {});
  ~SessionManager() override;

  // ConnectionEvents, from any thread. A write-queue overflow ends the
  // connection's session (4097).
  void OnConnectionOpened(ConnectionPtr connection,
                          ConnectionParams params) override;
  void OnFrame(ConnectionPtr connection, size_t frame_bytes,
               absl::StatusOr<std::vector<ClientMessage>> messages) override;
  void OnConnectionClosed(ConnectionPtr connection) override;
  void OnWriteQueueOverflow(ConnectionPtr connection) override;
  void OnCloseCode(uint16_t code) override;

  // Ends every session (closing their connections with 4097). Any thread.
  void Shutdown();
  // Ends the sessions one by one, in a random order spread over `window`
  // (4097, so their clients start new sessions elsewhere without all
  // reconnecting at once), closes connections still in their handshake at
  // once, then calls `done` on the hub. Any thread.
  void Drain(absl::Duration window, std::function<void()> done);

  // Live counts, readable from any thread (for /metrics and tests).
  size_t session_count() const { return session_count_.load(); }
  size_t connection_count() const { return connection_count_.load(); }
  // Refused connections held before their close (docs/protocol.md#tarpit):
  // how many are held now, and how many ever were.
  // (The gate's counts are the gateway's when the hubs share it.)
  size_t held_count() const { return gate_.held_count(); }
  uint64_t tarpitted_total() const { return gate_.tarpitted_total(); }
  // Connections refused over --max_connections(_per_address).
  uint64_t over_limit_total() const { return gate_.over_limit_total(); }
  // Connections refused over --max_connection_rate_per_address.
  uint64_t connections_rate_limited_total() const {
    return gate_.rate_limited_total();
  }
  // Messages refused over a session's message or byte rate.
  uint64_t messages_rate_limited_total() const {
    return messages_rate_limited_total_.load();
  }
  // WebSocket upgrades refused for their Origin (counted by the network
  // code, any thread).
  void CountOriginRefused() { ++origin_refused_total_; }
  uint64_t origin_refused_total() const { return origin_refused_total_.load(); }

  HubExecutor& hub() { return hub_; }
  size_t hub_index() const { return placement_.index; }
  absl::Time Now() const override { return clock_.Now(); }
  const GatewayOptions& options() const { return options_; }

  // Sessions ended by the overload policy.
  uint64_t shed_total() const { return shed_total_.load(); }

  // SyncClient::Listener (hub executor). A fanned-out commit brings its
  // encoded body and when the gateway received it: the delay since is the
  // hub's, and over --max_delivery_lag the hub sheds sessions first.
  void OnCommit(const sync::v1::Commit& commit) override;
  void OnFannedOutCommit(const FannedOutCommit& commit) override;
  void OnResync(const sync::v1::ScopeSnapshot& snapshot) override;
  void OnStreamStarted() override;
  void OnScopeLost(const std::string& scope) override;

  // SessionHost, used by Session (hub executor). Forget costs O(the
  // session's scopes), not O(all sessions); a connection the session had
  // before, closed but not yet reported, stays mapped until ClosedOnHub.
  // ScheduleFlush batches per hub turn (FlushScheduler).
  void Fetch(Session& session, std::string scope, std::string params_json,
             SyncClient::FetchCallback done) override;
  void Apply(Session& session, sync::v1::ApplyRequest request,
             SyncClient::ApplyCallback done) override;
  void Subscribe(Session& session, const std::string& scope,
                 uint64_t scope_index,
                 const sync::v1::ScopeSnapshot& snapshot) override;
  void CountRateLimited() override { ++messages_rate_limited_total_; }
  void Forget(Session& session, const Connection* connection) override;
  void ScheduleFlush(std::shared_ptr<Session> session) override;
  GatewayMetrics* metrics() override { return metrics_; }

 private:
  struct Handshake {
    ConnectionPtr connection;
    ConnectionParams
        params;  // x-jetstream-* (docs/protocol.md#d16-session-params)
    std::unique_ptr<boost::asio::steady_timer> timer;
    bool consumed = false;  // the first frame has arrived
  };
  struct Subscriber {
    uint64_t scope_index = 0;
    // The last full state the session got (its fetch, or a ScopeState
    // since). A state at or before it is not sent to it again: on a new
    // stream a fetch and a re-watch can arrive in either order.
    std::string state_epoch;
    uint64_t state_version = 0;
  };
  struct ScopeWatch {
    // Local sessions of the scope.
    absl::flat_hash_map<Session*, Subscriber> subscribers;
    // Fetches sent and not answered: the scope must stay watched.
    int fetches_in_flight = 0;
    // What the stream delivered of the scope: the first fetch's state,
    // then each commit in turn (or a Resync). Commits arrive in version
    // order; one that does not follow is a gap, and the scope is watched
    // again from here.
    std::string epoch;
    uint64_t version = 0;
    // Watched again after a gap, and no commit has followed yet.
    bool catching_up = false;
    // The schema's Date properties (from the last snapshot), for sessions
    // that read Dates as ISO strings.
    std::shared_ptr<const DateProperties> dates;
    // Versions whose apply reply reached a local session, by version: the
    // session's id. A commit skips its originator only if the originator
    // is recorded here (it has its reply); one that was told its apply
    // failed (timed out, or lost with a stream) gets the commit too.
    // Entries go when the stream passes their version.
    absl::flat_hash_map<uint64_t, std::string> answered;
  };

  void OpenOnHub(ConnectionPtr connection, ConnectionParams params);
  void FrameOnHub(ConnectionPtr connection, size_t frame_bytes,
                  absl::StatusOr<std::vector<ClientMessage>> messages);
  void ClosedOnHub(const ConnectionPtr& connection);
  void HandleHandshakeFrame(
      Handshake& handshake,
      absl::StatusOr<std::vector<ClientMessage>> messages);
  // Closes every connection still in its handshake or being authorized
  // with 1001, and every held one (shutdown, drain).
  void CloseUnestablished();
  // Asks the sync service to authorize the session; creates it or denies.
  void AuthorizeSession(const ConnectionPtr& connection,
                        const ClientMessage& create, ConnectionParams params);
  void CreateSession(const ConnectionPtr& connection,
                     const ClientMessage& create, std::string id,
                     sync::v1::Principal principal);
  // A new session's token, one that names this hub (HubOfSessionToken).
  std::string NewTokenOfThisHub() const;
  // Sends a commit to the scope's sessions; `body` is its encoded
  // ScopeSync body if the caller has one (null: made here when needed).
  void Deliver(const sync::v1::Commit& commit,
               std::shared_ptr<const std::string> body);
  // Ends the newest `count` sessions with 4097 server-overloaded.
  void Shed(size_t count);
  void MaybeUnwatch(const std::string& scope);
  // Keeps the scope's Date properties from `snapshot` (fetch or resync).
  static void NoteDates(ScopeWatch& watch,
                        const sync::v1::ScopeSnapshot& snapshot);
  // Drops the scope's answered versions up to `version`.
  static void ForgetAnswered(ScopeWatch& watch, uint64_t version);
  // Records the newest version seen on the stream for a watched scope.
  void NoteVersion(const std::string& scope, const std::string& epoch,
                   uint64_t version);
  // Asks the service to catch `scope` up from what this gateway has seen.
  void Rewatch(const std::string& scope, const ScopeWatch& watch);

  HubExecutor hub_;
  const GatewayOptions& options_;
  SyncClient& sync_;
  const Clock& clock_;
  GatewayMetrics* const metrics_;
  const HubPlacement placement_;

  FlushScheduler flushes_;

  absl::flat_hash_map<uint64_t, Handshake> handshakes_;  // by connection id
  // Limits, the tarpit and held connections (docs/protocol.md#limits):
  // the shared one of HubPlacement, or own_gate_.
  std::unique_ptr<ConnectionGate> own_gate_;
  ConnectionGate& gate_;
  OverloadShedder shedder_;
  // Connections whose SessionCreate awaits the sync service's decision;
  // their frames meanwhile are lost (docs/protocol.md#handshake).
  absl::flat_hash_map<uint64_t, ConnectionPtr> authorizing_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Session>> by_connection_;
  absl::flat_hash_map<std::string, std::shared_ptr<Session>> by_token_;
  struct Registered {
    Session* session;
    uint64_t order;  // of creation, the key of by_age_
  };
  absl::flat_hash_map<std::string, Registered> by_id_;
  // Live sessions, oldest first (the newest are shed first).
  absl::btree_map<uint64_t, Session*> by_age_;
  uint64_t next_order_ = 0;
  absl::flat_hash_map<std::string, ScopeWatch> scopes_;

  std::atomic<size_t> session_count_{0};
  std::atomic<size_t> connection_count_{0};
  std::atomic<uint64_t> messages_rate_limited_total_{0};
  std::atomic<uint64_t> origin_refused_total_{0};
  std::atomic<uint64_t> shed_total_{0};
};

// A new session token: 64 random bytes, base64, non-alphanumerics removed
// (docs/protocol.md#session-token).
std::string NewSessionToken();

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SESSION_SESSION_MANAGER_H_
