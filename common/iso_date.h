// ISO-8601 date-times for Date values: what the original JavaScript client
// sends (JSON.stringify of a Date) and reads back (new Date(string)).
// Dates are seconds since the Unix epoch everywhere else (docs/protocol.md,
// "Dates").
#ifndef JETSTREAM_COMMON_ISO_DATE_H_
#define JETSTREAM_COMMON_ISO_DATE_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace jetstream {

// Seconds since the epoch of an ISO-8601 date-time in the extended format:
// "2015-01-01T12:00:00.000Z", with or without a fraction of a second (any
// number of digits), seconds optional ("…T12:00Z"), and "Z" or an offset
// ("+01:00", "-0530", "+01"); a date alone ("2015-01-01") is midnight UTC.
// Years are four digits, or a sign and six ("+275760-09-13T00:00:00Z").
// nullopt for anything else, including out-of-range fields (month 13,
// February 30, hour 24, second 60).
std::optional<double> ParseIsoDate(absl::string_view text);

// `seconds` since the epoch as JavaScript's Date.prototype.toISOString()
// writes it: UTC, milliseconds (rounded), "2015-01-01T12:00:00.000Z".
// nullopt for a value a JavaScript Date cannot hold (not finite, or beyond
// ±8.64e12 seconds).
std::optional<std::string> FormatIsoDate(double seconds);

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_ISO_DATE_H_
