#include "gateway/protocol/iso_dates.h"

#include <cstdlib>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/iso_date.h"
#include "rapidjson/memorystream.h"
#include "rapidjson/reader.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace jetstream::gateway {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// A SAX filter from the reader to a writer: everything passes through
// (numbers as their raw text), but for the values of Date properties.
class DateRewriter {
 public:
  DateRewriter(Writer& out, const DateProperties& dates)
      : out_(out), dates_(dates) {}

  bool Null() { return out_.Null(); }
  bool Bool(bool b) { return out_.Bool(b); }
  bool Int(int) { return false; }  // numbers arrive raw
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    if (InDateValue()) {
      std::optional<std::string> iso = FormatIsoDate(
          std::strtod(std::string(text, length).c_str(), nullptr));
      if (iso.has_value()) {
        return out_.String(iso->data(),
                           static_cast<rapidjson::SizeType>(iso->size()));
      }
    }
    return out_.RawValue(text, length, rapidjson::kNumberType);
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    if (depth() == 2 && key_ == "clsName") cls_.assign(text, length);
    return out_.String(text, length);
  }
  bool StartObject() {
    if (depth() == 2 && key_ == "properties") in_properties_ = depth() + 1;
    if (depth() == 1) cls_.clear();  // a new fragment
    stack_.push_back(kObject);
    return out_.StartObject();
  }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    key_.assign(text, length);
    if (depth() == in_properties_) {
      date_key_ =
          !cls_.empty() && dates_.contains(absl::StrCat(cls_, ".", key_));
    }
    return out_.Key(text, length);
  }
  bool EndObject(rapidjson::SizeType) {
    if (depth() == in_properties_) in_properties_ = -1;
    stack_.pop_back();
    return out_.EndObject();
  }
  bool StartArray() {
    stack_.push_back(kArray);
    return out_.StartArray();
  }
  bool EndArray(rapidjson::SizeType) {
    stack_.pop_back();
    return out_.EndArray();
  }

 private:
  enum Container { kObject, kArray };
  int depth() const { return static_cast<int>(stack_.size()); }
  // A value directly under a Date key of `properties`, or an element of an
  // array there.
  bool InDateValue() const {
    if (in_properties_ < 0 || !date_key_) return false;
    return depth() == in_properties_ ||
           (depth() == in_properties_ + 1 && stack_.back() == kArray);
  }

  Writer& out_;
  const DateProperties& dates_;
  std::vector<Container> stack_;
  std::string key_;         // the last key read, at any depth
  std::string cls_;         // the current fragment's clsName
  int in_properties_ = -1;  // depth of the `properties` object being read
  bool date_key_ = false;   // the last key of `properties` is a Date
};

}  // namespace

bool ReadsIsoDates(absl::string_view client_version) {
  return client_version == "0.1" || absl::StartsWith(client_version, "0.1.");
}

std::string DatesAsIsoStrings(absl::string_view fragments_json,
                              const DateProperties& dates) {
  if (dates.empty()) return std::string(fragments_json);
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  DateRewriter rewriter(writer, dates);
  rapidjson::Reader reader;
  rapidjson::MemoryStream in(fragments_json.data(), fragments_json.size());
  constexpr unsigned kFlags =
      rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseIterativeFlag;
  if (reader.Parse<kFlags>(in, rewriter).IsError()) {
    return std::string(fragments_json);
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace jetstream::gateway
