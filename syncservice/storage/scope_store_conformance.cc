#include "syncservice/storage/scope_store_conformance.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/fragment_json.h"
#include "gmock/gmock.h"
#include "syncservice/engine/scope.h"
#include "tests/testing/engine_fixtures.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

StoredSnapshot Snapshot(uint64_t version, std::string json = "[]") {
  return StoredSnapshot{version, "Canvas", std::move(json)};
}

// A commit whose every field depends on `version` and `tag` (the writer),
// with text that must survive byte for byte.
StoredCommit Commit(uint64_t version, absl::string_view tag = "a") {
  StoredCommit c;
  c.version = version;
  c.request_json = absl::StrCat(
      R"([{"type":"change","uuid":"00000000-0000-4000-8000-000000000001",)",
      R"("clsName":"Canvas","properties":{"name":"v)", version, " ", tag,
      R"( é ✓ \"q\"\n"}}])");
  c.atomic = version % 2 == 0;
  c.applied_json =
      absl::StrCat(R"([{"applied":)", version, R"(,"by":")", tag, R"("}])");
  c.origin = absl::StrCat("session-", tag);
  return c;
}

void ExpectSameCommit(const StoredCommit& got, const StoredCommit& want) {
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.request_json, want.request_json);
  EXPECT_EQ(got.atomic, want.atomic);
  EXPECT_EQ(got.applied_json, want.applied_json);
  EXPECT_EQ(got.origin, want.origin);
}

absl::Status AppendAndWait(ScopeStore& store, const std::string& scope,
                           StoredCommit commit) {
  absl::Notification written;
  absl::Status result;
  store.Append(scope, std::move(commit), [&](absl::Status status) {
    result = std::move(status);
    written.Notify();
  });
  written.WaitForNotification();
  return result;
}

std::vector<uint64_t> Versions(const StoredScope& stored) {
  std::vector<uint64_t> versions;
  for (const StoredCommit& c : stored.log) versions.push_back(c.version);
  return versions;
}

StoredScope LoadOrDie(ScopeStore& store, const std::string& scope) {
  absl::StatusOr<std::optional<StoredScope>> loaded = store.Load(scope);
  EXPECT_OK(loaded);
  if (!loaded.ok() || !loaded->has_value()) {
    ADD_FAILURE() << "scope " << scope << " not stored";
    return StoredScope();
  }
  return std::move(**loaded);
}

#define EXPECT_CODE(expr, expected)                           \
  do {                                                        \
    absl::Status st_ = (expr);                                \
    EXPECT_EQ(st_.code(), absl::StatusCode::expected) << st_; \
  } while (false)

}  // namespace

void ScopeStoreConformanceTest::SetUp() {
  backend_ = GetParam().make();
  ASSERT_NE(backend_, nullptr);
}

std::unique_ptr<ScopeStore> ScopeStoreConformanceTest::OpenStore(
    ScopeStoreOptions options) {
  absl::StatusOr<std::unique_ptr<ScopeStore>> store = backend_->Open(options);
  EXPECT_OK(store);
  return store.ok() ? std::move(*store) : nullptr;
}

TEST_P(ScopeStoreConformanceTest, LoadOfUnknownScopeIsNullopt) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::optional<StoredScope>> loaded = store->Load("nope");
  ASSERT_OK(loaded);
  EXPECT_FALSE(loaded->has_value());
}

TEST_P(ScopeStoreConformanceTest, CreateThenLoadRoundTrips) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string json = R"([{"type":"change","uuid":"u","clsName":"Canvas",)"
                           R"("properties":{"name":"ünï \"cødé\"\t"}}])";
  ASSERT_OK(store->Create("s", Snapshot(7, json)));
  StoredScope stored = LoadOrDie(*store, "s");
  EXPECT_EQ(stored.snapshot.version, 7u);
  EXPECT_EQ(stored.snapshot.root_model, "Canvas");
  EXPECT_EQ(stored.snapshot.fragments_json, json);
  EXPECT_THAT(stored.log, IsEmpty());
  EXPECT_EQ(stored.head_version(), 7u);

  // Another instance (another process) sees it too.
  auto other = OpenStore();
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(LoadOrDie(*other, "s").snapshot.fragments_json, json);
}

TEST_P(ScopeStoreConformanceTest, CreateTwiceFailsWithAlreadyExists) {
  auto store = OpenStore();
  auto other = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_NE(other, nullptr);
  ASSERT_OK(store->Create("s", Snapshot(0, "[1]")));
  EXPECT_CODE(store->Create("s", Snapshot(0, "[2]")), kAlreadyExists);
  EXPECT_CODE(other->Create("s", Snapshot(5, "[3]")), kAlreadyExists);
  StoredScope stored = LoadOrDie(*store, "s");
  EXPECT_EQ(stored.snapshot.version, 0u);
  EXPECT_EQ(stored.snapshot.fragments_json, "[1]");
}

TEST_P(ScopeStoreConformanceTest, AppendsInOrderAreLoadedAfterTheSnapshot) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Create("s", Snapshot(3)));
  for (uint64_t v = 4; v <= 8; ++v) {
    ASSERT_TRUE(AppendAndWait(*store, "s", Commit(v)).ok()) << v;
  }
  auto other = OpenStore();
  for (ScopeStore* reader : {store.get(), other.get()}) {
    ASSERT_NE(reader, nullptr);
    StoredScope stored = LoadOrDie(*reader, "s");
    EXPECT_EQ(stored.snapshot.version, 3u);
    ASSERT_THAT(Versions(stored), ElementsAre(4, 5, 6, 7, 8));
    for (const StoredCommit& c : stored.log)
      ExpectSameCommit(c, Commit(c.version));
    EXPECT_EQ(stored.head_version(), 8u);
  }
}

TEST_P(ScopeStoreConformanceTest, AppendToUnknownScopeFailsWithNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_CODE(AppendAndWait(*store, "ghost", Commit(1)), kNotFound);
}

TEST_P(ScopeStoreConformanceTest,
       AppendLeavingAGapFailsWithFailedPrecondition) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Create("s", Snapshot(0)));
  EXPECT_CODE(AppendAndWait(*store, "s", Commit(2)), kFailedPrecondition);
  EXPECT_OK(AppendAndWait(*store, "s", Commit(1)));
  EXPECT_THAT(Versions(LoadOrDie(*store, "s")), ElementsAre(1));
}

TEST_P(ScopeStoreConformanceTest, CallbackRunsOnTheStoreThreadExactlyOnce) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Create("s", Snapshot(0)));
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> calls{0};
  std::atomic<bool> inline_call{false};
  absl::Notification done;
  for (uint64_t v = 1; v <= 3; ++v) {
    store->Append("s", Commit(v), [&](absl::Status status) {
      EXPECT_OK(status);
      if (std::this_thread::get_id() == caller) inline_call = true;
      if (++calls == 3) done.Notify();
    });
  }
  // Even a failing append reports from the store thread.
  absl::Notification failed;
  store->Append("ghost", Commit(1), [&](absl::Status status) {
    EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
    if (std::this_thread::get_id() == caller) inline_call = true;
    failed.Notify();
  });
  done.WaitForNotification();
  failed.WaitForNotification();
  store.reset();  // no late or duplicate calls
  EXPECT_EQ(calls.load(), 3);
  EXPECT_FALSE(inline_call.load());
}

TEST_P(ScopeStoreConformanceTest, CallbacksMayAppendButNotBlock) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Create("s", Snapshot(0)));
  absl::Status create_from_callback;
  absl::Status snapshot_from_callback;
  absl::Notification second_done;
  absl::Status second;
  store->Append("s", Commit(1), [&](absl::Status status) {
    EXPECT_OK(status);
    create_from_callback = store->Create("t", Snapshot(0));
    snapshot_from_callback = store->SaveSnapshot("s", Snapshot(1));
    store->Append("s", Commit(2), [&](absl::Status s2) {
      second = s2;
      second_done.Notify();
    });
  });
  second_done.WaitForNotification();
  EXPECT_EQ(create_from_callback.code(), absl::StatusCode::kFailedPrecondition)
      << create_from_callback;
  EXPECT_EQ(snapshot_from_callback.code(),
            absl::StatusCode::kFailedPrecondition)
      << snapshot_from_callback;
  EXPECT_OK(second);
  EXPECT_THAT(Versions(LoadOrDie(*store, "s")), ElementsAre(1, 2));
}

TEST_P(ScopeStoreConformanceTest, SaveSnapshotCompactsTheLog) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Create("s", Snapshot(0)));
  for (uint64_t v = 1; v <= 10; ++v) {
    ASSERT_OK(AppendAndWait(*store, "s", Commit(v)));
  }
  ASSERT_OK(store->SaveSnapshot("s", Snapshot(6, "[6]")));
  StoredScope stored = LoadOrDie(*store, "s");
  EXPECT_EQ(stored.snapshot.version, 6u);
  EXPECT_EQ(stored.snapshot.fragments_json, "[6]");
  ASSERT_THAT(Versions(stored), ElementsAre(7, 8, 9, 10));
  for (const StoredCommit& c : stored.log)
    ExpectSameCommit(c, Commit(c.version));

  // The log goes on after the snapshot; a snapshot at the head empties it.
  ASSERT_OK(AppendAndWait(*store, "s", Commit(11)));
  ASSERT_OK(store->SaveSnapshot("s", Snapshot(11, "[11]")));
  stored = LoadOrDie(*store, "s");
  EXPECT_EQ(stored.snapshot.version, 11u);
  EXPECT_THAT(stored.log, IsEmpty());
  EXPECT_EQ(stored.head_version(), 11u);
}

TEST_P(ScopeStoreConformanceTest, SaveSnapshotNeverMovesBackwards) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Create("s", Snapshot(0)));
  for (uint64_t v = 1; v <= 5; ++v) {
    ASSERT_OK(AppendAndWait(*store, "s", Commit(v)));
  }
  ASSERT_OK(store->SaveSnapshot("s", Snapshot(4, "[4]")));
  EXPECT_OK(store->SaveSnapshot("s", Snapshot(2, "[2]")));
  EXPECT_OK(store->SaveSnapshot("s", Snapshot(4, "[4 again]")));
  StoredScope stored = LoadOrDie(*store, "s");
  EXPECT_EQ(stored.snapshot.version, 4u);
  EXPECT_EQ(stored.snapshot.fragments_json, "[4]");
  EXPECT_THAT(Versions(stored), ElementsAre(5));
}

TEST_P(ScopeStoreConformanceTest, SaveSnapshotOfAnUncommittedVersionFails) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Create("s", Snapshot(0)));
  ASSERT_OK(AppendAndWait(*store, "s", Commit(1)));
  EXPECT_CODE(store->SaveSnapshot("s", Snapshot(2)), kFailedPrecondition);
  EXPECT_CODE(store->SaveSnapshot("ghost", Snapshot(2)), kNotFound);
  EXPECT_EQ(LoadOrDie(*store, "s").snapshot.version, 0u);
}

TEST_P(ScopeStoreConformanceTest, SaveSnapshotIsOrderedAfterQueuedAppends) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Create("s", Snapshot(0)));
  // The pipeline does not wait for durability before snapshotting.
  std::atomic<int> ok{0};
  for (uint64_t v = 1; v <= 20; ++v) {
    store->Append("s", Commit(v), [&](absl::Status s) { ok += s.ok(); });
  }
  ASSERT_OK(store->SaveSnapshot("s", Snapshot(20, "[20]")));
  EXPECT_EQ(ok.load(), 20);
  StoredScope stored = LoadOrDie(*store, "s");
  EXPECT_EQ(stored.snapshot.version, 20u);
  EXPECT_THAT(stored.log, IsEmpty());
}

// The whole point of the store: a scope rebuilt from Load() through the
// engine (snapshot, then every logged request replayed) equals the live one.
TEST_P(ScopeStoreConformanceTest, RecoveryReplaysTheLogThroughTheEngine) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::shared_ptr<const Schema> schema = DemoSchema();
  const Uuid root = TestUuid(1);
  std::unique_ptr<Scope> live = *Scope::Create(schema, "Canvas", root);
  {
    StoredSnapshot initial = Snapshot(live->version(), StateJson(*live));
    ASSERT_OK(store->Create("canvas", initial));
  }
  std::vector<std::string> shapes;
  auto apply = [&](std::vector<SyncFragment> fragments, bool atomic) {
    std::string request = EncodeFragments(fragments);
    ChangesetResult r = live->Apply(Changeset{std::move(fragments), atomic});
    if (!r.changed()) return;
    StoredCommit commit{r.version, request, atomic, EncodeFragments(r.applied),
                        "session-1"};
    ASSERT_OK(AppendAndWait(*store, "canvas", std::move(commit)));
  };
  auto shapes_json = [&] {
    std::string json = "[";
    for (size_t i = 0; i < shapes.size(); ++i) {
      absl::StrAppend(&json, i ? "," : "", "\"", shapes[i], "\"");
    }
    return json + "]";
  };
  for (int step = 0; step < 30; ++step) {
    if (step % 3 == 0) {
      // Add a shape (atomic), with its parent link.
      Uuid shape = TestUuid(100 + step);
      shapes.push_back(shape.ToString());
      apply({Add(shape, "Shape",
                 absl::StrCat(R"({"x":)", step, R"(,"y":)", 2 * step, "}")),
             Change(root, "Canvas",
                    absl::StrCat(R"({"shapes":)", shapes_json(), "}"))},
            true);
    } else if (step % 7 == 0 && shapes.size() > 1) {
      // Drop the first shape: it leaves the scope.
      shapes.erase(shapes.begin());
      apply({Change(root, "Canvas",
                    absl::StrCat(R"({"shapes":)", shapes_json(), "}"))},
            false);
    } else {
      // Move the last shape; one bad fragment fails alone (not atomic).
      apply({Change(*Uuid::Parse(shapes.back()), "Shape",
                    absl::StrCat(R"({"x":)", step * 10, "}")),
             Change(root, "Canvas", R"({"name":42})")},
            false);
    }
    if (step == 14) {
      ASSERT_TRUE(store
                      ->SaveSnapshot(
                          "canvas", Snapshot(live->version(), StateJson(*live)))
                      .ok());
    }
  }
  ASSERT_GT(live->version(), 20u);

  // Recover in a fresh store instance, as a restarted process would.
  store.reset();
  auto recovered_store = OpenStore();
  ASSERT_NE(recovered_store, nullptr);
  StoredScope stored = LoadOrDie(*recovered_store, "canvas");
  EXPECT_GT(stored.snapshot.version, 0u);
  EXPECT_FALSE(stored.log.empty());
  absl::StatusOr<std::vector<SyncFragment>> state =
      ParseFragmentsJson(stored.snapshot.fragments_json);
  ASSERT_OK(state);
  absl::StatusOr<std::unique_ptr<Scope>> rebuilt =
      Scope::FromState(schema, std::move(*state), stored.snapshot.version);
  ASSERT_OK(rebuilt);
  for (const StoredCommit& commit : stored.log) {
    absl::StatusOr<std::vector<SyncFragment>> request =
        ParseFragmentsJson(commit.request_json);
    ASSERT_OK(request);
    ChangesetResult r =
        (*rebuilt)->Apply(Changeset{std::move(*request), commit.atomic});
    EXPECT_EQ(r.version, commit.version);
    EXPECT_EQ(EncodeFragments(r.applied), commit.applied_json);
  }
  EXPECT_EQ((*rebuilt)->version(), live->version());
  EXPECT_EQ(StateJson(**rebuilt), StateJson(*live));
}

TEST_P(ScopeStoreConformanceTest,
       FencingTakenVersionFailsWithAbortedAndChangesNothing) {
  auto a = OpenStore();
  auto b = OpenStore();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_OK(a->Create("s", Snapshot(0)));
  ASSERT_OK(AppendAndWait(*a, "s", Commit(1, "a")));
  ASSERT_OK(AppendAndWait(*a, "s", Commit(2, "a")));

  // The same instance, and a second one that never loaded the scope.
  EXPECT_CODE(AppendAndWait(*a, "s", Commit(2, "a2")), kAborted);
  EXPECT_CODE(AppendAndWait(*b, "s", Commit(2, "b")), kAborted);
  EXPECT_CODE(AppendAndWait(*b, "s", Commit(1, "b")), kAborted);
  // A second instance that loaded it first (a new owner).
  StoredScope seen = LoadOrDie(*b, "s");
  EXPECT_CODE(AppendAndWait(*b, "s", Commit(2, "b")), kAborted);

  StoredScope stored = LoadOrDie(*a, "s");
  ASSERT_THAT(Versions(stored), ElementsAre(1, 2));
  ExpectSameCommit(stored.log[0], Commit(1, "a"));
  ExpectSameCommit(stored.log[1], Commit(2, "a"));
  EXPECT_EQ(Versions(seen), Versions(stored));
}

TEST_P(ScopeStoreConformanceTest,
       FencingStaleOwnerCannotExtendOrSnapshotTheWinner) {
  auto a = OpenStore();
  auto b = OpenStore();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_OK(a->Create("s", Snapshot(0)));
  for (uint64_t v = 1; v <= 3; ++v) {
    ASSERT_OK(AppendAndWait(*a, "s", Commit(v, "a")));
  }
  // B takes over at 3 and commits 4.
  EXPECT_EQ(LoadOrDie(*b, "s").head_version(), 3u);
  ASSERT_OK(AppendAndWait(*b, "s", Commit(4, "b")));

  // A, not knowing, has 4 and 5 in flight: 5 must not land on B's 4.
  absl::Status a4, a5;
  absl::BlockingCounter both(2);
  a->Append("s", Commit(4, "a"), [&](absl::Status s) {
    a4 = s;
    both.DecrementCount();
  });
  a->Append("s", Commit(5, "a"), [&](absl::Status s) {
    a5 = s;
    both.DecrementCount();
  });
  both.Wait();
  EXPECT_EQ(a4.code(), absl::StatusCode::kAborted) << a4;
  EXPECT_EQ(a5.code(), absl::StatusCode::kAborted) << a5;
  // A's state at 4 is a fork: it must not become the snapshot. Its 3 is
  // real history and may.
  EXPECT_CODE(a->SaveSnapshot("s", Snapshot(4, "[a4]")), kAborted);
  EXPECT_OK(a->SaveSnapshot("s", Snapshot(3, "[a3]")));

  ASSERT_OK(AppendAndWait(*b, "s", Commit(5, "b")));
  StoredScope stored = LoadOrDie(*b, "s");
  EXPECT_EQ(stored.snapshot.version, 3u);
  EXPECT_EQ(stored.snapshot.fragments_json, "[a3]");
  ASSERT_THAT(Versions(stored), ElementsAre(4, 5));
  ExpectSameCommit(stored.log[0], Commit(4, "b"));
  ExpectSameCommit(stored.log[1], Commit(5, "b"));

  // A reloads and becomes the owner again; now B is the stale one.
  EXPECT_EQ(LoadOrDie(*a, "s").head_version(), 5u);
  ASSERT_OK(AppendAndWait(*a, "s", Commit(6, "a")));
  EXPECT_CODE(AppendAndWait(*b, "s", Commit(6, "b")), kAborted);
  EXPECT_CODE(AppendAndWait(*b, "s", Commit(7, "b")), kAborted);
}

TEST_P(ScopeStoreConformanceTest, FencingCompactedVersionsCannotBeRewritten) {
  auto a = OpenStore();
  auto b = OpenStore();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_OK(a->Create("s", Snapshot(0)));
  for (uint64_t v = 1; v <= 5; ++v) {
    ASSERT_OK(AppendAndWait(*a, "s", Commit(v)));
  }
  ASSERT_OK(a->SaveSnapshot("s", Snapshot(4, "[4]")));
  // Versions 1..4 left the log; the fence must not forget them.
  EXPECT_CODE(AppendAndWait(*b, "s", Commit(3, "b")), kAborted);
  EXPECT_CODE(AppendAndWait(*a, "s", Commit(1, "a")), kAborted);
  StoredScope stored = LoadOrDie(*a, "s");
  EXPECT_EQ(stored.snapshot.version, 4u);
  EXPECT_THAT(Versions(stored), ElementsAre(5));
}

TEST_P(ScopeStoreConformanceTest, FencingConcurrentOwnersExactlyOneWins) {
  constexpr int kScopes = 20;
  auto a = OpenStore();
  auto b = OpenStore();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (int i = 0; i < kScopes; ++i) {
    ASSERT_OK(a->Create(absl::StrCat("s", i), Snapshot(0)));
    ASSERT_OK(b->Load(absl::StrCat("s", i)));
  }
  std::vector<absl::Status> a_results(kScopes), b_results(kScopes);
  absl::BlockingCounter pending(2 * kScopes);
  std::thread ta([&] {
    for (int i = 0; i < kScopes; ++i) {
      a->Append(absl::StrCat("s", i), Commit(1, "a"), [&, i](absl::Status s) {
        a_results[i] = s;
        pending.DecrementCount();
      });
    }
  });
  std::thread tb([&] {
    for (int i = 0; i < kScopes; ++i) {
      b->Append(absl::StrCat("s", i), Commit(1, "b"), [&, i](absl::Status s) {
        b_results[i] = s;
        pending.DecrementCount();
      });
    }
  });
  ta.join();
  tb.join();
  pending.Wait();
  for (int i = 0; i < kScopes; ++i) {
    SCOPED_TRACE(i);
    EXPECT_NE(a_results[i].ok(), b_results[i].ok())
        << a_results[i] << " / " << b_results[i];
    const absl::Status& loser = a_results[i].ok() ? b_results[i] : a_results[i];
    EXPECT_EQ(loser.code(), absl::StatusCode::kAborted) << loser;
    StoredScope stored = LoadOrDie(*a, absl::StrCat("s", i));
    ASSERT_THAT(Versions(stored), ElementsAre(1));
    ExpectSameCommit(stored.log[0], Commit(1, a_results[i].ok() ? "a" : "b"));
  }
}

TEST_P(ScopeStoreConformanceTest, GroupCommitBatchesConcurrentAppends) {
  constexpr int kThreads = 8;
  constexpr int kScopes = 50;
  constexpr int kVersions = 20;  // 50 x 20 = 1000 appends
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (int s = 0; s < kScopes; ++s) {
    ASSERT_OK(store->Create(absl::StrCat("scope-", s), Snapshot(0)));
  }
  const ScopeStoreStats before = store->Stats();

  std::vector<absl::Status> results(kScopes * kVersions);
  absl::BlockingCounter pending(kScopes * kVersions);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    // Each thread is the ordered pipeline of the scopes s with s % 8 == t.
    threads.emplace_back([&, t] {
      for (int v = 1; v <= kVersions; ++v) {
        for (int s = t; s < kScopes; s += kThreads) {
          size_t slot = static_cast<size_t>(s * kVersions + v - 1);
          store->Append(absl::StrCat("scope-", s), Commit(v, absl::StrCat(s)),
                        [&, slot](absl::Status status) {
                          results[slot] = std::move(status);
                          pending.DecrementCount();
                        });
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  pending.Wait();

  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << "append " << i << ": " << results[i];
  }
  const ScopeStoreStats after = store->Stats();
  const uint64_t transactions = after.transactions - before.transactions;
  EXPECT_EQ(after.appends - before.appends, 1000u);
  EXPECT_EQ(after.failed_transactions, 0u);
  // Far below one transaction per changeset.
  EXPECT_LE(transactions, 250u) << "max batch " << after.max_batch;
  EXPECT_GT(after.max_batch, 4u);
  ::testing::Test::RecordProperty("transactions",
                                  static_cast<int>(transactions));
  ::testing::Test::RecordProperty("max_batch",
                                  static_cast<int>(after.max_batch));

  store.reset();
  auto reader = OpenStore();
  ASSERT_NE(reader, nullptr);
  for (int s = 0; s < kScopes; ++s) {
    StoredScope stored = LoadOrDie(*reader, absl::StrCat("scope-", s));
    ASSERT_EQ(stored.log.size(), static_cast<size_t>(kVersions)) << s;
    for (int v = 1; v <= kVersions; ++v) {
      ExpectSameCommit(stored.log[v - 1], Commit(v, absl::StrCat(s)));
    }
  }
}

TEST_P(ScopeStoreConformanceTest, ListReturnsSortedNames) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::vector<std::string>> empty = store->List();
  ASSERT_OK(empty);
  EXPECT_THAT(*empty, IsEmpty());
  for (const char* name : {"b", "a", "C", "a-1"}) {
    ASSERT_OK(store->Create(name, Snapshot(0)));
  }
  absl::StatusOr<std::vector<std::string>> names = store->List();
  ASSERT_OK(names);
  EXPECT_THAT(*names, ElementsAre("C", "a", "a-1", "b"));
}

TEST_P(ScopeStoreConformanceTest, DestructionWritesEveryQueuedAppend) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Create("s", Snapshot(0)));
  std::atomic<int> ok{0};
  std::atomic<int> calls{0};
  for (uint64_t v = 1; v <= 200; ++v) {
    store->Append("s", Commit(v), [&](absl::Status s) {
      ok += s.ok();
      ++calls;
    });
  }
  store.reset();
  EXPECT_EQ(calls.load(), 200);
  EXPECT_EQ(ok.load(), 200);
  auto reader = OpenStore();
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(LoadOrDie(*reader, "s").log.size(), 200u);
}

TEST_P(ScopeStoreConformanceTest, RelaxedDurabilityStoresEverything) {
  ScopeStoreOptions relaxed;
  relaxed.synchronous = false;
  relaxed.relaxed_sync_interval = absl::Milliseconds(1);
  auto store = OpenStore(relaxed);
  ASSERT_NE(store, nullptr);
  for (int s = 0; s < 5; ++s) {
    ASSERT_OK(store->Create(absl::StrCat("r", s), Snapshot(0)));
  }
  absl::BlockingCounter pending(100);
  std::atomic<int> ok{0};
  for (uint64_t v = 1; v <= 20; ++v) {
    for (int s = 0; s < 5; ++s) {
      store->Append(absl::StrCat("r", s), Commit(v), [&](absl::Status st) {
        ok += st.ok();
        pending.DecrementCount();
      });
    }
  }
  pending.Wait();
  EXPECT_EQ(ok.load(), 100);
  // Fencing holds in relaxed mode too.
  EXPECT_CODE(AppendAndWait(*store, "r0", Commit(20)), kAborted);
  ASSERT_OK(store->SaveSnapshot("r1", Snapshot(10, "[10]")));
  store.reset();

  auto reader = OpenStore();
  ASSERT_NE(reader, nullptr);
  for (int s = 0; s < 5; ++s) {
    StoredScope stored = LoadOrDie(*reader, absl::StrCat("r", s));
    EXPECT_EQ(stored.head_version(), 20u);
    EXPECT_EQ(stored.log.size(), s == 1 ? 10u : 20u);
  }
}

}  // namespace jetstream::testing
