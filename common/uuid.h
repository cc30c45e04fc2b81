// File: common/uuid.h
//
// Uuid is the 16-byte identity of a model object. On the wire a UUID is the
// canonical 8-4-4-4-12 hexadecimal form, always lower case when the server
// emits it; parsing accepts either case (clients may send upper case and the
// server lower-cases, docs/protocol.md#uuids).
//
// Example:
//   std::optional<Uuid> id =
//   Uuid::Parse("0F3C2A8E-5B1D-4C7E-9A11-3D2F6B7C8E90"); id->ToString();  //
//   "0f3c2a8e-5b1d-4c7e-9a11-3d2f6b7c8e90"

#ifndef JETSTREAM_COMMON_UUID_H_
#define JETSTREAM_COMMON_UUID_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace jetstream {

class Uuid {
 public:
  // The nil UUID (all zero bits).
  constexpr Uuid() : bytes_{} {}

  // Uuid::Parse()
  //
  // Parses the canonical textual form (36 characters, hyphens at positions
  // 8, 13, 18 and 23, hex digits of either case). Returns nullopt for
  // anything else.
  static std::optional<Uuid> Parse(absl::string_view text);

  // Uuid::Random()
  //
  // A random version 4 UUID. Thread-safe.
  static Uuid Random();

  // The canonical lower-case form.
  std::string ToString() const;
  // Writes the 36 lower-case characters to `out` (no terminator).
  void FormatTo(char* out) const;

  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  bool is_nil() const { return *this == Uuid(); }

  friend bool operator==(const Uuid& a, const Uuid& b) {
    return a.bytes_ == b.bytes_;
  }
  friend bool operator!=(const Uuid& a, const Uuid& b) { return !(a == b); }
  friend bool operator<(const Uuid& a, const Uuid& b) {
    return a.bytes_ < b.bytes_;
  }

  template <typename H>
  friend H AbslHashValue(H h, const Uuid& id) {
    uint64_t hi, lo;
    static_assert(sizeof(hi) * 2 == sizeof(id.bytes_));
    __builtin_memcpy(&hi, id.bytes_.data(), 8);
    __builtin_memcpy(&lo, id.bytes_.data() + 8, 8);
    return H::combine(std::move(h), hi, lo);
  }

 private:
  std::array<uint8_t, 16> bytes_;
};

// Length of the canonical textual form.
inline constexpr size_t kUuidTextLength = 36;

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_UUID_H_
