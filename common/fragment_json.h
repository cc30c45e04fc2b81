// File: common/fragment_json.h
//
// JSON for fragments, values and fragment replies, byte-compatible with the
// wire format of the original server (key order, number rendering, string
// escaping). Built on RapidJSON: its SAX writer appends straight into one
// buffer, and its in-situ DOM parser is among the fastest that Debian ships.
//
// Decoding applies the parse-time rules of docs/protocol.md#fragment-parse: a
// fragment that breaks them is an error for the whole message. Apply-time rules
// (docs/protocol.md#apply-errors) belong to
// the sync engine.

#ifndef JETSTREAM_COMMON_FRAGMENT_JSON_H_
#define JETSTREAM_COMMON_FRAGMENT_JSON_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/json.h"
#include "common/sync_fragment.h"
#include "common/value.h"

namespace jetstream {

// Decoding from a parsed JSON tree. Errors are kInvalidArgument with a
// message that names the offending key.
absl::StatusOr<Value> DecodeValue(absl::string_view key, const JsonValue& json);
absl::StatusOr<SyncFragment> DecodeFragment(const JsonValue& json);
// `json` must be an array of fragments.
absl::StatusOr<std::vector<SyncFragment>> DecodeFragments(
    const JsonValue& json);

// Parses a JSON text holding an array of fragments.
absl::StatusOr<std::vector<SyncFragment>> ParseFragmentsJson(
    absl::string_view json);

// Encoding. Fragments are written as
// {"type":...,"uuid":...,"clsName":...,"properties":{...}}, replies as {} or
// {"error":{...}} with "modifications" when there are any.
void WriteValue(JsonWriter& writer, const Value& value);
void WriteProperties(JsonWriter& writer, const PropertyList& properties);
void WriteFragment(JsonWriter& writer, const SyncFragment& fragment);
void WriteWireError(JsonWriter& writer, const WireError& error);
void WriteFragmentReply(JsonWriter& writer, const FragmentReply& reply);

// A JSON array of fragments.
std::string EncodeFragments(const std::vector<SyncFragment>& fragments);
std::string EncodeFragment(const SyncFragment& fragment);

// Low-level appenders for encoders on hot paths. They write JSON text
// straight into a buffer, byte-identical to what JsonWriter produces for the
// same string or value, without the writer's per-character bookkeeping.
//
// WriterBuffer() is the buffer `writer` writes to. Text appended to it
// bypasses the writer's state, so only append complete members or elements
// between the writer's own StartObject()/StartArray() and the matching
// End...(), including the separating commas, e.g.
//   writer.StartObject();
//   AppendJsonString(WriterBuffer(writer), "x");  // "x"
//   ... ':' and a value ...
//   writer.EndObject();
rapidjson::StringBuffer& WriterBuffer(JsonWriter& writer);
void AppendJsonString(rapidjson::StringBuffer& out, absl::string_view s);
void AppendJsonValue(rapidjson::StringBuffer& out, const Value& value);
// Appends `text` verbatim.
inline void AppendRaw(rapidjson::StringBuffer& out, absl::string_view text) {
  if (!text.empty())
    __builtin_memcpy(out.Push(text.size()), text.data(), text.size());
}

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_FRAGMENT_JSON_H_
