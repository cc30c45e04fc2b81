// File: tools/loadgen/load_client.h
//
// LoadClient is one simulated client of the load generator: a Beast
// WebSocket connection driven as a small state machine,
//
//   connect -> WebSocket handshake -> SessionCreate -> ScopeFetch -> run
//
// where "run" depends on the client's role: a closed-loop writer sends its
// next one-fragment changeset as soon as the reply to the previous one
// arrives; a paced writer sends at a fixed rate; a reader only receives; an
// idle client only keeps its session alive; a storm client stops once its
// session is set up.
//
// With the echo protocol the client measures a plain WebSocket echo server
// instead (tools/echo_server): no Jetstream handshake, the client is set up
// once its WebSocket is open, and a closed-loop writer sends a fixed frame
// and waits for it to come back.
//
// Every Jetstream client acknowledges what it received with a Ping every
// `ping_interval` ({"type":"Ping","index":0,"ack":<last>,...}) so the
// server can drop acknowledged messages, and checks that the server's
// indexes are consecutive (docs/protocol.md#indexes).
//
// Clients record into the LaneStats of their event loop, counting only
// events inside the run's MeasureWindow.
//
// Threading: a LoadClient and its LaneStats belong to one io_context run
// by one thread (a "lane"); every method must be called on that thread.
// Lifetime: shared_ptr; pending operations keep the client alive.

#ifndef JETSTREAM_TOOLS_LOADGEN_LOAD_CLIENT_H_
#define JETSTREAM_TOOLS_LOADGEN_LOAD_CLIENT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/websocket.hpp"
#include "tools/loadgen/jetstream_messages.h"
#include "tools/loadgen/latency_histogram.h"
#include "tools/loadgen/ws_url.h"

namespace jetstream::loadgen {

// Microseconds of std::chrono::steady_clock: the clock of every latency
// and of the stamps in changesets.
int64_t NowMicros();

// MeasureWindow
//
// The interval [start, end) of steady-clock microseconds in which events
// count. Set by the runner's thread, read by every lane (relaxed atomics:
// an event at the very edge may fall either side).
class MeasureWindow {
 public:
  void Open(int64_t start_us, int64_t end_us) {
    end_us_.store(end_us, std::memory_order_relaxed);
    start_us_.store(start_us, std::memory_order_relaxed);
  }
  bool Contains(int64_t t_us) const {
    return t_us >= start_us_.load(std::memory_order_relaxed) &&
           t_us < end_us_.load(std::memory_order_relaxed);
  }
  // Whether `t_us` (in the window) is in its second half.
  bool InSecondHalf(int64_t t_us) const {
    const int64_t start = start_us_.load(std::memory_order_relaxed);
    const int64_t end = end_us_.load(std::memory_order_relaxed);
    return t_us >= start + (end - start) / 2;
  }

 private:
  std::atomic<int64_t> start_us_{std::numeric_limits<int64_t>::max()};
  std::atomic<int64_t> end_us_{std::numeric_limits<int64_t>::max()};
};

// LaneStats
//
// What the clients of one lane measured. Counters without "in the window"
// count the whole run.
struct LaneStats {
  // Request/reply round trips completed in the window: changesets answered
  // by ScopeSyncReply, or frames echoed.
  uint64_t replies = 0;
  LatencyHistogram reply_latency;
  // ScopeSync messages received in the window, and the writer-to-reader
  // latency of those that carry a stamp.
  uint64_t deliveries = 0;
  LatencyHistogram delivery_latency;
  // The same latencies split by the window's halves: a backlog that grows
  // shows as a second half worse than the first.
  LatencyHistogram delivery_latency_first_half;
  LatencyHistogram delivery_latency_second_half;
  // Sessions set up (SessionCreate + ScopeFetch done) in the window, and
  // the time from connect to ScopeState.
  uint64_t sessions = 0;
  LatencyHistogram setup_latency;
  // Changesets with a fragment error in the reply.
  uint64_t fragment_errors = 0;
  // Server indexes out of sequence, or frames that are not Jetstream.
  uint64_t protocol_errors = 0;
  // Established connections the server (or the network) ended.
  uint64_t disconnects = 0;

  void Merge(const LaneStats& other);
};

enum class ClientProtocol { kJetstream, kEcho };

// kReader and kIdle behave alike, except that with the echo protocol a
// kReader reads broadcasts (kEchoFanout).
enum class ClientRole {
  kClosedLoopWriter,
  kPacedWriter,
  kReader,
  kIdle,
  kStorm,
};

struct ClientConfig {
  ClientProtocol protocol = ClientProtocol::kJetstream;
  ClientRole role = ClientRole::kIdle;
  std::string scope;        // the scope to fetch (Jetstream roles)
  double rate_per_s = 100;  // kPacedWriter
  std::chrono::microseconds ping_interval = std::chrono::seconds(5);
  std::string echo_payload;  // echo protocol: the frame a writer sends
};

class LoadClient : public std::enable_shared_from_this<LoadClient> {
 public:
  // Called exactly once, on the lane's thread and never inline from
  // Start(): with true once the client is running (its scope fetched, or
  // with the echo protocol its WebSocket open), with false if it never got
  // there.
  using SetupCallback = std::function<void(LoadClient&, bool ok)>;

  LoadClient(boost::asio::io_context& ioc,
             const boost::asio::ip::tcp::endpoint& endpoint, const WsUrl& url,
             ClientConfig config, LaneStats& stats,
             const MeasureWindow& window);
  LoadClient(const LoadClient&) = delete;
  LoadClient& operator=(const LoadClient&) = delete;

  void Start(SetupCallback on_setup);

  // LoadClient::Abort()
  //
  // Drops the connection at once (TCP reset, so no TIME_WAIT is left
  // behind) and stops every timer. Nothing is counted afterwards.
  void Abort();

  const ClientConfig& config() const { return config_; }

 private:
  enum class State {
    kConnecting,
    kUpgrading,
    kCreating,
    kFetching,
    kRunning,
    kDone
  };

  void OnConnect(boost::beast::error_code ec);
  void OnHandshake(boost::beast::error_code ec);
  void DoRead();
  void OnRead(boost::beast::error_code ec, size_t bytes);
  void OnMessage(const ServerMessage& m, int64_t now_us);
  void OnReply(const ServerMessage& m, int64_t now_us);
  // Echo protocol: `frame` came back (an echo, or a broadcast).
  void OnEcho(absl::string_view frame, int64_t now_us);
  // Counts a ScopeSync received in the window, with its latency.
  void RecordDelivery(const ServerMessage& m, int64_t now_us);

  // Counts a storm session that got set up at `now_us`.
  void RecordSession(int64_t now_us);
  void SetupDone(bool ok);
  void BeginRunning();
  void SendChangeset();
  void SendEcho();
  void ArmPingTimer();
  void ArmPaceTimer();

  // Queues a text frame; one async_write is in flight at a time.
  void Send(std::string frame);
  void DoWrite();
  void OnWrite(boost::beast::error_code ec, size_t bytes);

  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::asio::ip::tcp::endpoint endpoint_;
  const WsUrl& url_;
  const ClientConfig config_;
  LaneStats& stats_;
  const MeasureWindow& window_;
  SetupCallback on_setup_;

  State state_ = State::kConnecting;
  bool aborted_ = false;
  int64_t started_us_ = 0;
  boost::beast::flat_buffer buffer_;
  std::deque<std::string> out_;
  bool writing_ = false;

  // Jetstream session.
  uint64_t next_index_ = 1;  // the next client index (docs/protocol.md#indexes)
  uint64_t last_server_index_ = 0;  // the highest server index received
  uint64_t scope_index_ = 0;
  std::string root_uuid_;
  std::string root_class_;
  // Changesets sent and not answered yet: (index, send time), oldest first.
  std::deque<std::pair<uint64_t, int64_t>> in_flight_;
  int64_t echo_sent_us_ = 0;

  boost::asio::steady_timer ping_timer_;
  boost::asio::steady_timer pace_timer_;
  std::chrono::steady_clock::time_point next_send_;
};

}  // namespace jetstream::loadgen

#endif  // JETSTREAM_TOOLS_LOADGEN_LOAD_CLIENT_H_
