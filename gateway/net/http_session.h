// File: gateway/net/http_session.h
//
// One accepted TCP connection speaking HTTP. A WebSocket upgrade (on any
// path, docs/protocol.md#connecting) becomes a WebSocketConnection carrying the
// request's `x-jetstream-*` headers and query parameters, its Origin and the
// client's address (docs/protocol.md#client-address). Other requests get the
// health endpoints (/healthz, /readyz), the metrics endpoint (/metrics), or
// a file of the demo web pages.
//
// Lifetime: shared_ptr, alive while an operation is pending. Runs on the
// strand it is given (the accepting hub's, or one of its own for the
// metrics port). The WebSocketConnection it becomes runs on the strand of
// the hub it belongs to (HubSelector): a resume goes to the hub that holds
// its session, and the socket moves there.

#ifndef JETSTREAM_GATEWAY_NET_HTTP_SESSION_H_
#define JETSTREAM_GATEWAY_NET_HTTP_SESSION_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "gateway/core/gateway_options.h"
#include "gateway/net/trusted_proxies.h"
#include "gateway/net/websocket_connection.h"
#include "gateway/session/connection.h"
#include "gateway/session/session_manager.h"

namespace jetstream::gateway {

// Answers plain HTTP requests other than upgrades (health, metrics, files).
using HttpHandler =
    std::function<boost::beast::http::response<boost::beast::http::string_body>(
        const boost::beast::http::request<boost::beast::http::string_body>&)>;

// The hub an upgraded connection belongs on, given its params and the hub
// that accepted it. Called on the accepting hub's strand.
using HubSelector = std::function<SessionManager&(
    const ConnectionParams& params, SessionManager& accepting)>;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // Runs on `strand`. `manager` is the accepting hub; `select_hub` (empty:
  // stay there) places upgrades. `upgrades`: WebSocket upgrades become
  // Jetstream connections (the public port); false answers them like any
  // request (the metrics port). Everything referenced must outlive the
  // session.
  HttpSession(boost::asio::ip::tcp::socket&& socket, ConnectionStrand strand,
              SessionManager& manager, const HubSelector& select_hub,
              const GatewayOptions& options, const HttpHandler& handler,
              const TrustedProxies& trusted_proxies, bool upgrades = true);
  void Run();

 private:
  void DoRead();
  void OnRead(boost::beast::error_code ec, size_t bytes);
  void OnWrite(bool close, boost::beast::error_code ec, size_t bytes);
  // Whether an upgrade may proceed under GatewayOptions::allowed_origins.
  bool OriginAllowed(
      const boost::beast::http::request<boost::beast::http::string_body>&
          request) const;

  ConnectionStream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<
      boost::beast::http::request_parser<boost::beast::http::string_body>>
      parser_;
  std::shared_ptr<void> response_;
  SessionManager& manager_;
  const HubSelector& select_hub_;
  const GatewayOptions& options_;
  const HttpHandler& handler_;
  const TrustedProxies& trusted_proxies_;
  const bool upgrades_;
  std::string peer_;  // "ip:port", for logs
  boost::asio::ip::address peer_address_;
};

// Every X-Forwarded-For header's value of `request`, joined with commas.
std::string ForwardedFor(
    const boost::beast::http::request<boost::beast::http::string_body>&
        request);

// The `x-jetstream-*` params of an upgrade request
// (docs/protocol.md#connection-params).
ConnectionParams ExtractConnectionParams(
    const boost::beast::http::request<boost::beast::http::string_body>&
        request);

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_NET_HTTP_SESSION_H_
