// Append throughput of the scope stores, with and without synchronous
// durability. Not a test: it prints one line per configuration.
//
//   bazel run -c opt //syncservice/storage:scope_store_benchmark --
//       --appends=20000 --scopes=100
//
// Two workloads per store and durability mode:
//   * pipelined: every scope keeps one commit in flight and appends the next
//     from the previous one's callback (a client waiting for durability per
//     scope), so up to --scopes commits wait together;
//   * flood: all appends queued at once (the writer's ceiling).
// PostgreSQL runs on a throw-away local server (fsync on, defaults), like
// the tests; SQLite writes a file under --dir.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "syncservice/storage/postgres_scope_store.h"
#include "syncservice/storage/sqlite_scope_store.h"
#include "tests/testing/postgres_server.h"

ABSL_FLAG(int, appends, 20000, "appends per run");
ABSL_FLAG(int, scopes, 100, "scopes the appends are spread over");
ABSL_FLAG(int, payload_bytes, 300, "size of request_json and applied_json");
ABSL_FLAG(std::string, stores, "sqlite,postgres", "stores to measure");
ABSL_FLAG(std::string, dir, "/tmp", "directory for the SQLite files");

namespace jetstream {
namespace {

struct RunResult {
  double seconds = 0;
  uint64_t transactions = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int failures = 0;
};

using StoreFactory =
    std::function<std::unique_ptr<ScopeStore>(bool synchronous)>;

StoredCommit MakeCommit(uint64_t version, const std::string& payload) {
  return StoredCommit{version, payload, false, payload, "bench"};
}

RunResult Run(ScopeStore& store, bool pipelined, int run_id) {
  const int scopes = absl::GetFlag(FLAGS_scopes);
  const int appends = absl::GetFlag(FLAGS_appends);
  const int per_scope = appends / scopes;
  const std::string payload(absl::GetFlag(FLAGS_payload_bytes), 'x');
  std::vector<std::string> names;
  for (int s = 0; s < scopes; ++s) {
    names.push_back(absl::StrCat("run", run_id, "-scope", s));
    if (!store.Create(names.back(), {0, "Canvas", "[]"}).ok()) std::abort();
  }
  const uint64_t txns_before = store.Stats().transactions;

  absl::Mutex mu;
  std::vector<double> latencies_ms;
  latencies_ms.reserve(static_cast<size_t>(scopes * per_scope));
  std::atomic<int> failures{0};
  absl::BlockingCounter pending(scopes * per_scope);
  const absl::Time start = absl::Now();

  // Appends `version` of scope `s`; when pipelined, its callback appends the
  // next version.
  std::function<void(int, uint64_t)> append = [&](int s, uint64_t version) {
    const absl::Time sent = absl::Now();
    store.Append(
        names[s], MakeCommit(version, payload),
        [&, s, version, sent](absl::Status status) {
          if (!status.ok()) ++failures;
          {
            absl::MutexLock lock(&mu);
            latencies_ms.push_back(
                absl::ToDoubleMilliseconds(absl::Now() - sent));
          }
          if (pipelined && version < static_cast<uint64_t>(per_scope)) {
            append(s, version + 1);
          }
          pending.DecrementCount();
        });
  };
  if (pipelined) {
    for (int s = 0; s < scopes; ++s) append(s, 1);
  } else {
    for (int v = 1; v <= per_scope; ++v) {
      for (int s = 0; s < scopes; ++s) append(s, static_cast<uint64_t>(v));
    }
  }
  pending.Wait();

  RunResult result;
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  result.transactions = store.Stats().transactions - txns_before;
  result.failures = failures.load();
  absl::MutexLock lock(&mu);
  std::sort(latencies_ms.begin(), latencies_ms.end());
  result.p50_ms = latencies_ms[latencies_ms.size() / 2];
  result.p99_ms = latencies_ms[latencies_ms.size() * 99 / 100];
  return result;
}

void Measure(const std::string& name, const StoreFactory& factory) {
  static int run_id = 0;
  const int appends = absl::GetFlag(FLAGS_appends) /
                      absl::GetFlag(FLAGS_scopes) * absl::GetFlag(FLAGS_scopes);
  for (bool synchronous : {true, false}) {
    std::unique_ptr<ScopeStore> store = factory(synchronous);
    for (bool pipelined : {true, false}) {
      RunResult r = Run(*store, pipelined, run_id++);
      std::printf(
          "%-9s %-8s %-10s %8d %8.2f %11.0f %7llu %9.1f %8.2f %8.2f%s\n",
          name.c_str(), synchronous ? "sync" : "relaxed",
          pipelined ? "pipelined" : "flood", appends, r.seconds,
          appends / r.seconds, static_cast<unsigned long long>(r.transactions),
          static_cast<double>(appends) /
              static_cast<double>(std::max<uint64_t>(1, r.transactions)),
          r.p50_ms, r.p99_ms,
          r.failures ? absl::StrCat("  FAILURES: ", r.failures).c_str() : "");
      std::fflush(stdout);
    }
  }
}

int Main() {
  std::printf("%-9s %-8s %-10s %8s %8s %11s %7s %9s %8s %8s\n", "store",
              "durable", "workload", "appends", "seconds", "appends/s", "txns",
              "avg_batch", "p50_ms", "p99_ms");
  for (absl::string_view store :
       absl::StrSplit(absl::GetFlag(FLAGS_stores), ',')) {
    if (store == "sqlite") {
      std::vector<std::string> paths;
      Measure("sqlite", [&](bool synchronous) {
        std::string path =
            absl::StrCat(absl::GetFlag(FLAGS_dir), "/scope_store_benchmark-",
                         getpid(), "-", paths.size(), ".db");
        paths.push_back(path);
        SqliteScopeStoreOptions options;
        options.store.synchronous = synchronous;
        auto opened = SqliteScopeStore::Open(path, options);
        if (!opened.ok()) {
          std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
          std::abort();
        }
        return std::unique_ptr<ScopeStore>(std::move(*opened));
      });
      for (const std::string& path : paths) {
        for (const char* suffix : {"", "-wal", "-shm"}) {
          unlink((path + suffix).c_str());
        }
      }
    } else if (store == "postgres") {
      auto server = testing::PostgresServer::Start();
      if (!server.ok()) {
        std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
        return 1;
      }
      Measure("postgres", [&](bool synchronous) {
        PostgresScopeStoreOptions options;
        options.store.synchronous = synchronous;
        auto opened = PostgresScopeStore::Open(
            (*server)->ConnectionString("postgres"), options);
        if (!opened.ok()) {
          std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
          std::abort();
        }
        return std::unique_ptr<ScopeStore>(std::move(*opened));
      });
    }
  }
  return 0;
}

}  // namespace
}  // namespace jetstream

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return jetstream::Main();
}
