// File: common/trace_context.cc

#include "common/trace_context.h"

#include <cstdint>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

namespace jetstream {
namespace {

// 16 hex digits of a random non-zero number.
std::string RandomHex64() {
  static absl::Mutex mu;
  static absl::BitGen* const gen = new absl::BitGen();
  uint64_t v = 0;
  {
    absl::MutexLock lock(&mu);
    while (v == 0) v = absl::Uniform<uint64_t>(*gen);
  }
  return absl::StrFormat("%016x", v);
}

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

bool AllZero(absl::string_view s) { return s.find_first_not_of('0') == s.npos; }

}  // namespace

std::string NewTraceparent() {
  return absl::StrCat("00-", RandomHex64(), RandomHex64(), "-", RandomHex64(),
                      "-01");
}

bool IsValidTraceparent(absl::string_view t) {
  // 00-<32>-<16>-<2>: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 characters.
  if (t.size() != 55 || t.substr(0, 3) != "00-" || t[35] != '-' ||
      t[52] != '-') {
    return false;
  }
  const absl::string_view trace = t.substr(3, 32), span = t.substr(36, 16),
                          flags = t.substr(53, 2);
  return IsLowerHex(trace) && IsLowerHex(span) && IsLowerHex(flags) &&
         !AllZero(trace) && !AllZero(span);
}

std::string ChildTraceparent(absl::string_view parent) {
  if (!IsValidTraceparent(parent)) return NewTraceparent();
  return absl::StrCat(parent.substr(0, 36), RandomHex64(), parent.substr(52));
}

absl::string_view TraceIdOf(absl::string_view traceparent) {
  return IsValidTraceparent(traceparent) ? traceparent.substr(3, 32)
                                         : absl::string_view();
}

}  // namespace jetstream
