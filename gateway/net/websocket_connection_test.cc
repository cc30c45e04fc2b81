// BasicWebSocketConnection over boost::beast::test::stream, one io_context
// the test runs by hand: what a connection reports to the protocol layer,
// frames in order, a close after the queued frames, the write-queue and
// frame-size limits with their close codes, and, with a fail_count at every
// operation in turn, that a failing stream never reports a close it did not
// open, nor twice.

#include "gateway/net/websocket_connection.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/beast/_experimental/test/stream.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/websocket.hpp"
#include "gateway/net/websocket_connection_impl.h"
#include "gateway/protocol/server_message.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/manual_clock.h"

namespace jetstream::gateway {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using beast::test::stream;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using TestConnection = BasicWebSocketConnection<stream>;

// What the connection told the protocol layer.
class RecordedEvents : public ConnectionEvents {
 public:
  void OnConnectionOpened(ConnectionPtr connection,
                          ConnectionParams params) override {
    ++opened;
    this->params = std::move(params);
    this->connection = std::move(connection);
  }
  void OnFrame(ConnectionPtr, size_t frame_bytes,
               absl::StatusOr<std::vector<ClientMessage>> messages) override {
    bytes.push_back(frame_bytes);
    if (!messages.ok()) {
      errors.push_back(messages.status());
      return;
    }
    for (const ClientMessage& m : *messages) indexes.push_back(m.index);
  }
  void OnWriteQueueOverflow(ConnectionPtr) override { ++overflows; }
  void OnConnectionClosed(ConnectionPtr) override { ++closed; }
  void OnCloseCode(uint16_t code) override { close_codes.push_back(code); }

  int opened = 0;
  int overflows = 0;
  int closed = 0;
  ConnectionParams params;
  ConnectionPtr connection;
  std::vector<uint16_t> close_codes;
  std::vector<size_t> bytes;
  std::vector<uint64_t> indexes;
  std::vector<absl::Status> errors;
};

ServerFrame Frame(const std::string& text) {
  return ServerFrame(ServerMessage(text));
}

class WebSocketConnectionTest : public ::testing::Test {
 protected:
  // Upgrades a connection over a test stream pair: the client's handshake
  // request is read off the server's end, as HttpSession does, and handed
  // to Run(). `fc`, if given, fails the server end's operations.
  void Open(beast::test::fail_count* fc = nullptr) {
    server_end_ = fc != nullptr ? std::make_unique<stream>(ioc_, *fc)
                                : std::make_unique<stream>(ioc_);
    client_ = std::make_unique<websocket::stream<stream>>(ioc_);
    client_->next_layer().connect(*server_end_);
    handshake_ec_.reset();
    client_->async_handshake("gateway.test", "/", [this](beast::error_code ec) {
      handshake_ec_ = ec;
    });
    http::async_read(*server_end_, http_buffer_, request_,
                     [this](beast::error_code ec, size_t) {
                       if (ec) return;
                       TestConnection::Client client;
                       client.params = {{"token", "t"}};
                       client.peer = "192.0.2.1:5000";
                       client.address = "192.0.2.1";
                       if (server_write_size_ > 0) {
                         server_end_->write_size(server_write_size_);
                       }
                       connection_ = std::make_shared<TestConnection>(
                           std::move(*server_end_), *events_target_, options_,
                           std::move(client), clock_);
                       connection_->Run(std::move(request_));
                     });
    Settle();
  }

  // Ends every connection while the io_context (and the test streams'
  // service in it) still exists.
  void TearDown() override {
    client_.reset();  // the connections' reads see the end
    Settle();
    connection_.reset();
    events_.connection.reset();
    for (auto& run : runs_) run->connection.reset();
  }

  // Runs every handler that is ready, and those they make ready, until
  // none is: test streams complete by posting, so this is deterministic
  // (run() would not return while a read waits for data).
  void Settle() {
    for (;;) {
      ioc_.restart();
      if (ioc_.poll() == 0) return;
    }
  }

  // Everything the client reads until the connection closes: the text
  // frames, then the close code and reason it got.
  std::vector<std::string> ReadAll() {
    std::vector<std::string> frames;
    bool done = false;
    std::function<void()> read = [&] {
      client_->async_read(client_buffer_, [&](beast::error_code ec, size_t) {
        if (ec) {
          done = true;
          return;
        }
        frames.push_back(beast::buffers_to_string(client_buffer_.data()));
        client_buffer_.consume(client_buffer_.size());
        read();
      });
    };
    read();
    Settle();
    EXPECT_TRUE(done);
    return frames;
  }

  // The close reason the client got.
  std::string Reason() const {
    const auto& reason = client_->reason().reason;
    return std::string(reason.data(), reason.size());
  }

  void ClientWrite(const std::string& text) {
    client_->async_write(boost::asio::buffer(text),
                         [](beast::error_code, size_t) {});
  }

  // Runs of the fail_count test, each with its own record: a connection of
  // an earlier run may still report its end while a later run is settled.
  // Declared before ioc_, so they outlive any handler it destroys.
  std::vector<std::unique_ptr<RecordedEvents>> runs_;
  boost::asio::io_context ioc_;
  GatewayOptions options_;
  ::jetstream::testing::ManualClock clock_;
  // Bytes the server's end writes per operation; 0: all at once.
  size_t server_write_size_ = 0;
  RecordedEvents events_;
  RecordedEvents* events_target_ = &events_;  // where connections report
  std::unique_ptr<stream> server_end_;
  std::unique_ptr<websocket::stream<stream>> client_;
  std::optional<beast::error_code> handshake_ec_;
  beast::flat_buffer http_buffer_;
  http::request<http::string_body> request_;
  std::shared_ptr<TestConnection> connection_;
  beast::flat_buffer client_buffer_;
};

TEST_F(WebSocketConnectionTest, AnUpgradeIsReportedOnceWithItsParams) {
  Open();
  ASSERT_TRUE(handshake_ec_.has_value());
  EXPECT_FALSE(*handshake_ec_) << handshake_ec_->message();
  EXPECT_EQ(events_.opened, 1);
  EXPECT_EQ(events_.params, (ConnectionParams{{"token", "t"}}));
  EXPECT_EQ(events_.connection.get(), connection_.get());
  EXPECT_EQ(connection_->address(), "192.0.2.1");
  EXPECT_EQ(events_.closed, 0);
}

TEST_F(WebSocketConnectionTest, FramesAreParsedAndHandedOnInOrder) {
  Open();
  const std::string first = R"([{"type":"Ping","index":1,"ack":0}])";
  const std::string second =
      R"([{"type":"Ping","index":3,"ack":0},{"type":"Ping","index":2,"ack":0}])";
  // One write at a time on the client's side.
  ClientWrite(first);
  Settle();
  ClientWrite(second);
  Settle();
  ClientWrite("not json");
  Settle();
  client_->async_close(websocket::close_code::normal, [](beast::error_code) {});
  ReadAll();
  // Each frame's messages in index order; the bad one as a parse error.
  EXPECT_THAT(events_.indexes, ElementsAre(1u, 2u, 3u));
  EXPECT_THAT(events_.bytes, ElementsAre(first.size(), second.size(), 8u));
  ASSERT_EQ(events_.errors.size(), 1u);
  EXPECT_EQ(events_.errors[0].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(events_.closed, 1);
}

TEST_F(WebSocketConnectionTest, FramesLeaveInOrderAndTheCloseComesAfterThem) {
  Open();
  connection_->Send(Frame(R"({"n":1})"));
  connection_->Send(Frame(R"({"n":2})"));
  connection_->Close(kCloseClosedConnection, "bye");
  connection_->Send(Frame(R"({"n":3})"));  // after Close: dropped
  connection_->Close(1000, "again");       // later calls are ignored
  EXPECT_THAT(ReadAll(), ElementsAre(R"([{"n":1}])", R"([{"n":2}])"));
  EXPECT_EQ(client_->reason().code, kCloseClosedConnection);
  EXPECT_EQ(Reason(), "bye");
  EXPECT_EQ(events_.closed, 1);
  EXPECT_EQ(events_.overflows, 0);
}

TEST_F(WebSocketConnectionTest, FramesSentDuringAWriteCoalesceBehindIt) {
  Open();
  // In one turn: the first goes out at once; the others wait for it, as
  // one frame, their messages in order.
  for (int n = 1; n <= 5; ++n) {
    connection_->Send(Frame(absl::StrCat(R"({"n":)", n, "}")));
  }
  connection_->Close(1000, "done");
  EXPECT_THAT(ReadAll(), ElementsAre(R"([{"n":1}])",
                                     R"([{"n":2},{"n":3},{"n":4},{"n":5}])"));
  EXPECT_THAT(events_.close_codes, ElementsAre(1000));
}

TEST_F(WebSocketConnectionTest, CoalescingKeepsTheQueueBoundExact) {
  // Frames of 9 bytes (["abcde"]); merged, each adds 8 (its comma replaces
  // a bracket pair). Ten in one turn: 1 in flight and 1 waiting with the
  // other nine, 9 + (9 + 8 * 8) = 82 bytes queued, under 90; and again and
  // again, once they are written (no count left behind).
  options_.max_write_queue_bytes = 90;
  Open();
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 10; ++i) connection_->Send(Frame("\"abcde\""));
    Settle();
    ASSERT_EQ(events_.overflows, 0) << "round " << round;
  }
  // Twelve in one turn pass it: 9 + (9 + 10 * 8) = 98.
  for (int i = 0; i < 12; ++i) connection_->Send(Frame("\"abcde\""));
  ReadAll();
  EXPECT_EQ(events_.overflows, 1);
  EXPECT_EQ(client_->reason().code, kCloseClosedConnection);
}

TEST_F(WebSocketConnectionTest, AClientThatDoesNotReadOverflowsAndGets4097) {
  options_.max_write_queue_bytes = 100;
  Open();
  // Queued in one turn: the first is being written when the others arrive,
  // and together they pass the bound.
  const std::string fifty(50, 'x');
  for (int i = 0; i < 3; ++i) connection_->Send(Frame("\"" + fifty + "\""));
  std::vector<std::string> frames = ReadAll();
  // Only the frame already being written goes out, then the close.
  EXPECT_EQ(frames.size(), 1u);
  EXPECT_EQ(events_.overflows, 1);
  EXPECT_EQ(client_->reason().code, kCloseClosedConnection);
  EXPECT_THAT(Reason(), HasSubstr("write-queue-overflow"));
  EXPECT_EQ(events_.closed, 1);
}

TEST_F(WebSocketConnectionTest, AFrameThatWaitsTooLongForTheSocketGets4097) {
  options_.max_write_queue_age = absl::Seconds(30);
  // A byte per write: a frame takes many turns to go out.
  server_write_size_ = 1;
  Open();
  connection_->Send(Frame("\"" + std::string(50, 'x') + "\""));
  for (int i = 0; i < 5; ++i) {
    ioc_.restart();
    ASSERT_EQ(ioc_.poll_one(), 1u);  // its write has begun, not ended
  }
  EXPECT_EQ(events_.overflows, 0);
  // 31 s later the first frame is still being written when another comes.
  clock_.Advance(absl::Seconds(31));
  connection_->Send(Frame("\"late\""));
  std::vector<std::string> frames = ReadAll();
  EXPECT_EQ(frames.size(), 1u);  // the one being written, then the close
  EXPECT_EQ(events_.overflows, 1);
  EXPECT_EQ(client_->reason().code, kCloseClosedConnection);
  EXPECT_THAT(Reason(), HasSubstr("write-queue-overflow"));
}

TEST_F(WebSocketConnectionTest, AFrameWrittenInTimeIsNoOverflow) {
  options_.max_write_queue_age = absl::Seconds(30);
  Open();
  for (int n = 0; n < 3; ++n) {
    connection_->Send(Frame(absl::StrCat(n)));
    Settle();
    clock_.Advance(absl::Seconds(31));  // between frames, not while queued
  }
  connection_->Close(1000, "done");
  EXPECT_EQ(ReadAll().size(), 3u);
  EXPECT_EQ(events_.overflows, 0);
}

TEST_F(WebSocketConnectionTest, AMessageOverTheLimitClosesWith1009) {
  options_.max_frame_bytes = 100;
  Open();
  ClientWrite("[" + std::string(1000, ' ') + "]");
  EXPECT_TRUE(ReadAll().empty());
  // Nothing of it reached the protocol layer.
  EXPECT_TRUE(events_.bytes.empty());
  EXPECT_EQ(client_->reason().code, websocket::close_code::too_big);
  EXPECT_THAT(Reason(), HasSubstr("message-too-big"));
  EXPECT_EQ(events_.closed, 1);
  EXPECT_THAT(events_.close_codes, ElementsAre(1009));
}

TEST_F(WebSocketConnectionTest, AStreamFailingAtAnyOperationEndsCleanly) {
  // The n-th operation on the server's end fails, for every n until one
  // run gets through without a failure.
  for (int n = 0; n < 100; ++n) {
    SCOPED_TRACE(n);
    runs_.push_back(std::make_unique<RecordedEvents>());
    RecordedEvents& events = *runs_.back();
    events_target_ = &events;
    connection_.reset();
    http_buffer_.clear();
    request_ = {};
    client_buffer_.clear();
    beast::test::fail_count fc(n);
    Open(&fc);
    if (connection_ == nullptr) continue;  // the handshake's read failed
    if (!handshake_ec_.has_value() || *handshake_ec_) {
      // The upgrade's answer failed: the client never got a WebSocket.
      EXPECT_EQ(events.closed, events.opened);
      continue;
    }
    connection_->Send(Frame(R"({"n":1})"));
    ClientWrite(R"([{"type":"Ping","index":1,"ack":0}])");
    Settle();
    connection_->Close(kCloseClosedConnection, "bye");
    std::vector<std::string> frames = ReadAll();
    // Reported closed exactly when reported opened, and at most once.
    EXPECT_EQ(events.closed, events.opened);
    EXPECT_LE(events.opened, 1);
    EXPECT_LE(frames.size(), 1u);
    EXPECT_EQ(events.overflows, 0);
    if (events.opened == 1 && frames.size() == 1 &&
        client_->reason().code == kCloseClosedConnection) {
      EXPECT_THAT(events.indexes, ElementsAre(1u));
      return;  // no failure was hit
    }
  }
  ADD_FAILURE() << "every run hit a failure";
}

}  // namespace
}  // namespace jetstream::gateway
