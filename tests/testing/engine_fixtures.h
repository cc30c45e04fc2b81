// File: tests/testing/engine_fixtures.h
//
// Helpers for engine tests: the demo schema, fragment builders that read
// like the wire format, and short names for UUIDs.

#ifndef JETSTREAM_TESTS_TESTING_ENGINE_FIXTURES_H_
#define JETSTREAM_TESTS_TESTING_ENGINE_FIXTURES_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/sync_fragment.h"
#include "syncservice/engine/schema.h"
#include "syncservice/engine/scope.h"

namespace jetstream::testing {

// The demo schema (Canvas/Shape, ChatRoom/...), parsed from
// syncservice/config/demo_schema.json. Aborts the test binary if missing.
std::shared_ptr<const Schema> DemoSchema();

// A deterministic UUID for test object number `n`:
// "00000000-0000-4000-8000-<n as 12 hex digits>".
Uuid TestUuid(uint64_t n);
std::string TestUuidString(uint64_t n);

// Parses one fragment from JSON, e.g.
// Fragment(R"({"type":"change","uuid":"...","clsName":"Shape","properties":{"x":1}})").
// Aborts on a parse error.
SyncFragment Fragment(absl::string_view json);
// Parses a JSON array of fragments.
std::vector<SyncFragment> Fragments(absl::string_view json);

SyncFragment Add(Uuid uuid, absl::string_view cls,
                 absl::string_view properties_json = "{}");
SyncFragment Change(Uuid uuid, absl::string_view cls,
                    absl::string_view properties_json = "{}");

// The state of `scope` as JSON (the ScopeState fragments array).
std::string StateJson(const Scope& scope);

// The error message of each reply, "" for success.
std::vector<std::string> ReplyMessages(const ChangesetResult& result);

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_TESTING_ENGINE_FIXTURES_H_
