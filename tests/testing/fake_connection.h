// File: tests/testing/fake_connection.h
//
// FakeConnection: a gateway Connection (gateway/session/connection.h) for
// unit tests of the session layer. It keeps every frame sent to it as text
// and the close the gateway asked for, instead of writing to a socket.
//
// Example:
//   auto connection = std::make_shared<FakeConnection>(1, "10.0.0.1");
//   manager.OnConnectionOpened(connection, {});
//   ...
//   EXPECT_THAT(connection->messages(),
//   ElementsAre(HasSubstr("SessionCreateReply")));
//
// Thread-safety: thread-safe (Send and Close may come from any thread, as
// the interface allows).

#ifndef JETSTREAM_TESTS_TESTING_FAKE_CONNECTION_H_
#define JETSTREAM_TESTS_TESTING_FAKE_CONNECTION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "gateway/protocol/server_frame.h"
#include "gateway/session/connection.h"

namespace jetstream::testing {

class FakeConnection : public gateway::Connection {
 public:
  struct CloseCall {
    uint16_t code = 0;
    std::string reason;
  };

  explicit FakeConnection(uint64_t id, std::string address = "127.0.0.1",
                          std::string origin = "")
      : id_(id),
        peer_(address + ":" + std::to_string(40000 + id % 20000)),
        address_(std::move(address)),
        origin_(std::move(origin)) {}

  // gateway::Connection
  void Send(gateway::ServerFrame frame) override {
    absl::MutexLock lock(&mu_);
    if (close_.has_value()) return;  // as a closing socket drops late frames
    frames_.push_back(frame.ToString());
    for (size_t i = 0; i < frame.message_count(); ++i) {
      messages_.push_back(frame.message(i).ToString());
    }
  }
  void Close(uint16_t code, std::string reason) override {
    absl::MutexLock lock(&mu_);
    if (!close_.has_value()) close_ = CloseCall{code, std::move(reason)};
  }
  uint64_t id() const override { return id_; }
  const std::string& peer() const override { return peer_; }
  const std::string& address() const override { return address_; }
  const std::string& origin() const override { return origin_; }

  // Every frame sent, as its text; every message of them, in order.
  std::vector<std::string> frames() const {
    absl::MutexLock lock(&mu_);
    return frames_;
  }
  std::vector<std::string> messages() const {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  // Takes the messages sent so far (later calls see only newer ones).
  std::vector<std::string> TakeMessages() {
    absl::MutexLock lock(&mu_);
    return std::exchange(messages_, {});
  }
  // The first Close() call, if any.
  std::optional<CloseCall> close() const {
    absl::MutexLock lock(&mu_);
    return close_;
  }

 private:
  const uint64_t id_;
  const std::string peer_;
  const std::string address_;
  const std::string origin_;
  mutable absl::Mutex mu_;
  std::vector<std::string> frames_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> messages_ ABSL_GUARDED_BY(mu_);
  std::optional<CloseCall> close_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_TESTING_FAKE_CONNECTION_H_
