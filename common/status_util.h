// File: common/status_util.h
//
// Conversions between absl::Status, which both services use inside, and
// grpc::Status, which exists only at the gRPC edge (sync_service_impl.cc,
// the gateway's gRPC client). The canonical codes have the same numbers in
// both, so a conversion is a cast plus the message.
//
// Example:
//   return ToGrpcStatus(absl::NotFoundError("No such scope"));

#ifndef JETSTREAM_COMMON_STATUS_UTIL_H_
#define JETSTREAM_COMMON_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace jetstream {

// The grpc::Status with the same code and message. OK maps to OK.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The absl::Status with the same code and message (error details, if any,
// are dropped). OK maps to OK.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_STATUS_UTIL_H_
