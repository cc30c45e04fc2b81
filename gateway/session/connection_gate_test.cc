#include "gateway/session/connection_gate.h"

#include <memory>

#include "boost/asio/io_context.hpp"
#include "boost/asio/strand.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_connection.h"
#include "tests/testing/manual_clock.h"

namespace jetstream::gateway {
namespace {

using ::jetstream::testing::FakeConnection;
using ::testing::HasSubstr;

class ConnectionGateTest : public ::testing::Test {
 protected:
  std::shared_ptr<FakeConnection> Connection(const std::string& address) {
    return std::make_shared<FakeConnection>(++next_id_, address);
  }

  boost::asio::io_context ioc_;
  HubExecutor hub_ = boost::asio::make_strand(ioc_);
  ::jetstream::testing::ManualClock clock_;
  GatewayOptions options_;
  uint64_t next_id_ = 0;
};

TEST_F(ConnectionGateTest, ConnectionsOverTheLimitsAreClosedAtOnce) {
  options_.max_connections = 3;
  options_.max_connections_per_address = 2;
  ConnectionGate gate(hub_, options_, clock_);
  auto a1 = Connection("10.0.0.1");
  auto a2 = Connection("10.0.0.1");
  auto a3 = Connection("10.0.0.1");
  EXPECT_TRUE(gate.Admit(a1));
  EXPECT_TRUE(gate.Admit(a2));
  EXPECT_FALSE(gate.Admit(a3));  // a third from one address
  ASSERT_TRUE(a3->close().has_value());
  EXPECT_EQ(a3->close()->code, kCloseDeniedConnection);
  EXPECT_THAT(a3->close()->reason, HasSubstr("too-many-connections"));
  EXPECT_TRUE(gate.Admit(Connection("10.0.0.2")));
  EXPECT_FALSE(gate.Admit(Connection("10.0.0.3")));  // a fourth in all
  EXPECT_EQ(gate.over_limit_total(), 2u);
  // A closed connection frees its slot, for its address too.
  EXPECT_FALSE(gate.Closed(*a1));
  EXPECT_TRUE(gate.Admit(Connection("10.0.0.1")));
}

TEST_F(ConnectionGateTest, ATarpittedConnectionIsHeldUntilReleased) {
  options_.tarpit_first_delay = absl::Seconds(5);
  options_.tarpit_max_delay = absl::Seconds(10);
  ConnectionGate gate(hub_, options_, clock_);
  auto refused = Connection("10.0.0.1");
  auto gone = Connection("10.0.0.1");
  gate.Deny(refused, WireError{"Go away", "test-refusal"},
            ConnectionGate::Hold::kTarpit);
  gate.Deny(gone, WireError{"Go away", "test-refusal"},
            ConnectionGate::Hold::kTarpit);
  EXPECT_FALSE(refused->close().has_value());  // held, not closed yet
  EXPECT_EQ(gate.held_count(), 2u);
  EXPECT_EQ(gate.tarpitted_total(), 2u);
  // A client that closes a held connection itself is let go.
  EXPECT_TRUE(gate.Closed(*gone));
  EXPECT_EQ(gate.held_count(), 1u);
  // On shutdown the rest get their close at once.
  gate.ReleaseHeld();
  ASSERT_TRUE(refused->close().has_value());
  EXPECT_THAT(refused->close()->reason, HasSubstr("test-refusal"));
  EXPECT_EQ(gate.held_count(), 0u);
  ioc_.poll();  // the cancelled timers run and do nothing
  EXPECT_EQ(gate.held_count(), 0u);
}

TEST_F(ConnectionGateTest, WithoutATarpitARefusalClosesAtOnce) {
  options_.tarpit_max_delay = absl::ZeroDuration();
  ConnectionGate gate(hub_, options_, clock_);
  auto refused = Connection("10.0.0.1");
  gate.Deny(refused, WireError{"Go away", "test-refusal"},
            ConnectionGate::Hold::kTarpit);
  ASSERT_TRUE(refused->close().has_value());
  EXPECT_EQ(gate.held_count(), 0u);
}

}  // namespace
}  // namespace jetstream::gateway
