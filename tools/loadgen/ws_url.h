// File: tools/loadgen/ws_url.h
//
// Splits a plain WebSocket URL, ws://host[:port][/path], into what a Beast
// client needs: the host to resolve, the port and the request target. TLS
// (wss://) is not supported: the load generator measures servers over
// plain TCP, normally loopback.

#ifndef JETSTREAM_TOOLS_LOADGEN_WS_URL_H_
#define JETSTREAM_TOOLS_LOADGEN_WS_URL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jetstream::loadgen {

struct WsUrl {
  std::string host;
  uint16_t port = 80;
  std::string target = "/";  // path and query

  // "host:port", the value of the Host header.
  std::string HostHeader() const;
};

// ParseWsUrl()
//
// Returns kInvalidArgument for anything but ws://host[:port][/path...].
absl::StatusOr<WsUrl> ParseWsUrl(absl::string_view url);

}  // namespace jetstream::loadgen

#endif  // JETSTREAM_TOOLS_LOADGEN_WS_URL_H_
