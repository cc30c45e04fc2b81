// File: common/logging.h
//
// The project's logging facade: glog (Debian's libgoogle-glog-dev), because
// absl/log is not in Debian 12's Abseil. Use LOG(INFO) for one line per
// session or scope event (a session's start and end, a scope's handoff),
// VLOG(1) for per-message and other per-session detail, LOG(WARNING) /
// LOG(ERROR) for trouble. Lines carry key=value fields ("session=... trace_id
// =..."). Lines go to stderr, as glog's text or, with LogFormat::kJson, one
// JSON object per line:
//
//   {"ts":"2026-12-04T02:03:04.123456Z","level":"INFO",
//    "source":"session_manager.cc:295","msg":"...","trace_id":"4bf9..."}
//
// where each key=value field of the message is also a member (unless it
// would replace ts, level, source or msg). Only main() configures it
// (InitLogging); swapping in absl/log later changes this file only.

#ifndef JETSTREAM_COMMON_LOGGING_H_
#define JETSTREAM_COMMON_LOGGING_H_

#include <glog/logging.h>

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/log_format.h"

namespace jetstream {

// Sends logs to stderr in `format` with `verbosity` as the VLOG level. Call
// once, from main(), before logging.
void InitLogging(const char* program, int verbosity,
                 LogFormat format = LogFormat::kText);

// One JSON line (without the newline) as LogFormat::kJson writes it.
// `level` is "INFO", "WARNING", "ERROR" or "FATAL".
std::string JsonLogLine(absl::string_view level, absl::string_view file,
                        int line, absl::Time time, absl::string_view message);

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_LOGGING_H_
