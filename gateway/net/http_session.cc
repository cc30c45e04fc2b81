#include "gateway/net/http_session.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/asio/dispatch.hpp"
#include "boost/beast/websocket.hpp"
#include "common/logging.h"
#include "gateway/net/websocket_connection.h"

namespace jetstream::gateway {
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;

namespace {

constexpr absl::string_view kPrefix = "x-jetstream-";

// `socket`, moved onto `strand` (another hub's): the same descriptor,
// handled by that strand from now on. Closed if it cannot move.
ConnectionSocket MoveToStrand(ConnectionSocket socket,
                              ConnectionStrand strand) {
  ConnectionSocket moved(std::move(strand));
  beast::error_code ec;
  const net::ip::tcp protocol = socket.local_endpoint(ec).protocol();
  if (ec) return moved;
  auto fd = socket.release(ec);
  if (!ec) moved.assign(protocol, fd, ec);
  return moved;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string PercentDecode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 &&
               HexDigit(s[i + 2]) >= 0) {
      out.push_back(
          static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool HasPrefix(absl::string_view key) {
  return key.size() > kPrefix.size() &&
         absl::EqualsIgnoreCase(key.substr(0, kPrefix.size()), kPrefix);
}

}  // namespace

ConnectionParams ExtractConnectionParams(
    const http::request<http::string_body>& request) {
  ConnectionParams params;
  for (const auto& field : request) {
    absl::string_view name(field.name_string().data(),
                           field.name_string().size());
    if (!HasPrefix(name)) continue;
    params[absl::AsciiStrToLower(name.substr(kPrefix.size()))] =
        std::string(field.value());
  }
  absl::string_view target(request.target().data(), request.target().size());
  size_t q = target.find('?');
  if (q != absl::string_view::npos) {
    for (absl::string_view pair :
         absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(pair, absl::MaxSplits('=', 1));
      std::string key = PercentDecode(kv.first);
      if (!HasPrefix(key)) continue;
      params[key.substr(kPrefix.size())] = PercentDecode(kv.second);
    }
  }
  return params;
}

std::string ForwardedFor(const http::request<http::string_body>& request) {
  std::string joined;
  for (const auto& field : request) {
    absl::string_view name(field.name_string().data(),
                           field.name_string().size());
    if (!absl::EqualsIgnoreCase(name, "x-forwarded-for")) continue;
    if (!joined.empty()) joined.push_back(',');
    joined.append(field.value().data(), field.value().size());
  }
  return joined;
}

HttpSession::HttpSession(net::ip::tcp::socket&& socket, ConnectionStrand strand,
                         SessionManager& manager, const HubSelector& select_hub,
                         const GatewayOptions& options,
                         const HttpHandler& handler,
                         const TrustedProxies& trusted_proxies, bool upgrades)
    : stream_(MakeConnectionStream(std::move(socket), std::move(strand))),
      manager_(manager),
      select_hub_(select_hub),
      options_(options),
      handler_(handler),
      trusted_proxies_(trusted_proxies),
      upgrades_(upgrades) {
  beast::error_code ec;
  auto endpoint = stream_.socket().remote_endpoint(ec);
  peer_ =
      ec ? "?"
         : absl::StrCat(endpoint.address().to_string(), ":", endpoint.port());
  if (!ec) peer_address_ = endpoint.address();
}

void HttpSession::Run() {
  net::dispatch(
      stream_.get_executor(),
      beast::bind_front_handler(&HttpSession::DoRead, shared_from_this()));
}

void HttpSession::DoRead() {
  parser_.emplace();
  parser_->header_limit(16 * 1024);
  parser_->body_limit(64 * 1024);
  stream_.expires_after(std::chrono::seconds(30));
  http::async_read(
      stream_, buffer_, *parser_,
      beast::bind_front_handler(&HttpSession::OnRead, shared_from_this()));
}

void HttpSession::OnRead(beast::error_code ec, size_t) {
  if (ec) {
    if (ec != http::error::end_of_stream && ec != beast::error::timeout) {
      VLOG(1) << "http " << peer_ << ": " << ec.message();
    }
    beast::error_code ignored;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    return;
  }
  if (upgrades_ && beast::websocket::is_upgrade(parser_->get()) &&
      !OriginAllowed(parser_->get())) {
    manager_.CountOriginRefused();
    LOG(INFO) << "http " << peer_ << ": upgrade refused for its Origin";
    auto response = std::make_shared<http::response<http::string_body>>(
        http::status::forbidden, parser_->get().version());
    response->set(http::field::content_type, "application/json");
    response->body() =
        R"({"message":"Origin not allowed","type":"origin-not-allowed"})";
    response->keep_alive(false);
    response->prepare_payload();
    response_ = response;
    http::async_write(stream_, *response,
                      beast::bind_front_handler(&HttpSession::OnWrite,
                                                shared_from_this(), true));
    return;
  }
  if (upgrades_ && beast::websocket::is_upgrade(parser_->get())) {
    http::request<http::string_body> request = parser_->release();
    WebSocketConnection::Client client;
    client.params = ExtractConnectionParams(request);
    client.peer = peer_;
    client.address =
        trusted_proxies_.ClientAddress(peer_address_, ForwardedFor(request));
    if (auto origin = request.find(http::field::origin);
        origin != request.end()) {
      client.origin = std::string(origin->value());
    }
    SessionManager& hub =
        select_hub_ ? select_hub_(client.params, manager_) : manager_;
    ConnectionSocket socket = stream_.release_socket();
    if (&hub != &manager_) socket = MoveToStrand(std::move(socket), hub.hub());
    auto connection = std::make_shared<WebSocketConnection>(
        std::move(socket), hub, options_, std::move(client));
    // Inline if it stays on this hub.
    net::dispatch(hub.hub(),
                  [connection, request = std::move(request)]() mutable {
                    connection->Run(std::move(request));
                  });
    return;
  }
  auto response = std::make_shared<http::response<http::string_body>>(
      handler_(parser_->get()));
  response->keep_alive(parser_->get().keep_alive());
  response->prepare_payload();
  bool close = response->need_eof();
  response_ = response;
  http::async_write(stream_, *response,
                    beast::bind_front_handler(&HttpSession::OnWrite,
                                              shared_from_this(), close));
}

bool HttpSession::OriginAllowed(
    const http::request<http::string_body>& request) const {
  if (options_.allowed_origins.empty()) return true;
  auto origin = request.find(http::field::origin);
  if (origin == request.end()) return true;  // not a browser
  const absl::string_view value(origin->value().data(), origin->value().size());
  for (const std::string& allowed : options_.allowed_origins) {
    if (absl::EqualsIgnoreCase(allowed, value)) return true;
  }
  return false;
}

void HttpSession::OnWrite(bool close, beast::error_code ec, size_t) {
  response_.reset();
  if (ec || close) {
    beast::error_code ignored;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    return;
  }
  DoRead();
}

}  // namespace jetstream::gateway
