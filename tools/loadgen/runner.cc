#include "tools/loadgen/runner.h"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "tools/loadgen/jetstream_messages.h"
#include "tools/loadgen/load_client.h"
#include "tools/loadgen/ws_url.h"

namespace jetstream::loadgen {
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// Counts clients that finished setting up, for the runner's thread to wait
// on. Thread-safe.
class SetupTracker {
 public:
  void Done(bool ok) {
    absl::MutexLock lock(&mu_);
    ++(ok ? ready_ : failed_);
  }
  // Waits until `n` clients are done or `timeout` passed.
  void WaitFor(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto all_done = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return ready_ + failed_ >= n;
    };
    mu_.AwaitWithTimeout(absl::Condition(&all_done), timeout);
  }
  int ready() {
    absl::MutexLock lock(&mu_);
    return ready_;
  }
  int failed() {
    absl::MutexLock lock(&mu_);
    return failed_;
  }

 private:
  absl::Mutex mu_;
  int ready_ ABSL_GUARDED_BY(mu_) = 0;
  int failed_ ABSL_GUARDED_BY(mu_) = 0;
};

// Lane
//
// One event loop on one thread with its share of the clients. Starts at
// most `max_in_setup` client setups at a time; the others wait in a queue.
// In storm mode every client is dropped once set up and replaced by a new
// one with the same configuration, until Stop().
//
// Add() before Start(); stats() after Stop(). Clients and stats are touched
// only on the lane's thread.
class Lane {
 public:
  Lane(const tcp::endpoint& endpoint, const WsUrl& url,
       const MeasureWindow& window, SetupTracker& tracker, int max_in_setup,
       bool storm)
      : endpoint_(endpoint),
        url_(url),
        window_(window),
        tracker_(tracker),
        max_in_setup_(std::max(1, max_in_setup)),
        storm_(storm),
        work_(net::make_work_guard(ioc_)) {}

  ~Lane() { Stop(); }

  void Add(ClientConfig config) { pending_.push_back(std::move(config)); }

  void Start() {
    net::post(ioc_, [this] { StartMore(); });
    thread_ = std::thread([this] { ioc_.run(); });
  }

  // Drops every connection (TCP reset) and joins the thread.
  void Stop() {
    if (!thread_.joinable()) return;
    net::post(ioc_, [this] {
      for (auto& client : running_) client->Abort();
      ioc_.stop();
    });
    thread_.join();
  }

  const LaneStats& stats() const { return stats_; }

 private:
  void StartMore() {
    while (in_setup_ < max_in_setup_ && !pending_.empty()) {
      auto client = std::make_shared<LoadClient>(
          ioc_, endpoint_, url_, std::move(pending_.front()), stats_, window_);
      pending_.pop_front();
      ++in_setup_;
      client->Start([this](LoadClient& c, bool ok) { OnSetup(c, ok); });
      if (!storm_) running_.push_back(std::move(client));
    }
  }

  void OnSetup(LoadClient& client, bool ok) {
    --in_setup_;
    tracker_.Done(ok);
    if (!ok) client.Abort();
    if (storm_) {
      client.Abort();
      pending_.push_back(client.config());
    }
    StartMore();
  }

  net::io_context ioc_{1};
  tcp::endpoint endpoint_;
  const WsUrl& url_;
  const MeasureWindow& window_;
  SetupTracker& tracker_;
  const int max_in_setup_;
  const bool storm_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  LaneStats stats_;
  std::deque<ClientConfig> pending_;
  std::vector<std::shared_ptr<LoadClient>> running_;
  int in_setup_ = 0;
  std::thread thread_;
};

}  // namespace

absl::StatusOr<Scenario> ParseScenario(absl::string_view name) {
  if (name == "writers" || name == "1") return Scenario::kWriters;
  if (name == "shared" || name == "2") return Scenario::kShared;
  if (name == "fanout" || name == "3") return Scenario::kFanout;
  if (name == "idle" || name == "4") return Scenario::kIdle;
  if (name == "storm" || name == "5") return Scenario::kStorm;
  if (name == "echo") return Scenario::kEcho;
  if (name == "echo_storm") return Scenario::kEchoStorm;
  if (name == "echo_fanout") return Scenario::kEchoFanout;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown scenario '", name,
                   "' (writers, shared, fanout, idle, storm, echo, echo_storm, "
                   "echo_fanout)"));
}

absl::string_view ScenarioName(Scenario scenario) {
  switch (scenario) {
    case Scenario::kWriters:
      return "writers";
    case Scenario::kShared:
      return "shared";
    case Scenario::kFanout:
      return "fanout";
    case Scenario::kIdle:
      return "idle";
    case Scenario::kStorm:
      return "storm";
    case Scenario::kEcho:
      return "echo";
    case Scenario::kEchoStorm:
      return "echo_storm";
    case Scenario::kEchoFanout:
      return "echo_fanout";
  }
  return "unknown";
}

namespace {

std::string DefaultScope(Scenario scenario) {
  switch (scenario) {
    case Scenario::kWriters:
      return "canvas/load-{i}";
    case Scenario::kShared:
      return "canvas/shared";
    case Scenario::kFanout:
      return "canvas/fanout";
    case Scenario::kIdle:
    case Scenario::kStorm:
      return "Canvas";
    case Scenario::kEcho:
    case Scenario::kEchoStorm:
    case Scenario::kEchoFanout:
      return "";
  }
  return "";
}

bool IsEcho(Scenario scenario) {
  return scenario == Scenario::kEcho || scenario == Scenario::kEchoStorm ||
         scenario == Scenario::kEchoFanout;
}

bool IsFanout(Scenario scenario) {
  return scenario == Scenario::kFanout || scenario == Scenario::kEchoFanout;
}

bool IsStorm(Scenario scenario) {
  return scenario == Scenario::kStorm || scenario == Scenario::kEchoStorm;
}

// The scope client `i` fetches.
std::string ScopeFor(const std::string& scope_template, int i) {
  return absl::StrReplaceAll(scope_template, {{"{i}", absl::StrCat(i)}});
}

// The clients of a scenario, in client-number order.
std::vector<ClientConfig> MakeClients(const LoadOptions& o,
                                      const std::string& scope_template,
                                      const std::string& echo_payload) {
  ClientConfig base;
  base.protocol =
      IsEcho(o.scenario) ? ClientProtocol::kEcho : ClientProtocol::kJetstream;
  base.echo_payload = echo_payload;
  base.ping_interval = absl::ToChronoMicroseconds(o.ping_interval);
  base.rate_per_s = o.rate;
  std::vector<ClientConfig> clients;
  auto add = [&](ClientRole role, int i) {
    ClientConfig c = base;
    c.role = role;
    c.scope = ScopeFor(scope_template, i);
    clients.push_back(std::move(c));
  };
  switch (o.scenario) {
    case Scenario::kWriters:
    case Scenario::kShared:
    case Scenario::kEcho:
      for (int i = 0; i < o.clients; ++i) add(ClientRole::kClosedLoopWriter, i);
      break;
    case Scenario::kFanout:
    case Scenario::kEchoFanout:
      for (int i = 0; i < o.clients; ++i) add(ClientRole::kReader, i);
      add(ClientRole::kPacedWriter, o.clients);
      break;
    case Scenario::kIdle:
      for (int i = 0; i < o.sessions; ++i) add(ClientRole::kIdle, i);
      break;
    case Scenario::kStorm:
    case Scenario::kEchoStorm:
      for (int i = 0; i < o.clients; ++i) add(ClientRole::kStorm, i);
      break;
  }
  return clients;
}

// An echo frame as long as a one-fragment changeset, unless `bytes` says.
std::string EchoPayload(size_t bytes) {
  if (bytes == 0) {
    bytes = ScopeSyncMessage(1000000, 0, "00000000-0000-4000-8000-000000000000",
                             "Canvas", NowMicros())
                .size();
  }
  return std::string(bytes, 'x');
}

absl::StatusOr<tcp::endpoint> Resolve(const WsUrl& url) {
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(url.host, absl::StrCat(url.port), ec);
  if (ec || results.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", url.host, ": ", ec.message()));
  }
  return results.begin()->endpoint();
}

absl::Status Validate(const LoadOptions& o) {
  if (o.threads < 1) return absl::InvalidArgumentError("threads must be >= 1");
  if (o.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("duration must be positive");
  }
  if (o.scenario == Scenario::kIdle ? o.sessions < 1 : o.clients < 1) {
    return absl::InvalidArgumentError("need at least one client");
  }
  if (IsFanout(o.scenario) && o.rate <= 0) {
    return absl::InvalidArgumentError("rate must be positive");
  }
  return absl::OkStatus();
}

void SleepUntil(int64_t t_us) {
  int64_t now = NowMicros();
  if (t_us > now)
    std::this_thread::sleep_for(std::chrono::microseconds(t_us - now));
}

// CPU use of this process and of each watched one (nullopt if unreadable).
std::vector<std::optional<CpuSample>> SampleCpu(
    const std::vector<NamedPid>& pids) {
  std::vector<std::optional<CpuSample>> out;
  auto add = [&out](pid_t pid) {
    absl::StatusOr<CpuSample> s = ReadCpuSample(pid);
    out.push_back(s.ok() ? std::optional<CpuSample>(*s) : std::nullopt);
  };
  add(getpid());
  for (const NamedPid& p : pids) add(p.pid);
  return out;
}

// Fills the CPU figures of `f` from two samples `seconds` apart.
void SetCpuFigures(const std::optional<CpuSample>& before,
                   const std::optional<CpuSample>& after, double seconds,
                   ProcessFigures& f) {
  if (!before || !after || seconds <= 0) return;
  double user = after->user_seconds - before->user_seconds;
  double system = after->system_seconds - before->system_seconds;
  f.cpu_percent = 100.0 * (user + system) / seconds;
  f.cpu_system_percent = 100.0 * system / seconds;
  // Threads that ended during the window can make the difference negative.
  f.context_switches_per_s =
      after->context_switches >= before->context_switches
          ? static_cast<double>(after->context_switches -
                                before->context_switches) /
                seconds
          : -1;
}

double Rate(uint64_t count, double seconds) {
  return seconds > 0 ? static_cast<double>(count) / seconds : 0;
}

}  // namespace

absl::StatusOr<Report> RunScenario(const LoadOptions& o) {
  if (absl::Status s = Validate(o); !s.ok()) return s;
  absl::StatusOr<WsUrl> url = ParseWsUrl(o.url);
  if (!url.ok()) return url.status();
  absl::StatusOr<tcp::endpoint> endpoint = Resolve(*url);
  if (!endpoint.ok()) return endpoint.status();

  const bool storm = IsStorm(o.scenario);
  std::string scope_template;
  if (!IsEcho(o.scenario)) {
    scope_template = o.scope.empty() ? DefaultScope(o.scenario) : o.scope;
  }
  std::vector<ClientConfig> clients =
      MakeClients(o, scope_template, EchoPayload(o.echo_bytes));
  const int total = static_cast<int>(clients.size());

  Report report;
  report.scenario = std::string(ScenarioName(o.scenario));
  report.url = o.url;
  report.scope = scope_template;
  report.reply_unit = IsEcho(o.scenario) ? "echoes" : "changesets";
  report.clients = total;
  report.threads = o.threads;
  report.rate = IsFanout(o.scenario) ? o.rate : 0;
  for (const NamedPid& p : o.pids) {
    ProcessFigures f;
    f.name = p.name;
    f.pid = p.pid;
    if (o.scenario == Scenario::kIdle) {
      absl::StatusOr<int64_t> kb = ReadResidentKb(p.pid);
      if (kb.ok()) f.rss_before_kb = *kb;
    }
    report.processes.push_back(std::move(f));
  }

  MeasureWindow window;
  SetupTracker tracker;
  std::vector<std::unique_ptr<Lane>> lanes;
  int per_lane_setups = std::max(1, o.connect_concurrency / o.threads);
  for (int i = 0; i < o.threads; ++i) {
    lanes.push_back(std::make_unique<Lane>(*endpoint, *url, window, tracker,
                                           per_lane_setups, storm));
  }
  for (int i = 0; i < total; ++i) {
    lanes[i % o.threads]->Add(std::move(clients[i]));
  }

  const int64_t setup_start = NowMicros();
  for (auto& lane : lanes) lane->Start();
  if (!storm) {
    tracker.WaitFor(total, o.setup_timeout);
    report.setup_seconds = (NowMicros() - setup_start) / 1e6;
    if (tracker.ready() == 0) {
      lanes.clear();
      return absl::UnavailableError(absl::StrCat("no client got running at ",
                                                 o.url, " (", tracker.failed(),
                                                 " failed)"));
    }
  }

  const int64_t start = NowMicros() + absl::ToInt64Microseconds(o.warmup);
  const int64_t end = start + absl::ToInt64Microseconds(o.duration);
  window.Open(start, end);
  SleepUntil(start);
  std::vector<std::optional<CpuSample>> cpu_before = SampleCpu(o.pids);
  absl::StatusOr<double> load = ReadLoadAverage();
  if (load.ok()) report.load_start = *load;
  SleepUntil(end);
  std::vector<std::optional<CpuSample>> cpu_after = SampleCpu(o.pids);
  load = ReadLoadAverage();
  if (load.ok()) report.load_end = *load;
  report.window_seconds = (end - start) / 1e6;
  if (o.scenario == Scenario::kIdle) {
    for (ProcessFigures& f : report.processes) {
      absl::StatusOr<int64_t> kb = ReadResidentKb(f.pid);
      if (kb.ok()) f.rss_after_kb = *kb;
    }
  }
  report.ready = tracker.ready();
  report.failed = tracker.failed();
  for (auto& lane : lanes) lane->Stop();

  LaneStats stats;
  for (auto& lane : lanes) stats.Merge(lane->stats());
  lanes.clear();

  const double seconds = report.window_seconds;
  report.replies = stats.replies;
  report.replies_per_s = Rate(stats.replies, seconds);
  report.reply_latency = Summarize(stats.reply_latency);
  report.deliveries = stats.deliveries;
  report.deliveries_per_s = Rate(stats.deliveries, seconds);
  report.delivery_latency = Summarize(stats.delivery_latency);
  report.delivery_latency_first_half =
      Summarize(stats.delivery_latency_first_half);
  report.delivery_latency_second_half =
      Summarize(stats.delivery_latency_second_half);
  report.sessions = stats.sessions;
  report.sessions_per_s = Rate(stats.sessions, seconds);
  report.setup_latency = Summarize(stats.setup_latency);
  report.fragment_errors = stats.fragment_errors;
  report.protocol_errors = stats.protocol_errors;
  report.disconnects = stats.disconnects;

  report.loadgen.name = "loadgen";
  report.loadgen.pid = getpid();
  SetCpuFigures(cpu_before[0], cpu_after[0], seconds, report.loadgen);
  for (size_t i = 0; i < report.processes.size(); ++i) {
    SetCpuFigures(cpu_before[i + 1], cpu_after[i + 1], seconds,
                  report.processes[i]);
  }
  if (o.scenario == Scenario::kIdle && report.ready > 0 &&
      !report.processes.empty()) {
    int64_t grown_kb = 0;
    bool known = true;
    for (const ProcessFigures& f : report.processes) {
      known = known && f.rss_before_kb >= 0 && f.rss_after_kb >= 0;
      grown_kb += f.rss_after_kb - f.rss_before_kb;
    }
    if (known) report.bytes_per_session = 1024.0 * grown_kb / report.ready;
  }
  return report;
}

}  // namespace jetstream::loadgen
