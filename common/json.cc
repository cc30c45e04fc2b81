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

void JsonWriter::Number(double value) {
  char buf[kMaxJsonNumberLength];
  size_t len = FormatJsonNumberTo(value, buf);
  RawValue(buf, len, rapidjson::kNumberType);
}

}  // namespace jetstream
