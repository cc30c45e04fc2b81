#include "tools/loadgen/ws_url.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace jetstream::loadgen {

std::string WsUrl::HostHeader() const { return absl::StrCat(host, ":", port); }

absl::StatusOr<WsUrl> ParseWsUrl(absl::string_view url) {
  constexpr absl::string_view kScheme = "ws://";
  if (!absl::StartsWithIgnoreCase(url, kScheme)) {
    return absl::InvalidArgumentError(
        absl::StrCat("URL '", url, "' does not start with ws://"));
  }
  absl::string_view rest = url.substr(kScheme.size());
  WsUrl out;
  size_t slash = rest.find_first_of("/?");
  absl::string_view authority = rest.substr(0, slash);
  if (slash != absl::string_view::npos) {
    out.target = std::string(rest.substr(slash));
    if (out.target[0] == '?') out.target.insert(0, "/");
  }
  absl::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad host in '", url, "'"));
    }
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("bad host in '", url, "'"));
    }
  } else {
    size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    authority = colon == absl::string_view::npos ? absl::string_view()
                                                 : authority.substr(colon);
  }
  if (authority.size() > 0) {  // ":port"
    uint32_t port = 0;
    if (!absl::SimpleAtoi(authority.substr(1), &port) || port == 0 ||
        port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad port in '", url, "'"));
    }
    out.port = static_cast<uint16_t>(port);
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no host in '", url, "'"));
  }
  out.host = std::string(host);
  return out;
}

}  // namespace jetstream::loadgen
