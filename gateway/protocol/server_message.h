// File: gateway/protocol/server_message.h
//
// Encoding of what the server sends (docs/protocol.md#messages). Every function
// returns one message object as JSON text; a frame is always a JSON array of
// them (docs/protocol.md#r-frame-1), built by EncodeFrame(). Key order matches
// the original server. Fragment lists arrive already encoded (the sync service
// encodes each committed changeset once) and are spliced in verbatim.

#ifndef JETSTREAM_GATEWAY_PROTOCOL_SERVER_MESSAGE_H_
#define JETSTREAM_GATEWAY_PROTOCOL_SERVER_MESSAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/sync_fragment.h"
#include "gateway/protocol/server_frame.h"

namespace jetstream::gateway {

std::string EncodeSessionCreateReply(absl::string_view session_token);
std::string EncodeSessionCreateReplyError(const WireError& error);

std::string EncodeScopeFetchReply(uint64_t index, uint64_t reply_to,
                                  uint64_t scope_index);
std::string EncodeScopeFetchReplyError(uint64_t index, uint64_t reply_to,
                                       const WireError& error);

// `fragments_json` is a JSON array of fragments (root first).
std::string EncodeScopeState(uint64_t index, uint64_t scope_index,
                             absl::string_view root_uuid,
                             absl::string_view fragments_json);

// `fragments_json` is a JSON array of fragments.
std::string EncodeScopeSync(uint64_t index, uint64_t scope_index,
                            absl::string_view fragments_json);

// The same ScopeSync in two pieces, for fan-out: the body is encoded once per
// committed changeset and shared by every recipient; only the head carries
// the recipient's indexes. EncodeScopeSyncMessage(i, s, EncodeScopeSyncBody(f))
// has exactly the text of EncodeScopeSync(i, s, f).
std::shared_ptr<const std::string> EncodeScopeSyncBody(
    absl::string_view fragments_json);
ServerMessage EncodeScopeSyncMessage(uint64_t index, uint64_t scope_index,
                                     std::shared_ptr<const std::string> body);

std::string EncodeScopeSyncReply(uint64_t index, uint64_t reply_to,
                                 const std::vector<FragmentReply>& replies);

std::string EncodePing(uint64_t ack, bool resend_missing);

// A frame: the messages as one JSON array.
std::string EncodeFrame(const std::vector<const std::string*>& messages);

// EncodeCloseReason()
//
// The reason of a closing WebSocket frame: {"message":...,"type"?:...}.
// RFC 6455 allows 123 bytes; a longer message is shortened (the type is
// kept) so the reason stays valid JSON.
std::string EncodeCloseReason(const WireError& error);

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_PROTOCOL_SERVER_MESSAGE_H_
