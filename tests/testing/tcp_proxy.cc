#include "tests/testing/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace jetstream::testing {

struct TcpProxy::Link {
  int client = -1;
  int server = -1;
  std::atomic<bool> closed{false};

  void Close() {
    if (closed.exchange(true)) return;
    ::shutdown(client, SHUT_RDWR);
    ::shutdown(server, SHUT_RDWR);
  }
  ~Link() {
    if (client >= 0) ::close(client);
    if (server >= 0) ::close(server);
  }
};

namespace {

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

TcpProxy::TcpProxy(int target_port) : target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

TcpProxy::~TcpProxy() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& link : links_) link->Close();
  }
  ::shutdown(listen_fd_, SHUT_RDWR);
  accept_thread_.join();
  ::close(listen_fd_);
  {
    absl::MutexLock lock(&mu_);
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
}

void TcpProxy::CutWhenClientSends(std::string marker, Cut how,
                                  bool then_refuse) {
  absl::MutexLock lock(&mu_);
  marker_ = std::move(marker);
  cut_ = how;
  refuse_after_cut_ = then_refuse;
}

void TcpProxy::SetRefusing(bool refusing) {
  absl::MutexLock lock(&mu_);
  refusing_ = refusing;
  if (refusing) {
    for (auto& link : links_) link->Close();
  }
}

int TcpProxy::cuts() const {
  absl::MutexLock lock(&mu_);
  return cuts_;
}

void TcpProxy::AcceptLoop() {
  for (;;) {
    int client = ::accept(listen_fd_, nullptr, nullptr);
    if (client < 0) {
      if (errno == EINTR) continue;
      return;  // shut down
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      ::close(client);
      return;
    }
    if (refusing_) {
      ::close(client);
      continue;
    }
    int server = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(target_port_));
    if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
        0) {
      ::close(server);
      ::close(client);
      continue;
    }
    int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto link = std::make_shared<Link>();
    link->client = client;
    link->server = server;
    links_.push_back(link);
    threads_.emplace_back([this, link] { Pump(link, /*from_client=*/true); });
    threads_.emplace_back([this, link] { Pump(link, /*from_client=*/false); });
  }
}

void TcpProxy::Pump(std::shared_ptr<Link> link, bool from_client) {
  const int in = from_client ? link->client : link->server;
  const int out = from_client ? link->server : link->client;
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(in, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (from_client) {
      bool cut = false;
      Cut how = Cut::kAfterForwarding;
      {
        absl::MutexLock lock(&mu_);
        if (!marker_.empty() &&
            absl::StrContains(absl::string_view(buffer, static_cast<size_t>(n)),
                              marker_)) {
          cut = true;
          how = cut_;
          marker_.clear();
          ++cuts_;
          if (refuse_after_cut_) refusing_ = true;
        }
      }
      if (cut) {
        if (how == Cut::kAfterForwarding) {
          WriteAll(out, buffer, static_cast<size_t>(n));
          // The server must have the bytes before the connection goes.
          ::shutdown(out, SHUT_WR);
        }
        // Nothing more reaches the client.
        ::shutdown(link->client, SHUT_RDWR);
        break;
      }
    }
    if (!WriteAll(out, buffer, static_cast<size_t>(n))) break;
  }
  link->Close();
}

}  // namespace jetstream::testing
