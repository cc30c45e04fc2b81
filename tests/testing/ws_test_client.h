// File: tests/testing/ws_test_client.h
//
// A blocking WebSocket client for end-to-end tests (Boost.Beast), plus a
// thin Jetstream layer: it keeps the client's message index, and collects
// the server's messages (frames are arrays) so a test can wait for "the next
// ScopeSync" with a deadline instead of sleeping.
//
// Not thread-safe: one test thread drives one client.

#ifndef JETSTREAM_TESTS_TESTING_WS_TEST_CLIENT_H_
#define JETSTREAM_TESTS_TESTING_WS_TEST_CLIENT_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/websocket.hpp"
#include "common/json.h"

namespace jetstream::testing {

struct CloseInfo {
  int code = 0;
  std::string reason;
};

class WsTestClient {
 public:
  // Opens ws://host:port<target> with extra request headers.
  static absl::StatusOr<std::unique_ptr<WsTestClient>> Connect(
      const std::string& host, int port, const std::string& target = "/",
      const std::map<std::string, std::string>& headers = {});
  ~WsTestClient();

  absl::Status SendText(absl::string_view text);
  absl::Status SendBinary(absl::string_view data);

  // The next frame, or kDeadlineExceeded, or kUnavailable once closed (the
  // close code and reason are then in close_info()).
  absl::StatusOr<std::string> ReceiveFrame(
      absl::Duration timeout = absl::Seconds(10));

  // Waits for the server to close; frames before the close are discarded.
  absl::StatusOr<CloseInfo> WaitForClose(
      absl::Duration timeout = absl::Seconds(15));
  bool closed() const { return closed_; }
  const CloseInfo& close_info() const { return close_info_; }

  // Closes from the client side (normal closure) or drops the TCP connection
  // without a close handshake.
  void Close();
  void Drop();

  // ---- Jetstream helpers ----

  // Sends SessionCreate (index 0) and returns the session token from
  // SessionCreateReply.
  absl::StatusOr<std::string> CreateSession(absl::string_view version = "0.2.0",
                                            absl::string_view params = "{}");
  // The next client index (starts at 1), as the iOS and JS clients count.
  uint64_t NextIndex() { return next_index_++; }
  void SetNextIndex(uint64_t index) { next_index_ = index; }

  // Sends {"type":"ScopeFetch","index":i,"name":..,"params":{}}; returns i.
  absl::StatusOr<uint64_t> SendScopeFetch(absl::string_view name,
                                          absl::string_view params = "{}");
  // Fetches and waits for the reply and the state; returns the scopeIndex.
  absl::StatusOr<uint64_t> FetchScope(absl::string_view name);
  // Sends a ScopeSync with `fragments_json` (a JSON array); returns its index.
  absl::StatusOr<uint64_t> SendScopeSync(uint64_t scope_index,
                                         absl::string_view fragments_json,
                                         bool atomic = false);
  absl::Status SendPing(uint64_t ack, bool resend_missing);

  // Waits for the next server message of `type` (messages of other types
  // that arrive first are kept for later calls). Returns it as JSON text.
  absl::StatusOr<std::string> WaitFor(
      absl::string_view type, absl::Duration timeout = absl::Seconds(10));
  // Waits for the reply whose replyTo is `index`.
  absl::StatusOr<std::string> WaitForReply(
      uint64_t index, absl::Duration timeout = absl::Seconds(10));
  // Messages received and not yet taken by WaitFor (in arrival order).
  std::deque<std::string>& inbox() { return inbox_; }
  // Highest non-zero server index seen (for Ping acks).
  uint64_t last_server_index() const { return last_server_index_; }
  // Reads whatever frames arrive within `timeout` into the inbox.
  void Drain(absl::Duration timeout);
  // The next server message in arrival order: the oldest one in the inbox,
  // else the first of the next frame (the rest of it goes to the inbox).
  absl::StatusOr<std::string> NextMessage(
      absl::Duration timeout = absl::Seconds(10));

 private:
  WsTestClient();
  absl::Status ReadIntoInbox(absl::Duration timeout);

  boost::asio::io_context ioc_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer buffer_;
  bool closed_ = false;
  CloseInfo close_info_;
  uint64_t next_index_ = 1;
  uint64_t last_server_index_ = 0;
  std::deque<std::string> inbox_;
};

// Parses JSON text; aborts the test binary on malformed input (the server
// must never send any).
JsonDocument ParseOrDie(absl::string_view json);

// Field accessors for message JSON text.
std::string MessageType(absl::string_view message_json);
uint64_t MessageIndex(absl::string_view message_json);

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_TESTING_WS_TEST_CLIENT_H_
