// File: gateway/net/websocket_connection_impl.h
//
// The definitions of BasicWebSocketConnection (websocket_connection.h). Only
// websocket_connection.cc (the gateway's instantiation) and unit tests that
// instantiate it over another stream include this.

#ifndef JETSTREAM_GATEWAY_NET_WEBSOCKET_CONNECTION_IMPL_H_
#define JETSTREAM_GATEWAY_NET_WEBSOCKET_CONNECTION_IMPL_H_

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/post.hpp"
#include "common/logging.h"
#include "gateway/net/websocket_connection.h"
#include "gateway/protocol/client_message.h"
#include "gateway/protocol/server_message.h"

namespace jetstream::gateway {
namespace websocket_internal {

// A frame waiting behind the one being written takes in later frames up to
// this size; past it, the next frame waits on its own.
inline constexpr size_t kMaxCoalescedFrameBytes = size_t{1} << 20;

// A view of a buffer array as a ConstBufferSequence. Beast copies the
// sequence into its write operation; copying this copies two words, where a
// std::vector would be copied element by element into a new allocation.
class BufferSpan {
 public:
  using value_type = boost::asio::const_buffer;
  using const_iterator = const boost::asio::const_buffer*;
  BufferSpan(const boost::asio::const_buffer* data, size_t size)
      : data_(data), size_(size) {}
  const_iterator begin() const { return data_; }
  const_iterator end() const { return data_ + size_; }

 private:
  const boost::asio::const_buffer* data_;
  size_t size_;
};
}  // namespace websocket_internal

template <class NextLayer>
BasicWebSocketConnection<NextLayer>::BasicWebSocketConnection(
    NextLayer&& stream, ConnectionEvents& events, const GatewayOptions& options,
    Client client, const Clock& clock)
    : ws_(std::move(stream)),
      events_(events),
      options_(options),
      clock_(clock),
      params_(std::move(client.params)),
      peer_(std::move(client.peer)),
      address_(std::move(client.address)),
      origin_(std::move(client.origin)),
      id_(NextConnectionId()) {}

template <class NextLayer>
BasicWebSocketConnection<NextLayer>::~BasicWebSocketConnection() = default;

template <class NextLayer>
void BasicWebSocketConnection<NextLayer>::Run(
    boost::beast::http::request<boost::beast::http::string_body> request) {
  boost::beast::websocket::stream_base::timeout timeout =
      boost::beast::websocket::stream_base::timeout::suggested(
          boost::beast::role_type::server);
  // Beast pings an idle client and drops one that stays silent; Jetstream
  // clients also ping every ~10 s, so a minute of silence means dead.
  timeout.idle_timeout = std::chrono::seconds(60);
  timeout.keep_alive_pings = true;
  ws_.set_option(timeout);
  ws_.set_option(boost::beast::websocket::stream_base::decorator(
      [](boost::beast::websocket::response_type& res) {
        res.set(boost::beast::http::field::server, "jetstream-gateway");
      }));
  // The frame limit is enforced here (OnRead), not by Beast, which would
  // fail the connection without a close reason and without draining what
  // the client is still sending.
  ws_.read_message_max(0);
  ws_.async_accept(request, boost::beast::bind_front_handler(
                                &BasicWebSocketConnection::OnAccept,
                                this->shared_from_this()));
}

template <class NextLayer>
void BasicWebSocketConnection<NextLayer>::OnAccept(
    boost::beast::error_code ec) {
  if (ec) {
    VLOG(1) << "connection " << peer_ << ": upgrade failed: " << ec.message();
    return;
  }
  opened_ = true;
  events_.OnConnectionOpened(this->shared_from_this(), std::move(params_));
  DoRead();
}

template <class NextLayer>
void BasicWebSocketConnection<NextLayer>::DoRead() {
  // Piece by piece, so a message over the limit is never held whole.
  constexpr size_t kReadPiece = 64 * 1024;
  ws_.async_read_some(
      buffer_, kReadPiece,
      boost::beast::bind_front_handler(&BasicWebSocketConnection::OnRead,
                                       this->shared_from_this()));
}

template <class NextLayer>
void BasicWebSocketConnection<NextLayer>::RefuseOversizedMessage() {
  LOG(INFO) << "connection " << peer_ << ": message over "
            << options_.max_frame_bytes << " bytes, closing with 1009";
  discarding_ = true;
  buffer_.clear();
  Close(static_cast<uint16_t>(boost::beast::websocket::close_code::too_big),
        EncodeCloseReason(
            WireError{absl::StrCat("Message is over the limit of ",
                                   options_.max_frame_bytes, " bytes"),
                      "message-too-big"}));
}

template <class NextLayer>
void BasicWebSocketConnection<NextLayer>::OnRead(boost::beast::error_code ec,
                                                 size_t) {
  if (ec) {
    if (ec != boost::beast::websocket::error::closed &&
        ec != boost::asio::error::operation_aborted) {
      VLOG(1) << "connection " << peer_ << ": read ended: " << ec.message();
    }
    Finish();
    return;
  }
  if (discarding_) {
    buffer_.clear();
    DoRead();
    return;
  }
  if (buffer_.size() > options_.max_frame_bytes) {
    RefuseOversizedMessage();
    DoRead();
    return;
  }
  if (!ws_.is_message_done()) {
    DoRead();
    return;
  }
  // Text and binary frames are both parsed as JSON text
  // (docs/protocol.md#websocket), in place after a terminating NUL (outside the
  // message, not committed). Beast has validated a text frame's UTF-8 (RFC
  // 6455); a binary frame's is checked by the parser.
  const size_t size = buffer_.size();
  static_cast<char*>(buffer_.prepare(1).data())[0] = '\0';
  char* text = static_cast<char*>(buffer_.data().data());
  ParseLimits limits;
  limits.max_messages_per_frame = options_.max_messages_per_frame;
  events_.OnFrame(
      this->shared_from_this(), size,
      ParseClientFrameInsitu(text, size,
                             /*utf8_validated=*/ws_.got_text(), limits));
  buffer_.consume(size);
  DoRead();
}

template <class NextLayer>
void BasicWebSocketConnection<NextLayer>::Send(ServerFrame frame) {
  boost::asio::dispatch(ws_.get_executor(), [self = this->shared_from_this(),
                                             frame =
                                                 std::move(frame)]() mutable {
    if (self->closing_ || self->finished_) return;
    if (self->writing_ && self->queue_.size() >= 2 &&
        self->queue_.back().size() + frame.size() <=
            websocket_internal::kMaxCoalescedFrameBytes) {
      // The socket is busy: the frame joins the one waiting for it, so one
      // write carries both (the front frame is being written: untouched).
      ServerFrame& waiting = self->queue_.back();
      const size_t before = waiting.size();
      waiting.Append(std::move(frame));
      self->queued_bytes_ += waiting.size() - before;
    } else {
      self->queued_bytes_ += frame.size();
      self->queue_.push_back(std::move(frame));
      self->queued_at_.push_back(self->clock_.Now());
    }
    const absl::Duration max_age = self->options_.max_write_queue_age;
    const bool too_big =
        self->queued_bytes_ > self->options_.max_write_queue_bytes;
    const bool too_old =
        max_age > absl::ZeroDuration() && self->writing_ &&
        self->clock_.Now() - self->queued_at_.front() > max_age;
    if (too_big || too_old) {
      if (too_big) {
        LOG(WARNING) << "connection " << self->peer_ << ": write queue over "
                     << self->options_.max_write_queue_bytes
                     << " bytes; the client is not reading";
      } else {
        LOG(WARNING) << "connection " << self->peer_
                     << ": a frame has waited over "
                     << absl::FormatDuration(max_age)
                     << " for the socket; the client is not reading";
      }
      // Keep only the frame being written; the session ends.
      while (self->queue_.size() > (self->writing_ ? 1u : 0u)) {
        self->queue_.pop_back();
        self->queued_at_.pop_back();
      }
      self->events_.OnWriteQueueOverflow(self);
      self->Close(kCloseClosedConnection,
                  EncodeCloseReason(WireError{
                      "Client does not read fast enough; write queue overflow",
                      "write-queue-overflow"}));
      return;
    }
    if (!self->writing_) self->DoWrite();
  });
}

template <class NextLayer>
void BasicWebSocketConnection<NextLayer>::DoWrite() {
  writing_ = true;
  ws_.text(true);
  // The frame stays at the front of queue_ until OnWrite: the buffers point
  // into it (and into the bodies it shares) without copying.
  write_buffers_.clear();
  queue_.front().ForEachPiece([this](absl::string_view piece) {
    write_buffers_.emplace_back(piece.data(), piece.size());
  });
  ws_.async_write(
      websocket_internal::BufferSpan(write_buffers_.data(),
                                     write_buffers_.size()),
      boost::beast::bind_front_handler(&BasicWebSocketConnection::OnWrite,
                                       this->shared_from_this()));
}

template <class NextLayer>
void BasicWebSocketConnection<NextLayer>::OnWrite(boost::beast::error_code ec,
                                                  size_t) {
  writing_ = false;
  if (finished_) {
    queue_.clear();
    queued_at_.clear();
    queued_bytes_ = 0;
    return;
  }
  queued_bytes_ -= queue_.front().size();
  queue_.pop_front();
  queued_at_.pop_front();
  if (ec) {
    VLOG(1) << "connection " << peer_ << ": write failed: " << ec.message();
    queue_.clear();
    queued_at_.clear();
    queued_bytes_ = 0;
    // The connection is unusable: closing the socket ends the pending read,
    // which reports the end (Finish), instead of leaving it to the idle
    // timeout.
    CloseSocket();
    return;
  }
  if (!queue_.empty()) {
    DoWrite();
  } else if (close_reason_) {
    DoClose();
  }
}

template <class NextLayer>
void BasicWebSocketConnection<NextLayer>::Close(uint16_t code,
                                                std::string reason) {
  boost::asio::dispatch(ws_.get_executor(), [self = this->shared_from_this(),
                                             code, reason = std::move(reason)] {
    if (self->closing_ || self->finished_) return;
    self->closing_ = true;
    boost::beast::websocket::close_reason cr;
    cr.code = code;
    cr.reason = boost::beast::string_view(reason.data(),
                                          std::min<size_t>(reason.size(), 123));
    self->close_reason_ = cr;
    if (!self->opened_) return;
    if (!self->writing_) self->DoClose();
  });
}

template <class NextLayer>
void BasicWebSocketConnection<NextLayer>::DoClose() {
  boost::beast::websocket::close_reason cr = *close_reason_;
  // Do not wait forever for a client that never answers the close: the
  // WebSocket layer bounds the closing handshake by its handshake timeout.
  boost::beast::websocket::stream_base::timeout timeout;
  ws_.get_option(timeout);
  timeout.handshake_timeout = std::chrono::seconds(5);
  ws_.set_option(timeout);
  ws_.async_close(
      cr, [self = this->shared_from_this()](boost::beast::error_code ec) {
        if (!ec) return;  // the read then ends with `closed` (Finish)
        VLOG(1) << "connection " << self->peer_ << ": close: " << ec.message();
        // No close handshake: end the pending read by closing the socket.
        self->CloseSocket();
      });
}

template <class NextLayer>
void BasicWebSocketConnection<NextLayer>::CloseSocket() {
  boost::beast::close_socket(boost::beast::get_lowest_layer(ws_));
}

template <class NextLayer>
void BasicWebSocketConnection<NextLayer>::Finish() {
  if (finished_) return;
  finished_ = true;
  // The read side ended: the socket goes now, whoever still holds this
  // object (a session keeps its connection until it forgets it), so the
  // peer sees the end at once. Closing twice is harmless.
  CloseSocket();
  if (!writing_) {
    queue_.clear();
    queued_at_.clear();
    queued_bytes_ = 0;
  }
  if (opened_) {
    // The server's code if it closed first, else the client's; 1006 (RFC
    // 6455 7.1.5) when no close frame came at all.
    uint16_t code = close_reason_ ? close_reason_->code : ws_.reason().code;
    if (code == boost::beast::websocket::close_code::none) code = 1006;
    events_.OnCloseCode(code);
    events_.OnConnectionClosed(this->shared_from_this());
  }
}

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_NET_WEBSOCKET_CONNECTION_IMPL_H_
