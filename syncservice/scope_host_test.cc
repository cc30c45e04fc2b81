#include "syncservice/scope_host.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/fragment_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "syncservice/engine/scope.h"
#include "tests/testing/engine_fixtures.h"
#include "tests/testing/fake_validator.h"
#include "tests/testing/status_matchers.h"

namespace jetstream {
namespace {

using ::jetstream::testing::Add;
using ::jetstream::testing::Change;
using ::jetstream::testing::DemoSchema;
using ::jetstream::testing::TestUuid;
using ::testing::ElementsAre;
using ::testing::SizeIs;

// Records everything a host tells it. Thread-safe, never blocks for long.
class RecordingWatcher : public ScopeWatcher {
 public:
  void OnCommit(const CommitPtr& commit, bool replayed) override {
    absl::MutexLock lock(&mu_);
    commits_.push_back(commit);
    events_.push_back(
        absl::StrCat(replayed ? "replay " : "commit ", commit->version));
  }
  void OnResync(const ScopeSnapshot& snapshot) override {
    absl::MutexLock lock(&mu_);
    resyncs_.push_back(snapshot);
    commits_.clear();  // a resync restarts the stream of this scope
    events_.push_back(absl::StrCat("resync ", snapshot.version));
  }
  void OnLost(const std::string& scope, const absl::Status& why,
              const Member* moved_to) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(absl::StrCat("lost ", scope, ": ", why.message(),
                                   moved_to != nullptr ? " -> " : "",
                                   moved_to != nullptr ? moved_to->id : ""));
  }
  // Appends a marker to the event list (e.g. from an Apply callback).
  void Note(std::string what) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(what));
  }

  std::vector<CommitPtr> commits() const {
    absl::MutexLock lock(&mu_);
    return commits_;
  }
  std::vector<ScopeSnapshot> resyncs() const {
    absl::MutexLock lock(&mu_);
    return resyncs_;
  }
  std::vector<std::string> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<CommitPtr> commits_ ABSL_GUARDED_BY(mu_);
  std::vector<ScopeSnapshot> resyncs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
};

const Uuid kCanvas = TestUuid(1);

std::shared_ptr<ScopeHost> NewCanvasHost(ScopeHostOptions options = {}) {
  return std::make_shared<ScopeHost>(
      "Canvas", Scope::Create(DemoSchema(), "Canvas", kCanvas).value(),
      std::move(options));
}

// A changeset that adds Shape `n` and makes it the canvas's only shape.
Changeset ReplaceShapes(uint64_t n) {
  return Changeset{{Add(TestUuid(n), "Shape", R"({"x":1})"),
                    Change(kCanvas, "Canvas",
                           absl::StrCat(R"({"shapes":[")",
                                        TestUuid(n).ToString(), R"("]})"))}};
}

Changeset Rename(absl::string_view name) {
  return Changeset{
      {Change(kCanvas, "Canvas", absl::StrCat(R"({"name":")", name, R"("})"))}};
}

// The state a watcher reconstructs: its snapshot plus every commit after
// it, checked to be consecutive. Returns the state JSON.
std::string Reconstruct(const ScopeSnapshot& snapshot,
                        const std::vector<CommitPtr>& commits) {
  std::unique_ptr<Scope> scope =
      Scope::FromState(DemoSchema(),
                       ParseFragmentsJson(*snapshot.fragments_json).value(),
                       snapshot.version)
          .value();
  uint64_t version = snapshot.version;
  for (const CommitPtr& c : commits) {
    EXPECT_EQ(c->version, version + 1) << "commits not consecutive";
    version = c->version;
    ChangesetResult r =
        scope->Apply(Changeset{ParseFragmentsJson(*c->fragments_json).value()});
    EXPECT_TRUE(r.all_ok()) << "commit " << c->version << " does not replay";
    EXPECT_EQ(r.version, c->version);
  }
  return testing::StateJson(*scope);
}

TEST(ScopeHostTest, FetchRegistersAndReturnsTheState) {
  auto host = NewCanvasHost(ScopeHostOptions{1024, "epoch-1"});
  auto watcher = std::make_shared<RecordingWatcher>();
  ScopeSnapshot s = host->Fetch(watcher);
  EXPECT_EQ(s.scope, "Canvas");
  EXPECT_EQ(s.epoch, "epoch-1");
  EXPECT_EQ(s.version, 0u);
  EXPECT_EQ(s.root_uuid, kCanvas);
  EXPECT_EQ(
      *s.fragments_json,
      absl::StrCat(
          R"([{"type":"change","uuid":")", kCanvas.ToString(),
          R"(","clsName":"Canvas","properties":{"name":null,"shapes":[]}}])"));
  EXPECT_EQ(host->Info().watchers, 1u);
  // Fetching again with the same watcher does not register it twice.
  host->Fetch(watcher);
  EXPECT_EQ(host->Info().watchers, 1u);

  ChangesetResult r = host->Apply(ReplaceShapes(2), "s1");
  EXPECT_TRUE(r.all_ok());
  EXPECT_EQ(r.version, 1u);
  ASSERT_THAT(watcher->commits(), SizeIs(1));
  const CommitRecord& c = *watcher->commits()[0];
  EXPECT_EQ(c.scope, "Canvas");
  EXPECT_EQ(c.epoch, "epoch-1");
  EXPECT_EQ(c.version, 1u);
  EXPECT_EQ(c.origin_session_id, "s1");
  EXPECT_EQ(*c.fragments_json, EncodeFragments(r.applied));
}

TEST(ScopeHostTest, RandomEpochsDiffer) {
  EXPECT_NE(NewCanvasHost()->epoch(), NewCanvasHost()->epoch());
  EXPECT_FALSE(NewCanvasHost()->epoch().empty());
}

TEST(ScopeHostTest, EveryWatcherSharesOneEncoding) {
  auto host = NewCanvasHost();
  auto a = std::make_shared<RecordingWatcher>();
  auto b = std::make_shared<RecordingWatcher>();
  host->Fetch(a);
  host->Fetch(b);
  host->Apply(ReplaceShapes(2), "");
  ASSERT_THAT(a->commits(), SizeIs(1));
  ASSERT_THAT(b->commits(), SizeIs(1));
  EXPECT_EQ(a->commits()[0], b->commits()[0]);
  EXPECT_EQ(a->commits()[0]->fragments_json.get(),
            b->commits()[0]->fragments_json.get());
}

TEST(ScopeHostTest, SnapshotsAreCachedPerVersion) {
  auto host = NewCanvasHost();
  ScopeSnapshot first = host->Snapshot();
  ScopeSnapshot second = host->Fetch(std::make_shared<RecordingWatcher>());
  EXPECT_EQ(first.fragments_json.get(), second.fragments_json.get());
  host->Apply(Rename("x"), "");
  ScopeSnapshot third = host->Snapshot();
  EXPECT_NE(third.fragments_json.get(), first.fragments_json.get());
  EXPECT_EQ(third.version, 1u);
  EXPECT_THAT(*third.fragments_json, ::testing::HasSubstr(R"("name":"x")"));
}

TEST(ScopeHostTest, NothingAppliedMeansNoCommit) {
  auto host = NewCanvasHost();
  auto watcher = std::make_shared<RecordingWatcher>();
  host->Fetch(watcher);
  ChangesetResult r =
      host->Apply(Changeset{{Change(kCanvas, "Canvas", R"({"nope":1})")}}, "s");
  EXPECT_FALSE(r.all_ok());
  EXPECT_EQ(r.version, 0u);
  // empty: never broadcast (docs/protocol.md#d4-no-empty-broadcasts)
  r = host->Apply(Changeset{}, "s");
  EXPECT_EQ(r.version, 0u);
  EXPECT_THAT(watcher->commits(), SizeIs(0));
  EXPECT_EQ(host->OldestLoggedVersionForTest(), 0u);
}

TEST(ScopeHostTest, ApplyResultCallbackRunsBeforeTheCommitIsPublished) {
  auto host = NewCanvasHost();
  auto watcher = std::make_shared<RecordingWatcher>();
  host->Fetch(watcher);
  host->Apply(ReplaceShapes(2), "s", [&](const ChangesetResult& r) {
    watcher->Note(absl::StrCat("result ", r.version));
  });
  EXPECT_THAT(watcher->events(), ElementsAre("result 1", "commit 1"));
}

TEST(ScopeHostTest, UnwatchStopsDeliveries) {
  auto host = NewCanvasHost();
  auto watcher = std::make_shared<RecordingWatcher>();
  host->Fetch(watcher);
  host->Apply(Rename("a"), "");
  EXPECT_TRUE(host->Unwatch(watcher.get()));
  EXPECT_FALSE(host->Unwatch(watcher.get()));
  host->Apply(Rename("b"), "");
  EXPECT_THAT(watcher->commits(), SizeIs(1));
  EXPECT_EQ(host->Info().watchers, 0u);
  // The host no longer owns it.
  EXPECT_EQ(watcher.use_count(), 1);
}

TEST(ScopeHostTest, WatchReplaysTheLogAfterAVersion) {
  auto host = NewCanvasHost();
  auto first = std::make_shared<RecordingWatcher>();
  ScopeSnapshot s = host->Fetch(first);
  for (int i = 0; i < 5; ++i) host->Apply(Rename(absl::StrCat("n", i)), "s");
  ASSERT_THAT(first->commits(), SizeIs(5));

  auto again = std::make_shared<RecordingWatcher>();
  EXPECT_EQ(host->Watch(again, host->epoch(), s.version + 2),
            ScopeHost::CatchUp::kReplayed);
  std::vector<CommitPtr> replayed = again->commits();
  ASSERT_THAT(replayed, SizeIs(3));
  // The very same records the live watcher got.
  EXPECT_EQ(replayed[0], first->commits()[2]);
  EXPECT_EQ(replayed[2], first->commits()[4]);

  // Later commits follow the replay.
  host->Apply(Rename("later"), "s");
  EXPECT_THAT(again->events(),
              ElementsAre("replay 3", "replay 4", "replay 5", "commit 6"));
}

TEST(ScopeHostTest, WatchWhenUpToDateReplaysNothing) {
  auto host = NewCanvasHost();
  host->Apply(Rename("a"), "");
  auto watcher = std::make_shared<RecordingWatcher>();
  EXPECT_EQ(host->Watch(watcher, host->epoch(), 1),
            ScopeHost::CatchUp::kReplayed);
  EXPECT_THAT(watcher->events(), SizeIs(0));
  host->Apply(Rename("b"), "");
  EXPECT_THAT(watcher->events(), ElementsAre("commit 2"));
}

TEST(ScopeHostTest, WatchResyncsOnAnUnknownEpoch) {
  auto host = NewCanvasHost();
  host->Apply(Rename("a"), "");
  auto watcher = std::make_shared<RecordingWatcher>();
  EXPECT_EQ(host->Watch(watcher, "an-old-epoch", 0),
            ScopeHost::CatchUp::kResynced);
  ASSERT_THAT(watcher->resyncs(), SizeIs(1));
  EXPECT_EQ(watcher->resyncs()[0].version, 1u);
  EXPECT_EQ(watcher->resyncs()[0].epoch, host->epoch());
  EXPECT_EQ(*watcher->resyncs()[0].fragments_json,
            *host->Snapshot().fragments_json);
  host->Apply(Rename("b"), "");
  EXPECT_THAT(watcher->events(), ElementsAre("resync 1", "commit 2"));
}

TEST(ScopeHostTest, WatchResyncsWhenAheadOfTheScope) {
  auto host = NewCanvasHost();
  auto watcher = std::make_shared<RecordingWatcher>();
  EXPECT_EQ(host->Watch(watcher, host->epoch(), 7),
            ScopeHost::CatchUp::kResynced);
}

TEST(ScopeHostTest, WatchResyncsWhenTheLogIsTooShort) {
  auto host = NewCanvasHost(ScopeHostOptions{/*log_capacity=*/2, ""});
  for (int i = 0; i < 5; ++i) host->Apply(Rename(absl::StrCat("n", i)), "");
  EXPECT_EQ(host->OldestLoggedVersionForTest(), 4u);

  auto short_of = std::make_shared<RecordingWatcher>();
  EXPECT_EQ(host->Watch(short_of, host->epoch(), 2),
            ScopeHost::CatchUp::kResynced);
  EXPECT_THAT(short_of->events(), ElementsAre("resync 5"));

  auto in_reach = std::make_shared<RecordingWatcher>();
  EXPECT_EQ(host->Watch(in_reach, host->epoch(), 3),
            ScopeHost::CatchUp::kReplayed);
  EXPECT_THAT(in_reach->events(), ElementsAre("replay 4", "replay 5"));

  // Without a log every missed commit means a resync.
  auto no_log = NewCanvasHost(ScopeHostOptions{/*log_capacity=*/0, ""});
  no_log->Apply(Rename("x"), "");
  auto w = std::make_shared<RecordingWatcher>();
  EXPECT_EQ(no_log->Watch(w, no_log->epoch(), 0),
            ScopeHost::CatchUp::kResynced);
}

// The central promise: whatever races with a fetch, the snapshot plus the
// commits that follow it reconstruct the scope exactly.
TEST(ScopeHostTest, ConcurrentAppliersAndFetchersStayConsistent) {
  auto host = NewCanvasHost(ScopeHostOptions{/*log_capacity=*/64, ""});
  constexpr int kAppliers = 4;
  constexpr int kChangesetsEach = 250;
  constexpr int kFetchers = 3;

  struct Fetched {
    ScopeSnapshot snapshot;
    std::shared_ptr<RecordingWatcher> watcher;
  };
  absl::Mutex fetched_mu;  // guards `fetched` and `max_fetched`
  std::vector<Fetched> fetched;
  uint64_t max_fetched = 0;
  // Appliers stop now and then until somebody fetched at or after this
  // version, so fetches race with applies whatever the scheduling (a lock
  // that is not fair can starve the fetchers otherwise).
  std::atomic<uint64_t> wanted{0};
  std::atomic<int> appliers_done{0};
  std::atomic<uint64_t> next_uuid{100};
  absl::Notification start;

  std::vector<std::thread> threads;
  for (int a = 0; a < kAppliers; ++a) {
    threads.emplace_back([&, a] {
      start.WaitForNotification();
      std::mt19937 rng(a);
      std::vector<Uuid> mine;  // shapes this applier added
      for (int i = 0; i < kChangesetsEach; ++i) {
        Changeset cs;
        cs.atomic = rng() % 4 == 0;
        const Uuid fresh = TestUuid(next_uuid.fetch_add(1));
        cs.fragments.push_back(
            Add(fresh, "Shape", absl::StrCat(R"({"x":)", i, "}")));
        // Replaces every other shape, which leaves the scope (orphans).
        cs.fragments.push_back(Change(
            kCanvas, "Canvas",
            absl::StrCat(R"({"shapes":[")", fresh.ToString(), R"("]})")));
        // Touches this applier's previous shape, which may be gone by now
        // (then that fragment fails, and an atomic changeset as a whole).
        if (!mine.empty()) {
          cs.fragments.push_back(
              Change(mine.back(), "Shape", absl::StrCat(R"({"y":)", i, "}")));
        }
        if (i % 5 == 0) {
          cs.fragments.push_back(
              Rename(absl::StrCat(a, "-", i)).fragments.front());
        }
        mine.push_back(fresh);
        ChangesetResult r =
            host->Apply(std::move(cs), absl::StrCat("applier-", a));
        if (i % 50 == 25) {
          const uint64_t v = std::max<uint64_t>(r.version, 1);
          uint64_t w = wanted.load();
          while (w < v && !wanted.compare_exchange_weak(w, v)) {
          }
          auto fetched_it = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fetched_mu) {
            return max_fetched >= v;
          };
          fetched_mu.LockWhen(absl::Condition(&fetched_it));
          fetched_mu.Unlock();
        }
      }
      appliers_done.fetch_add(1);
    });
  }
  for (int f = 0; f < kFetchers; ++f) {
    threads.emplace_back([&, f] {
      start.WaitForNotification();
      // Fetches with a fresh watcher each time the scope has moved on a
      // little, while the appliers run, and once more after they are done.
      const uint64_t step = 10 + 3 * f;
      uint64_t last_fetch = 0;
      bool last = false;
      while (!last) {
        last = appliers_done.load() == kAppliers;
        const bool want = wanted.load() > last_fetch;
        if (!last && !want && host->version() < last_fetch + step) {
          std::this_thread::yield();
          continue;
        }
        auto watcher = std::make_shared<RecordingWatcher>();
        ScopeSnapshot s = host->Fetch(watcher);
        last_fetch = s.version;
        absl::MutexLock lock(&fetched_mu);
        max_fetched = std::max(max_fetched, s.version);
        fetched.push_back(Fetched{std::move(s), std::move(watcher)});
      }
    });
  }
  start.Notify();
  for (std::thread& t : threads) t.join();

  const ScopeSnapshot final_state = host->Snapshot();
  EXPECT_GT(final_state.version, 0u);
  std::unique_ptr<Scope> rebuilt =
      Scope::FromState(DemoSchema(),
                       ParseFragmentsJson(*final_state.fragments_json).value(),
                       final_state.version)
          .value();
  ASSERT_OK(rebuilt->CheckInvariants());
  absl::MutexLock lock(&fetched_mu);
  ASSERT_GT(fetched.size(), static_cast<size_t>(kFetchers));
  size_t mid_run = 0;
  for (const Fetched& f : fetched) {
    std::vector<CommitPtr> commits = f.watcher->commits();
    EXPECT_EQ(f.snapshot.version + commits.size(), final_state.version);
    EXPECT_EQ(Reconstruct(f.snapshot, commits), *final_state.fragments_json)
        << "watcher that fetched at version " << f.snapshot.version;
    if (!commits.empty()) ++mid_run;
  }
  EXPECT_GE(mid_run, 3u) << "too few fetches raced with applies";
}

// Holds every commit until the test completes it.
class HeldPersister : public CommitPersister {
 public:
  void Persist(PendingCommit commit,
               std::function<void(absl::Status)> done) override {
    absl::MutexLock lock(&mu_);
    held_.push_back(std::move(done));
  }
  // Completes the oldest held commit with `status`.
  void Complete(absl::Status status) {
    std::function<void(absl::Status)> done;
    {
      absl::MutexLock lock(&mu_);
      ASSERT_FALSE(held_.empty());
      done = std::move(held_.front());
      held_.erase(held_.begin());
    }
    done(status);
  }

 private:
  absl::Mutex mu_;
  std::vector<std::function<void(absl::Status)>> held_ ABSL_GUARDED_BY(mu_);
};

TEST(ScopeHostTest, AWatcherWatchingAgainGetsNothingAheadOfItsReplay) {
  // A gateway that moved the scope away and back watches it again on the
  // same stream, from what its sessions have: what it gets must be one
  // ordered history, although it was still registered.
  HeldPersister persister;
  ScopeHostOptions options;
  options.persister = &persister;
  auto host = NewCanvasHost(options);
  auto stream = std::make_shared<RecordingWatcher>();
  host->Fetch(stream);
  auto apply = [&](absl::string_view name) {
    ASSERT_TRUE(host->Apply(Rename(name), ChangesetContext{},
                            [](const ChangesetResult&) {}));
  };
  for (int i = 0; i < 3; ++i) {
    apply(absl::StrCat("n", i));
    persister.Complete(absl::OkStatus());
  }
  // Version 4 is applied and in the store's hands when the watch comes.
  apply("in flight");
  EXPECT_EQ(host->Watch(stream, host->epoch(), 2),
            ScopeHost::CatchUp::kReplayed);
  persister.Complete(absl::OkStatus());
  apply("after");
  persister.Complete(absl::OkStatus());
  EXPECT_THAT(stream->events(),
              ElementsAre("commit 1", "commit 2", "commit 3", "replay 3",
                          "replay 4", "commit 5"));
}

TEST(ScopeHostTest, WhenPersistingFailsEveryoneWaitingIsAnswered) {
  HeldPersister persister;
  ScopeHostOptions options;
  options.persister = &persister;
  auto host = NewCanvasHost(options);
  auto watcher = std::make_shared<RecordingWatcher>();
  host->Fetch(watcher);  // registered before the failure

  // A change waits for its persist; a fetch and a backend snapshot wait
  // behind it in the release order.
  std::vector<std::string> answers;
  host->Apply(
      Rename("lost"), ChangesetContext{}, [&](const ChangesetResult& r) {
        answers.push_back(r.replies[0].ok()
                              ? "applied"
                              : "refused: " + r.replies[0].error->message);
      });
  auto late = std::make_shared<RecordingWatcher>();
  ASSERT_TRUE(host->Fetch(
      late, [&](const ScopeSnapshot&) { answers.push_back("snapshot"); },
      [&](const absl::Status& why) {
        answers.push_back(absl::StrCat("lost: ", why.message()));
      }));
  ScopeSnapshot blocked;
  std::thread backend([&] { blocked = host->Snapshot(); });
  // (The backend's snapshot may queue before or after the failure; either
  // way it returns.)
  persister.Complete(absl::AbortedError("version 1 was taken"));
  backend.join();

  EXPECT_TRUE(host->failed());
  ASSERT_THAT(answers, SizeIs(2));
  EXPECT_EQ(answers[0], "lost: version 1 was taken");
  EXPECT_THAT(answers[1],
              ::testing::HasSubstr("unavailable here (version 1 was taken)"));
  EXPECT_EQ(blocked.fragments_json, nullptr);
  // Watchers hear that the scope is gone here, and nothing of the change.
  EXPECT_THAT(watcher->events(),
              ElementsAre("lost Canvas: version 1 was taken"));
  EXPECT_THAT(late->events(), ElementsAre("lost Canvas: version 1 was taken"));
  // A failed host refuses new fetches at once.
  EXPECT_FALSE(host->Fetch(nullptr, [](const ScopeSnapshot&) {}));
}

namespace leases {

// A lease the test turns off.
struct TestLease {
  std::atomic<bool> valid{true};
};

ScopeHostOptions LeasedOptions(TestLease& lease, CommitPersister* persister) {
  ScopeHostOptions options;
  options.persister = persister;
  options.lease_epoch = 7;
  options.lease_valid = [&lease] { return lease.valid.load(); };
  return options;
}

// Records the commits' lease epochs and completes them at once (on
// another thread, as a store does).
class EpochPersister : public CommitPersister {
 public:
  void Persist(PendingCommit commit,
               std::function<void(absl::Status)> done) override {
    {
      absl::MutexLock lock(&mu_);
      epochs_.push_back(commit.lease_epoch);
    }
    std::thread([done = std::move(done)] { done(absl::OkStatus()); }).detach();
  }
  std::vector<uint64_t> epochs() {
    absl::MutexLock lock(&mu_);
    return epochs_;
  }

 private:
  absl::Mutex mu_;
  std::vector<uint64_t> epochs_ ABSL_GUARDED_BY(mu_);
};

TEST(ScopeHostLeaseTest, CommitsCarryTheLeaseEpoch) {
  TestLease lease;
  EpochPersister persister;
  auto host = NewCanvasHost(LeasedOptions(lease, &persister));
  ASSERT_TRUE(host->Apply(Rename("a"), "s").all_ok());
  ASSERT_TRUE(host->Apply(Rename("b"), "s").all_ok());
  EXPECT_THAT(persister.epochs(), ElementsAre(7u, 7u));
}

TEST(ScopeHostLeaseTest, NoReadIsAnsweredOnceTheLeaseRunsOut) {
  TestLease lease;
  std::atomic<int> failures{0};
  ScopeHostOptions options = LeasedOptions(lease, nullptr);
  options.on_failure = [&](const std::string&, const absl::Status&) {
    ++failures;
  };
  auto host = NewCanvasHost(options);
  auto watcher = std::make_shared<RecordingWatcher>();
  ASSERT_TRUE(host->Fetch(watcher, [](const ScopeSnapshot&) {}));

  lease.valid = false;
  // Another replica may hold the scope now: no snapshot, no catch-up, no
  // changeset; the watchers and the owner hear it once.
  EXPECT_FALSE(host->Fetch(nullptr, [](const ScopeSnapshot&) {
    ADD_FAILURE() << "a snapshot after the lease ran out";
  }));
  EXPECT_EQ(host->Watch(std::make_shared<RecordingWatcher>(), host->epoch(), 0),
            ScopeHost::CatchUp::kRefused);
  EXPECT_FALSE(host->Apply(Rename("late"), ChangesetContext{},
                           [](const ChangesetResult&) {
                             ADD_FAILURE() << "applied after the lease ran out";
                           }));
  EXPECT_TRUE(host->failed());
  EXPECT_EQ(failures.load(), 1);
  EXPECT_THAT(watcher->events(),
              ElementsAre("lost Canvas: the scope's lease ran out"));
}

TEST(ScopeHostLeaseTest, AChangesetValidatedWhileTheLeaseRanOutIsRefused) {
  TestLease lease;
  testing::FakeValidator validator;  // completes when the test says
  ScopeHostOptions options = LeasedOptions(lease, nullptr);
  options.validator = &validator;
  auto host = NewCanvasHost(options);
  std::vector<std::string> answers;
  ASSERT_TRUE(host->Apply(
      Rename("x"), ChangesetContext{}, [&](const ChangesetResult& r) {
        answers.push_back(r.replies[0].ok() ? "applied"
                                            : r.replies[0].error->message);
      }));
  lease.valid = false;
  validator.CompleteAll(ValidationOutcome{});
  ASSERT_THAT(answers, SizeIs(1));
  EXPECT_THAT(answers[0], ::testing::HasSubstr("lease ran out"));
  EXPECT_EQ(host->version(), 0u);
}

TEST(ScopeHostLeaseTest, ACommitBeingPersistedWhenTheHostStopsGetsItsOutcome) {
  HeldPersister persister;
  ScopeHostOptions options;
  options.persister = &persister;
  auto host = NewCanvasHost(options);
  auto watcher = std::make_shared<RecordingWatcher>();
  host->Fetch(watcher);
  std::vector<std::string> answers;
  ASSERT_TRUE(host->Apply(
      Rename("stored"), ChangesetContext{}, [&](const ChangesetResult& r) {
        answers.push_back(r.replies[0].ok() ? "applied" : "refused");
      }));
  ASSERT_TRUE(host->Apply(
      Rename("queued"), ChangesetContext{}, [&](const ChangesetResult& r) {
        answers.push_back(r.replies[0].ok() ? "applied" : "refused");
      }));
  // The lease moves on while the first commit is in the store's hands.
  const Member other{"sync-1", "10.0.0.2:50051"};
  host->Stop(absl::AbortedError("handed off"), &other);
  EXPECT_THAT(watcher->events(),
              ElementsAre("lost Canvas: handed off -> sync-1"));
  // Both were in the store's hands, and the store committed them: their
  // senders are told so, although the watchers have moved on.
  persister.Complete(absl::OkStatus());
  persister.Complete(absl::OkStatus());
  EXPECT_THAT(answers, ElementsAre("applied", "applied"));
}

TEST(ScopeHostLeaseTest, CloseFinishesTheQueuedWorkThenCallsBack) {
  HeldPersister persister;
  ScopeHostOptions options;
  options.persister = &persister;
  auto host = NewCanvasHost(options);
  std::vector<std::string> order;
  ASSERT_TRUE(host->Apply(Rename("before"), ChangesetContext{},
                          [&](const ChangesetResult& r) {
                            order.push_back(r.all_ok() ? "applied" : "refused");
                          }));
  host->Close([&] { order.push_back("idle"); });
  // Closing: new work is refused (its sender asks the owner again).
  EXPECT_FALSE(host->Apply(Rename("after"), ChangesetContext{},
                           [](const ChangesetResult&) {}));
  EXPECT_FALSE(host->Fetch(nullptr, [](const ScopeSnapshot&) {}));
  EXPECT_TRUE(order.empty());
  persister.Complete(absl::OkStatus());
  EXPECT_THAT(order, ElementsAre("applied", "idle"));
  EXPECT_FALSE(host->failed());
  EXPECT_FALSE(host->serving());
}

}  // namespace leases

}  // namespace
}  // namespace jetstream

namespace jetstream {
namespace {

// The validate stage (ScopeHostOptions::validator), answering inline or
// later from the test's thread, as a remote validator would.

// What each Apply() was answered, in answer order: "applied <version>" or
// the first reply's error.
struct Answers {
  std::vector<std::string> list;
  ScopeHost::ResultCallback Record() {
    return [this](const ChangesetResult& r) {
      list.push_back(r.replies[0].ok() ? absl::StrCat("applied ", r.version)
                                       : r.replies[0].error->message);
    };
  }
};

TEST(ScopeHostValidateTest, AnInlineVerdictIsAppliedOrRefusedAtOnce) {
  testing::FakeValidator validator;
  validator.set_inline_outcome(ValidationOutcome{});
  ScopeHostOptions options;
  options.validator = &validator;
  auto host = NewCanvasHost(options);
  auto watcher = std::make_shared<RecordingWatcher>();
  host->Fetch(watcher);
  Answers answers;
  ASSERT_TRUE(host->Apply(Rename("ok"), ChangesetContext{}, answers.Record()));
  ValidationOutcome refuse;
  refuse.reject_all = CouldNotApply("not today");
  validator.set_inline_outcome(refuse);
  ASSERT_TRUE(host->Apply(Rename("no"), ChangesetContext{}, answers.Record()));
  EXPECT_THAT(
      answers.list,
      ElementsAre("applied 1", "Could not apply SyncMessage: not today"));
  EXPECT_EQ(host->version(), 1u);
  EXPECT_THAT(watcher->events(), ElementsAre("commit 1"));
  ASSERT_THAT(validator.calls(), SizeIs(2));
  EXPECT_EQ(validator.calls()[0].scope, "Canvas");
}

TEST(ScopeHostValidateTest, LaterVerdictsKeepTheScopesOrder) {
  testing::FakeValidator validator;  // holds every call until completed
  ScopeHostOptions options;
  options.validator = &validator;
  auto host = NewCanvasHost(options);
  auto watcher = std::make_shared<RecordingWatcher>();
  host->Fetch(watcher);
  Answers answers;
  ASSERT_TRUE(host->Apply(Rename("a"), ChangesetContext{}, answers.Record()));
  ASSERT_TRUE(host->Apply(Rename("b"), ChangesetContext{}, answers.Record()));
  ASSERT_TRUE(host->Apply(Rename("c"), ChangesetContext{}, answers.Record()));
  EXPECT_TRUE(answers.list.empty());  // all wait in the validate stage
  EXPECT_EQ(host->version(), 0u);

  // a passes, b is refused, c passes: a and c are applied, in that order.
  ASSERT_TRUE(validator.Complete(ValidationOutcome{}));
  ValidationOutcome refuse;
  refuse.reject_all = CouldNotApply("b is wrong");
  ASSERT_TRUE(validator.Complete(refuse));
  ASSERT_TRUE(validator.Complete(ValidationOutcome{}));
  EXPECT_THAT(
      answers.list,
      ElementsAre("applied 1", "Could not apply SyncMessage: b is wrong",
                  "applied 2"));
  ASSERT_THAT(watcher->commits(), SizeIs(2));
  EXPECT_THAT(*watcher->commits()[0]->fragments_json,
              ::testing::HasSubstr("\"a\""));
  EXPECT_THAT(*watcher->commits()[1]->fragments_json,
              ::testing::HasSubstr("\"c\""));
  EXPECT_EQ(host->version(), 2u);
}

TEST(ScopeHostValidateTest, AValidatorsModificationsAreAppliedAndBroadcast) {
  testing::FakeValidator validator;
  ValidationOutcome modify;
  modify.modifications.push_back(
      {0, ParseFragmentsJson(
              absl::StrCat(
                  R"([{"type":"change","uuid":")", kCanvas.ToString(),
                  R"(","clsName":"Canvas","properties":{"name":"checked"}}])"))
              .value()[0]
              .properties});
  validator.set_inline_outcome(modify);
  ScopeHostOptions options;
  options.validator = &validator;
  auto host = NewCanvasHost(options);
  auto watcher = std::make_shared<RecordingWatcher>();
  host->Fetch(watcher);
  std::vector<ChangesetResult> results;
  ASSERT_TRUE(
      host->Apply(Rename("raw"), ChangesetContext{},
                  [&](const ChangesetResult& r) { results.push_back(r); }));
  ASSERT_THAT(results, SizeIs(1));
  ASSERT_TRUE(results[0].all_ok());
  EXPECT_FALSE(results[0].replies[0].modifications.empty());
  ASSERT_THAT(watcher->commits(), SizeIs(1));
  EXPECT_THAT(*watcher->commits()[0]->fragments_json,
              ::testing::HasSubstr(R"("name":"checked")"));
}

}  // namespace
}  // namespace jetstream
