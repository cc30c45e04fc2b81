// File: common/build_info.cc

#include "common/build_info.h"

#include "common/build_stamp.h"

namespace jetstream {

absl::string_view BuildVersion() { return "0.9.0"; }

absl::string_view BuildCommit() { return kBuildStampCommit; }

}  // namespace jetstream
