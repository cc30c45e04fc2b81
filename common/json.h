// File: common/json.h
//
// The project's JSON toolkit: RapidJSON (Debian's rapidjson-dev) with the
// parse flags every caller must use for untrusted input, and a writer that
// renders numbers the way JavaScript does. All JSON in the project goes
// through these helpers.

#ifndef JETSTREAM_COMMON_JSON_H_
#define JETSTREAM_COMMON_JSON_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace jetstream {

using JsonValue = rapidjson::Value;
using JsonDocument = rapidjson::Document;

// Iterative parsing: deeply nested input cannot exhaust the stack. Invalid
// UTF-8 is refused. Numbers keep full double precision.
inline constexpr unsigned kJsonParseFlags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
    rapidjson::kParseFullPrecisionFlag;

// ParseJson()
//
// Parses `text` into `doc`. On failure returns kInvalidArgument with the
// parser's message and offset. `doc` owns all decoded strings (copied).
absl::Status ParseJson(absl::string_view text, JsonDocument& doc);

// The double value of a JSON number of any representation.
inline double JsonNumber(const JsonValue& v) { return v.GetDouble(); }

// JsonWriter
//
// A RapidJSON writer into a string buffer whose Number() renders doubles as
// JavaScript would (see common/json_number.h). Not thread-safe.
class JsonWriter : public rapidjson::Writer<rapidjson::StringBuffer> {
  using Base = rapidjson::Writer<rapidjson::StringBuffer>;

 public:
  explicit JsonWriter(rapidjson::StringBuffer& buffer) : Base(buffer) {}

  void Number(double value);
  // SAX handler entry points, so a parsed value can be re-written with
  // value.Accept(writer); doubles take the JavaScript rendering.
  using Base::Key;
  using Base::String;
  bool Double(double value) {
    Number(value);
    return true;
  }
  void Key(absl::string_view key) { String(key); }
  void String(absl::string_view s) {
    rapidjson::Writer<rapidjson::StringBuffer>::String(
        s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
  // Copies already-encoded JSON (e.g. a cached fragment list) verbatim.
  void Raw(absl::string_view json, rapidjson::Type type) {
    RawValue(json.data(), json.size(), type);
  }
  using rapidjson::Writer<rapidjson::StringBuffer>::Bool;
  using rapidjson::Writer<rapidjson::StringBuffer>::Null;
  using rapidjson::Writer<rapidjson::StringBuffer>::Uint64;
};

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_JSON_H_
