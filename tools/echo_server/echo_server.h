// File: tools/echo_server/echo_server.h
//
// EchoServer is the smallest useful Boost.Beast WebSocket server: it
// accepts connections on any path and sends every message back as it came
// (text stays text). It does nothing else on purpose: measured with the
// load generator's echo scenario (tools/loadgen), it is the ceiling a Beast
// server reaches on this machine, against which the Jetstream gateway's
// figures are quoted.
//
// The structure is the Beast async server example's: an accept loop, and
// per connection a strand, a read, a write of the same buffer, a read...
// (one message in flight per connection, so no write queue is needed).
//
// With `broadcast` it is instead the Beast chat example's: every message
// received goes to every open connection, the sender included (one shared
// copy, posted to each connection's strand, a write queue per
// connection). That is the ceiling of fan-out (--scenario=echo_fanout).
//
// Example:
//   EchoServer server({.listen_address = "127.0.0.1", .port = 0});
//   absl::StatusOr<uint16_t> port = server.Start();
//   ...
//   server.Stop();
//   server.Wait();
//
// Thread-safety: Start() once, then Stop() from any thread; Wait() joins
// the event loop threads.

#ifndef JETSTREAM_TOOLS_ECHO_SERVER_ECHO_SERVER_H_
#define JETSTREAM_TOOLS_ECHO_SERVER_ECHO_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"

namespace jetstream::echo {

namespace echo_internal {
class Broadcaster;
}  // namespace echo_internal

struct EchoServerOptions {
  std::string listen_address = "127.0.0.1";
  uint16_t port = 0;  // 0 picks a free port
  int threads = 1;
  bool broadcast = false;  // send each message to every connection
};

class EchoServer {
 public:
  explicit EchoServer(EchoServerOptions options);
  ~EchoServer();
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  // EchoServer::Start()
  //
  // Listens and starts the event loop threads; returns the port.
  absl::StatusOr<uint16_t> Start();

  // EchoServer::Stop()
  //
  // Stops the event loops; open connections are dropped.
  void Stop();

  // EchoServer::Wait()
  //
  // Blocks until the event loop threads have ended (after Stop()).
  void Wait();

 private:
  void DoAccept();

  const EchoServerOptions options_;
  const std::unique_ptr<echo_internal::Broadcaster>
      broadcaster_;  // with `broadcast` only
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
};

}  // namespace jetstream::echo

#endif  // JETSTREAM_TOOLS_ECHO_SERVER_ECHO_SERVER_H_
