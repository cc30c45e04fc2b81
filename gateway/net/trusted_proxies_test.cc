#include "gateway/net/trusted_proxies.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::gateway {
namespace {

using ::testing::HasSubstr;
namespace ip = boost::asio::ip;

TrustedProxies MustParse(const std::vector<std::string>& entries) {
  absl::StatusOr<TrustedProxies> proxies = TrustedProxies::Parse(entries);
  EXPECT_OK(proxies);
  return proxies.ok() ? *proxies : TrustedProxies();
}

TEST(TrustedProxiesTest, AddressesAndBlocks) {
  TrustedProxies proxies =
      MustParse({"10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1"});
  EXPECT_TRUE(proxies.Contains(ip::make_address("10.200.3.4")));
  EXPECT_TRUE(proxies.Contains(ip::make_address("192.168.1.7")));
  EXPECT_FALSE(proxies.Contains(ip::make_address("192.168.1.8")));
  EXPECT_FALSE(proxies.Contains(ip::make_address("11.0.0.1")));
  EXPECT_TRUE(proxies.Contains(ip::make_address("fd12:3456::1")));
  EXPECT_TRUE(proxies.Contains(ip::make_address("::1")));
  EXPECT_FALSE(proxies.Contains(ip::make_address("2001:db8::1")));
  // A dual-stack listener sees IPv4 clients as IPv4-mapped IPv6.
  EXPECT_TRUE(proxies.Contains(ip::make_address("::ffff:10.1.2.3")));
}

TEST(TrustedProxiesTest, ABlockWithHostBitsSetStillMatchesItsNetwork) {
  TrustedProxies proxies = MustParse({"10.1.2.3/16"});
  EXPECT_TRUE(proxies.Contains(ip::make_address("10.1.200.1")));
  EXPECT_FALSE(proxies.Contains(ip::make_address("10.2.0.1")));
}

TEST(TrustedProxiesTest, AnEntryThatIsNotAnAddressIsAnErrorNamingIt) {
  absl::StatusOr<TrustedProxies> proxies =
      TrustedProxies::Parse({"10.0.0.0/8", "proxy.internal"});
  ASSERT_FALSE(proxies.ok());
  EXPECT_EQ(proxies.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(proxies.status().message(), HasSubstr("'proxy.internal'"));
  EXPECT_FALSE(TrustedProxies::Parse({"10.0.0.0/33"}).ok());
  EXPECT_OK(TrustedProxies::Parse({}));
  EXPECT_TRUE(TrustedProxies::Parse({}).value().empty());
}

TEST(TrustedProxiesTest, AnUntrustedPeerIsTheClientWhateverItForwards) {
  TrustedProxies proxies = MustParse({"10.0.0.1"});
  EXPECT_EQ(
      proxies.ClientAddress(ip::make_address("203.0.113.9"), "198.51.100.1"),
      "203.0.113.9");
  EXPECT_EQ(TrustedProxies().ClientAddress(ip::make_address("127.0.0.1"),
                                           "198.51.100.1"),
            "127.0.0.1");
}

TEST(TrustedProxiesTest, ATrustedPeerNamesTheClient) {
  TrustedProxies proxies = MustParse({"10.0.0.0/8"});
  EXPECT_EQ(proxies.ClientAddress(ip::make_address("10.0.0.1"), "198.51.100.1"),
            "198.51.100.1");
  // Hops appended by further trusted proxies are skipped; an address the
  // client wrote itself (to the left) is not believed.
  EXPECT_EQ(proxies.ClientAddress(ip::make_address("10.0.0.1"),
                                  "6.6.6.6, 198.51.100.1, 10.3.3.3"),
            "198.51.100.1");
  // Ports and brackets some proxies add.
  EXPECT_EQ(
      proxies.ClientAddress(ip::make_address("10.0.0.1"), "198.51.100.1:4711"),
      "198.51.100.1");
  EXPECT_EQ(
      proxies.ClientAddress(ip::make_address("10.0.0.1"), "[2001:db8::7]:443"),
      "2001:db8::7");
}

TEST(TrustedProxiesTest, GarbageStopsAtTheHopThatWroteIt) {
  TrustedProxies proxies = MustParse({"10.0.0.0/8"});
  EXPECT_EQ(proxies.ClientAddress(ip::make_address("10.0.0.1"), "unknown"),
            "10.0.0.1");
  EXPECT_EQ(proxies.ClientAddress(ip::make_address("10.0.0.1"),
                                  "198.51.100.1, junk, 10.0.0.9"),
            "10.0.0.9");
}

TEST(TrustedProxiesTest, NoHeaderOrOnlyProxies) {
  TrustedProxies proxies = MustParse({"10.0.0.0/8"});
  EXPECT_EQ(proxies.ClientAddress(ip::make_address("10.0.0.1"), ""),
            "10.0.0.1");
  EXPECT_EQ(
      proxies.ClientAddress(ip::make_address("10.0.0.1"), "10.0.0.5, 10.0.0.6"),
      "10.0.0.5");
  EXPECT_EQ(proxies.ClientAddress(ip::make_address("::ffff:10.0.0.1"),
                                  "::ffff:198.51.100.1"),
            "198.51.100.1");
}

}  // namespace
}  // namespace jetstream::gateway
