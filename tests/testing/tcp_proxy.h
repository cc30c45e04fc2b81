// File: tests/testing/tcp_proxy.h
//
// A TCP proxy on 127.0.0.1 for fault tests: it forwards every connection to
// a target port and can cut a connection at an exact point of the byte
// stream, which real network faults only hit by chance. For example, to
// lose the answer to a COMMIT that the server did receive:
//
//   TcpProxy proxy(postgres_port);
//   proxy.CutWhenClientSends("COMMIT", TcpProxy::Cut::kAfterForwarding);
//   ... connect to proxy.port() ...
//
// Thread-safety: all methods are thread-safe. Forwarding runs on threads of
// its own; the destructor closes every connection and joins them.

#ifndef JETSTREAM_TESTS_TESTING_TCP_PROXY_H_
#define JETSTREAM_TESTS_TESTING_TCP_PROXY_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace jetstream::testing {

class TcpProxy {
 public:
  enum class Cut {
    // The bytes reach the target, then both sides are closed: the target
    // acts on them, the client never hears back.
    kAfterForwarding,
    // The bytes are dropped and both sides closed.
    kInsteadOfForwarding,
  };

  // Listens on 127.0.0.1 at a free port, forwarding to 127.0.0.1:`target`.
  explicit TcpProxy(int target_port);
  ~TcpProxy();

  int port() const { return port_; }

  // Once armed, the first client data containing `marker` cuts its
  // connection as `how` says; then the proxy forwards normally again, or
  // (`then_refuse`) refuses connections until SetRefusing(false).
  void CutWhenClientSends(std::string marker, Cut how,
                          bool then_refuse = false);
  // While refusing, new connections are closed at once (the target seems
  // down); existing ones are closed too.
  void SetRefusing(bool refusing);
  // How many cuts happened.
  int cuts() const;

 private:
  struct Link;
  void AcceptLoop();
  void Pump(std::shared_ptr<Link> link, bool from_client);

  const int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool refusing_ ABSL_GUARDED_BY(mu_) = false;
  std::string marker_ ABSL_GUARDED_BY(mu_);
  Cut cut_ ABSL_GUARDED_BY(mu_) = Cut::kAfterForwarding;
  bool refuse_after_cut_ ABSL_GUARDED_BY(mu_) = false;
  int cuts_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::shared_ptr<Link>> links_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::thread accept_thread_;
};

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_TESTING_TCP_PROXY_H_
