// File: gateway/protocol/client_message.h
//
// Parsing of what clients send (docs/protocol.md#framing). A frame holds one
// message object or an array of them; arrays are stably sorted by index; if
// any element fails to parse the whole frame is rejected
// (docs/protocol.md#r-frame-2). The parser is pure: no I/O, no session state,
// so it can run on a connection's own strand before the protocol logic sees the
// result.

#ifndef JETSTREAM_GATEWAY_PROTOCOL_CLIENT_MESSAGE_H_
#define JETSTREAM_GATEWAY_PROTOCOL_CLIENT_MESSAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/json.h"
#include "common/sync_fragment.h"

namespace jetstream::gateway {

enum class ClientMessageType {
  kReply,
  kSessionCreate,
  kSessionCreateReply,
  kScopeFetch,
  kScopeState,
  kScopeSync,
  kPing,
};

absl::string_view ClientMessageTypeName(ClientMessageType type);

// ClientMessage
//
// One parsed message. Only the fields of its type are meaningful.
struct ClientMessage {
  ClientMessageType type = ClientMessageType::kPing;
  uint64_t index = 0;

  // Reply family.
  uint64_t reply_to = 0;
  // SessionCreate: the semver version; SessionCreate and ScopeFetch: params
  // as a JSON object text ("{}" when absent).
  std::string version;
  std::string params_json = "{}";
  // ScopeFetch.
  std::string name;
  // ScopeSync (and ScopeState).
  uint64_t scope_index = 0;
  std::vector<SyncFragment> fragments;
  std::optional<bool> atomic;  // absent means null
  std::string procedure;       // "Model.procedure" or empty
  // Ping.
  uint64_t ack = 0;
  bool resend_missing = false;
};

// Limits applied while parsing, so hostile input is refused early.
struct ParseLimits {
  size_t max_messages_per_frame = 1000;
};

// ParseClientFrame()
//
// Parses one WebSocket text frame. Returns the messages sorted by index, or
// kInvalidArgument with the original server's error text ("Could not parse
// message input, input was not JSON", "Unrecognized message type", ...).
absl::StatusOr<std::vector<ClientMessage>> ParseClientFrame(
    absl::string_view frame, const ParseLimits& limits = {});

// ParseClientFrameInsitu()
//
// The same, parsing in place: `frame[size]` must be '\0', and the frame's
// bytes are modified (the caller discards them afterwards). With
// `utf8_validated` (a WebSocket text frame, which Beast validated as RFC 6455
// requires) UTF-8 is not checked again; binary frames must pass false.
absl::StatusOr<std::vector<ClientMessage>> ParseClientFrameInsitu(
    char* frame, size_t size, bool utf8_validated,
    const ParseLimits& limits = {});

// ParseClientMessage()
//
// Parses one message object of an already parsed frame.
absl::StatusOr<ClientMessage> ParseClientMessage(const JsonValue& json);

// True for "1.2.3", "v1.2.3", "1.2.3-beta.1+build" (node-semver's valid()).
bool IsValidSemver(absl::string_view version);

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_PROTOCOL_CLIENT_MESSAGE_H_
