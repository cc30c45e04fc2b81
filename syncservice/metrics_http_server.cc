#include "syncservice/metrics_http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/logging.h"

namespace jetstream {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// One connection: reads one request, answers, closes. Owns itself through
// the pending operation's shared_ptr.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, const MetricsHttpServer::Render* render)
      : stream_(std::move(socket)), render_(render) {}

  void Run() {
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(
        stream_, buffer_, request_,
        beast::bind_front_handler(&HttpSession::OnRead, shared_from_this()));
  }

 private:
  void OnRead(beast::error_code ec, size_t /*bytes*/) {
    if (ec) return;  // closed, timed out or malformed: nothing to answer
    response_.version(request_.version());
    response_.set(http::field::server, "jetstream-syncservice");
    response_.keep_alive(false);
    absl::string_view target(request_.target().data(),
                             request_.target().size());
    target = target.substr(0, target.find('?'));
    if (request_.method() != http::verb::get &&
        request_.method() != http::verb::head) {
      Respond(http::status::method_not_allowed, "method not allowed\n",
              "text/plain");
    } else if (target == "/metrics") {
      Respond(http::status::ok, (*render_)(), "text/plain; version=0.0.4");
    } else if (target == "/healthz") {
      Respond(http::status::ok, "ok\n", "text/plain");
    } else {
      Respond(http::status::not_found, "not found\n", "text/plain");
    }
    http::async_write(
        stream_, response_,
        beast::bind_front_handler(&HttpSession::OnWrite, shared_from_this()));
  }

  void Respond(http::status status, std::string body, const char* type) {
    response_.result(status);
    response_.set(http::field::content_type, type);
    response_.body() = std::move(body);
    response_.prepare_payload();
  }

  void OnWrite(beast::error_code /*ec*/, size_t /*bytes*/) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  const MetricsHttpServer::Render* const render_;
};

}  // namespace

class MetricsHttpServer::Impl {
 public:
  Impl(Render render) : render_(std::move(render)), acceptor_(ioc_) {}

  absl::StatusOr<std::string> Bind(const std::string& listen) {
    size_t colon = listen.rfind(':');
    int port = 0;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
        port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics address '", listen, "' is not ip:port"));
    }
    std::string host = listen.substr(0, colon);
    if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
      host = host.substr(1, host.size() - 2);
    }
    beast::error_code ec;
    net::ip::address ip = net::ip::make_address(host, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics address '", listen, "' is not ip:port"));
    }
    tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot serve metrics on '",
                                                 listen, "': ", ec.message()));
    }
    tcp::endpoint bound = acceptor_.local_endpoint();
    return ip.is_v6()
               ? absl::StrCat("[", bound.address().to_string(),
                              "]:", bound.port())
               : absl::StrCat(bound.address().to_string(), ":", bound.port());
  }

  void Run() {
    DoAccept();
    thread_ = std::thread([this] { ioc_.run(); });
  }

  // Pending handlers (and their connections) are destroyed with ioc_.
  ~Impl() {
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void DoAccept() {
    acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec,
                                                          tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) {
        std::make_shared<HttpSession>(std::move(socket), &render_)->Run();
      }
      DoAccept();
    });
  }

  const Render render_;
  net::io_context ioc_{1};
  tcp::acceptor acceptor_;
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, Render render) {
  auto impl = std::make_unique<Impl>(std::move(render));
  absl::StatusOr<std::string> address = impl->Bind(listen);
  if (!address.ok()) return address.status();
  impl->Run();
  std::unique_ptr<MetricsHttpServer> server(
      new MetricsHttpServer(std::move(impl)));
  server->address_ = *std::move(address);
  return server;
}

MetricsHttpServer::MetricsHttpServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

MetricsHttpServer::~MetricsHttpServer() = default;

}  // namespace jetstream
