// File: syncservice/storage/scope_store_conformance.h
//
// The behaviour every ScopeStore must have, as one value-parameterized
// GoogleTest suite (ScopeStoreConformanceTest) run against real stores. A
// store's test file instantiates it with a backend that makes a fresh,
// empty database per test:
//
//   INSTANTIATE_TEST_SUITE_P(
//       Sqlite, ScopeStoreConformanceTest,
//       ::testing::Values(ScopeStoreBackendFactory{"sqlite", [] {
//         return std::make_unique<SqliteBackend>();
//       }}),
//       ScopeStoreBackendFactory::Name);
//
// The suite covers round trips, ordered appends, compaction (with recovery
// through the real engine), fencing across two store instances, group
// commit under concurrency, the callback contract and relaxed durability.

#ifndef JETSTREAM_SYNCSERVICE_STORAGE_SCOPE_STORE_CONFORMANCE_H_
#define JETSTREAM_SYNCSERVICE_STORAGE_SCOPE_STORE_CONFORMANCE_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "syncservice/storage/scope_store.h"

namespace jetstream::testing {

// ScopeStoreBackend
//
// One fresh, empty database (a file, a PostgreSQL database) for one test.
// Open() may be called several times: every store it returns uses the same
// database, as a second process would.
class ScopeStoreBackend {
 public:
  virtual ~ScopeStoreBackend() = default;
  virtual absl::StatusOr<std::unique_ptr<ScopeStore>> Open(
      const ScopeStoreOptions& options) = 0;
};

struct ScopeStoreBackendFactory {
  std::string name;
  std::function<std::unique_ptr<ScopeStoreBackend>()> make;

  // For INSTANTIATE_TEST_SUITE_P's name generator.
  static std::string Name(
      const ::testing::TestParamInfo<ScopeStoreBackendFactory>& info) {
    return info.param.name;
  }
  friend void PrintTo(const ScopeStoreBackendFactory& factory,
                      std::ostream* os) {
    *os << factory.name;
  }
};

class ScopeStoreConformanceTest
    : public ::testing::TestWithParam<ScopeStoreBackendFactory> {
 protected:
  void SetUp() override;

  // A new store instance on this test's database.
  std::unique_ptr<ScopeStore> OpenStore(ScopeStoreOptions options = {});

  std::unique_ptr<ScopeStoreBackend> backend_;
};

}  // namespace jetstream::testing

#endif  // JETSTREAM_SYNCSERVICE_STORAGE_SCOPE_STORE_CONFORMANCE_H_
