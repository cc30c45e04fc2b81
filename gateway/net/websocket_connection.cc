#include "gateway/net/websocket_connection.h"

#include <atomic>
#include <utility>

#include "gateway/net/websocket_connection_impl.h"

namespace jetstream::gateway {
namespace beast = boost::beast;
namespace net = boost::asio;

uint64_t NextConnectionId() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

ConnectionStream MakeConnectionStream(net::ip::tcp::socket&& socket,
                                      ConnectionStrand strand) {
  ConnectionStream stream(std::move(strand));
  if (socket.is_open()) {
    beast::error_code ec;
    const net::ip::tcp protocol = socket.local_endpoint(ec).protocol();
    stream.socket().assign(ec ? net::ip::tcp::v4() : protocol, socket.release(),
                           ec);
  }
  return stream;
}

template class BasicWebSocketConnection<ConnectionSocket>;

}  // namespace jetstream::gateway
