// Whole-file reads for configuration, certificates and static pages.
#ifndef JETSTREAM_COMMON_FILE_UTIL_H_
#define JETSTREAM_COMMON_FILE_UTIL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jetstream {

// The bytes of the file at `path`. kNotFound if it cannot be opened,
// kInvalidArgument for a directory, kUnavailable if reading fails part
// way. The message reads
// "<path>: cannot open the <what>", e.g. what = "schema file".
absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                             absl::string_view what = "file");

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_FILE_UTIL_H_
