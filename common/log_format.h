// File: common/log_format.h
//
// How the processes write their log lines (common/logging.h): glog's text,
// or one JSON object per line. Apart from logging.h because it includes no
// glog header: syncservice/main.cc defines a flag `v`, which glog's headers
// also declare.

#ifndef JETSTREAM_COMMON_LOG_FORMAT_H_
#define JETSTREAM_COMMON_LOG_FORMAT_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jetstream {

enum class LogFormat { kText, kJson };

// "text" or "json"; kInvalidArgument otherwise.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_LOG_FORMAT_H_
