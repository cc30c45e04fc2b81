// The crash scenario (crash_scenario.h) on a SQLite store file.

#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "tests/durability/crash_scenario.h"

namespace jetstream::testing {
namespace {

class SqliteCrashTest : public CrashTestBase {
 protected:
  std::string Store() override { return "sqlite:" + db_path_; }
};

TEST_F(SqliteCrashTest, EveryAcknowledgedChangesetSurvivesAKill) {
  RunKillUnderLoad();
}

}  // namespace
}  // namespace jetstream::testing
