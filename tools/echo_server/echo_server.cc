#include "tools/echo_server/echo_server.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/post.hpp"
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

class BroadcastSession;

}  // namespace

namespace echo_internal {

// The open connections of a broadcasting server. Thread-safe.
class Broadcaster {
 public:
  void Join(BroadcastSession* session) {
    absl::MutexLock lock(&mu_);
    sessions_.insert(session);
  }
  void Leave(BroadcastSession* session) {
    absl::MutexLock lock(&mu_);
    sessions_.erase(session);
  }
  // Queues `message` on every open connection.
  void Send(std::shared_ptr<const std::string> message);

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<BroadcastSession*> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace echo_internal

namespace {

using echo_internal::Broadcaster;

// BroadcastSession
//
// One connection of a broadcasting server: every message read goes to the
// Broadcaster; what the Broadcaster queues here is written in order, one
// write at a time. Runs on its own strand; kept alive by its pending
// operations. Joins the Broadcaster once open and leaves it when it ends.
class BroadcastSession : public std::enable_shared_from_this<BroadcastSession> {
 public:
  BroadcastSession(tcp::socket&& socket, Broadcaster& broadcaster)
      : ws_(std::move(socket)), broadcaster_(broadcaster) {}
  ~BroadcastSession() {
    if (joined_) broadcaster_.Leave(this);
  }

  void Run() {
    net::dispatch(ws_.get_executor(),
                  beast::bind_front_handler(&BroadcastSession::OnRun,
                                            shared_from_this()));
  }

  // Any thread: queues `message` behind those already queued.
  void Queue(std::shared_ptr<const std::string> message) {
    net::post(ws_.get_executor(), [self = shared_from_this(),
                                   message = std::move(message)]() mutable {
      self->queue_.push_back(std::move(message));
      if (self->queue_.size() == 1) self->DoWrite();
    });
  }

 private:
  void OnRun() {
    ws_.set_option(
        websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept(beast::bind_front_handler(&BroadcastSession::OnAccept,
                                               shared_from_this()));
  }

  void OnAccept(beast::error_code ec) {
    if (ec) return;
    ws_.text(true);
    joined_ = true;
    broadcaster_.Join(this);
    DoRead();
  }

  void DoRead() {
    ws_.async_read(buffer_, beast::bind_front_handler(&BroadcastSession::OnRead,
                                                      shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec) return;
    broadcaster_.Send(std::make_shared<const std::string>(
        beast::buffers_to_string(buffer_.data())));
    buffer_.consume(buffer_.size());
    DoRead();
  }

  void DoWrite() {
    ws_.async_write(net::buffer(*queue_.front()),
                    beast::bind_front_handler(&BroadcastSession::OnWrite,
                                              shared_from_this()));
  }

  void OnWrite(beast::error_code ec, size_t) {
    if (ec) {
      queue_.clear();
      return;
    }
    queue_.pop_front();
    if (!queue_.empty()) DoWrite();
  }

  websocket::stream<beast::tcp_stream> ws_;
  Broadcaster& broadcaster_;
  bool joined_ = false;
  beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;
};

}  // namespace

void echo_internal::Broadcaster::Send(
    std::shared_ptr<const std::string> message) {
  // Sessions leave from their destructors: hold each one before the lock
  // goes.
  std::vector<std::shared_ptr<BroadcastSession>> open;
  {
    absl::MutexLock lock(&mu_);
    open.reserve(sessions_.size());
    for (BroadcastSession* s : sessions_) {
      if (auto held = s->weak_from_this().lock()) open.push_back(held);
    }
  }
  for (const auto& s : open) s->Queue(message);
}

EchoServer::EchoServer(EchoServerOptions options)
    : options_(std::move(options)),
      broadcaster_(options_.broadcast
                       ? std::make_unique<echo_internal::Broadcaster>()
                       : nullptr),
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
          if (broadcaster_ != nullptr) {
            std::make_shared<BroadcastSession>(std::move(socket), *broadcaster_)
                ->Run();
          } else {
            std::make_shared<EchoSession>(std::move(socket))->Run();
          }
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
