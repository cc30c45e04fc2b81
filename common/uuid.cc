#include "common/uuid.h"

#include <array>
#include <cstdint>

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"

namespace jetstream {
namespace {

// Hex digit value of each byte, or -1.
constexpr auto kHexValue = [] {
  std::array<int8_t, 256> t{};
  for (int i = 0; i < 256; ++i) t[i] = -1;
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<int8_t>(i);
  for (int i = 0; i < 6; ++i) {
    t['a' + i] = static_cast<int8_t>(10 + i);
    t['A' + i] = static_cast<int8_t>(10 + i);
  }
  return t;
}();

// Offset in the text of the first hex digit of each byte.
constexpr size_t kByteOffset[16] = {0,  2,  4,  6,  9,  11, 14, 16,
                                    19, 21, 24, 26, 28, 30, 32, 34};

}  // namespace

std::optional<Uuid> Uuid::Parse(absl::string_view text) {
  if (text.size() != kUuidTextLength || text[8] != '-' || text[13] != '-' ||
      text[18] != '-' || text[23] != '-') {
    return std::nullopt;
  }
  Uuid id;
  int bad = 0;
  for (size_t i = 0; i < 16; ++i) {
    int hi = kHexValue[static_cast<unsigned char>(text[kByteOffset[i]])];
    int lo = kHexValue[static_cast<unsigned char>(text[kByteOffset[i] + 1])];
    bad |= hi | lo;  // negative iff some digit was not hex
    id.bytes_[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  if (bad < 0) return std::nullopt;
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
