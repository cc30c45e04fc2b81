// File: gateway/session/tarpit.h
//
// How long to hold a refused connection before closing it, by source
// address (docs/protocol.md#tarpit). A client that reconnects at once after
// every refusal (the original JavaScript client without a token, which
// sends a Ping first) would otherwise open thousands of sockets a second;
// held, it opens at most one per delay, and the delay doubles with each
// refusal from the same address. Connections that complete their handshake
// are never held, so other clients behind the same address do not wait.
//
// Thread-safety: none; the session manager calls it on its hub strand.
// Time is passed in, so tests need no clock.

#ifndef JETSTREAM_GATEWAY_SESSION_TARPIT_H_
#define JETSTREAM_GATEWAY_SESSION_TARPIT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace jetstream::gateway {

class Tarpit {
 public:
  struct Options {
    // The hold after an address's first refusal; each further refusal
    // doubles it, up to `max_delay`. A zero max_delay turns holding off.
    absl::Duration first_delay = absl::Milliseconds(100);
    absl::Duration max_delay = absl::Seconds(10);
    // An address without a refusal for this long starts afresh.
    absl::Duration forget_after = absl::Minutes(1);
    // Addresses remembered at most; past it, the ones idle longest go.
    size_t max_addresses = 100000;
  };

  explicit Tarpit(Options options) : options_(options) {}

  // Tarpit::Refused()
  //
  // Records a refused handshake from `address` (an IP address, no port)
  // at `now`, and returns how long to hold its connection before closing.
  absl::Duration Refused(absl::string_view address, absl::Time now);

  // Addresses currently remembered.
  size_t addresses() const { return by_address_.size(); }

 private:
  struct Record {
    uint32_t refusals = 0;
    absl::Time last;
  };
  void Evict(absl::Time now);

  const Options options_;
  absl::flat_hash_map<std::string, Record> by_address_;
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SESSION_TARPIT_H_
