#include "common/json.h"

#include "absl/strings/str_cat.h"
#include "common/json_number.h"
#include "rapidjson/error/en.h"

namespace jetstream {

absl::Status ParseJson(absl::string_view text, JsonDocument& doc) {
  doc.Parse<kJsonParseFlags>(text.data(), text.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON at offset ", doc.GetErrorOffset(), ": ",
                     rapidjson::GetParseError_En(doc.GetParseError())));
  }
  return absl::OkStatus();
}

JsonParser::JsonParser()
    : values_(value_buffer_, sizeof(value_buffer_)),
      stack_(stack_buffer_, sizeof(stack_buffer_)) {}

absl::StatusOr<const JsonValue*> JsonParser::ParseInsitu(char* text,
                                                         bool validate_utf8) {
  // The previous document's values are dropped with their memory (pool
  // allocators need no per-value destruction).
  doc_.reset();
  values_.Clear();
  stack_.Clear();
  doc_.emplace(&values_, kStackBufferBytes / 4, &stack_);
  constexpr unsigned kFlags =
      (kJsonParseFlags & ~unsigned{rapidjson::kParseValidateEncodingFlag}) |
      rapidjson::kParseInsituFlag;
  if (validate_utf8) {
    doc_->ParseInsitu<kFlags | rapidjson::kParseValidateEncodingFlag>(text);
  } else {
    doc_->ParseInsitu<kFlags>(text);
  }
  if (doc_->HasParseError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON at offset ", doc_->GetErrorOffset(), ": ",
                     rapidjson::GetParseError_En(doc_->GetParseError())));
  }
  return &*doc_;
}

void JsonWriter::Number(double value) {
  char buf[kMaxJsonNumberLength];
  size_t len = FormatJsonNumberTo(value, buf);
  RawValue(buf, len, rapidjson::kNumberType);
}

}  // namespace jetstream
