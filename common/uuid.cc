#include "common/uuid.h"

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"

namespace jetstream {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsHyphenPosition(size_t i) {
  return i == 8 || i == 13 || i == 18 || i == 23;
}

}  // namespace

std::optional<Uuid> Uuid::Parse(absl::string_view text) {
  if (text.size() != kUuidTextLength) return std::nullopt;
  Uuid id;
  size_t byte = 0;
  for (size_t i = 0; i < kUuidTextLength;) {
    if (IsHyphenPosition(i)) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    int hi = HexValue(text[i]);
    int lo = HexValue(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id.bytes_[byte++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return id;
}

Uuid Uuid::Random() {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen ABSL_GUARDED_BY(mu) = new absl::BitGen();
  uint64_t hi, lo;
  {
    absl::MutexLock lock(&mu);
    hi = absl::Uniform<uint64_t>(*gen);
    lo = absl::Uniform<uint64_t>(*gen);
  }
  Uuid id;
  __builtin_memcpy(id.bytes_.data(), &hi, 8);
  __builtin_memcpy(id.bytes_.data() + 8, &lo, 8);
  id.bytes_[6] = (id.bytes_[6] & 0x0f) | 0x40;  // version 4
  id.bytes_[8] = (id.bytes_[8] & 0x3f) | 0x80;  // RFC 4122 variant
  return id;
}

void Uuid::FormatTo(char* out) const {
  static constexpr char kDigits[] = "0123456789abcdef";
  size_t pos = 0;
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[pos++] = '-';
    out[pos++] = kDigits[bytes_[i] >> 4];
    out[pos++] = kDigits[bytes_[i] & 0xf];
  }
}

std::string Uuid::ToString() const {
  std::string out(kUuidTextLength, '\0');
  FormatTo(out.data());
  return out;
}

}  // namespace jetstream
