// File: tests/e2e/e2e_helpers.h
//
// Helpers shared by the end-to-end tests: reading a session's messages in
// order up to a reply, proving the absence of a message with a later
// request ("barrier"), fragment builders for the demo Canvas, a client-side
// model of a scope (ScopeState + ScopeSyncs applied in order) to compare
// states, and a reader of the gateway's /metrics gauges.
//
// Why a barrier works: per session, the gateway's messages are totally
// ordered, and a request that goes through the sync service (ScopeSync,
// ScopeFetch) is answered after every commit the service published before it
// read the request. So once a changeset's originator has its reply, another
// session's barrier reply comes after that changeset's broadcast, if any.

#ifndef JETSTREAM_TESTS_E2E_E2E_HELPERS_H_
#define JETSTREAM_TESTS_E2E_E2E_HELPERS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/json.h"
#include "tests/testing/ws_test_client.h"

namespace jetstream::testing {

// The messages of a server frame (a JSON array), each as JSON text.
std::vector<std::string> FrameMessages(absl::string_view frame);

// The "type" of a close reason ({"message":..,"type":..}); "" if none.
std::string CloseReasonType(const CloseInfo& close);
std::string CloseReasonMessage(const CloseInfo& close);

// A string member of a message ("" if absent or not a string); an unsigned
// member (-1 if absent).
std::string StringField(absl::string_view message_json, const char* key);
int64_t UintField(absl::string_view message_json, const char* key);

// ReadUntilReply()
//
// Reads the session's messages in arrival order until the one whose replyTo
// is `reply_to`. `before` holds everything that came first, in order.
struct UntilReply {
  std::vector<std::string> before;
  std::string reply;
};
absl::StatusOr<UntilReply> ReadUntilReply(
    WsTestClient& client, uint64_t reply_to,
    absl::Duration timeout = absl::Seconds(15));

// Barrier()
//
// Sends an empty ScopeSync to `scope_index` (it goes through the sync
// service and changes nothing) and returns the messages that arrived before
// its reply. Fails if the reply is not `fragmentReplies: []`.
absl::StatusOr<std::vector<std::string>> Barrier(
    WsTestClient& client, uint64_t scope_index,
    absl::Duration timeout = absl::Seconds(15));

// Messages of `messages` that are not server Pings.
std::vector<std::string> WithoutPings(const std::vector<std::string>& messages);

// FetchState()
//
// Fetches `name` and reads its reply and ScopeState. Fails with kNotFound
// (carrying the reply) if the fetch was refused. `before` holds messages
// that arrived before the reply.
struct Fetched {
  uint64_t scope_index = 0;
  std::string root_uuid;
  std::string reply;  // the ScopeFetchReply message
  std::string state;  // the ScopeState message
  std::vector<std::string> before;
};
absl::StatusOr<Fetched> FetchState(WsTestClient& client, absl::string_view name,
                                   absl::Duration timeout = absl::Seconds(15));

// StartSession()
//
// A client with a session that fetched one scope: creates the session on
// `ws` (connected; null fails) and fetches `scope`.
struct SessionClient {
  std::unique_ptr<WsTestClient> ws;
  std::string token;
  Fetched fetched;
};
absl::StatusOr<SessionClient> StartSession(std::unique_ptr<WsTestClient> ws,
                                           absl::string_view scope = "Canvas");

// Canonical lower-case v4-shaped UUIDs for tests.
std::string TestUuid(uint32_t group, uint64_t n);

// Fragment builders (JSON text of one fragment) for the demo Canvas.
std::string AddShapeFragment(const std::string& uuid, double x, double y);
std::string MoveShapeFragment(const std::string& uuid, double x, double y);
std::string SetShapesFragment(const std::string& root_uuid,
                              const std::vector<std::string>& shapes);
std::string ChangeFragment(const std::string& uuid, const std::string& cls,
                           const std::string& properties_json);
// "[f1,f2,...]".
std::string FragmentList(const std::vector<std::string>& fragments);

// AddShapes()
//
// In one changeset on the Canvas `fetched`: a Shape per UUID (x 0, y its
// position in `shapes`), and those shapes as the canvas's list. Fails
// (with the reply) unless every fragment was accepted.
absl::Status AddShapes(WsTestClient& client, const Fetched& fetched,
                       const std::vector<std::string>& shapes);

// ScopeModel
//
// What a client knows of a scope: objects by UUID with their class and
// properties. A ScopeState replaces everything; ScopeSync fragments are
// applied in order (add creates, change merges properties). Canonical()
// renders the objects reachable from the root (references are string
// values naming a known object), with null properties left out (null is
// every property's default), numbers normalised, keys sorted.
class ScopeModel {
 public:
  absl::Status ApplyState(absl::string_view scope_state_json);
  absl::Status ApplyFragments(const JsonValue& fragments);
  absl::Status ApplyFragmentsJson(absl::string_view fragments_json);

  std::string Canonical() const;
  // Number of objects reachable from the root.
  size_t ReachableCount() const;
  const std::string& root() const { return root_; }
  bool empty() const { return root_.empty(); }

 private:
  struct Value {
    std::string canonical;             // "" for null
    std::vector<std::string> strings;  // string value(s): maybe references
  };
  struct Object {
    std::string cls;
    std::map<std::string, Value> properties;
  };
  std::vector<std::string> Reachable() const;

  std::string root_;
  std::map<std::string, Object> objects_;
};

// GET http://127.0.0.1:<port><target> on a connection of its own: the
// status (0 if there was no answer), Content-Type and body.
struct HttpResult {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};
HttpResult HttpGet(int port, const std::string& target);

// The value of a gauge of the gateway's /metrics page.
absl::StatusOr<int64_t> GatewayGauge(int port, absl::string_view name);
// Polls the gauge (one HTTP request after another, no sleeping) until it
// equals `value`; false if it did not within `timeout`.
bool WaitForGauge(int port, absl::string_view name, int64_t value,
                  absl::Duration timeout = absl::Seconds(15));

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_E2E_E2E_HELPERS_H_
