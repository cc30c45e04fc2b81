// Convergence under concurrency, against the real binaries: every session's
// view of a scope (its ScopeState, then every following ScopeSync, and its
// own accepted changesets at their replies, applied in the order received)
// must end up equal to the scope's final state, whatever moment it fetched
// at and however the writers raced. Threads each drive their own clients;
// waiting is on replies and on counters, never on time.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/e2e/system_fixture.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

using ::testing::IsEmpty;

// Errors found on a worker thread, reported by the main thread.
class Errors {
 public:
  void Add(std::string e) {
    absl::MutexLock lock(&mu_);
    if (errors_.size() < 20) errors_.push_back(std::move(e));
  }
  std::vector<std::string> Get() {
    absl::MutexLock lock(&mu_);
    return errors_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> errors_;
};

// Server indexes a session sees must be consecutive (docs/protocol.md#indexes).
class IndexCheck {
 public:
  // False (with `error` set) on a gap or a repeat.
  bool Next(const std::string& message, std::string* error) {
    int64_t index = UintField(message, "index");
    if (index == 0) return true;
    if (index != static_cast<int64_t>(last_ + 1)) {
      *error = absl::StrCat("index ", index, " after ", last_, ": ",
                            message.substr(0, 200));
      return false;
    }
    last_ = static_cast<uint64_t>(index);
    return true;
  }

 private:
  uint64_t last_ = 0;
};

class ConsistencyTest : public SystemFixture {
 protected:
  // No shedding: a thousand sessions on a machine other builds load can
  // put a hub past --max_delivery_lag, and the gateway would then end some
  // of them by design (docs/protocol.md#overload). These tests ask whether
  // every session converges; overload_shedder_test and session_manager_test
  // ask when the gateway sheds.
  std::vector<std::string> GatewayFlags() override {
    return {"--ping_interval=1h", "--max_delivery_lag=0"};
  }
};

// Several writers move shapes (one shared "hot" shape that all of them
// move, so the order of commits matters; one of their own each), and one of
// them adds and removes shapes through the root's list (orphan removal).
// Readers fetch at moments spread over the writing. Every reader's and every
// writer's view must equal the final state.
TEST_F(ConsistencyTest, FetchRacingConcurrentWritersConverges) {
  constexpr int kWriters = 4;
  constexpr int kChangesPerWriter = 250;
  constexpr int kReaders = 8;
  constexpr int kTotal = kWriters * kChangesPerWriter;

  // The stable shapes: the hot one, then one per writer.
  auto setup = ConnectWithSession();
  ASSERT_NE(setup, nullptr);
  absl::StatusOr<Fetched> fs = FetchState(*setup, "Canvas");
  ASSERT_OK(fs);
  const std::string root = fs->root_uuid;
  const std::string hot = TestUuid(0xa, 0);
  std::vector<std::string> stable = {hot};
  for (int w = 0; w < kWriters; ++w) stable.push_back(TestUuid(0xa, 1 + w));
  {
    std::vector<std::string> fragments;
    for (size_t i = 0; i < stable.size(); ++i) {
      fragments.push_back(AddShapeFragment(stable[i], 0, 0));
    }
    fragments.push_back(SetShapesFragment(root, stable));
    absl::StatusOr<uint64_t> sync =
        setup->SendScopeSync(fs->scope_index, FragmentList(fragments));
    ASSERT_OK(sync);
    absl::StatusOr<UntilReply> r = ReadUntilReply(*setup, *sync);
    ASSERT_OK(r);
    ASSERT_THAT(Field(r->reply, "fragmentReplies"),
                ::testing::Not(::testing::HasSubstr("error")));
  }

  Errors errors;
  absl::Mutex mu;
  int progress = 0;  // changesets answered, all writers
  bool writers_done = false;
  bool failed = false;  // some thread gave up: nobody waits for it
  // Records an error and wakes whoever waits on `mu`.
  auto fail = [&](std::string e) {
    errors.Add(std::move(e));
    absl::MutexLock lock(&mu);
    failed = true;
  };
  std::vector<std::string> views(kWriters + kReaders);  // canonical, by thread
  // The changesets each thread saw after its state, as (writer, i): every
  // changeset moves its writer's own shape to x = i + 1.
  std::vector<std::vector<std::pair<int, int>>> sequences(kWriters + kReaders);
  std::unordered_map<std::string, int> owner;
  for (int w = 0; w < kWriters; ++w) owner[stable[1 + w]] = w;
  auto record = [&](const std::string& fragments_json,
                    std::vector<std::pair<int, int>>& sequence) {
    JsonDocument doc = ParseOrDie(fragments_json);
    auto it = owner.find(doc[0]["uuid"].GetString());
    if (it == owner.end()) return;
    sequence.push_back(
        {it->second,
         static_cast<int>(doc[0]["properties"]["x"].GetDouble()) - 1});
  };

  // Connected and with a session before any thread starts: the fixture's
  // Connect() may be used from this thread only.
  std::vector<std::unique_ptr<WsTestClient>> clients;
  for (int i = 0; i < kWriters + kReaders; ++i) {
    clients.push_back(ConnectWithSession());
    ASSERT_NE(clients.back(), nullptr);
  }

  auto writer = [&](int w) {
    WsTestClient& c = *clients[w];
    IndexCheck indexes;
    std::string error;
    ScopeModel model;
    absl::StatusOr<Fetched> f = FetchState(c, "Canvas");
    if (!f.ok()) return fail(f.status().ToString());
    if (!indexes.Next(f->reply, &error) || !indexes.Next(f->state, &error)) {
      return fail(error);
    }
    if (absl::Status s = model.ApplyState(f->state); !s.ok())
      return fail(s.ToString());
    const std::string own = stable[1 + w];
    for (int i = 0; i < kChangesPerWriter; ++i) {
      std::vector<std::string> fragments = {
          MoveShapeFragment(own, i + 1, w),
          MoveShapeFragment(hot, w * 1000 + i, i)};
      if (w == 0 && i % 10 == 5) {
        const std::string extra = TestUuid(0xe, i);
        std::vector<std::string> shapes = stable;
        shapes.push_back(extra);
        fragments.push_back(AddShapeFragment(extra, i, i));
        fragments.push_back(SetShapesFragment(root, shapes));
      } else if (w == 0 && i % 10 == 9) {
        fragments.push_back(SetShapesFragment(root, stable));
      }
      const std::string list = FragmentList(fragments);
      absl::StatusOr<uint64_t> sync = c.SendScopeSync(f->scope_index, list);
      if (!sync.ok()) return fail(sync.status().ToString());
      absl::StatusOr<UntilReply> r = ReadUntilReply(c, *sync);
      if (!r.ok()) return fail(r.status().ToString());
      for (const std::string& m : r->before) {
        if (!indexes.Next(m, &error)) return fail(error);
        if (MessageType(m) != "ScopeSync")
          return fail(absl::StrCat("unexpected ", m));
        if (absl::Status s = model.ApplyFragmentsJson(Field(m, "fragments"));
            !s.ok()) {
          return fail(s.ToString());
        }
        record(Field(m, "fragments"), sequences[w]);
      }
      if (!indexes.Next(r->reply, &error)) return fail(error);
      if (absl::StrContains(r->reply, "error")) {
        return fail(absl::StrCat("writer ", w, " rejected: ", r->reply));
      }
      // Accepted: the writer's own change, in commit order.
      if (absl::Status s = model.ApplyFragmentsJson(list); !s.ok())
        return fail(s.ToString());
      record(list, sequences[w]);
      absl::MutexLock lock(&mu);
      ++progress;
    }
    // Whatever others committed after the writer's last change.
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(&writers_done));
    }
    absl::StatusOr<std::vector<std::string>> rest = Barrier(c, f->scope_index);
    if (!rest.ok()) return fail(rest.status().ToString());
    for (const std::string& m : *rest) {
      if (!indexes.Next(m, &error)) return fail(error);
      if (absl::Status s = model.ApplyFragmentsJson(Field(m, "fragments"));
          !s.ok()) {
        return fail(s.ToString());
      }
      record(Field(m, "fragments"), sequences[w]);
    }
    views[w] = model.Canonical();
  };

  std::mt19937 rng(20261126);
  std::uniform_int_distribution<int> moment(0, kTotal);
  std::vector<int> thresholds;
  for (int r = 0; r < kReaders; ++r) thresholds.push_back(moment(rng));
  thresholds[0] = 0;       // before anything
  thresholds[1] = kTotal;  // after everything

  auto reader = [&](int r) {
    WsTestClient& c = *clients[kWriters + r];
    {
      absl::MutexLock lock(&mu);
      auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return progress >= thresholds[r] || failed;
      };
      mu.Await(absl::Condition(&reached));
    }
    absl::StatusOr<uint64_t> fetch = c.SendScopeFetch("Canvas");
    if (!fetch.ok()) return fail(fetch.status().ToString());
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(&writers_done));
    }
    // Fetching again (docs/protocol.md#d11-fetch-twice) marks the end: the
    // fresh state after the last
    // commit, in the same order as everything else.
    absl::StatusOr<uint64_t> refetch = c.SendScopeFetch("Canvas");
    if (!refetch.ok()) return fail(refetch.status().ToString());
    IndexCheck indexes;
    std::string error;
    ScopeModel model;
    enum { kWaitReply, kWaitState, kSyncs, kWaitFinalState } phase = kWaitReply;
    for (;;) {
      absl::StatusOr<std::string> m = c.NextMessage(absl::Seconds(30));
      if (!m.ok())
        return fail(absl::StrCat("reader ", r, ": ", m.status().ToString()));
      if (!indexes.Next(*m, &error)) return fail(error);
      const std::string type = MessageType(*m);
      switch (phase) {
        case kWaitReply:
          if (UintField(*m, "replyTo") != static_cast<int64_t>(*fetch) ||
              UintField(*m, "scopeIndex") != 0) {
            return fail(
                absl::StrCat("reader ", r, " expected its fetch reply: ", *m));
          }
          phase = kWaitState;
          break;
        case kWaitState:
          if (type != "ScopeState")
            return fail(absl::StrCat("expected state: ", *m));
          if (absl::Status s = model.ApplyState(*m); !s.ok())
            return fail(s.ToString());
          phase = kSyncs;
          break;
        case kSyncs:
          if (type == "ScopeSync") {
            if (absl::Status s =
                    model.ApplyFragmentsJson(Field(*m, "fragments"));
                !s.ok()) {
              return fail(s.ToString());
            }
            record(Field(*m, "fragments"), sequences[kWriters + r]);
          } else if (UintField(*m, "replyTo") ==
                     static_cast<int64_t>(*refetch)) {
            if (UintField(*m, "scopeIndex") != 0) return fail(*m);
            phase = kWaitFinalState;
          } else {
            return fail(absl::StrCat("unexpected ", *m));
          }
          break;
        case kWaitFinalState: {
          if (type != "ScopeState")
            return fail(absl::StrCat("expected state: ", *m));
          ScopeModel fresh;
          if (absl::Status s = fresh.ApplyState(*m); !s.ok())
            return fail(s.ToString());
          if (fresh.Canonical() != model.Canonical()) {
            fail(absl::StrCat("reader ", r, " (fetched after ", thresholds[r],
                              " changesets) diverged:\n", model.Canonical(),
                              "\nvs fresh state:\n", fresh.Canonical()));
          }
          views[kWriters + r] = model.Canonical();
          return;
        }
      }
    }
  };

  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) threads.emplace_back(writer, w);
  for (int r = 0; r < kReaders; ++r) threads.emplace_back(reader, r);
  {
    absl::MutexLock lock(&mu);
    auto all_written = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return progress == kTotal || failed;
    };
    mu.Await(absl::Condition(&all_written));
    writers_done = true;
  }
  for (std::thread& t : threads) t.join();
  ASSERT_THAT(errors.Get(), IsEmpty());

  // The final state, fetched by a new session after every reply.
  auto final_client = ConnectWithSession();
  ASSERT_NE(final_client, nullptr);
  absl::StatusOr<Fetched> final_state = FetchState(*final_client, "Canvas");
  ASSERT_OK(final_state);
  ScopeModel final_model;
  ASSERT_OK(final_model.ApplyState(final_state->state));
  const std::string expected = final_model.Canonical();
  EXPECT_EQ(final_model.ReachableCount(), 1 + stable.size());
  for (size_t i = 0; i < views.size(); ++i) {
    EXPECT_EQ(views[i], expected) << (i < kWriters ? "writer " : "reader ")
                                  << (i < kWriters ? i : i - kWriters);
  }
  // Idempotent moves could hide a lost or repeated changeset in the states;
  // the sequences cannot. Each is the tail of one commit order: per writer
  // its changesets are consecutive, and any two sequences agree on the
  // changesets both saw.
  size_t longest = 0;
  for (size_t i = 0; i < sequences.size(); ++i) {
    if (sequences[i].size() > sequences[longest].size()) longest = i;
    std::vector<int> next(kWriters, -1);
    for (const auto& [w, n] : sequences[i]) {
      if (next[w] >= 0) {
        EXPECT_EQ(n, next[w]) << "thread " << i << ": writer " << w;
      }
      next[w] = n + 1;
    }
  }
  const auto& all = sequences[longest];
  EXPECT_GE(all.size(), static_cast<size_t>(kTotal / 2));  // the early reader
  for (size_t i = 0; i < sequences.size(); ++i) {
    const auto& seq = sequences[i];
    ASSERT_LE(seq.size(), all.size());
    EXPECT_TRUE(std::equal(seq.begin(), seq.end(), all.end() - seq.size()))
        << "thread " << i << " saw a different order";
  }
  // The reader that fetched after everything saw nothing after its state.
  EXPECT_TRUE(sequences[kWriters + 1].empty());
}

// Positions of numbered shapes: the light client-side model for many
// sessions (a full ScopeModel per session would not fit).
struct Positions {
  std::vector<double> x, y;
};

// Applies `fragments` (JSON array of Shape changes/adds) to `p`.
bool ApplyShapeFragments(const JsonValue& fragments,
                         const std::unordered_map<std::string, int>& number,
                         Positions& p, std::string* error) {
  for (const JsonValue& f : fragments.GetArray()) {
    if (std::string(f["clsName"].GetString()) != "Shape") continue;  // root
    auto it = number.find(f["uuid"].GetString());
    if (it == number.end()) {
      *error = absl::StrCat("unknown shape ", f["uuid"].GetString());
      return false;
    }
    const JsonValue& props = f["properties"];
    if (props.HasMember("x")) p.x[it->second] = props["x"].GetDouble();
    if (props.HasMember("y")) p.y[it->second] = props["y"].GetDouble();
  }
  return true;
}

// A thousand sessions on one template scope, each moving its own shape a
// few times, concurrently. Every session ends up with the final state.
TEST_F(ConsistencyTest, ThousandConcurrentSessionsConverge) {
  constexpr int kSessions = 1000;
  constexpr int kThreads = 20;
  constexpr int kPerThread = kSessions / kThreads;
  constexpr int kRounds = 3;
  const std::string scope = "canvas/load";

  std::vector<std::string> shapes;
  std::unordered_map<std::string, int> number;
  for (int i = 0; i < kSessions; ++i) {
    shapes.push_back(TestUuid(0x10ad, i));
    number[shapes.back()] = i;
  }
  {
    auto setup = ConnectWithSession();
    ASSERT_NE(setup, nullptr);
    absl::StatusOr<Fetched> fs = FetchState(*setup, scope);
    ASSERT_OK(fs);
    std::vector<std::string> fragments;
    for (int i = 0; i < kSessions; ++i)
      fragments.push_back(AddShapeFragment(shapes[i], -1, -1));
    fragments.push_back(SetShapesFragment(fs->root_uuid, shapes));
    absl::StatusOr<uint64_t> sync =
        setup->SendScopeSync(fs->scope_index, FragmentList(fragments));
    ASSERT_OK(sync);
    absl::StatusOr<UntilReply> r =
        ReadUntilReply(*setup, *sync, absl::Seconds(30));
    ASSERT_OK(r);
    ASSERT_THAT(r->reply, ::testing::Not(::testing::HasSubstr("error")));
  }

  Errors errors;
  absl::Mutex mu;
  int connected = 0;  // threads whose clients all fetched
  int written = 0;    // threads done writing
  bool failed = false;
  auto fail = [&](std::string e) {
    errors.Add(std::move(e));
    absl::MutexLock lock(&mu);
    failed = true;
  };
  std::vector<Positions> views(kSessions);
  const int port = gateway_->port();

  auto worker = [&](int t) {
    struct Client {
      std::unique_ptr<WsTestClient> ws;
      uint64_t last_index = 0;
      Positions positions;
      uint64_t pending = 0;  // the index of the changeset awaiting its reply
      std::string pending_fragments;
    };
    std::vector<Client> clients(kPerThread);
    std::string error;
    // Checks the index of a parsed message.
    auto check_index = [&](Client& c, const JsonValue& m) -> bool {
      uint64_t index = m["index"].GetUint64();
      if (index == 0) return true;
      if (index != c.last_index + 1) {
        error = absl::StrCat("index ", index, " after ", c.last_index);
        return false;
      }
      c.last_index = index;
      return true;
    };
    // Reads messages until the reply to `reply_to`, applying ScopeSyncs.
    auto read_until = [&](Client& c, uint64_t reply_to,
                          std::string* reply) -> bool {
      for (;;) {
        absl::StatusOr<std::string> m = c.ws->NextMessage(absl::Seconds(60));
        if (!m.ok()) {
          error = m.status().ToString();
          return false;
        }
        JsonDocument doc = ParseOrDie(*m);
        if (!check_index(c, doc)) return false;
        if (doc.HasMember("replyTo") &&
            doc["replyTo"].GetUint64() == reply_to) {
          *reply = *std::move(m);
          return true;
        }
        if (std::string(doc["type"].GetString()) != "ScopeSync") {
          error = absl::StrCat("unexpected ", *m);
          return false;
        }
        if (!ApplyShapeFragments(doc["fragments"], number, c.positions, &error))
          return false;
      }
    };

    for (int i = 0; i < kPerThread; ++i) {
      Client& c = clients[i];
      absl::StatusOr<std::unique_ptr<WsTestClient>> ws =
          WsTestClient::Connect("127.0.0.1", port);
      if (!ws.ok()) return fail(ws.status().ToString());
      c.ws = *std::move(ws);
      if (absl::StatusOr<std::string> token = c.ws->CreateSession();
          !token.ok()) {
        return fail(token.status().ToString());
      }
      // The fetch reply and the state come in one frame
      // (docs/protocol.md#msg-scope-state); parsed once here, the state is
      // large.
      absl::StatusOr<uint64_t> fetch = c.ws->SendScopeFetch(scope);
      if (!fetch.ok()) return fail(fetch.status().ToString());
      absl::StatusOr<std::string> frame = c.ws->ReceiveFrame(absl::Seconds(60));
      if (!frame.ok()) return fail(frame.status().ToString());
      JsonDocument doc = ParseOrDie(*frame);
      if (!doc.IsArray() || doc.Size() != 2 ||
          std::string(doc[1]["type"].GetString()) != "ScopeState" ||
          doc[0]["scopeIndex"].GetUint64() != 0) {
        return fail(absl::StrCat("bad fetch frame: ", frame->substr(0, 300)));
      }
      if (!check_index(c, doc[0]) || !check_index(c, doc[1]))
        return fail(error);
      c.positions.x.assign(kSessions, 0);
      c.positions.y.assign(kSessions, 0);
      if (!ApplyShapeFragments(doc[1]["fragments"], number, c.positions,
                               &error)) {
        return fail(error);
      }
    }
    {
      absl::MutexLock lock(&mu);
      ++connected;
      auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return connected == kThreads || failed;
      };
      mu.Await(absl::Condition(&all));
    }
    for (int round = 0; round < kRounds; ++round) {
      for (int i = 0; i < kPerThread; ++i) {
        Client& c = clients[i];
        const int n = t * kPerThread + i;
        c.pending_fragments = FragmentList(
            {MoveShapeFragment(shapes[n], round * 10000 + n, round)});
        absl::StatusOr<uint64_t> sync =
            c.ws->SendScopeSync(0, c.pending_fragments);
        if (!sync.ok()) return fail(sync.status().ToString());
        c.pending = *sync;
      }
      for (int i = 0; i < kPerThread; ++i) {
        Client& c = clients[i];
        std::string reply;
        if (!read_until(c, c.pending, &reply)) {
          return fail(
              absl::StrCat("session ", t * kPerThread + i, ": ", error));
        }
        if (Field(reply, "fragmentReplies") != "[{}]") return fail(reply);
        JsonDocument own = ParseOrDie(c.pending_fragments);
        if (!ApplyShapeFragments(own, number, c.positions, &error))
          return fail(error);
        // Acknowledge, so the gateway can forget what it kept for resends.
        if (!c.ws->SendPing(c.last_index, false).ok()) {
          return fail("ping failed");
        }
      }
    }
    {
      absl::MutexLock lock(&mu);
      ++written;
      auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return written == kThreads || failed;
      };
      mu.Await(absl::Condition(&all));
    }
    // Everything committed is now before each session's barrier reply.
    for (int i = 0; i < kPerThread; ++i) {
      Client& c = clients[i];
      absl::StatusOr<uint64_t> sync = c.ws->SendScopeSync(0, "[]");
      if (!sync.ok()) return fail(sync.status().ToString());
      std::string reply;
      if (!read_until(c, *sync, &reply)) return fail(error);
      views[t * kPerThread + i] = std::move(c.positions);
    }
  };

  absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (std::thread& t : threads) t.join();
  std::fprintf(stderr, "%d sessions, %d rounds: %s\n", kSessions, kRounds,
               absl::FormatDuration(absl::Now() - start).c_str());
  ASSERT_THAT(errors.Get(), IsEmpty());

  auto final_client = ConnectWithSession();
  ASSERT_NE(final_client, nullptr);
  absl::StatusOr<Fetched> final_state =
      FetchState(*final_client, scope, absl::Seconds(30));
  ASSERT_OK(final_state);
  Positions expected;
  expected.x.assign(kSessions, 0);
  expected.y.assign(kSessions, 0);
  std::string error;
  JsonDocument state = ParseOrDie(final_state->state);
  ASSERT_TRUE(ApplyShapeFragments(state["fragments"], number, expected, &error))
      << error;
  ASSERT_EQ(state["fragments"].Size(), static_cast<size_t>(kSessions + 1));
  for (int n = 0; n < kSessions; ++n) {
    ASSERT_EQ(expected.x[n], (kRounds - 1) * 10000 + n);
    ASSERT_EQ(expected.y[n], kRounds - 1);
  }
  int diverged = 0;
  for (int n = 0; n < kSessions; ++n) {
    if (views[n].x != expected.x || views[n].y != expected.y) ++diverged;
  }
  EXPECT_EQ(diverged, 0);
}

}  // namespace
}  // namespace jetstream::testing
