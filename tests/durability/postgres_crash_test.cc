// The crash scenario (crash_scenario.h) on a real PostgreSQL server (a
// throw-away cluster, tests/testing/postgres_server.h).

#include <string>

#include "gtest/gtest.h"
#include "tests/durability/crash_scenario.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::testing {
namespace {

class PostgresCrashTest : public CrashTestBase {
 protected:
  void SetUp() override {
    auto server = PostgresServer::Start();
    ASSERT_OK(server);
    postgres_ = *std::move(server);
    ASSERT_OK(postgres_->CreateDatabase("durability"));
    CrashTestBase::SetUp();
  }
  void TearDown() override {
    CrashTestBase::TearDown();
    postgres_.reset();
  }
  std::string Store() override {
    return "postgres:" + postgres_->ConnectionString("durability");
  }
  std::unique_ptr<PostgresServer> postgres_;
};

TEST_F(PostgresCrashTest, EveryAcknowledgedChangesetSurvivesAKill) {
  RunKillUnderLoad();
}

}  // namespace
}  // namespace jetstream::testing
