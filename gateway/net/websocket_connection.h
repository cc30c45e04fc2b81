// File: gateway/net/websocket_connection.h
//
// One client's WebSocket (Boost.Beast). Reads frames, parses them on the
// connection's strand (its hub's: hubs run in parallel, one per event-loop
// thread, and a hub's sends to its connections run inline), and hands the
// parsed messages to the
// protocol layer (ConnectionEvents: the SessionManager). Writes go through a
// bounded queue with one async_write in flight. While it is in flight, the
// frames sent meanwhile coalesce into the one frame waiting behind it (up
// to 1 MiB), so a busy socket gets one system call for many hub turns'
// messages, in order. A client that does not read fast enough overflows
// the queue (in bytes, or in the age of its oldest frame) and its session
// is ended with close code 4097 and a clear reason, so it never stalls
// anybody else.
//
// The class is a template over the stream under the WebSocket layer: the
// gateway uses a TCP socket on the connection's strand (WebSocketConnection,
// instantiated once in websocket_connection.cc); unit tests use
// boost::beast::test::stream, including its fail_count (the definitions are
// in websocket_connection_impl.h, which only they and the .cc include).
//
// Lifetime: shared_ptr, kept alive by its pending asynchronous operations.
// Thread-safety: Send() and Close() from any thread; the rest on the
// stream's executor (the strand).

#ifndef JETSTREAM_GATEWAY_NET_WEBSOCKET_CONNECTION_H_
#define JETSTREAM_GATEWAY_NET_WEBSOCKET_CONNECTION_H_

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "boost/asio/buffer.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/websocket.hpp"
#include "gateway/core/clock.h"
#include "gateway/core/gateway_options.h"
#include "gateway/core/hub_executor.h"
#include "gateway/session/connection.h"

namespace jetstream::gateway {

// A connection's strand, as a concrete type: Beast's operations copy and
// re-wrap the executor several times per read and write, which for the
// type-erased any_io_executor (tcp_stream's) means a heap allocation each.
// It is the strand of the connection's hub.
using ConnectionStrand = HubExecutor;
// HTTP (HttpSession) reads through a stream with Beast's timeouts; the
// WebSocket runs on the bare socket, with the WebSocket layer's own
// timeouts (idle, close handshake), which spares every read and write the
// stream's timer bookkeeping.
using ConnectionStream =
    boost::beast::basic_stream<boost::asio::ip::tcp, ConnectionStrand>;
using ConnectionSocket =
    boost::asio::basic_stream_socket<boost::asio::ip::tcp, ConnectionStrand>;

// Moves an accepted socket into a ConnectionStream running on `strand`.
ConnectionStream MakeConnectionStream(boost::asio::ip::tcp::socket&& socket,
                                      ConnectionStrand strand);

// A process-wide unique id for a new connection.
uint64_t NextConnectionId();

template <class NextLayer>
class BasicWebSocketConnection
    : public Connection,
      public std::enable_shared_from_this<BasicWebSocketConnection<NextLayer>> {
 public:
  // Who is on the other end, from the upgrade request.
  struct Client {
    ConnectionParams
        params;           // x-jetstream-* (docs/protocol.md#connection-params)
    std::string peer;     // "ip:port" of the TCP peer
    std::string address;  // the client's (docs/protocol.md#client-address)
    std::string origin;   // the Origin header; empty without one
  };

  // `events`, `options` and `clock` must outlive the connection; `clock`
  // times the write queue's age bound.
  BasicWebSocketConnection(NextLayer&& stream, ConnectionEvents& events,
                           const GatewayOptions& options, Client client,
                           const Clock& clock = Clock::Real());
  ~BasicWebSocketConnection() override;

  // Completes the upgrade of `request` and starts reading.
  void Run(
      boost::beast::http::request<boost::beast::http::string_body> request);

  // Connection
  void Send(ServerFrame frame) override;
  void Close(uint16_t code, std::string reason) override;
  uint64_t id() const override { return id_; }
  const std::string& peer() const override { return peer_; }
  const std::string& address() const override { return address_; }
  const std::string& origin() const override { return origin_; }

 private:
  void OnAccept(boost::beast::error_code ec);
  void DoRead();
  void OnRead(boost::beast::error_code ec, size_t bytes);
  // A message grew over options_.max_frame_bytes: closes with 1009 and a
  // reason, and from then on reads and drops what the client still sends,
  // so its close answer arrives and the socket ends cleanly (no reset
  // while the client is still writing).
  void RefuseOversizedMessage();
  void DoWrite();
  void OnWrite(boost::beast::error_code ec, size_t bytes);
  void DoClose();
  // Closes the socket under the WebSocket layer: pending operations end
  // with operation_aborted. For a connection that failed; idempotent.
  void CloseSocket();
  void Finish();  // closes the socket and reports the close to `events_`, once

  boost::beast::websocket::stream<NextLayer> ws_;
  boost::beast::flat_buffer buffer_;
  ConnectionEvents& events_;
  const GatewayOptions& options_;
  const Clock& clock_;
  ConnectionParams params_;
  const std::string peer_;
  const std::string address_;
  const std::string origin_;
  const uint64_t id_;

  // Strand state.
  std::deque<ServerFrame> queue_;
  // When each frame of queue_ was queued (the age bound,
  // GatewayOptions::max_write_queue_age); a frame that takes in others
  // keeps its time.
  std::deque<absl::Time> queued_at_;
  // The pieces of queue_.front() while it is written; reused, so a write
  // allocates nothing here.
  std::vector<boost::asio::const_buffer> write_buffers_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool opened_ = false;
  // Over the frame limit: reads are dropped until the close completes.
  bool discarding_ = false;
  std::optional<boost::beast::websocket::close_reason> close_reason_;
};

// The gateway's: a TCP socket on the connection's strand.
using WebSocketConnection = BasicWebSocketConnection<ConnectionSocket>;
extern template class BasicWebSocketConnection<ConnectionSocket>;

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_NET_WEBSOCKET_CONNECTION_H_
