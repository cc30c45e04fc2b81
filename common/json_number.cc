#include "common/json_number.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace jetstream {

size_t FormatJsonNumberTo(double value, char* out) {
  if (!std::isfinite(value)) {
    std::memcpy(out, "null", 4);
    return 4;
  }
  if (value == 0) {  // also -0, which JavaScript prints as "0"
    out[0] = '0';
    return 1;
  }
  // Integers below 2^53 (counts, coordinates, colours, whole seconds): their
  // decimal digits are the shortest round-trip form, printed without an
  // exponent, so the general path below would produce the same text.
  if (std::fabs(value) < 9007199254740992.0 && value == std::trunc(value)) {
    auto r = std::to_chars(out, out + kMaxJsonNumberLength,
                           static_cast<int64_t>(value));
    return static_cast<size_t>(r.ptr - out);
  }
  size_t len = 0;
  if (value < 0) {
    out[len++] = '-';
    value = -value;
  }
  // Shortest round-trip digits in scientific form: d[.ddd]e[+-]xx.
  char sci[kMaxJsonNumberLength];
  auto res = std::to_chars(sci, sci + sizeof(sci), value,
                           std::chars_format::scientific);
  char digits[20];
  int k = 0;  // number of significant digits
  const char* p = sci;
  for (; p < res.ptr && *p != 'e'; ++p) {
    if (*p != '.') digits[k++] = *p;
  }
  // p points at 'e', followed by a sign and the decimal exponent.
  int exp10 = 0;
  std::from_chars(p + 2, res.ptr, exp10);
  if (p[1] == '-') exp10 = -exp10;
  // value = 0.d1d2..dk * 10^n
  int n = exp10 + 1;

  if (k <= n && n <= 21) {  // integer: digits then zeros
    std::memcpy(out + len, digits, k);
    len += k;
    for (int i = k; i < n; ++i) out[len++] = '0';
  } else if (0 < n && n <= 21) {  // decimal point inside the digits
    std::memcpy(out + len, digits, n);
    len += n;
    out[len++] = '.';
    std::memcpy(out + len, digits + n, k - n);
    len += k - n;
  } else if (-6 < n && n <= 0) {  // 0.000ddd
    out[len++] = '0';
    out[len++] = '.';
    for (int i = 0; i < -n; ++i) out[len++] = '0';
    std::memcpy(out + len, digits, k);
    len += k;
  } else {  // exponent form: d[.ddd]e+x
    out[len++] = digits[0];
    if (k > 1) {
      out[len++] = '.';
      std::memcpy(out + len, digits + 1, k - 1);
      len += k - 1;
    }
    out[len++] = 'e';
    int e = n - 1;
    out[len++] = e < 0 ? '-' : '+';
    auto r = std::to_chars(out + len, out + len + 8, e < 0 ? -e : e);
    len = r.ptr - out;
  }
  return len;
}

std::string FormatJsonNumber(double value) {
  char buf[kMaxJsonNumberLength];
  return std::string(buf, FormatJsonNumberTo(value, buf));
}

}  // namespace jetstream
