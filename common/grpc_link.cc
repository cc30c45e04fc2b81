#include "common/grpc_link.h"

#include <algorithm>
#include <cstdint>

namespace jetstream {
namespace {

int Millis(absl::Duration d) {
  return static_cast<int>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 1, INT32_MAX));
}

}  // namespace

grpc::ChannelArguments GatewayChannelArguments(const LinkKeepalive& keepalive) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(keepalive.keepalive_time));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              Millis(keepalive.keepalive_timeout));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Keep pinging an idle stream: a dead replica is noticed even when no
  // scope of it is written.
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
              static_cast<int>(kMaxServiceFrameBytes));
  args.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
              static_cast<int>(kMaxGatewayFrameBytes));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return args;
}

void ConfigureSyncServiceServer(const LinkKeepalive& keepalive,
                                grpc::ServerBuilder& builder) {
  // Pings every keepalive_time are expected; allow twice that rate so
  // timer jitter never counts as a strike.
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      Millis(keepalive.keepalive_time / 2));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxGatewayFrameBytes));
  builder.SetMaxSendMessageSize(static_cast<int>(kMaxServiceFrameBytes));
}

}  // namespace jetstream
