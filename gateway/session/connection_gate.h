// File: gateway/session/connection_gate.h
//
// The door every new WebSocket connection passes before it may start or
// resume a session (docs/protocol.md#limits): the new-connection rate per
// client address, the connection limits in total and per address, and the
// tarpit that holds refused connections before closing them
// (docs/protocol.md#tarpit). It knows nothing of sessions; SessionManager
// asks it and decides the rest.
//
// Thread-safety: thread-safe, so the gateway's hubs share one gate (its
// limits are the gateway's, not a hub's). Held connections are closed on
// `executor`, the one given at construction. Connections are closed
// outside its lock.

#ifndef JETSTREAM_GATEWAY_SESSION_CONNECTION_GATE_H_
#define JETSTREAM_GATEWAY_SESSION_CONNECTION_GATE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/steady_timer.hpp"
#include "common/sync_fragment.h"
#include "gateway/core/clock.h"
#include "gateway/core/gateway_options.h"
#include "gateway/core/hub_executor.h"
#include "gateway/session/connection.h"
#include "gateway/session/rate_limit.h"
#include "gateway/session/tarpit.h"

namespace jetstream::gateway {

class ConnectionGate {
 public:
  // `options` and `clock` must outlive the gate; `executor` runs the
  // tarpit's timers.
  ConnectionGate(HubExecutor executor, const GatewayOptions& options,
                 const Clock& clock);
  ~ConnectionGate();

  // ConnectionGate::Admit()
  //
  // A connection just opened. Within the limits it is admitted (true) and
  // holds its slot until Closed(); otherwise it is closed with 4096
  // (`connection-rate-limited` or `too-many-connections`) and false is
  // returned: nothing more is to be done with it.
  bool Admit(const ConnectionPtr& connection);

  // ConnectionGate::Deny()
  //
  // Closes `connection` with 4096 and `error`. With kTarpit, after the
  // tarpit's delay for its address (the connection is held meanwhile; its
  // frames are for nobody); with kNone, at once.
  enum class Hold { kNone, kTarpit };
  void Deny(const ConnectionPtr& connection, const WireError& error, Hold hold);

  // ConnectionGate::Closed()
  //
  // The connection closed: its slot is free. Returns true if it was held
  // (then it was nothing else: the caller is done with it).
  bool Closed(const Connection& connection);

  // Closes every held connection now (shutdown, drain).
  void ReleaseHeld();

  size_t held_count() const { return held_count_.load(); }
  uint64_t tarpitted_total() const { return tarpitted_total_.load(); }
  uint64_t over_limit_total() const { return over_limit_total_.load(); }
  uint64_t rate_limited_total() const { return rate_limited_total_.load(); }

 private:
  struct Held {
    ConnectionPtr connection;
    std::string reason;  // the close reason it will get
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  // Admit()'s decision, taken under the lock: empty, or the refusal.
  const WireError* AdmitLocked(const Connection& connection)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  HubExecutor executor_;
  const GatewayOptions& options_;
  const Clock& clock_;
  absl::Mutex mu_;
  Tarpit tarpit_ ABSL_GUARDED_BY(mu_);
  AddressRateLimiter connection_rate_ ABSL_GUARDED_BY(mu_);
  // Admitted connections: their address by connection id, and the count
  // per address.
  absl::flat_hash_map<uint64_t, std::string> admitted_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> admitted_by_address_
      ABSL_GUARDED_BY(mu_);
  // Refused connections waiting out their tarpit delay, by connection id.
  absl::flat_hash_map<uint64_t, Held> held_ ABSL_GUARDED_BY(mu_);

  std::atomic<size_t> held_count_{0};
  std::atomic<uint64_t> tarpitted_total_{0};
  std::atomic<uint64_t> over_limit_total_{0};
  std::atomic<uint64_t> rate_limited_total_{0};
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SESSION_CONNECTION_GATE_H_
