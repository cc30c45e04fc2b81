#include "gateway/net/trusted_proxies.h"

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace jetstream::gateway {
namespace ip = boost::asio::ip;

namespace {

// IPv4-mapped IPv6 (a dual-stack listener's view of an IPv4 client) as IPv4.
ip::address Unmapped(const ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, address.to_v6());
  }
  return address;
}

// One X-Forwarded-For entry: an address, optionally with a port
// ("203.0.113.7:41234", "[2001:db8::1]:443"), which some proxies add.
std::optional<ip::address> ParseForwardedEntry(absl::string_view entry) {
  entry = absl::StripAsciiWhitespace(entry);
  boost::system::error_code ec;
  ip::address address = ip::make_address(std::string(entry), ec);
  if (!ec) return Unmapped(address);
  if (!entry.empty() && entry.front() == '[') {
    size_t end = entry.find(']');
    if (end == absl::string_view::npos) return std::nullopt;
    entry = entry.substr(1, end - 1);
  } else {
    size_t colon = entry.rfind(':');
    if (colon == absl::string_view::npos || entry.find(':') != colon) {
      return std::nullopt;
    }
    entry = entry.substr(0, colon);
  }
  address = ip::make_address(std::string(entry), ec);
  if (ec) return std::nullopt;
  return Unmapped(address);
}

}  // namespace

absl::StatusOr<TrustedProxies> TrustedProxies::Parse(
    const std::vector<std::string>& entries) {
  TrustedProxies proxies;
  for (const std::string& raw : entries) {
    const std::string entry(absl::StripAsciiWhitespace(raw));
    if (entry.empty()) continue;
    boost::system::error_code ec;
    if (entry.find('/') != std::string::npos) {
      ip::network_v4 v4 = ip::make_network_v4(entry, ec);
      if (!ec) {
        proxies.v4_.push_back(v4.canonical());
        continue;
      }
      ip::network_v6 v6 = ip::make_network_v6(entry, ec);
      if (!ec) {
        proxies.v6_.push_back(v6.canonical());
        continue;
      }
    } else {
      ip::address address = ip::make_address(entry, ec);
      if (!ec) {
        address = Unmapped(address);
        if (address.is_v4()) {
          proxies.v4_.emplace_back(address.to_v4(), 32);
        } else {
          proxies.v6_.emplace_back(address.to_v6(), 128);
        }
        continue;
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "trusted proxy '", entry,
        "' is neither an IP address nor a CIDR block (10.0.0.0/8, fd00::/8)"));
  }
  return proxies;
}

bool TrustedProxies::Contains(const ip::address& raw) const {
  const ip::address address = Unmapped(raw);
  if (address.is_v4()) {
    for (const ip::network_v4& net : v4_) {
      if (ip::network_v4(address.to_v4(), net.prefix_length()).canonical() ==
          net) {
        return true;
      }
    }
    return false;
  }
  for (const ip::network_v6& net : v6_) {
    if (ip::network_v6(address.to_v6(), net.prefix_length()).canonical() ==
        net) {
      return true;
    }
  }
  return false;
}

std::string TrustedProxies::ClientAddress(
    const ip::address& peer, absl::string_view forwarded_for) const {
  ip::address client = Unmapped(peer);
  if (!Contains(client)) return client.to_string();
  std::vector<absl::string_view> hops =
      absl::StrSplit(forwarded_for, ',', absl::SkipWhitespace());
  for (auto hop = hops.rbegin(); hop != hops.rend(); ++hop) {
    std::optional<ip::address> address = ParseForwardedEntry(*hop);
    if (!address.has_value()) break;  // the hop that wrote it is the client
    client = *address;
    if (!Contains(client)) break;
  }
  return client.to_string();
}

}  // namespace jetstream::gateway
