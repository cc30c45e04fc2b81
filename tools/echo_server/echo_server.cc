#include "tools/echo_server/echo_server.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/websocket.hpp"

namespace jetstream::echo {
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// EchoSession
//
// One WebSocket connection: read a message, write it back, repeat. Runs on
// its own strand; kept alive by its pending operation.
class EchoSession : public std::enable_shared_from_this<EchoSession> {
 public:
  explicit EchoSession(tcp::socket&& socket) : ws_(std::move(socket)) {}

  void Run() {
    net::dispatch(
        ws_.get_executor(),
        beast::bind_front_handler(&EchoSession::OnRun, shared_from_this()));
  }

 private:
  void OnRun() {
    ws_.set_option(
        websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept(
        beast::bind_front_handler(&EchoSession::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec) {
    if (ec) return;
    DoRead();
  }

  void DoRead() {
    ws_.async_read(buffer_, beast::bind_front_handler(&EchoSession::OnRead,
                                                      shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec) return;  // closed, reset or timed out: the session ends
    ws_.text(ws_.got_text());
    ws_.async_write(
        buffer_.data(),
        beast::bind_front_handler(&EchoSession::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, size_t) {
    if (ec) return;
    buffer_.consume(buffer_.size());
    DoRead();
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
};

}  // namespace

EchoServer::EchoServer(EchoServerOptions options)
    : options_(std::move(options)),
      ioc_(std::max(1, options_.threads)),
      acceptor_(ioc_) {}

EchoServer::~EchoServer() {
  Stop();
  Wait();
}

absl::StatusOr<uint16_t> EchoServer::Start() {
  beast::error_code ec;
  auto address = net::ip::make_address(options_.listen_address, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad listen address '", options_.listen_address, "'"));
  }
  tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.listen_address, ":",
                     options_.port, ": ", ec.message()));
  }
  uint16_t port = acceptor_.local_endpoint().port();
  DoAccept();
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] { ioc_.run(); });
  }
  return port;
}

void EchoServer::DoAccept() {
  acceptor_.async_accept(
      net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted) return;
        if (!ec) {
          socket.set_option(tcp::no_delay(true), ec);
          std::make_shared<EchoSession>(std::move(socket))->Run();
        }
        DoAccept();
      });
}

void EchoServer::Stop() { ioc_.stop(); }

void EchoServer::Wait() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace jetstream::echo
