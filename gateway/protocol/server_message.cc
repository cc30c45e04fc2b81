#include "gateway/protocol/server_message.h"

#include <charconv>
#include <cstring>

#include "common/fragment_json.h"
#include "common/json.h"

namespace jetstream::gateway {
namespace {

// Runs `body` on a writer and returns the text.
template <typename F>
std::string Write(F&& body) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  body(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

void Header(JsonWriter& w, absl::string_view type, uint64_t index) {
  w.Key("type");
  w.String(type);
  w.Key("index");
  w.Uint64(index);
}

}  // namespace

std::string EncodeSessionCreateReply(absl::string_view session_token) {
  return Write([&](JsonWriter& w) {
    w.StartObject();
    Header(w, "SessionCreateReply", 0);
    w.Key("sessionToken");
    w.String(session_token);
    w.EndObject();
  });
}

std::string EncodeSessionCreateReplyError(const WireError& error) {
  return Write([&](JsonWriter& w) {
    w.StartObject();
    Header(w, "SessionCreateReply", 0);
    w.Key("error");
    WriteWireError(w, error);
    w.EndObject();
  });
}

std::string EncodeScopeFetchReply(uint64_t index, uint64_t reply_to,
                                  uint64_t scope_index) {
  return Write([&](JsonWriter& w) {
    w.StartObject();
    Header(w, "ScopeFetchReply", index);
    w.Key("replyTo");
    w.Uint64(reply_to);
    w.Key("scopeIndex");
    w.Uint64(scope_index);
    w.EndObject();
  });
}

std::string EncodeScopeFetchReplyError(uint64_t index, uint64_t reply_to,
                                       const WireError& error) {
  return Write([&](JsonWriter& w) {
    w.StartObject();
    Header(w, "ScopeFetchReply", index);
    w.Key("replyTo");
    w.Uint64(reply_to);
    w.Key("error");
    WriteWireError(w, error);
    w.EndObject();
  });
}

std::string EncodeScopeState(uint64_t index, uint64_t scope_index,
                             absl::string_view root_uuid,
                             absl::string_view fragments_json) {
  return Write([&](JsonWriter& w) {
    w.StartObject();
    Header(w, "ScopeState", index);
    w.Key("scopeIndex");
    w.Uint64(scope_index);
    w.Key("rootUUID");
    w.String(root_uuid);
    w.Key("fragments");
    w.Raw(fragments_json, rapidjson::kArrayType);
    w.EndObject();
  });
}

std::string EncodeScopeSync(uint64_t index, uint64_t scope_index,
                            absl::string_view fragments_json) {
  return Write([&](JsonWriter& w) {
    w.StartObject();
    Header(w, "ScopeSync", index);
    w.Key("scopeIndex");
    w.Uint64(scope_index);
    w.Key("fragments");
    w.Raw(fragments_json, rapidjson::kArrayType);
    w.EndObject();
  });
}

std::shared_ptr<const std::string> EncodeScopeSyncBody(
    absl::string_view fragments_json) {
  static constexpr absl::string_view kKey = R"(,"fragments":)";
  auto body = std::make_shared<std::string>();
  body->reserve(kKey.size() + fragments_json.size() + 1);
  body->append(kKey.data(), kKey.size());
  body->append(fragments_json.data(), fragments_json.size());
  body->push_back('}');
  return body;
}

ServerMessage EncodeScopeSyncMessage(uint64_t index, uint64_t scope_index,
                                     std::shared_ptr<const std::string> body) {
  static constexpr absl::string_view kType = R"({"type":"ScopeSync","index":)";
  static constexpr absl::string_view kScopeIndex = R"(,"scopeIndex":)";
  // At most 28 + 20 + 14 + 20 bytes, within ServerMessage::kMaxHead.
  char head[128];
  char* p = head;
  std::memcpy(p, kType.data(), kType.size());
  p += kType.size();
  p = std::to_chars(p, p + 20, index).ptr;  // at most 20 digits
  std::memcpy(p, kScopeIndex.data(), kScopeIndex.size());
  p += kScopeIndex.size();
  p = std::to_chars(p, p + 20, scope_index).ptr;
  return ServerMessage(absl::string_view(head, static_cast<size_t>(p - head)),
                       std::move(body));
}

std::string EncodeScopeSyncReply(uint64_t index, uint64_t reply_to,
                                 const std::vector<FragmentReply>& replies) {
  return Write([&](JsonWriter& w) {
    w.StartObject();
    Header(w, "ScopeSyncReply", index);
    w.Key("replyTo");
    w.Uint64(reply_to);
    w.Key("fragmentReplies");
    w.StartArray();
    for (const FragmentReply& r : replies) WriteFragmentReply(w, r);
    w.EndArray();
    w.EndObject();
  });
}

std::string EncodePing(uint64_t ack, bool resend_missing) {
  return Write([&](JsonWriter& w) {
    w.StartObject();
    Header(w, "Ping", 0);
    w.Key("ack");
    w.Uint64(ack);
    w.Key("resendMissing");
    w.Bool(resend_missing);
    w.EndObject();
  });
}

std::string EncodeFrame(const std::vector<const std::string*>& messages) {
  size_t size = 2 + messages.size();
  for (const std::string* m : messages) size += m->size();
  std::string frame;
  frame.reserve(size);
  frame.push_back('[');
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i > 0) frame.push_back(',');
    frame.append(*messages[i]);
  }
  frame.push_back(']');
  return frame;
}

std::string EncodeCloseReason(const WireError& error) {
  constexpr size_t kMaxReason = 123;
  WireError e = error;
  for (;;) {
    std::string reason = Write([&](JsonWriter& w) { WriteWireError(w, e); });
    if (reason.size() <= kMaxReason || e.message.empty()) return reason;
    // Shorten by the excess (plus room for escapes) on a UTF-8 boundary.
    size_t cut = e.message.size() -
                 std::min(e.message.size(), reason.size() - kMaxReason);
    while (cut > 0 &&
           (static_cast<unsigned char>(e.message[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    e.message.resize(cut);
  }
}

}  // namespace jetstream::gateway
