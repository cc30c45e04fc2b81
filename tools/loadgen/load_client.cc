#include "tools/loadgen/load_client.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "boost/beast/core/bind_handler.hpp"

namespace jetstream::loadgen {
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {
// The root a broadcast ScopeSync names (no server reads it).
constexpr char kEchoRoot[] = "00000000-0000-4000-8000-000000000000";
}  // namespace

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void LaneStats::Merge(const LaneStats& other) {
  replies += other.replies;
  reply_latency.Merge(other.reply_latency);
  deliveries += other.deliveries;
  delivery_latency.Merge(other.delivery_latency);
  delivery_latency_first_half.Merge(other.delivery_latency_first_half);
  delivery_latency_second_half.Merge(other.delivery_latency_second_half);
  sessions += other.sessions;
  setup_latency.Merge(other.setup_latency);
  fragment_errors += other.fragment_errors;
  protocol_errors += other.protocol_errors;
  disconnects += other.disconnects;
}

LoadClient::LoadClient(net::io_context& ioc, const tcp::endpoint& endpoint,
                       const WsUrl& url, ClientConfig config, LaneStats& stats,
                       const MeasureWindow& window)
    : ws_(ioc),
      endpoint_(endpoint),
      url_(url),
      config_(std::move(config)),
      stats_(stats),
      window_(window),
      ping_timer_(ioc),
      pace_timer_(ioc) {}

void LoadClient::Start(SetupCallback on_setup) {
  on_setup_ = std::move(on_setup);
  started_us_ = NowMicros();
  beast::tcp_stream& tcp = beast::get_lowest_layer(ws_);
  tcp.expires_after(std::chrono::seconds(30));
  tcp.async_connect(endpoint_, beast::bind_front_handler(&LoadClient::OnConnect,
                                                         shared_from_this()));
}

void LoadClient::OnConnect(beast::error_code ec) {
  if (aborted_) return;
  if (ec) {
    SetupDone(false);
    return;
  }
  beast::tcp_stream& tcp = beast::get_lowest_layer(ws_);
  tcp.socket().set_option(tcp::no_delay(true), ec);
  // From here on the WebSocket stream's own timeouts apply.
  tcp.expires_never();
  ws_.set_option(
      websocket::stream_base::timeout::suggested(beast::role_type::client));
  state_ = State::kUpgrading;
  ws_.async_handshake(
      url_.HostHeader(), url_.target,
      beast::bind_front_handler(&LoadClient::OnHandshake, shared_from_this()));
}

void LoadClient::OnHandshake(beast::error_code ec) {
  if (aborted_) return;
  if (ec) {
    SetupDone(false);
    return;
  }
  ws_.text(true);
  DoRead();
  if (config_.protocol == ClientProtocol::kEcho) {
    RecordSession(NowMicros());
    SetupDone(true);
    return;
  }
  state_ = State::kCreating;
  Send(SessionCreateMessage());
}

void LoadClient::DoRead() {
  ws_.async_read(buffer_, beast::bind_front_handler(&LoadClient::OnRead,
                                                    shared_from_this()));
}

void LoadClient::OnRead(beast::error_code ec, size_t) {
  if (aborted_) return;
  if (ec) {
    if (state_ == State::kRunning) {
      ++stats_.disconnects;
    } else if (state_ != State::kDone) {
      SetupDone(false);
    }
    state_ = State::kDone;
    ping_timer_.cancel();
    pace_timer_.cancel();
    return;
  }
  int64_t now = NowMicros();
  auto data = buffer_.cdata();
  absl::string_view frame(static_cast<const char*>(data.data()), data.size());
  if (config_.protocol == ClientProtocol::kEcho) {
    OnEcho(frame, now);
  } else {
    absl::Status parsed = ParseServerFrame(
        frame, [this, now](const ServerMessage& m) { OnMessage(m, now); });
    if (!parsed.ok()) ++stats_.protocol_errors;
  }
  buffer_.consume(buffer_.size());
  if (state_ != State::kDone && !aborted_) DoRead();
}

void LoadClient::OnMessage(const ServerMessage& m, int64_t now_us) {
  if (m.index != 0) {
    if (m.index != last_server_index_ + 1) ++stats_.protocol_errors;
    last_server_index_ = std::max(last_server_index_, m.index);
  }
  switch (state_) {
    case State::kCreating:
      if (m.type != ServerMessageType::kSessionCreateReply) return;
      if (m.error) {
        SetupDone(false);
        return;
      }
      state_ = State::kFetching;
      Send(ScopeFetchMessage(next_index_++, config_.scope));
      return;
    case State::kFetching:
      if (m.type == ServerMessageType::kScopeFetchReply && m.error) {
        SetupDone(false);
      } else if (m.type == ServerMessageType::kScopeState) {
        scope_index_ = m.scope_index;
        root_uuid_ = std::string(m.root_uuid);
        root_class_ = std::string(m.root_class);
        RecordSession(now_us);
        SetupDone(true);
      }
      return;
    case State::kRunning:
      if (m.type == ServerMessageType::kScopeSyncReply) {
        OnReply(m, now_us);
      } else if (m.type == ServerMessageType::kScopeSync) {
        RecordDelivery(m, now_us);
      }
      return;
    case State::kConnecting:
    case State::kUpgrading:
    case State::kDone:
      return;
  }
}

void LoadClient::OnReply(const ServerMessage& m, int64_t now_us) {
  // Replies come in request order; anything older was never answered.
  while (!in_flight_.empty() && in_flight_.front().first < m.reply_to) {
    in_flight_.pop_front();
    ++stats_.protocol_errors;
  }
  if (in_flight_.empty() || in_flight_.front().first != m.reply_to) return;
  int64_t sent_us = in_flight_.front().second;
  in_flight_.pop_front();
  if (m.error) ++stats_.fragment_errors;
  if (window_.Contains(now_us)) {
    ++stats_.replies;
    stats_.reply_latency.Record(static_cast<uint64_t>(now_us - sent_us));
  }
  if (config_.role == ClientRole::kClosedLoopWriter) SendChangeset();
}

void LoadClient::RecordDelivery(const ServerMessage& m, int64_t now_us) {
  if (!window_.Contains(now_us)) return;
  ++stats_.deliveries;
  if (m.stamp_us >= 0 && m.stamp_us <= now_us) {
    const uint64_t latency = static_cast<uint64_t>(now_us - m.stamp_us);
    stats_.delivery_latency.Record(latency);
    (window_.InSecondHalf(now_us) ? stats_.delivery_latency_second_half
                                  : stats_.delivery_latency_first_half)
        .Record(latency);
  }
}

void LoadClient::OnEcho(absl::string_view frame, int64_t now_us) {
  if (state_ != State::kRunning) return;
  switch (config_.role) {
    case ClientRole::kClosedLoopWriter:
      if (window_.Contains(now_us)) {
        ++stats_.replies;
        stats_.reply_latency.Record(
            static_cast<uint64_t>(now_us - echo_sent_us_));
      }
      SendEcho();
      return;
    case ClientRole::kReader:
    case ClientRole::kPacedWriter: {
      // A broadcast of the writer's stamped ScopeSync; the writer's own
      // copy comes back as its reply.
      const bool writer = config_.role == ClientRole::kPacedWriter;
      absl::Status parsed =
          ParseServerFrame(frame, [&](const ServerMessage& m) {
            if (m.type != ServerMessageType::kScopeSync) return;
            if (!writer) {
              RecordDelivery(m, now_us);
            } else if (window_.Contains(now_us) && m.stamp_us >= 0 &&
                       m.stamp_us <= now_us) {
              ++stats_.replies;
              stats_.reply_latency.Record(
                  static_cast<uint64_t>(now_us - m.stamp_us));
            }
          });
      if (!parsed.ok()) ++stats_.protocol_errors;
      return;
    }
    case ClientRole::kIdle:
    case ClientRole::kStorm:
      return;
  }
}

void LoadClient::RecordSession(int64_t now_us) {
  if (config_.role != ClientRole::kStorm || !window_.Contains(now_us)) return;
  ++stats_.sessions;
  stats_.setup_latency.Record(static_cast<uint64_t>(now_us - started_us_));
}

void LoadClient::SetupDone(bool ok) {
  if (!on_setup_) return;
  SetupCallback done = std::move(on_setup_);
  on_setup_ = nullptr;
  if (ok) {
    BeginRunning();
  } else {
    state_ = State::kDone;
  }
  // Never inline from Start(): every path here runs in a completion handler.
  done(*this, ok);
}

void LoadClient::BeginRunning() {
  state_ = State::kRunning;
  if (config_.protocol == ClientProtocol::kEcho) {
    if (config_.role == ClientRole::kClosedLoopWriter) SendEcho();
    if (config_.role == ClientRole::kPacedWriter) {
      next_send_ = std::chrono::steady_clock::now();
      ArmPaceTimer();
    }
    return;  // other roles only hold the connection (or read broadcasts)
  }
  switch (config_.role) {
    case ClientRole::kClosedLoopWriter:
      SendChangeset();
      ArmPingTimer();
      break;
    case ClientRole::kPacedWriter:
      next_send_ = std::chrono::steady_clock::now();
      ArmPaceTimer();
      ArmPingTimer();
      break;
    case ClientRole::kReader:
    case ClientRole::kIdle:
      ArmPingTimer();
      break;
    case ClientRole::kStorm:
      break;  // the lane aborts it
  }
}

void LoadClient::SendChangeset() {
  uint64_t index = next_index_++;
  int64_t now = NowMicros();
  if (config_.protocol == ClientProtocol::kEcho) {
    // As a server frames it, so readers take the same fast path as for a
    // Jetstream server's delivery.
    Send(absl::StrCat("[", ScopeSyncMessage(index, 0, kEchoRoot, "Canvas", now),
                      "]"));
    return;
  }
  in_flight_.emplace_back(index, now);
  Send(ScopeSyncMessage(index, scope_index_, root_uuid_, root_class_, now));
}

void LoadClient::SendEcho() {
  echo_sent_us_ = NowMicros();
  Send(config_.echo_payload);
}

void LoadClient::ArmPingTimer() {
  ping_timer_.expires_after(config_.ping_interval);
  ping_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->aborted_ || self->state_ != State::kRunning) return;
    self->Send(PingMessage(self->last_server_index_));
    self->ArmPingTimer();
  });
}

void LoadClient::ArmPaceTimer() {
  auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(1.0 / std::max(config_.rate_per_s, 1e-3)));
  next_send_ += period;
  // Fixed schedule (open loop); after a stall of over a second, restart it
  // rather than send a burst.
  auto now = std::chrono::steady_clock::now();
  if (next_send_ < now - std::chrono::seconds(1)) next_send_ = now;
  pace_timer_.expires_at(next_send_);
  pace_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->aborted_ || self->state_ != State::kRunning) return;
    self->SendChangeset();
    self->ArmPaceTimer();
  });
}

void LoadClient::Send(std::string frame) {
  out_.push_back(std::move(frame));
  if (!writing_) DoWrite();
}

void LoadClient::DoWrite() {
  writing_ = true;
  ws_.async_write(
      net::buffer(out_.front()),
      beast::bind_front_handler(&LoadClient::OnWrite, shared_from_this()));
}

void LoadClient::OnWrite(beast::error_code ec, size_t) {
  writing_ = false;
  out_.pop_front();
  if (ec || aborted_) {
    out_.clear();
    return;  // the read side reports the end
  }
  if (!out_.empty()) DoWrite();
}

void LoadClient::Abort() {
  if (aborted_) return;
  aborted_ = true;
  state_ = State::kDone;
  ping_timer_.cancel();
  pace_timer_.cancel();
  beast::error_code ec;
  tcp::socket& socket = beast::get_lowest_layer(ws_).socket();
  socket.set_option(net::socket_base::linger(true, 0), ec);
  socket.close(ec);
}

}  // namespace jetstream::loadgen
