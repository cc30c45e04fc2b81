#include "tools/loadgen/jetstream_messages.h"

#include <cstdio>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "common/json.h"

namespace jetstream::loadgen {
namespace {

// Parses allocate from a stack buffer first: a typical frame (a reply or a
// one-fragment ScopeSync) never touches the heap.
constexpr size_t kParseArenaBytes = 16 * 1024;
using Allocator = rapidjson::MemoryPoolAllocator<>;
using Document = rapidjson::GenericDocument<rapidjson::UTF8<>, Allocator>;
using Value = Document::ValueType;

std::string Finish(const rapidjson::StringBuffer& buffer) {
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::string_view StringOf(const Value& object, const char* key) {
  auto it = object.FindMember(key);
  if (it == object.MemberEnd() || !it->value.IsString()) return {};
  return absl::string_view(it->value.GetString(), it->value.GetStringLength());
}

uint64_t UintOf(const Value& object, const char* key) {
  auto it = object.FindMember(key);
  if (it == object.MemberEnd() || !it->value.IsUint64()) return 0;
  return it->value.GetUint64();
}

bool HasObject(const Value& object, const char* key) {
  auto it = object.FindMember(key);
  return it != object.MemberEnd() && it->value.IsObject();
}

ServerMessageType TypeOf(absl::string_view type) {
  if (type == "ScopeSync") return ServerMessageType::kScopeSync;
  if (type == "ScopeSyncReply") return ServerMessageType::kScopeSyncReply;
  if (type == "Ping") return ServerMessageType::kPing;
  if (type == "ScopeFetchReply") return ServerMessageType::kScopeFetchReply;
  if (type == "ScopeState") return ServerMessageType::kScopeState;
  if (type == "SessionCreateReply") {
    return ServerMessageType::kSessionCreateReply;
  }
  return ServerMessageType::kOther;
}

// Fills `m` from `fragments` (a ScopeState or ScopeSync fragment list).
void ReadFragments(const Value& message, ServerMessage& m) {
  auto it = message.FindMember("fragments");
  if (it == message.MemberEnd() || !it->value.IsArray()) return;
  const Value& fragments = it->value;
  m.fragment_count = fragments.Size();
  if (m.fragment_count > 0 && fragments[0].IsObject()) {
    m.root_class = StringOf(fragments[0], "clsName");
  }
  for (const Value& fragment : fragments.GetArray()) {
    if (!fragment.IsObject()) continue;
    auto props = fragment.FindMember("properties");
    if (props == fragment.MemberEnd() || !props->value.IsObject()) continue;
    int64_t stamp = ParseStamp(StringOf(props->value, kStampProperty));
    if (stamp >= 0) {
      m.stamp_us = stamp;
      return;
    }
  }
}

bool AnyFragmentError(const Value& message) {
  auto it = message.FindMember("fragmentReplies");
  if (it == message.MemberEnd() || !it->value.IsArray()) return true;
  for (const Value& reply : it->value.GetArray()) {
    if (!reply.IsObject() || HasObject(reply, "error")) return true;
  }
  return false;
}

ServerMessage Read(const Value& message) {
  ServerMessage m;
  m.type = TypeOf(StringOf(message, "type"));
  m.index = UintOf(message, "index");
  m.reply_to = UintOf(message, "replyTo");
  switch (m.type) {
    case ServerMessageType::kSessionCreateReply:
      m.error = HasObject(message, "error") ||
                StringOf(message, "sessionToken").empty();
      break;
    case ServerMessageType::kScopeFetchReply:
      m.error = HasObject(message, "error");
      m.scope_index = UintOf(message, "scopeIndex");
      break;
    case ServerMessageType::kScopeState:
      m.scope_index = UintOf(message, "scopeIndex");
      m.root_uuid = StringOf(message, "rootUUID");
      ReadFragments(message, m);
      break;
    case ServerMessageType::kScopeSync:
      m.scope_index = UintOf(message, "scopeIndex");
      ReadFragments(message, m);
      break;
    case ServerMessageType::kScopeSyncReply:
      m.error = AnyFragmentError(message);
      break;
    case ServerMessageType::kPing:
    case ServerMessageType::kOther:
      break;
  }
  return m;
}

// ---- Fast path ----
//
// Nearly every frame a loaded client receives is ScopeSyncs (one, or many
// coalesced) or one ScopeSyncReply, laid out as servers write them:
//   [{"type":"ScopeSync","index":N,"scopeIndex":M,"fragments":[...]},...]
//   [{"type":"ScopeSyncReply","index":N,"replyTo":R,"fragmentReplies":[{},{}]}]
// These are read by scanning instead of building a DOM, which would cost
// several times what the server spends sending them. Anything else, a
// reply with errors included, takes the full parse. Raw `{"type":"` and
// `"name":"` can only be JSON structure here: inside strings, quotes are
// escaped.

// Consumes `prefix` from the front of `*in`.
bool Eat(absl::string_view* in, absl::string_view prefix) {
  if (!absl::StartsWith(*in, prefix)) return false;
  in->remove_prefix(prefix.size());
  return true;
}

// Consumes a non-negative decimal integer.
bool EatUint(absl::string_view* in, uint64_t* value) {
  size_t n = 0;
  uint64_t v = 0;
  while (n < in->size() && n < 19 &&
         absl::ascii_isdigit(static_cast<unsigned char>((*in)[n]))) {
    v = v * 10 + static_cast<uint64_t>((*in)[n] - '0');
    ++n;
  }
  if (n == 0) return false;
  in->remove_prefix(n);
  *value = v;
  return true;
}

// Reads the stamp of the first fragment in `fragments` that carries one.
int64_t ScanStamp(absl::string_view fragments) {
  constexpr absl::string_view kStampKey = R"("name":")";
  for (size_t at = fragments.find(kStampKey); at != absl::string_view::npos;
       at = fragments.find(kStampKey, at + kStampKey.size())) {
    absl::string_view value = fragments.substr(at + kStampKey.size());
    value = value.substr(0, value.find('"'));
    int64_t stamp = ParseStamp(value);
    if (stamp >= 0) return stamp;
  }
  return -1;
}

// A frame of ScopeSyncs only, one or many, each laid out as above:
// coalesced deliveries (docs/protocol.md#overload) are read as cheaply per
// message as lone ones. Nothing is passed on unless the whole frame scans.
bool ScanScopeSyncs(absl::string_view frame,
                    absl::InlinedVector<ServerMessage, 4>& out) {
  constexpr absl::string_view kHead = R"({"type":"ScopeSync","index":)";
  constexpr absl::string_view kType = R"({"type":")";
  if (!Eat(&frame, "[") || !absl::ConsumeSuffix(&frame, "]")) return false;
  bool more = true;
  while (more) {
    ServerMessage m;
    if (!Eat(&frame, kHead) || !EatUint(&frame, &m.index) ||
        !Eat(&frame, R"(,"scopeIndex":)") || !EatUint(&frame, &m.scope_index) ||
        !Eat(&frame, R"(,"fragments":[)")) {
      return false;
    }
    // Every `{"type":"` ahead is a fragment (add or change) of this
    // message, or the start of the next ScopeSync.
    size_t end = frame.size();
    more = false;
    for (size_t at = frame.find(kType); at != absl::string_view::npos;
         at = frame.find(kType, at + kType.size())) {
      absl::string_view type = frame.substr(at + kType.size());
      if (absl::StartsWith(type, R"(change")") ||
          absl::StartsWith(type, R"(add")")) {
        ++m.fragment_count;
        continue;
      }
      if (!absl::StartsWith(frame.substr(at), kHead)) return false;
      end = at;
      more = true;
      break;
    }
    absl::string_view fragments = frame.substr(0, end);
    if (!absl::ConsumeSuffix(&fragments, more ? "]}," : "]}")) return false;
    m.stamp_us = ScanStamp(fragments);
    m.type = ServerMessageType::kScopeSync;
    out.push_back(m);
    frame.remove_prefix(end);
  }
  return true;
}

bool ScanLoneScopeSyncReply(absl::string_view frame, ServerMessage& m) {
  if (!Eat(&frame, R"([{"type":"ScopeSyncReply","index":)") ||
      !EatUint(&frame, &m.index) || !Eat(&frame, R"(,"replyTo":)") ||
      !EatUint(&frame, &m.reply_to) ||
      !Eat(&frame, R"(,"fragmentReplies":[{})")) {
    return false;
  }
  while (Eat(&frame, ",{}")) {
  }
  if (frame != "]}]") return false;  // errors, or another layout
  m.type = ServerMessageType::kScopeSyncReply;
  return true;
}

bool IsMessage(const Value& v) {
  if (!v.IsObject()) return false;
  auto it = v.FindMember("type");
  return it != v.MemberEnd() && it->value.IsString();
}

}  // namespace

std::string SessionCreateMessage() {
  return R"({"type":"SessionCreate","index":0,"version":"0.2.0","params":{}})";
}

std::string ScopeFetchMessage(uint64_t index, absl::string_view scope) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("type");
  w.String("ScopeFetch");
  w.Key("index");
  w.Uint64(index);
  w.Key("name");
  w.String(scope);
  w.Key("params");
  w.StartObject();
  w.EndObject();
  w.EndObject();
  return Finish(buffer);
}

std::string ScopeSyncMessage(uint64_t index, uint64_t scope_index,
                             absl::string_view root_uuid,
                             absl::string_view root_class, int64_t stamp_us) {
  char stamp[24];
  int stamp_len = std::snprintf(stamp, sizeof(stamp), "t%lld",
                                static_cast<long long>(stamp_us));
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("type");
  w.String("ScopeSync");
  w.Key("index");
  w.Uint64(index);
  w.Key("scopeIndex");
  w.Uint64(scope_index);
  w.Key("fragments");
  w.StartArray();
  w.StartObject();
  w.Key("type");
  w.String("change");
  w.Key("uuid");
  w.String(root_uuid);
  w.Key("clsName");
  w.String(root_class);
  w.Key("properties");
  w.StartObject();
  w.Key(kStampProperty);
  w.String(absl::string_view(stamp, static_cast<size_t>(stamp_len)));
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return Finish(buffer);
}

std::string PingMessage(uint64_t ack) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("type");
  w.String("Ping");
  w.Key("index");
  w.Uint64(0);
  w.Key("ack");
  w.Uint64(ack);
  w.Key("resendMissing");
  w.Bool(false);
  w.EndObject();
  return Finish(buffer);
}

absl::Status ParseServerFrame(
    absl::string_view frame, absl::FunctionRef<void(const ServerMessage&)> fn) {
  absl::InlinedVector<ServerMessage, 4> syncs;
  if (ScanScopeSyncs(frame, syncs)) {
    for (const ServerMessage& m : syncs) fn(m);
    return absl::OkStatus();
  }
  ServerMessage reply;
  if (ScanLoneScopeSyncReply(frame, reply)) {
    fn(reply);
    return absl::OkStatus();
  }
  char arena[kParseArenaBytes];
  Allocator allocator(arena, sizeof(arena));
  Document doc(&allocator);
  doc.Parse<kJsonParseFlags>(frame.data(), frame.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError("server frame is not JSON");
  }
  if (doc.IsArray()) {
    for (const Value& v : doc.GetArray()) {
      if (!IsMessage(v)) {
        return absl::InvalidArgumentError("server frame holds a non-message");
      }
    }
    for (const Value& v : doc.GetArray()) fn(Read(v));
    return absl::OkStatus();
  }
  if (!IsMessage(doc)) {
    return absl::InvalidArgumentError("server frame is not a message");
  }
  fn(Read(doc));
  return absl::OkStatus();
}

int64_t ParseStamp(absl::string_view value) {
  if (value.size() < 2 || value.size() > 20 || value[0] != 't') return -1;
  int64_t micros = 0;
  for (char c : value.substr(1)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return -1;
    micros = micros * 10 + (c - '0');
  }
  return micros;
}

}  // namespace jetstream::loadgen
