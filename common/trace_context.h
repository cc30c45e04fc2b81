// File: common/trace_context.h
//
// W3C Trace Context (https://www.w3.org/TR/trace-context/) `traceparent`
// values, "00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>". The
// gateway makes one for every changeset; the sync service carries it to
// every hook call as `traceparent` gRPC metadata (a child: same trace id,
// a span id of its own) and names its trace id in its log lines, so one
// changeset can be followed across the processes and the backends.
//
// Thread-safety: all functions are thread-safe.

#ifndef JETSTREAM_COMMON_TRACE_CONTEXT_H_
#define JETSTREAM_COMMON_TRACE_CONTEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace jetstream {

// A new trace: random trace id and span id, flags 01 (sampled).
std::string NewTraceparent();

// Whether `traceparent` is a version-00 value with a non-zero trace id and
// span id, in lower-case hex.
bool IsValidTraceparent(absl::string_view traceparent);

// A child of `parent` (same trace id and flags, a new span id); a new trace
// if `parent` is not valid.
std::string ChildTraceparent(absl::string_view parent);

// The trace id of a valid `traceparent`, or "" (for log lines).
absl::string_view TraceIdOf(absl::string_view traceparent);

}  // namespace jetstream

#endif  // JETSTREAM_COMMON_TRACE_CONTEXT_H_
