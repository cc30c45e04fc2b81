// File: gateway/session/connection.h
//
// A client's WebSocket connection as the protocol layer sees it. The network
// code (gateway/net) implements it. A protocol session
// outlives its connections: a client may resume on a new one.

#ifndef JETSTREAM_GATEWAY_SESSION_CONNECTION_H_
#define JETSTREAM_GATEWAY_SESSION_CONNECTION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/protocol/client_message.h"
#include "gateway/protocol/server_frame.h"

namespace jetstream::gateway {

// Close codes (docs/protocol.md#close-codes).
inline constexpr uint16_t kCloseDeniedConnection = 4096;
inline constexpr uint16_t kCloseClosedConnection = 4097;

class Connection {
 public:
  virtual ~Connection() = default;

  // Connection::Send()
  //
  // Queues one text frame. Thread-safe, never blocks; frames leave in call
  // order. A connection whose queue overflows closes itself and reports it
  // like any other close. The frame's shared bodies are written from where
  // they are, never copied.
  virtual void Send(ServerFrame frame) = 0;

  // Connection::Close()
  //
  // Sends a close frame after the queued frames, then ends the connection.
  // Thread-safe; later calls are ignored.
  virtual void Close(uint16_t code, std::string reason) = 0;

  // Unique per process; for logs and maps.
  virtual uint64_t id() const = 0;
  // "ip:port" of the TCP peer, for logs.
  virtual const std::string& peer() const = 0;
  // The client's IP address, no port: the TCP peer's, or, when the peer is
  // a trusted proxy (--trusted_proxies), the client it forwarded for
  // (X-Forwarded-For). Limits and the tarpit count by it.
  virtual const std::string& address() const = 0;
  // The upgrade request's Origin header; empty without one (not a browser).
  virtual const std::string& origin() const = 0;
};

using ConnectionPtr = std::shared_ptr<Connection>;

// The `x-jetstream-*` parameters of a connection
// (docs/protocol.md#connection-params): from headers (names lower-cased) and
// from the query string (case kept after the prefix), keyed by the rest of the
// name.
using ConnectionParams = std::map<std::string, std::string>;

// ConnectionEvents
//
// What a connection reports to the protocol layer (SessionManager
// implements it; tests record). Calls may come from any thread; for one
// connection they come in order: Opened once, then frames and at most one
// overflow, then Closed once (only if Opened was reported).
class ConnectionEvents {
 public:
  virtual ~ConnectionEvents() = default;
  // The upgrade completed; `params` are the connection's x-jetstream-*.
  virtual void OnConnectionOpened(ConnectionPtr connection,
                                  ConnectionParams params) = 0;
  // A frame of `frame_bytes` bytes, parsed or refused by the parser.
  virtual void OnFrame(ConnectionPtr connection, size_t frame_bytes,
                       absl::StatusOr<std::vector<ClientMessage>> messages) = 0;
  // The client does not read: the connection closes itself with 4097.
  virtual void OnWriteQueueOverflow(ConnectionPtr connection) = 0;
  // The connection ended (closed by either side, or failed).
  virtual void OnConnectionClosed(ConnectionPtr connection) = 0;
  // Just before OnConnectionClosed: the close code either side sent (the
  // server's if it closed first), 1006 if the connection ended without a
  // close frame. For metrics; any thread.
  virtual void OnCloseCode(uint16_t code) { (void)code; }
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SESSION_CONNECTION_H_
