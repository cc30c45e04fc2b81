// File: gateway/session/overload_shedder.h
//
// When a hub sheds load (docs/protocol.md#overload). A hub that cannot keep
// up with its sessions falls behind on every one of them at once: commits
// wait in its queue, and the delay grows for as long as the load lasts. The
// shedder watches that delay, from a commit's arrival at the gateway to its
// fan-out by the hub, and over the bound it has the hub end a tenth of its
// sessions (at least one), so the rest are served in time again; their
// clients reconnect, to another gateway if the load balancer has one.
//
// It sheds once per backlog: commits that arrived before the last shed
// were queued before it could take effect, and do not shed again.
//
// Thread-safety: none; the hub's executor.

#ifndef JETSTREAM_GATEWAY_SESSION_OVERLOAD_SHEDDER_H_
#define JETSTREAM_GATEWAY_SESSION_OVERLOAD_SHEDDER_H_

#include <cstddef>

#include "absl/time/time.h"

namespace jetstream::gateway {

class OverloadShedder {
 public:
  // `max_delay`: the bound; zero or less never sheds.
  explicit OverloadShedder(absl::Duration max_delay) : max_delay_(max_delay) {}

  // A commit the gateway received at `received` is fanned out at `now` by
  // a hub with `sessions` live sessions. Returns how many of them to end
  // first (0: none).
  size_t SessionsToShed(absl::Time received, absl::Time now, size_t sessions);

 private:
  const absl::Duration max_delay_;
  absl::Time last_shed_ = absl::InfinitePast();
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SESSION_OVERLOAD_SHEDDER_H_
