// File: common/json_number.h
//
// Numbers on the wire must look exactly as the original Node.js server and
// browsers print them (Number.prototype.toString, ECMA-262 6.1.6.1.20):
// the shortest digits that round-trip, integers without a fraction,
// exponent form below 1e-6 and from 1e21 on. Example: 10 -> "10",
// 1450582561.123 -> "1450582561.123", 1e21 -> "1e+21", 1e-7 -> "1e-7".

#ifndef JETSTREAM_COMMON_JSON_NUMBER_H_
#define JETSTREAM_COMMON_JSON_NUMBER_H_

#include <cstddef>
#include <string>

namespace jetstream {

// Longest output of FormatJsonNumberTo, with room to spare.
inline constexpr size_t kMaxJsonNumberLength = 32;

// Writes the JavaScript rendering of `value` to `out` (at least
// kMaxJsonNumberLength bytes) and returns its length. NaN and infinities,
// which JSON cannot carry, are written as "null" like JSON.stringify does.
size_t FormatJsonNumberTo(double value, char* out);

std::string FormatJsonNumber(double value);

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_JSON_NUMBER_H_
