#include "tools/loadgen/ws_url.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::loadgen {
namespace {

TEST(WsUrlTest, SplitsHostPortAndTarget) {
  auto url = ParseWsUrl("ws://127.0.0.1:3000/canvas?x=1");
  ASSERT_OK(url);
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 3000);
  EXPECT_EQ(url->target, "/canvas?x=1");
  EXPECT_EQ(url->HostHeader(), "127.0.0.1:3000");
}

TEST(WsUrlTest, Defaults) {
  auto url = ParseWsUrl("ws://localhost");
  ASSERT_OK(url);
  EXPECT_EQ(url->host, "localhost");
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->target, "/");

  url = ParseWsUrl("WS://h:1?q");
  ASSERT_OK(url);
  EXPECT_EQ(url->target, "/?q");
}

TEST(WsUrlTest, Ipv6) {
  auto url = ParseWsUrl("ws://[::1]:8080/");
  ASSERT_OK(url);
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 8080);
}

TEST(WsUrlTest, RejectsOthers) {
  EXPECT_FALSE(ParseWsUrl("wss://h:1/").ok());
  EXPECT_FALSE(ParseWsUrl("http://h/").ok());
  EXPECT_FALSE(ParseWsUrl("ws://:3000/").ok());
  EXPECT_FALSE(ParseWsUrl("ws://h:0/").ok());
  EXPECT_FALSE(ParseWsUrl("ws://h:99999/").ok());
  EXPECT_FALSE(ParseWsUrl("ws://h:x/").ok());
}

}  // namespace
}  // namespace jetstream::loadgen
