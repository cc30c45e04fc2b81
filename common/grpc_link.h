// File: common/grpc_link.h
//
// The settings both ends of the gateway <-> sync service link must agree
// on, in one place: keepalive (how often the gateway pings an idle stream,
// and how often the sync service lets it) and message sizes (how large a
// frame either side may send, and how large one it accepts).
//
// Keepalive. The gateway pings every `keepalive_time` even when no call
// carries data, and gives up on the connection if a ping is not answered
// within `keepalive_timeout`. A gRPC server by default allows a ping
// without data only every 5 minutes and sends GOAWAY "too_many_pings"
// after two early ones, so the server side must allow at least the
// client's rate: it accepts pings every `keepalive_time / 2`.
//
// Sizes. The gateway packs the requests of many sessions into one
// GatewayFrame, up to kGatewayFrameSoftBytes (a single larger request goes
// alone); no request it sends exceeds kMaxGatewayRequestBytes (the client's
// message is refused instead), and the sync service accepts frames up to
// kMaxGatewayFrameBytes, which holds one such request with room to spare.
// The sync service packs events up to SyncServiceOptions::max_frame_bytes;
// a frame can exceed that by one event (a scope's full state), so the
// gateway accepts up to kMaxServiceFrameBytes, which bounds a scope's state.
//
// Example:
//   grpc::ChannelArguments args = GatewayChannelArguments(LinkKeepalive{});
//   grpc::ServerBuilder builder;
//   ConfigureSyncServiceServer(LinkKeepalive{}, builder);

#ifndef JETSTREAM_COMMON_GRPC_LINK_H_
#define JETSTREAM_COMMON_GRPC_LINK_H_

#include <cstddef>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace jetstream {

inline constexpr size_t kGatewayFrameSoftBytes = size_t{1} << 20;
inline constexpr size_t kMaxGatewayRequestBytes = size_t{32} << 20;
inline constexpr size_t kMaxGatewayFrameBytes = size_t{64} << 20;
inline constexpr size_t kMaxServiceFrameBytes = size_t{256} << 20;

struct LinkKeepalive {
  absl::Duration keepalive_time = absl::Seconds(10);
  absl::Duration keepalive_timeout = absl::Seconds(5);
};

// The channel arguments of a gateway's channel to a sync service replica.
grpc::ChannelArguments GatewayChannelArguments(const LinkKeepalive& keepalive);

// Sets the sync service's server arguments: the pings it allows, the size
// it accepts.
void ConfigureSyncServiceServer(const LinkKeepalive& keepalive,
                                grpc::ServerBuilder& builder);

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_GRPC_LINK_H_
