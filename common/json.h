// File: common/json.h
//
// The project's JSON toolkit: RapidJSON (Debian's rapidjson-dev) with the
// parse flags every caller must use for untrusted input, and a writer that
// renders numbers the way JavaScript does. All JSON in the project goes
// through these helpers.

#ifndef JETSTREAM_COMMON_JSON_H_
#define JETSTREAM_COMMON_JSON_H_

#include <optional>
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

// JsonParser
//
// Parses JSON text in place and reuses its memory from parse to parse: the
// values and the parse stack come from buffers inside the parser, so a small
// text allocates nothing (a larger one takes heap chunks, released at the
// next parse). For hot paths that parse many small texts one after another,
// such as the gateway's client frames. Same flags as ParseJson (iterative,
// full precision), UTF-8 validation on request.
//
// Not thread-safe: keep one per thread (or per connection).
class JsonParser {
 public:
  JsonParser();
  JsonParser(const JsonParser&) = delete;
  JsonParser& operator=(const JsonParser&) = delete;

  // JsonParser::ParseInsitu()
  //
  // Parses `text`, which must be followed by a NUL (text.data()[text.size()]
  // == '\0'); parsing stops at the first NUL, as ParseJson does. The text is
  // modified, and the strings of the returned value point into it: the value
  // is valid until the next call, the parser's destruction or a change of
  // the text. `validate_utf8` false: the caller guarantees valid UTF-8 (a
  // WebSocket text frame, which the WebSocket layer validated as RFC 6455
  // requires). Errors are ParseJson's.
  absl::StatusOr<const JsonValue*> ParseInsitu(char* text, bool validate_utf8);

 private:
  using Pool = rapidjson::MemoryPoolAllocator<rapidjson::CrtAllocator>;
  using Document = rapidjson::GenericDocument<rapidjson::UTF8<>, Pool, Pool>;
  static constexpr size_t kValueBufferBytes = 8 * 1024;
  static constexpr size_t kStackBufferBytes = 4 * 1024;

  alignas(16) char value_buffer_[kValueBufferBytes];
  alignas(16) char stack_buffer_[kStackBufferBytes];
  Pool values_;
  Pool stack_;
  std::optional<Document> doc_;
};

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
