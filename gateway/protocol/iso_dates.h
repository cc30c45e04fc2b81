// Dates for clients that read them with JavaScript's `new Date(value)`:
// the original JavaScript client (version 0.1.x) takes a number as
// milliseconds, so its sessions get Dates as ISO-8601 strings instead of
// seconds (docs/protocol.md#client-js).
#ifndef JETSTREAM_GATEWAY_PROTOCOL_ISO_DATES_H_
#define JETSTREAM_GATEWAY_PROTOCOL_ISO_DATES_H_

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"

namespace jetstream::gateway {

// "Model.property" of every Date and [Date] property of a scope's schema
// (ScopeSnapshot.date_properties).
using DateProperties = absl::flat_hash_set<std::string>;

// Whether a session announcing `client_version` in SessionCreate reads
// Dates as ISO-8601 strings: the original JavaScript client, "0.1.x".
bool ReadsIsoDates(absl::string_view client_version);

// DatesAsIsoStrings()
//
// `fragments_json`, a JSON array of fragments as the sync service writes
// them (a fragment's `clsName` before its `properties`), with every value
// of a property in `dates` written as an ISO-8601 string (a [Date] as an
// array of them). A Date too large for a JavaScript Date stays a number.
// Everything else is kept, numbers as written. Text that does not parse is
// returned unchanged.
std::string DatesAsIsoStrings(absl::string_view fragments_json,
                              const DateProperties& dates);

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_PROTOCOL_ISO_DATES_H_
