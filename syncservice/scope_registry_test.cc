#include "syncservice/scope_registry.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "syncservice/scope_config.h"
#include "tests/testing/engine_fixtures.h"

namespace jetstream {
namespace {

using ::jetstream::testing::DemoSchema;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"({
  "scopes": [
    {"name": "Canvas", "root": {"clsName": "Canvas", "properties": {"name": "Static"}}},
    {"name": "canvas/fixed", "root": {"clsName": "Canvas", "properties": {"name": "Fixed"}}}
  ],
  "templates": [
    {"pattern": "canvas/*", "root": {"clsName": "Canvas", "properties": {"name": "Templated"}}},
    {"pattern": "chat/*", "root": {"clsName": "ChatRoom", "properties": {
       "attributes": {"clsName": "ChatRoomAttributes", "properties": {"topic": "T"}}}}}
  ]
})";

std::unique_ptr<ScopeRegistry> NewRegistry(ScopeRegistryOptions options = {}) {
  return ScopeRegistry::Create(DemoSchema(),
                               ParseScopeConfig(kConfig, "test.json").value(),
                               options)
      .value();
}

std::string StateOf(ScopeHost& host) { return *host.Snapshot().fragments_json; }

TEST(ScopeRegistryTest, StaticScopesExistFromTheStart) {
  auto registry = NewRegistry();
  ASSERT_NE(registry->Find("Canvas"), nullptr);
  absl::StatusOr<std::shared_ptr<ScopeHost>> host = registry->Fetch("Canvas");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->get(), registry->Find("Canvas").get());
  EXPECT_EQ((*host)->name(), "Canvas");
}

TEST(ScopeRegistryTest, UnknownNamesAreNoSuchScope) {
  auto registry = NewRegistry();
  absl::StatusOr<std::shared_ptr<ScopeHost>> host = registry->Fetch("Nope");
  EXPECT_EQ(host.status(), absl::NotFoundError("No such scope"));
  EXPECT_EQ(registry->Find("Nope"), nullptr);
}

TEST(ScopeRegistryTest, TemplatesCreateOnFirstFetchOnly) {
  auto registry = NewRegistry();
  EXPECT_EQ(registry->Find("chat/lobby"), nullptr);
  std::shared_ptr<ScopeHost> first = registry->Fetch("chat/lobby").value();
  EXPECT_EQ(first->Info().root_model, "ChatRoom");
  EXPECT_EQ(first->Info().object_count, 2u);
  EXPECT_EQ(registry->Fetch("chat/lobby").value(), first);
  EXPECT_EQ(registry->Find("chat/lobby"), first);
  // Another name, another scope with its own objects and epoch.
  std::shared_ptr<ScopeHost> other = registry->Fetch("chat/other").value();
  EXPECT_NE(other, first);
  EXPECT_NE(other->Snapshot().root_uuid, first->Snapshot().root_uuid);
  EXPECT_NE(other->epoch(), first->epoch());
}

TEST(ScopeRegistryTest, StaticScopesTakePrecedenceOverTemplates) {
  auto registry = NewRegistry();
  EXPECT_THAT(StateOf(*registry->Fetch("canvas/fixed").value()),
              HasSubstr(R"("name":"Fixed")"));
  EXPECT_THAT(StateOf(*registry->Fetch("canvas/x").value()),
              HasSubstr(R"("name":"Templated")"));
}

TEST(ScopeRegistryTest, ListIsSortedByName) {
  auto registry = NewRegistry();
  registry->Fetch("chat/b").value();
  registry->Fetch("canvas/a").value();
  std::vector<std::string> names;
  for (const auto& host : registry->List()) names.push_back(host->name());
  EXPECT_EQ(names, (std::vector<std::string>{"Canvas", "canvas/a",
                                             "canvas/fixed", "chat/b"}));
}

TEST(ScopeRegistryTest, LimitsOnTemplateScopes) {
  ScopeRegistryOptions options;
  options.max_scopes = 3;
  options.max_name_length = 16;
  auto registry = NewRegistry(options);
  EXPECT_TRUE(registry->Fetch("chat/1").ok());
  EXPECT_EQ(registry->Fetch("chat/2").status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(registry->Fetch("chat/1").ok());  // existing ones still work
  EXPECT_EQ(registry->Fetch("chat/a-very-long-name").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ScopeRegistryTest, BadScopesFailAtStartupNamingFileAndScope) {
  absl::StatusOr<std::unique_ptr<ScopeRegistry>> registry =
      ScopeRegistry::Create(
          DemoSchema(),
          ParseScopeConfig(R"({"scopes": [{"name": "Broken", "root":
              {"clsName": "Canvas", "properties": {"shapes": 3}}}]})",
                           "conf/scopes.json")
              .value());
  ASSERT_FALSE(registry.ok());
  EXPECT_EQ(registry.status().message(),
            "conf/scopes.json: scope 'Broken': the root Canvas is refused: "
            "Not valid type at 'shapes', should be array of UUIDs");
}

TEST(ScopeRegistryTest, BadTemplatesFailAtStartupToo) {
  absl::StatusOr<std::unique_ptr<ScopeRegistry>> registry =
      ScopeRegistry::Create(
          DemoSchema(),
          ParseScopeConfig(R"({"templates": [{"pattern": "x/*", "root":
              {"clsName": "Unknown"}}]})",
                           "conf/scopes.json")
              .value());
  ASSERT_FALSE(registry.ok());
  EXPECT_EQ(registry.status().message(),
            "conf/scopes.json: template 'x/*': No such model 'Unknown' for a "
            "scope root");
}

}  // namespace
}  // namespace jetstream
