#include "gateway/protocol/client_message.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fragment_json.h"
#include "common/procedure_name.h"

namespace jetstream::gateway {
namespace {

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

// A JSON number that is a non-negative integer (docs/protocol.md#parsing).
std::optional<uint64_t> AsUint(const JsonValue& v) {
  if (v.IsUint64()) return v.GetUint64();
  if (v.IsDouble()) {
    double d = v.GetDouble();
    if (d >= 0 && d < 18446744073709551616.0 && std::trunc(d) == d) {
      return static_cast<uint64_t>(d);
    }
  }
  return std::nullopt;
}

const JsonValue* Member(const JsonValue& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::string ToJsonText(const JsonValue& v) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  v.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// Params are re-serialised (ToJsonText) and RapidJSON's writer recurses
// once per level: deeper params are refused rather than let a client
// exhaust the stack. Real params are a few levels deep.
constexpr size_t kMaxParamsDepth = 64;

// True if `v` nests no deeper than `max_depth` (v itself is level 1).
// Iterative: the input may be arbitrarily deep.
bool DepthAtMost(const JsonValue& v, size_t max_depth) {
  std::vector<std::pair<const JsonValue*, size_t>> stack = {{&v, 1}};
  while (!stack.empty()) {
    auto [value, depth] = stack.back();
    stack.pop_back();
    if (depth > max_depth) return false;
    if (value->IsArray()) {
      for (const JsonValue& e : value->GetArray()) {
        if (e.IsArray() || e.IsObject()) stack.push_back({&e, depth + 1});
      }
    } else if (value->IsObject()) {
      for (const auto& m : value->GetObject()) {
        if (m.value.IsArray() || m.value.IsObject()) {
          stack.push_back({&m.value, depth + 1});
        }
      }
    }
  }
  return true;
}

// `params`: absent or null means {}; otherwise it must be an object.
absl::Status ReadParams(const JsonValue& json, std::string* out) {
  const JsonValue* params = Member(json, "params");
  if (params == nullptr || params->IsNull()) return absl::OkStatus();
  if (!params->IsObject()) return Invalid("Invalid params");
  if (!DepthAtMost(*params, kMaxParamsDepth)) {
    return Invalid("Invalid params: nested too deeply");
  }
  *out = ToJsonText(*params);
  return absl::OkStatus();
}

bool IsNumericIdentifier(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return s.size() == 1 || s[0] != '0';
}

bool IsIdentifierList(absl::string_view s, bool allow_leading_zeros) {
  if (s.empty()) return false;
  for (absl::string_view part : absl::StrSplit(s, '.')) {
    if (part.empty()) return false;
    bool numeric = true;
    for (char c : part) {
      if (!(absl::ascii_isalnum(c) || c == '-')) return false;
      numeric = numeric && absl::ascii_isdigit(c);
    }
    if (numeric && !allow_leading_zeros && !IsNumericIdentifier(part)) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool IsValidSemver(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  if (!v.empty() && (v[0] == 'v' || v[0] == '=')) v.remove_prefix(1);
  absl::string_view build, pre;
  if (size_t plus = v.find('+'); plus != absl::string_view::npos) {
    build = v.substr(plus + 1);
    v = v.substr(0, plus);
    if (!IsIdentifierList(build, /*allow_leading_zeros=*/true)) return false;
  }
  if (size_t dash = v.find('-'); dash != absl::string_view::npos) {
    pre = v.substr(dash + 1);
    v = v.substr(0, dash);
    if (!IsIdentifierList(pre, /*allow_leading_zeros=*/false)) return false;
  }
  std::vector<absl::string_view> core = absl::StrSplit(v, '.');
  if (core.size() != 3) return false;
  for (absl::string_view n : core) {
    if (!IsNumericIdentifier(n) || n.size() > 16) return false;
  }
  return true;
}

absl::string_view ClientMessageTypeName(ClientMessageType type) {
  switch (type) {
    case ClientMessageType::kReply:
      return "Reply";
    case ClientMessageType::kSessionCreate:
      return "SessionCreate";
    case ClientMessageType::kSessionCreateReply:
      return "SessionCreateReply";
    case ClientMessageType::kScopeFetch:
      return "ScopeFetch";
    case ClientMessageType::kScopeState:
      return "ScopeState";
    case ClientMessageType::kScopeSync:
      return "ScopeSync";
    case ClientMessageType::kPing:
      return "Ping";
  }
  return "?";
}

absl::StatusOr<ClientMessage> ParseClientMessage(const JsonValue& json) {
  if (!json.IsObject()) return Invalid("Unrecognized message type");
  const JsonValue* type = Member(json, "type");
  if (type == nullptr || !type->IsString()) {
    return Invalid("Unrecognized message type");
  }
  absl::string_view type_name(type->GetString(), type->GetStringLength());
  ClientMessage m;
  if (type_name == "Reply") {
    m.type = ClientMessageType::kReply;
  } else if (type_name == "SessionCreate") {
    m.type = ClientMessageType::kSessionCreate;
  } else if (type_name == "SessionCreateReply") {
    m.type = ClientMessageType::kSessionCreateReply;
  } else if (type_name == "ScopeFetch") {
    m.type = ClientMessageType::kScopeFetch;
  } else if (type_name == "ScopeState") {
    m.type = ClientMessageType::kScopeState;
  } else if (type_name == "ScopeSync") {
    m.type = ClientMessageType::kScopeSync;
  } else if (type_name == "Ping") {
    m.type = ClientMessageType::kPing;
  } else {
    // ScopeFetchReply and ScopeSyncReply are not parseable by a server.
    return Invalid("Unrecognized message type");
  }

  const JsonValue* index = Member(json, "index");
  std::optional<uint64_t> index_value = index ? AsUint(*index) : std::nullopt;
  if (!index_value) {
    return Invalid("Message requires to be reliably sent with an index");
  }
  m.index = *index_value;

  switch (m.type) {
    case ClientMessageType::kReply: {
      const JsonValue* reply_to = Member(json, "replyTo");
      auto v = reply_to ? AsUint(*reply_to) : std::nullopt;
      if (!v) return Invalid("Invalid replyTo");
      m.reply_to = *v;
      break;
    }
    case ClientMessageType::kSessionCreate: {
      const JsonValue* version = Member(json, "version");
      if (version == nullptr || !version->IsString()) {
        return Invalid("Requires version");
      }
      m.version.assign(version->GetString(), version->GetStringLength());
      if (!IsValidSemver(m.version)) return Invalid("Requires valid version");
      if (absl::Status s = ReadParams(json, &m.params_json); !s.ok()) return s;
      break;
    }
    case ClientMessageType::kSessionCreateReply: {
      const JsonValue* token = Member(json, "sessionToken");
      const JsonValue* error = Member(json, "error");
      if (!(token && token->IsString()) && !(error && error->IsObject())) {
        return Invalid("Requires sessionToken or Error");
      }
      break;
    }
    case ClientMessageType::kScopeFetch: {
      const JsonValue* name = Member(json, "name");
      if (name == nullptr || !name->IsString()) return Invalid("Invalid name");
      m.name.assign(name->GetString(), name->GetStringLength());
      if (absl::Status s = ReadParams(json, &m.params_json); !s.ok()) return s;
      break;
    }
    case ClientMessageType::kScopeState:
    case ClientMessageType::kScopeSync: {
      const JsonValue* scope_index = Member(json, "scopeIndex");
      auto v = scope_index ? AsUint(*scope_index) : std::nullopt;
      if (!v) return Invalid("Invalid scopeIndex");
      m.scope_index = *v;
      const JsonValue* fragments = Member(json, "fragments");
      if (fragments == nullptr || !fragments->IsArray()) {
        return Invalid("SyncFragments not on `fragments`");
      }
      absl::StatusOr<std::vector<SyncFragment>> parsed =
          DecodeFragments(*fragments);
      if (!parsed.ok()) return parsed.status();
      m.fragments = *std::move(parsed);
      if (m.type == ClientMessageType::kScopeState) {
        const JsonValue* root = Member(json, "rootUUID");
        if (root == nullptr || !root->IsString()) {
          return Invalid("Invalid rootUUID");
        }
        break;
      }
      const JsonValue* atomic = Member(json, "atomic");
      if (atomic != nullptr && !atomic->IsNull()) {
        if (!atomic->IsBool()) return Invalid("Invalid atomic");
        m.atomic = atomic->GetBool();
      }
      const JsonValue* procedure = Member(json, "procedure");
      if (procedure != nullptr && !procedure->IsNull()) {
        if (!procedure->IsString()) return Invalid("Invalid procedure");
        m.procedure.assign(procedure->GetString(),
                           procedure->GetStringLength());
        // Only the presence of the key is required
        // (docs/protocol.md#kept-quirks: clients rely on it and it is
        // harmless).
        if (atomic == nullptr)
          return Invalid("Procedure requires to be atomic");
        if (!ParseProcedureName(m.procedure).has_value()) {
          return Invalid(kBadProcedureName);
        }
      }
      break;
    }
    case ClientMessageType::kPing: {
      const JsonValue* ack = Member(json, "ack");
      auto v = ack ? AsUint(*ack) : std::nullopt;
      if (!v) return Invalid("Invalid ack");
      m.ack = *v;
      const JsonValue* resend = Member(json, "resendMissing");
      m.resend_missing =
          resend != nullptr && resend->IsBool() && resend->GetBool();
      break;
    }
  }
  return m;
}

namespace {

// The messages of a parsed frame.
absl::StatusOr<std::vector<ClientMessage>> FrameMessages(
    const JsonValue& doc, const ParseLimits& limits) {
  std::vector<ClientMessage> messages;
  if (doc.IsArray()) {
    if (doc.Size() > limits.max_messages_per_frame) {
      return Invalid(absl::StrCat("Frame has more than ",
                                  limits.max_messages_per_frame, " messages"));
    }
    messages.reserve(doc.Size());
    for (const JsonValue& element : doc.GetArray()) {
      absl::StatusOr<ClientMessage> m = ParseClientMessage(element);
      if (!m.ok()) return m.status();
      messages.push_back(*std::move(m));
    }
    std::stable_sort(messages.begin(), messages.end(),
                     [](const ClientMessage& a, const ClientMessage& b) {
                       return a.index < b.index;
                     });
    return messages;
  }
  bool falsy = doc.IsNull() || (doc.IsBool() && !doc.GetBool()) ||
               (doc.IsNumber() && doc.GetDouble() == 0) ||
               (doc.IsString() && doc.GetStringLength() == 0);
  if (falsy) return Invalid("No message(s) to parse");
  absl::StatusOr<ClientMessage> m = ParseClientMessage(doc);
  if (!m.ok()) return m.status();
  messages.push_back(*std::move(m));
  return messages;
}

}  // namespace

absl::StatusOr<std::vector<ClientMessage>> ParseClientFrameInsitu(
    char* frame, size_t size, bool utf8_validated, const ParseLimits& limits) {
  if (size == 0) return Invalid("No message(s) to parse");
  // One parser per thread: a frame is parsed and decoded in one go, and the
  // parser's memory is reused by the next frame on this thread (no per-frame
  // pool chunk, no per-connection buffers).
  thread_local JsonParser parser;
  absl::StatusOr<const JsonValue*> doc =
      parser.ParseInsitu(frame, /*validate_utf8=*/!utf8_validated);
  if (!doc.ok()) {
    return Invalid("Could not parse message input, input was not JSON");
  }
  return FrameMessages(**doc, limits);
}

absl::StatusOr<std::vector<ClientMessage>> ParseClientFrame(
    absl::string_view frame, const ParseLimits& limits) {
  std::string copy(frame);  // NUL-terminated, modifiable
  return ParseClientFrameInsitu(copy.data(), copy.size(),
                                /*utf8_validated=*/false, limits);
}

}  // namespace jetstream::gateway
