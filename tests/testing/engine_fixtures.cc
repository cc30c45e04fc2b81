#include "tests/testing/engine_fixtures.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/fragment_json.h"
#include "syncservice/engine/schema_loader.h"

namespace jetstream::testing {

std::shared_ptr<const Schema> DemoSchema() {
  static const auto* schema = [] {
    auto s = LoadSchemaFile("syncservice/config/demo_schema.json");
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
      std::abort();
    }
    return new std::shared_ptr<const Schema>(*s);
  }();
  return *schema;
}

Uuid TestUuid(uint64_t n) { return *Uuid::Parse(TestUuidString(n)); }

std::string TestUuidString(uint64_t n) {
  return absl::StrFormat("00000000-0000-4000-8000-%012x", n);
}

std::vector<SyncFragment> Fragments(absl::string_view json) {
  auto f = ParseFragmentsJson(json);
  if (!f.ok()) {
    std::fprintf(stderr, "bad test fragments %s: %s\n",
                 std::string(json).c_str(), f.status().ToString().c_str());
    std::abort();
  }
  return *std::move(f);
}

SyncFragment Fragment(absl::string_view json) {
  return Fragments(absl::StrCat("[", json, "]")).front();
}

namespace {
SyncFragment Make(absl::string_view type, Uuid uuid, absl::string_view cls,
                  absl::string_view properties_json) {
  return Fragment(absl::StrCat(R"({"type":")", type, R"(","uuid":")",
                               uuid.ToString(), R"(","clsName":")", cls,
                               R"(","properties":)", properties_json, "}"));
}
}  // namespace

SyncFragment Add(Uuid uuid, absl::string_view cls,
                 absl::string_view properties_json) {
  return Make("add", uuid, cls, properties_json);
}

SyncFragment Change(Uuid uuid, absl::string_view cls,
                    absl::string_view properties_json) {
  return Make("change", uuid, cls, properties_json);
}

std::string StateJson(const Scope& scope) {
  return EncodeFragments(scope.State().fragments);
}

std::vector<std::string> ReplyMessages(const ChangesetResult& result) {
  std::vector<std::string> out;
  for (const FragmentReply& r : result.replies) {
    out.push_back(r.ok() ? "" : r.error->message);
  }
  return out;
}

}  // namespace jetstream::testing
