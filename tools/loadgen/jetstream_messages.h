// File: tools/loadgen/jetstream_messages.h
//
// The few Jetstream messages a load generator sends, and a fast reader for
// what the server sends back (docs/protocol.md#messages). Only the protocol is
// assumed, never this project's server, so the load generator can measure
// any Jetstream server.
//
// Writers of changesets stamp them: the one fragment sets the root's
// `name` (a String in both demo root classes, Canvas and ChatRoom) to
// "t<microseconds>", the sender's steady-clock time. A client that receives
// the ScopeSync reads the stamp back to measure writer-to-reader latency.
//
// Example:
//   std::string fetch = ScopeFetchMessage(1, "canvas/load-3");
//   ParseServerFrame(frame, [&](const ServerMessage& m) { ... });
//
// All functions are pure and thread-safe.

#ifndef JETSTREAM_TOOLS_LOADGEN_JETSTREAM_MESSAGES_H_
#define JETSTREAM_TOOLS_LOADGEN_JETSTREAM_MESSAGES_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace jetstream::loadgen {

// The property every changeset sets on the scope's root.
inline constexpr char kStampProperty[] = "name";

// {"type":"SessionCreate","index":0,"version":"0.2.0","params":{}}
std::string SessionCreateMessage();

// {"type":"ScopeFetch","index":<index>,"name":<scope>,"params":{}}
std::string ScopeFetchMessage(uint64_t index, absl::string_view scope);

// A one-fragment ScopeSync: a `change` of the root object that sets its
// `name` to "t<stamp_us>".
std::string ScopeSyncMessage(uint64_t index, uint64_t scope_index,
                             absl::string_view root_uuid,
                             absl::string_view root_class, int64_t stamp_us);

// {"type":"Ping","index":0,"ack":<ack>,"resendMissing":false}
std::string PingMessage(uint64_t ack);

enum class ServerMessageType {
  kOther,
  kSessionCreateReply,
  kScopeFetchReply,
  kScopeState,
  kScopeSync,
  kScopeSyncReply,
  kPing,
};

// ServerMessage
//
// What the load generator needs of one server message. The string views
// point into the parsed frame and are valid only during the callback.
struct ServerMessage {
  ServerMessageType type = ServerMessageType::kOther;
  uint64_t index = 0;
  uint64_t reply_to = 0;  // 0 when the message is not a reply
  // SessionCreateReply / ScopeFetchReply with `error`, or a ScopeSyncReply
  // with an error in any fragment reply.
  bool error = false;
  uint64_t scope_index = 0;      // ScopeFetchReply, ScopeState, ScopeSync
  absl::string_view root_uuid;   // ScopeState
  absl::string_view root_class;  // ScopeState: clsName of the first fragment
  size_t fragment_count = 0;     // ScopeState, ScopeSync
  // ScopeSync: the stamp of the first fragment that carries one, else -1.
  int64_t stamp_us = -1;
};

// ParseServerFrame()
//
// Parses one server frame, a JSON array of messages or a single message
// object (docs/protocol.md#r-frame-1), and calls `fn` for each message in frame
// order. Returns kInvalidArgument, after calling `fn` for nothing, if the frame
// is not JSON or not made of objects with a string `type`.
//
// A frame holding nothing but ScopeSyncs (any number) whose fragments are
// adds and changes, or one ScopeSyncReply without errors, in the canonical
// key order (type, index, scopeIndex or replyTo,
// fragments or fragmentReplies) is scanned rather than parsed, several
// times faster; such a frame is trusted to be well-formed JSON.
absl::Status ParseServerFrame(absl::string_view frame,
                              absl::FunctionRef<void(const ServerMessage&)> fn);

// ParseStamp()
//
// The microseconds of a "t<digits>" stamp, or -1 if `value` is not one.
int64_t ParseStamp(absl::string_view value);

}  // namespace jetstream::loadgen

#endif  // JETSTREAM_TOOLS_LOADGEN_JETSTREAM_MESSAGES_H_
