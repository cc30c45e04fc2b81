#include "tests/durability/replica_cluster.h"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "tests/durability/crash_scenario.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/e2e/system_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/ws_test_client.h"

namespace jetstream::testing {
namespace {

std::string Serialize(const JsonValue& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// The moves (shape -> x) of a changeset's fragments.
std::vector<std::pair<std::string, double>> Moves(const JsonValue& fragments) {
  std::vector<std::pair<std::string, double>> out;
  if (!fragments.IsArray()) return out;
  for (const JsonValue& f : fragments.GetArray()) {
    if (!f.IsObject() || !f.HasMember("clsName") || !f["clsName"].IsString() ||
        std::string(f["clsName"].GetString()) != "Shape" ||
        !f.HasMember("properties") || !f["properties"].IsObject()) {
      continue;
    }
    const JsonValue& p = f["properties"];
    if (p.HasMember("x") && p["x"].IsNumber()) {
      out.emplace_back(f["uuid"].GetString(), p["x"].GetDouble());
    }
  }
  return out;
}

// JETSTREAM_TEST_VERBOSE=1 (bazel test --test_env=...) logs every request
// of the replicas and gateways, for a failure to be read.
bool Verbose() {
  const char* v = std::getenv("JETSTREAM_TEST_VERBOSE");
  return v != nullptr && std::string(v) == "1";
}

}  // namespace

// ------------------------------------------------------------ the cluster

absl::StatusOr<std::unique_ptr<ReplicaCluster>> ReplicaCluster::Start(
    Options options) {
  std::unique_ptr<ReplicaCluster> cluster(new ReplicaCluster(options));
  auto server = PostgresServer::Start();
  if (!server.ok()) return server.status();
  cluster->postgres_ = *std::move(server);
  absl::Status created = cluster->postgres_->CreateDatabase("replicas");
  if (!created.ok()) return created;
  cluster->conninfo_ = cluster->postgres_->ConnectionString("replicas");
  return cluster;
}

absl::Status ReplicaCluster::StartReplica(
    int k, std::vector<std::string> extra_flags) {
  std::vector<std::string> args = {
      "--listen=127.0.0.1:0",
      absl::StrCat("--member_id=sync-", k),
      "--schema=" + Runfile("syncservice/config/demo_schema.json"),
      "--scopes=" + Runfile("syncservice/config/demo_scopes.json"),
      "--store=postgres:" + conninfo_,
      // The whole history stays in the log, for the checker.
      "--snapshot_every=0",
      absl::StrCat("--lease_ttl=", absl::FormatDuration(options_.lease_ttl)),
      "--metrics_listen=",
  };
  for (std::string& f : extra_flags) args.push_back(std::move(f));
  if (Verbose()) args.push_back("--v=1");
  auto process = ChildProcess::StartListening("syncservice/syncservice", args);
  if (!process.ok()) return process.status();
  absl::MutexLock lock(&mu_);
  replicas_[k] = *std::move(process);
  return absl::OkStatus();
}

ChildProcess* ReplicaCluster::replica(int k) {
  absl::MutexLock lock(&mu_);
  auto it = replicas_.find(k);
  return it == replicas_.end() ? nullptr : it->second.get();
}

void ReplicaCluster::KillReplica(int k) {
  std::unique_ptr<ChildProcess> process;
  {
    absl::MutexLock lock(&mu_);
    process = std::move(replicas_[k]);
    replicas_.erase(k);
  }
  if (process != nullptr) process->Kill(SIGKILL);
}

bool ReplicaCluster::StopReplica(int k) {
  std::unique_ptr<ChildProcess> process;
  {
    absl::MutexLock lock(&mu_);
    process = std::move(replicas_[k]);
    replicas_.erase(k);
  }
  return process != nullptr && process->Terminate(absl::Seconds(30));
}

absl::Status ReplicaCluster::StartGateway(
    int g, const std::vector<std::string>& seeds) {
  auto process = ChildProcess::StartListening(
      "gateway/gateway",
      {"--port=0", "--sync_service=" + absl::StrJoin(seeds, ","),
       "--ping_interval=1h",
       absl::StrCat("--sync_request_timeout=",
                    absl::FormatDuration(options_.sync_request_timeout)),
       Verbose() ? "--verbosity=1" : "--verbosity=0"});
  if (!process.ok()) return process.status();
  absl::MutexLock lock(&mu_);
  gateways_[g] = *std::move(process);
  return absl::OkStatus();
}

ChildProcess* ReplicaCluster::gateway(int g) {
  absl::MutexLock lock(&mu_);
  auto it = gateways_.find(g);
  return it == gateways_.end() ? nullptr : it->second.get();
}

void ReplicaCluster::KillGateway(int g) {
  std::unique_ptr<ChildProcess> process;
  {
    absl::MutexLock lock(&mu_);
    process = std::move(gateways_[g]);
    gateways_.erase(g);
  }
  if (process != nullptr) process->Kill(SIGKILL);
}

std::vector<int> ReplicaCluster::GatewayPorts() {
  absl::MutexLock lock(&mu_);
  std::vector<int> ports;
  for (const auto& [g, process] : gateways_) ports.push_back(process->port());
  return ports;
}

std::vector<int> ReplicaCluster::GatewayMetricsPorts() {
  absl::MutexLock lock(&mu_);
  std::vector<int> ports;
  for (const auto& [g, process] : gateways_) {
    ports.push_back(process->metrics_port());
  }
  return ports;
}

bool ReplicaCluster::WaitForGatewaysToSee(int replicas,
                                          absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (int port : GatewayMetricsPorts()) {
    const absl::Duration left = deadline - absl::Now();
    if (!WaitForGauge(port, "jetstream_gateway_sync_members", replicas, left) ||
        !WaitForGauge(port, "jetstream_gateway_sync_links_up", replicas,
                      deadline - absl::Now())) {
      return false;
    }
  }
  return true;
}

std::string ReplicaCluster::LeaseHolder(const std::string& scope) {
  auto rows = QuerySql(
      conninfo_,
      absl::StrCat("SELECT m.member_id FROM jetstream_leases l JOIN "
                   "jetstream_members m ON m.incarnation = l.owner WHERE "
                   "l.scope = ",
                   Quote(scope), " AND l.expires_at > clock_timestamp()"));
  if (!rows.ok() || rows->empty()) return "";
  return (*rows)[0][0];
}

int ReplicaCluster::IndexOf(const std::string& member_id) {
  int k = -1;
  if (member_id.rfind("sync-", 0) != 0 ||
      !absl::SimpleAtoi(member_id.substr(5), &k)) {
    return -1;
  }
  return k;
}

std::string ReplicaCluster::WaitForLeaseHolder(const std::string& scope,
                                               const std::string& not_by,
                                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::string holder = LeaseHolder(scope);
    if (!holder.empty() && holder != not_by) return holder;
    absl::SleepFor(absl::Milliseconds(20));  // polling the database
  }
  return "";
}

std::set<std::string> ReplicaCluster::LiveMembers() {
  auto rows =
      QuerySql(conninfo_,
               absl::StrCat("SELECT member_id FROM jetstream_members WHERE NOT "
                            "draining AND heartbeat_at > clock_timestamp() - ",
                            absl::ToInt64Milliseconds(options_.lease_ttl),
                            " * interval '1 millisecond'"));
  std::set<std::string> out;
  if (!rows.ok()) return out;
  for (const auto& row : *rows) out.insert(row[0]);
  return out;
}

std::string ReplicaCluster::IncarnationOf(const std::string& member_id) {
  auto rows = QuerySql(conninfo_,
                       absl::StrCat("SELECT incarnation FROM jetstream_members "
                                    "WHERE member_id = ",
                                    Quote(member_id)));
  if (!rows.ok() || rows->empty()) return "";
  return (*rows)[0][0];
}

absl::StatusOr<std::vector<StoredChange>> ReadHistory(
    const std::string& conninfo, const std::string& scope) {
  auto rows =
      QuerySql(conninfo,
               absl::StrCat("SELECT version, writer, lease_epoch, applied_json "
                            "FROM commits WHERE scope = ",
                            Quote(scope), " ORDER BY version"));
  if (!rows.ok()) return rows.status();
  std::vector<StoredChange> out;
  for (const auto& row : *rows) {
    StoredChange c;
    absl::SimpleAtoi(row[0], &c.version);
    c.writer = row[1];
    absl::SimpleAtoi(row[2], &c.lease_epoch);
    c.applied_json = row[3];
    out.push_back(std::move(c));
  }
  return out;
}

// ------------------------------------------------------------ the load

struct Workload::Client {
  int number = 0;
  std::string scope;
  std::string shape;  // empty: a reader
  int y = 0;
  std::unique_ptr<WsTestClient> ws;
  uint64_t scope_index = 0;
  int sessions = 0;
  int port = 0;  // of the gateway it is connected to
  // What it received last, for the violations' messages.
  std::deque<std::string> recent;
  ScopeModel model;
  std::map<std::string, double> last_x;
  int64_t x = 0;  // the last x sent
  std::vector<int64_t> acked;
  std::vector<std::pair<int64_t, std::string>> refused;
  int unanswered = 0;  // sent, and the connection went before the reply
  std::vector<std::string> violations;
  std::set<std::string> received;  // changesets received, serialized
};

Workload::Workload(ReplicaCluster& cluster, Options options)
    : cluster_(cluster), options_(std::move(options)) {}

Workload::~Workload() {
  stop_ = true;
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

absl::Status Workload::Start() {
  std::vector<int> ports = cluster_.GatewayPorts();
  if (ports.empty()) return absl::FailedPreconditionError("no gateway");
  const int gateways = static_cast<int>(ports.size());
  int number = 0;
  for (size_t s = 0; s < options_.scopes.size(); ++s) {
    const std::string& scope = options_.scopes[s];
    std::vector<std::string>& shapes = shapes_[scope];
    for (int w = 0; w < options_.writers * gateways; ++w) {
      shapes.push_back(TestUuid(0xf0 + static_cast<uint32_t>(s), w + 1));
    }
    // The shapes, created through the first gateway.
    auto setup = WsTestClient::Connect("127.0.0.1", ports[0], "/", {});
    if (!setup.ok()) return setup.status();
    auto token = (*setup)->CreateSession();
    if (!token.ok()) return token.status();
    absl::StatusOr<Fetched> f = FetchState(**setup, scope);
    if (!f.ok()) return f.status();
    absl::Status added = AddShapes(**setup, *f, shapes);
    if (!added.ok()) return added;
    for (int w = 0; w < options_.writers * gateways; ++w) {
      auto c = std::make_unique<Client>();
      c->number = number++;
      c->scope = scope;
      c->shape = shapes[w];
      c->y = w;
      clients_.push_back(std::move(c));
    }
    for (int r = 0; r < options_.readers * gateways; ++r) {
      auto c = std::make_unique<Client>();
      c->number = number++;
      c->scope = scope;
      clients_.push_back(std::move(c));
    }
  }
  for (auto& c : clients_) {
    Client* client = c.get();
    threads_.emplace_back([this, client] { Run(client); });
  }
  return absl::OkStatus();
}

bool Workload::Connect(Client& client) {
  client.ws.reset();
  std::vector<int> ports = cluster_.GatewayPorts();
  if (ports.empty()) return false;
  const int port = ports[(client.number + client.sessions) % ports.size()];
  ++client.sessions;
  auto ws = WsTestClient::Connect("127.0.0.1", port, "/", {});
  if (!ws.ok()) return false;
  if (!(*ws)->CreateSession().ok()) return false;
  client.port = port;
  absl::StatusOr<Fetched> f = FetchState(**ws, client.scope);
  if (!f.ok()) return false;
  client.ws = *std::move(ws);
  client.scope_index = f->scope_index;
  for (const std::string& m : f->before) Observe(client, m);
  Observe(client, f->state);
  return true;
}

void Workload::Violation(Client& client, std::string what) {
  if (client.violations.size() >= 20) return;
  // When and where, to be found in the processes' logs, and what came
  // before.
  client.violations.push_back(absl::StrCat(
      what, " (at ",
      absl::FormatTime("%H:%M:%E6S", absl::Now(), absl::UTCTimeZone()),
      ", client ", client.number, " on gateway port ", client.port,
      "; it received before: ", absl::StrJoin(client.recent, " | "), ")"));
}

void Workload::Observe(Client& client, const std::string& message) {
  const std::string type = MessageType(message);
  auto remember = [&](std::string what) {
    client.recent.push_back(std::move(what));
    if (client.recent.size() > 8) client.recent.pop_front();
  };
  if (type == "ScopeState") {
    std::string xs;
    for (const auto& [shape, x] : ShapeXs(message)) {
      absl::StrAppend(&xs, shape.substr(shape.size() - 2), "=", x, " ");
    }
    remember(absl::StrCat("state#", MessageIndex(message), " ", xs));
    for (const auto& [shape, x] : ShapeXs(message)) {
      auto it = client.last_x.find(shape);
      if (it != client.last_x.end() && x < it->second) {
        Violation(client, absl::StrCat("a state with shape ", shape,
                                       " at x=", x, " after x=", it->second));
      }
      client.last_x[shape] = std::max(x, client.last_x[shape]);
    }
    absl::Status applied = client.model.ApplyState(message);
    if (!applied.ok()) Violation(client, std::string(applied.message()));
  } else if (type == "ScopeSync") {
    JsonDocument doc = ParseOrDie(message);
    if (!doc.HasMember("fragments")) return;
    const JsonValue& fragments = doc["fragments"];
    client.received.insert(Serialize(fragments));
    std::string xs;
    for (const auto& [shape, x] : Moves(fragments)) {
      absl::StrAppend(&xs, shape.substr(shape.size() - 2), "=", x, " ");
    }
    remember(absl::StrCat("sync#", MessageIndex(message), " ", xs));
    for (const auto& [shape, x] : Moves(fragments)) {
      auto it = client.last_x.find(shape);
      if (it != client.last_x.end() && x < it->second) {
        Violation(client, absl::StrCat("a change of shape ", shape, " to x=", x,
                                       " after x=", it->second));
      }
      client.last_x[shape] = std::max(x, client.last_x[shape]);
    }
    absl::Status applied = client.model.ApplyFragments(fragments);
    if (!applied.ok()) Violation(client, std::string(applied.message()));
  }
}

void Workload::Run(Client* client) {
  Client& c = *client;
  while (!stop_.load()) {
    if (c.ws == nullptr || c.ws->closed()) {
      if (!Connect(c)) {
        // Pacing of reconnects while no gateway takes us: not a sync.
        absl::SleepFor(absl::Milliseconds(50));
      }
      continue;
    }
    if (c.shape.empty()) {
      absl::StatusOr<std::string> m =
          c.ws->NextMessage(absl::Milliseconds(200));
      if (m.ok()) Observe(c, *m);
      continue;
    }
    const int64_t x = ++c.x;
    absl::StatusOr<uint64_t> sent = c.ws->SendScopeSync(
        c.scope_index, FragmentList({MoveShapeFragment(c.shape, x, c.y)}));
    if (!sent.ok()) {
      ++c.unanswered;
      NoteFailure();
      c.ws.reset();
      continue;
    }
    absl::StatusOr<UntilReply> r =
        ReadUntilReply(*c.ws, *sent, absl::Seconds(30));
    if (!r.ok()) {
      ++c.unanswered;
      NoteFailure();
      c.ws.reset();
      continue;
    }
    for (const std::string& m : r->before) Observe(c, m);
    const std::string replies = Field(r->reply, "fragmentReplies");
    c.recent.push_back(
        absl::StrCat("own x=", x, replies == "[{}]" ? " ok" : " refused"));
    if (c.recent.size() > 8) c.recent.pop_front();
    if (replies == "[{}]") {
      c.acked.push_back(x);
      // What a client does with its own accepted change.
      absl::Status applied = c.model.ApplyFragmentsJson(
          FragmentList({MoveShapeFragment(c.shape, x, c.y)}));
      if (!applied.ok()) Violation(c, std::string(applied.message()));
      c.last_x[c.shape] = std::max<double>(c.last_x[c.shape], x);
      ++acks_;
      absl::MutexLock lock(&mu_);
      ack_times_.push_back(absl::Now());
    } else {
      c.refused.emplace_back(x, replies);
      NoteFailure();
    }
  }
}

void Workload::NoteFailure() {
  absl::MutexLock lock(&mu_);
  ++failures_;
}

bool Workload::WaitForFailures(int n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const int target = failures_ + n;
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return failures_ >= target;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool Workload::WaitForAcks(int n, absl::Duration timeout) {
  const int target = acks_.load() + n;
  absl::MutexLock lock(&mu_);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<int>(ack_times_.size()) >= target;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

std::optional<absl::Time> Workload::FirstAckAfter(absl::Time t) {
  absl::MutexLock lock(&mu_);
  for (absl::Time a : ack_times_) {
    if (a > t) return a;
  }
  return std::nullopt;
}

void Workload::StopAndCheck(const std::string& scenario,
                            std::optional<absl::Time> fault) {
  stop_ = true;
  for (std::thread& t : threads_) t.join();
  threads_.clear();

  // Every client catches up with what was sent to it (a barrier goes
  // through the sync service behind every earlier commit); one whose
  // gateway is gone connects again and starts from a fresh state.
  for (auto& c : clients_) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (c->ws == nullptr || c->ws->closed()) {
        if (!Connect(*c)) continue;
      }
      absl::StatusOr<std::vector<std::string>> seen =
          Barrier(*c->ws, c->scope_index, absl::Seconds(30));
      if (!seen.ok()) {
        c->ws.reset();
        continue;
      }
      for (const std::string& m : *seen) Observe(*c, m);
      break;
    }
    EXPECT_NE(c->ws, nullptr) << "client " << c->number << " never caught up";
  }

  int acked = 0, refused = 0, unanswered = 0, sessions = 0;
  for (const std::string& scope : options_.scopes) {
    absl::StatusOr<std::vector<StoredChange>> history =
        ReadHistory(cluster_.conninfo(), scope);
    ASSERT_OK(history);
    ASSERT_FALSE(history->empty()) << scope;
    // One history: consecutive versions, lease epochs never decreasing.
    std::set<std::string> stored;
    std::map<std::string, std::set<int64_t>> stored_moves;
    std::map<std::string, double> final_x;
    const uint64_t first = history->front().version;
    for (size_t i = 0; i < history->size(); ++i) {
      const StoredChange& change = (*history)[i];
      EXPECT_EQ(change.version, first + i) << scope;
      if (i > 0) {
        EXPECT_GE(change.lease_epoch, (*history)[i - 1].lease_epoch)
            << scope << " version " << change.version << " was committed "
            << "under an older lease than version " << change.version - 1;
      }
      EXPECT_GT(change.lease_epoch, 0u) << scope << " v" << change.version;
      JsonDocument doc = ParseOrDie(change.applied_json);
      stored.insert(Serialize(doc));
      for (const auto& [shape, x] : Moves(doc)) {
        stored_moves[shape].insert(static_cast<int64_t>(x));
        final_x[shape] = x;
      }
    }
    for (auto& c : clients_) {
      if (c->scope != scope) continue;
      sessions += c->sessions;
      acked += static_cast<int>(c->acked.size());
      refused += static_cast<int>(c->refused.size());
      unanswered += c->unanswered;
      EXPECT_THAT(c->violations, ::testing::IsEmpty())
          << "client " << c->number;
      // No acknowledged changeset is lost.
      for (int64_t x : c->acked) {
        EXPECT_TRUE(stored_moves[c->shape].count(x))
            << "acknowledged move of " << c->shape << " to x=" << x
            << " is not stored";
      }
      // A refused move is not stored, unless its reply said the outcome
      // was unknown.
      for (const auto& [x, reply] : c->refused) {
        if (stored_moves[c->shape].count(x)) {
          EXPECT_THAT(reply, ::testing::HasSubstr("outcome-unknown"))
              << "move of " << c->shape << " to x=" << x
              << " was refused but is stored";
        }
      }
      // Every changeset received is one of the stored history.
      for (const std::string& changeset : c->received) {
        EXPECT_TRUE(stored.count(changeset))
            << "client " << c->number << " received a changeset that is not "
            << "in the stored history: " << changeset;
      }
      // Converged: every shape as last stored. A client whose scope moved
      // just before the barrier may get the state that brings it up to
      // date after the barrier's reply (a move resynchronises the watch on
      // its own schedule), so it is given until a deadline to get there.
      auto converged = [&] {
        for (const auto& [shape, x] : final_x) {
          if (c->last_x[shape] != x) return false;
        }
        return true;
      };
      const absl::Time since = absl::Now();
      const absl::Time deadline = since + absl::Seconds(30);
      while (!converged() && c->ws != nullptr && absl::Now() < deadline) {
        absl::StatusOr<std::string> m =
            c->ws->NextMessage(deadline - absl::Now());
        if (!m.ok()) break;
        Observe(*c, *m);
      }
      if (converged() && absl::Now() - since > absl::Milliseconds(1)) {
        std::printf("client %d converged %s after the barrier\n", c->number,
                    absl::FormatDuration(absl::Now() - since).c_str());
      }
      for (const auto& [shape, x] : final_x) {
        EXPECT_EQ(c->last_x[shape], x)
            << "client " << c->number << " (gateway port " << c->port
            << ") ends with shape " << shape << " at x=" << c->last_x[shape]
            << ", stored x=" << x
            << "; last messages: " << absl::StrJoin(c->recent, " | ");
      }
    }
  }
  std::string recovery = "no fault";
  if (fault.has_value()) {
    // The longest time without any acknowledged move, from the fault on:
    // how long the clients waited for the system to recover.
    absl::MutexLock lock(&mu_);
    absl::Time last = *fault;
    absl::Duration longest = absl::ZeroDuration();
    for (absl::Time a : ack_times_) {
      if (a <= *fault) continue;
      longest = std::max(longest, a - last);
      last = a;
    }
    recovery = absl::StrCat(
        "the longest wait for an acknowledgement after "
        "the fault was ",
        absl::FormatDuration(longest));
  }
  std::printf(
      "%s: %d moves acknowledged, %d refused, %d unanswered (connection "
      "lost), %d sessions; recovery: %s\n",
      scenario.c_str(), acked, refused, unanswered, sessions, recovery.c_str());
  EXPECT_GT(acked, 0);
}

}  // namespace jetstream::testing
