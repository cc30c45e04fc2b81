#include "common/iso_date.h"

#include <cmath>
#include <cstdint>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"

namespace jetstream {
namespace {

// JavaScript's Date holds ±8.64e15 ms.
constexpr double kMaxSeconds = 8.64e12;

bool IsLeap(int64_t year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int DaysInMonth(int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeap(year) ? 29 : kDays[month - 1];
}

// Days from 1970-01-01 to year-month-day (proleptic Gregorian).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// The inverse of DaysFromCivil.
void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

// Reads exactly `n` digits from `*text` into `*out`.
bool Digits(absl::string_view* text, int n, int64_t* out) {
  if (static_cast<int>(text->size()) < n) return false;
  int64_t v = 0;
  for (int i = 0; i < n; ++i) {
    const char c = (*text)[i];
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    v = v * 10 + (c - '0');
  }
  text->remove_prefix(n);
  *out = v;
  return true;
}

bool Consume(absl::string_view* text, char c) {
  if (text->empty() || (*text)[0] != c) return false;
  text->remove_prefix(1);
  return true;
}

}  // namespace

std::optional<double> ParseIsoDate(absl::string_view text) {
  int64_t year = 0, month = 0, day = 0;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    const bool negative = text[0] == '-';
    text.remove_prefix(1);
    if (!Digits(&text, 6, &year)) return std::nullopt;
    if (negative) {
      if (year == 0) return std::nullopt;  // "-000000" is not a year
      year = -year;
    }
  } else if (!Digits(&text, 4, &year)) {
    return std::nullopt;
  }
  if (!Consume(&text, '-') || !Digits(&text, 2, &month) ||
      !Consume(&text, '-') || !Digits(&text, 2, &day)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 ||
      day > DaysInMonth(year, static_cast<int>(month))) {
    return std::nullopt;
  }
  double seconds =
      86400.0 * static_cast<double>(DaysFromCivil(year, static_cast<int>(month),
                                                  static_cast<int>(day)));
  if (text.empty()) return seconds;  // a date alone: midnight UTC

  if (!Consume(&text, 'T') && !Consume(&text, 't')) return std::nullopt;
  int64_t hour = 0, minute = 0, second = 0;
  if (!Digits(&text, 2, &hour) || !Consume(&text, ':') ||
      !Digits(&text, 2, &minute)) {
    return std::nullopt;
  }
  double fraction = 0;
  if (Consume(&text, ':')) {
    if (!Digits(&text, 2, &second)) return std::nullopt;
    if (Consume(&text, '.') || Consume(&text, ',')) {
      double scale = 0.1;
      int n = 0;
      while (!text.empty() &&
             absl::ascii_isdigit(static_cast<unsigned char>(text[0]))) {
        fraction += scale * (text[0] - '0');
        scale /= 10;
        text.remove_prefix(1);
        ++n;
      }
      if (n == 0) return std::nullopt;
    }
  }
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  seconds += static_cast<double>(hour * 3600 + minute * 60 + second);

  // The zone: required once there is a time (a time without one is local
  // time in JavaScript, which a server cannot know).
  if (Consume(&text, 'Z') || Consume(&text, 'z')) {
    // UTC
  } else if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    const int sign = text[0] == '+' ? 1 : -1;
    text.remove_prefix(1);
    int64_t off_h = 0, off_m = 0;
    if (!Digits(&text, 2, &off_h)) return std::nullopt;
    if (Consume(&text, ':')) {
      if (!Digits(&text, 2, &off_m)) return std::nullopt;
    } else if (!text.empty()) {
      if (!Digits(&text, 2, &off_m)) return std::nullopt;
    }
    if (off_h > 23 || off_m > 59) return std::nullopt;
    seconds -= sign * static_cast<double>(off_h * 3600 + off_m * 60);
  } else {
    return std::nullopt;
  }
  if (!text.empty()) return std::nullopt;
  seconds += fraction;
  if (std::fabs(seconds) > kMaxSeconds) return std::nullopt;
  return seconds;
}

std::optional<std::string> FormatIsoDate(double seconds) {
  if (!std::isfinite(seconds) || std::fabs(seconds) > kMaxSeconds) {
    return std::nullopt;
  }
  const int64_t ms = static_cast<int64_t>(std::llround(seconds * 1000.0));
  int64_t days = ms / 86400000;
  int64_t rest = ms % 86400000;
  if (rest < 0) {
    rest += 86400000;
    --days;
  }
  int64_t year = 0;
  int month = 0, day = 0;
  CivilFromDays(days, &year, &month, &day);
  const int64_t hour = rest / 3600000;
  const int64_t minute = rest / 60000 % 60;
  const int64_t second = rest / 1000 % 60;
  const int64_t milli = rest % 1000;
  std::string year_text = year >= 0 && year <= 9999
                              ? absl::StrFormat("%04d", year)
                              : absl::StrFormat("%c%06d", year < 0 ? '-' : '+',
                                                year < 0 ? -year : year);
  return absl::StrFormat("%s-%02d-%02dT%02d:%02d:%02d.%03dZ", year_text, month,
                         day, hour, minute, second, milli);
}

}  // namespace jetstream
