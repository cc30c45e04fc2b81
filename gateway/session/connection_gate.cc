#include "gateway/session/connection_gate.h"

#include <utility>

#include "common/logging.h"
#include "gateway/protocol/server_message.h"

namespace jetstream::gateway {
namespace {

const WireError kTooManyConnections{"Too many connections",
                                    "too-many-connections"};
const WireError kConnectionRateLimited{
    "Too many new connections from this address", "connection-rate-limited"};

}  // namespace

ConnectionGate::ConnectionGate(HubExecutor executor,
                               const GatewayOptions& options,
                               const Clock& clock)
    : executor_(std::move(executor)),
      options_(options),
      clock_(clock),
      tarpit_(Tarpit::Options{options.tarpit_first_delay,
                              options.tarpit_max_delay}),
      connection_rate_(AddressRateLimiter::Options{
          static_cast<double>(options.max_connection_rate_per_address),
          kRateLimitBurst * options.max_connection_rate_per_address}) {}

ConnectionGate::~ConnectionGate() = default;

const WireError* ConnectionGate::AdmitLocked(const Connection& connection) {
  const std::string& address = connection.address();
  if (!connection_rate_.Allow(address, clock_.Now())) {
    ++rate_limited_total_;
    LOG(WARNING) << "connection " << connection.peer() << " (" << address
                 << "): refused, too many new connections from its address";
    return &kConnectionRateLimited;
  }
  auto count = admitted_by_address_.try_emplace(address, 0).first;
  const size_t per_address = options_.max_connections_per_address;
  if ((options_.max_connections > 0 &&
       admitted_.size() >= options_.max_connections) ||
      (per_address > 0 && count->second >= per_address)) {
    if (count->second == 0) admitted_by_address_.erase(count);
    ++over_limit_total_;
    LOG(WARNING) << "connection " << connection.peer()
                 << ": refused, too many connections";
    return &kTooManyConnections;
  }
  ++count->second;
  admitted_.emplace(connection.id(), address);
  return nullptr;
}

bool ConnectionGate::Admit(const ConnectionPtr& connection) {
  const WireError* refused;
  {
    absl::MutexLock lock(&mu_);
    refused = AdmitLocked(*connection);
  }
  if (refused == nullptr) return true;
  Deny(connection, *refused, Hold::kNone);
  return false;
}

void ConnectionGate::Deny(const ConnectionPtr& connection,
                          const WireError& error, Hold hold) {
  std::string reason = EncodeCloseReason(error);
  absl::Duration delay = absl::ZeroDuration();
  if (hold == Hold::kTarpit) {
    absl::MutexLock lock(&mu_);
    delay = tarpit_.Refused(connection->address(), clock_.Now());
    if (delay > absl::ZeroDuration()) {
      ++tarpitted_total_;
      ++held_count_;
      Held& held = held_[connection->id()];
      held.connection = connection;
      held.reason = std::move(reason);
      held.timer = std::make_unique<boost::asio::steady_timer>(
          executor_, absl::ToChronoNanoseconds(delay));
      held.timer->async_wait(
          [this, id = connection->id()](boost::system::error_code ec) {
            if (ec) return;
            ConnectionPtr c;
            std::string r;
            {
              absl::MutexLock lock(&mu_);
              auto it = held_.find(id);
              if (it == held_.end()) return;
              c = std::move(it->second.connection);
              r = std::move(it->second.reason);
              held_.erase(it);
              --held_count_;
            }
            c->Close(kCloseDeniedConnection, std::move(r));
          });
      return;
    }
  }
  connection->Close(kCloseDeniedConnection, std::move(reason));
}

bool ConnectionGate::Closed(const Connection& connection) {
  absl::MutexLock lock(&mu_);
  if (auto it = admitted_.find(connection.id()); it != admitted_.end()) {
    auto count = admitted_by_address_.find(it->second);
    if (count != admitted_by_address_.end() && --count->second == 0) {
      admitted_by_address_.erase(count);
    }
    admitted_.erase(it);
  }
  auto it = held_.find(connection.id());
  if (it == held_.end()) return false;
  // Cancelled here; the timer's handler then finds nothing to do.
  it->second.timer->cancel();
  held_.erase(it);
  --held_count_;
  return true;
}

void ConnectionGate::ReleaseHeld() {
  absl::flat_hash_map<uint64_t, Held> held;
  {
    absl::MutexLock lock(&mu_);
    held.swap(held_);
    held_count_ -= held.size();
  }
  for (auto& [id, h] : held) {
    h.timer->cancel();
    h.connection->Close(kCloseDeniedConnection, std::move(h.reason));
  }
}

}  // namespace jetstream::gateway
