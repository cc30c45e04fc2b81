// Durable scopes against a real SqliteScopeStore file: a registry writes,
// is torn down, and a new one (a "restart") loads the same states; periodic
// snapshots compact the log; a fenced-out host is replaced by a fresh load.

#include "syncservice/store_persister.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "syncservice/scope_config.h"
#include "syncservice/scope_registry.h"
#include "syncservice/storage/sqlite_scope_store.h"
#include "tests/testing/engine_fixtures.h"

namespace jetstream {
namespace {

using ::jetstream::testing::Change;
using ::jetstream::testing::DemoSchema;
using ::jetstream::testing::TestUuid;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"({
  "scopes": [
    {"name": "Canvas", "root": {"clsName": "Canvas", "properties": {"name": "Static"}}}
  ],
  "templates": [
    {"pattern": "canvas/*", "root": {"clsName": "Canvas", "properties": {"name": "Templated"}}}
  ]
})";

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(dir ? dir : "/tmp", "/", name);
  std::remove(path.c_str());
  std::remove((path + "-wal").c_str());
  std::remove((path + "-shm").c_str());
  return path;
}

// One "process": a store on `path`, the persister, and a registry.
struct Service {
  explicit Service(const std::string& path, uint64_t snapshot_every = 0) {
    store = SqliteScopeStore::Open(path).value();
    persister = std::make_unique<StorePersister>(store.get());
    ScopeRegistryOptions options;
    options.store = store.get();
    options.host.persister = persister.get();
    options.host.snapshot_every = snapshot_every;
    registry = ScopeRegistry::Create(
                   DemoSchema(), ParseScopeConfig(kConfig, "test.json").value(),
                   options)
                   .value();
  }
  // Members destroyed in reverse: registry, persister, store.
  std::unique_ptr<SqliteScopeStore> store;
  std::unique_ptr<StorePersister> persister;
  std::unique_ptr<ScopeRegistry> registry;
};

// Adds Shape `n` to the canvas (a changeset the engine must replay).
Changeset AddShape(const ScopeHost& host, const std::string& root_json_uuid,
                   uint64_t n, const std::string& shapes_json) {
  return Changeset{{jetstream::testing::Add(TestUuid(n), "Shape",
                                            absl::StrCat(R"({"x":)", n, "}")),
                    Change(*Uuid::Parse(root_json_uuid), "Canvas",
                           absl::StrCat(R"({"shapes":)", shapes_json,
                                        R"(,"name":"v)", n, R"("})"))}};
}

// Writes `count` commits to `name`, each adding a shape and keeping all.
void Write(ScopeRegistry& registry, const std::string& name, uint64_t first,
           uint64_t count) {
  std::shared_ptr<ScopeHost> host = registry.Fetch(name).value();
  ScopeSnapshot snap = host->Snapshot();
  std::string root = snap.root_uuid.ToString();
  for (uint64_t n = first; n < first + count; ++n) {
    std::string shapes = "[";
    for (uint64_t k = 1; k <= n; ++k) {
      absl::StrAppend(&shapes, k > 1 ? "," : "", "\"", TestUuid(k).ToString(),
                      "\"");
    }
    shapes += "]";
    ChangesetResult r = host->Apply(AddShape(*host, root, n, shapes), "s");
    ASSERT_TRUE(r.all_ok()) << n;
  }
}

TEST(DurableScopesTest, ARestartLoadsEveryAcknowledgedCommit) {
  const std::string path = TempPath("restart.db");
  std::string canvas, templated;
  uint64_t canvas_version = 0, templated_version = 0;
  {
    Service s(path);
    Write(*s.registry, "Canvas", 1, 5);
    Write(*s.registry, "canvas/a", 1, 3);
    canvas = *s.registry->Fetch("Canvas").value()->Snapshot().fragments_json;
    canvas_version = s.registry->Fetch("Canvas").value()->version();
    templated =
        *s.registry->Fetch("canvas/a").value()->Snapshot().fragments_json;
    templated_version = s.registry->Fetch("canvas/a").value()->version();
  }
  // Built from configuration at version 1 (the configured root applied).
  EXPECT_EQ(canvas_version, 6u);
  EXPECT_EQ(templated_version, 4u);
  Service again(path);
  std::shared_ptr<ScopeHost> c = again.registry->Fetch("Canvas").value();
  EXPECT_EQ(c->version(), canvas_version);
  EXPECT_EQ(*c->Snapshot().fragments_json, canvas);
  std::shared_ptr<ScopeHost> t = again.registry->Fetch("canvas/a").value();
  EXPECT_EQ(t->version(), templated_version);
  EXPECT_EQ(*t->Snapshot().fragments_json, templated);
  // And it goes on from there.
  Write(*again.registry, "Canvas", 6, 1);
  EXPECT_EQ(c->version(), 7u);
  EXPECT_EQ(again.store->List().value(),
            (std::vector<std::string>{"Canvas", "canvas/a"}));
}

TEST(DurableScopesTest, SnapshotsCompactTheLog) {
  const std::string path = TempPath("snapshots.db");
  std::string state;
  {
    Service s(path, /*snapshot_every=*/3);
    Write(*s.registry, "canvas/s", 1, 6);  // versions 2..7
    s.persister->FlushSnapshotsForTest();
    std::optional<StoredScope> stored = s.store->Load("canvas/s").value();
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->snapshot.version, 6u);
    ASSERT_EQ(stored->log.size(), 1u);
    EXPECT_EQ(stored->log[0].version, 7u);
    EXPECT_EQ(stored->snapshot.root_model, "Canvas");
    state = *s.registry->Fetch("canvas/s").value()->Snapshot().fragments_json;
  }
  Service again(path, 3);
  std::shared_ptr<ScopeHost> host = again.registry->Fetch("canvas/s").value();
  EXPECT_EQ(host->version(), 7u);
  EXPECT_EQ(*host->Snapshot().fragments_json, state);
}

// Records what a scope host tells a stream watching it.
class RecordingWatcher : public ScopeWatcher {
 public:
  void OnCommit(const CommitPtr& commit, bool) override {
    events.push_back(absl::StrCat("commit ", commit->version));
  }
  void OnResync(const ScopeSnapshot& snapshot) override {
    events.push_back(absl::StrCat("resync ", snapshot.version));
    resynced = snapshot;
  }
  void OnLost(const std::string& scope, const absl::Status& why,
              const Member* moved_to) override {
    events.push_back(absl::StrCat("lost ", scope));
    lost_because = std::string(why.message());
  }
  // Written under the host's lock, read after the blocking calls return.
  std::vector<std::string> events;
  ScopeSnapshot resynced;
  std::string lost_because;
};

TEST(DurableScopesTest, AFencedOutHostIsReplacedByTheWinnersState) {
  const std::string path = TempPath("fenced.db");
  Service a(path);
  Service b(path);  // same file, second owner: both loaded Canvas at 1
  std::shared_ptr<ScopeHost> a_host = a.registry->Fetch("Canvas").value();
  std::shared_ptr<ScopeHost> b_host = b.registry->Fetch("Canvas").value();
  auto watcher = std::make_shared<RecordingWatcher>();
  const ScopeSnapshot watched = b_host->Fetch(watcher);
  Write(*a.registry, "Canvas", 1, 1);  // a wins version 2
  ScopeSnapshot b_before = b_host->Snapshot();
  ChangesetResult lost = b_host->Apply(
      Changeset{{Change(b_before.root_uuid, "Canvas", R"({"name":"loser"})")}},
      "s");
  ASSERT_EQ(lost.replies.size(), 1u);
  ASSERT_FALSE(lost.replies[0].ok());
  EXPECT_THAT(lost.replies[0].error->message, HasSubstr("unavailable here"));
  EXPECT_TRUE(b_host->failed());
  // The next fetch loads the winner's history.
  std::shared_ptr<ScopeHost> fresh = b.registry->Fetch("Canvas").value();
  EXPECT_NE(fresh.get(), b_host.get());
  EXPECT_FALSE(fresh->failed());
  EXPECT_EQ(fresh->version(), a_host->version());
  EXPECT_EQ(*fresh->Snapshot().fragments_json,
            *a_host->Snapshot().fragments_json);
  // The loser's watchers were told the scope is gone there, and nothing
  // else (the losing change was never committed).
  EXPECT_THAT(watcher->events, ElementsAre("lost Canvas"));
  EXPECT_THAT(watcher->lost_because, HasSubstr("version"));
  // Watching again, from what they had seen, brings the winner's state.
  EXPECT_EQ(fresh->Watch(watcher, watched.epoch, watched.version),
            ScopeHost::CatchUp::kResynced);
  fresh->Snapshot();  // the catch-up is released in order before this
  EXPECT_THAT(watcher->events, ElementsAre("lost Canvas", "resync 2"));
  EXPECT_EQ(*watcher->resynced.fragments_json,
            *a_host->Snapshot().fragments_json);
  fresh->Unwatch(watcher.get());
}

TEST(DurableScopesTest, BadStoredDataIsALoadErrorNamingTheScope) {
  const std::string path = TempPath("bad.db");
  {
    auto store = SqliteScopeStore::Open(path).value();
    ASSERT_TRUE(store
                    ->Create("Canvas",
                             StoredSnapshot{0, "Canvas", R"([{"type":"add"}])"})
                    .ok());
  }
  auto store = SqliteScopeStore::Open(path).value();
  StorePersister persister(store.get());
  ScopeRegistryOptions options;
  options.store = store.get();
  options.host.persister = &persister;
  absl::StatusOr<std::unique_ptr<ScopeRegistry>> registry =
      ScopeRegistry::Create(DemoSchema(),
                            ParseScopeConfig(kConfig, "test.json").value(),
                            options);
  ASSERT_FALSE(registry.ok());
  EXPECT_THAT(registry.status().message(), HasSubstr("'Canvas'"));
}

}  // namespace
}  // namespace jetstream
