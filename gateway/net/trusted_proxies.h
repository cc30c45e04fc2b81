// File: gateway/net/trusted_proxies.h
//
// Which peers may say who the client is (docs/protocol.md#client-address).
// Behind a load balancer or reverse proxy every connection comes from the
// proxy; a proxy named by --trusted_proxies is believed about the client it
// forwards for (X-Forwarded-For), so limits, the tarpit and the session
// authorizer see the client's address rather than the proxy's. Headers from
// any other peer are ignored: anyone can write them.
//
// Thread-safety: immutable after Parse(); safe to share between threads.

#ifndef JETSTREAM_GATEWAY_NET_TRUSTED_PROXIES_H_
#define JETSTREAM_GATEWAY_NET_TRUSTED_PROXIES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "boost/asio/ip/address.hpp"
#include "boost/asio/ip/network_v4.hpp"
#include "boost/asio/ip/network_v6.hpp"

namespace jetstream::gateway {

class TrustedProxies {
 public:
  // No proxy is trusted.
  TrustedProxies() = default;

  // TrustedProxies::Parse()
  //
  // Addresses and CIDR blocks, IPv4 or IPv6: "10.0.0.0/8", "127.0.0.1",
  // "fd00::/8". An entry that is neither is an InvalidArgument error that
  // names it.
  static absl::StatusOr<TrustedProxies> Parse(
      const std::vector<std::string>& entries);

  bool empty() const { return v4_.empty() && v6_.empty(); }
  bool Contains(const boost::asio::ip::address& address) const;

  // TrustedProxies::ClientAddress()
  //
  // The client's address for a request from `peer` that carried
  // `forwarded_for` (every X-Forwarded-For header's value, joined with
  // commas in order; empty without one). From an untrusted peer: the peer.
  // From a trusted one: walking the list from its end (the hop nearest to
  // us), the first address that is not a trusted proxy; all trusted, the
  // first in the list. An entry that is not an address stops the walk at the
  // hop that wrote it. IPv4-mapped IPv6 addresses are written as IPv4.
  std::string ClientAddress(const boost::asio::ip::address& peer,
                            absl::string_view forwarded_for) const;

 private:
  std::vector<boost::asio::ip::network_v4> v4_;
  std::vector<boost::asio::ip::network_v6> v6_;
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_NET_TRUSTED_PROXIES_H_
