#include "gateway/session/overload_shedder.h"

#include <algorithm>

namespace jetstream::gateway {

size_t OverloadShedder::SessionsToShed(absl::Time received, absl::Time now,
                                       size_t sessions) {
  if (max_delay_ <= absl::ZeroDuration() || sessions == 0) return 0;
  if (now - received <= max_delay_) return 0;
  if (received <= last_shed_) return 0;  // queued before the last shed
  last_shed_ = now;
  return std::max<size_t>(1, sessions / 10);
}

}  // namespace jetstream::gateway
