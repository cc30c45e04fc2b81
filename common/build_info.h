// File: common/build_info.h
//
// What is running: the release version (kept in this file's .cc) and the
// git commit the binary was built from (Bazel's workspace status,
// tools/workspace_status.sh; "unknown" outside a git checkout). Reported
// as jetstream_build_info and in each process's startup log line.

#ifndef JETSTREAM_COMMON_BUILD_INFO_H_
#define JETSTREAM_COMMON_BUILD_INFO_H_

#include "absl/strings/string_view.h"

namespace jetstream {

// "0.9.0". Thread-safe, constant.
absl::string_view BuildVersion();
// A full commit hash, with "-dirty" if the tree had changes; or "unknown".
absl::string_view BuildCommit();

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_BUILD_INFO_H_
