// File: common/logging.h
//
// The project's logging facade: glog (Debian's libgoogle-glog-dev), because
// absl/log is not in Debian 12's Abseil. Use LOG(INFO) for one line per
// session or scope event, VLOG(1) for per-message detail, LOG(WARNING) /
// LOG(ERROR) for trouble. Lines go to stderr. Only main() configures it
// (InitLogging); swapping in absl/log later changes this file only.

#ifndef JETSTREAM_COMMON_LOGGING_H_
#define JETSTREAM_COMMON_LOGGING_H_

#include <glog/logging.h>

namespace jetstream {

// Sends logs to stderr with `verbosity` as the VLOG level. Call once, from
// main(), before logging.
inline void InitLogging(const char* program, int verbosity) {
  FLAGS_logtostderr = true;
  FLAGS_v = verbosity;
  google::InitGoogleLogging(program);
}

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_LOGGING_H_
