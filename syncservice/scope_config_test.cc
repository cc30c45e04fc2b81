#include "syncservice/scope_config.h"

#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "syncservice/engine/schema_loader.h"
#include "syncservice/engine/scope.h"
#include "tests/testing/status_matchers.h"

namespace jetstream {
namespace {

using ::testing::HasSubstr;

constexpr char kSchemaPath[] = "syncservice/config/demo_schema.json";
constexpr char kScopesPath[] = "syncservice/config/demo_scopes.json";

std::shared_ptr<const Schema> Schema() {
  static auto* schema = new std::shared_ptr<const jetstream::Schema>(
      LoadSchemaFile(kSchemaPath).value());
  return *schema;
}

// The object a reference property of `object` names.
const ModelObject* Follow(const Scope& scope, const ModelObject& object,
                          absl::string_view property) {
  const Value* v = object.Get(property);
  if (v == nullptr || !v->is_string()) return nullptr;
  return scope.Find(*Uuid::Parse(v->as_string()));
}

TEST(ScopeConfigTest, DemoFileLoads) {
  absl::StatusOr<ScopeConfig> config = LoadScopeConfigFile(kScopesPath);
  ASSERT_OK(config);
  EXPECT_EQ(config->source, kScopesPath);
  ASSERT_EQ(config->scopes.size(), 2u);
  EXPECT_EQ(config->scopes[0].name, "Canvas");
  EXPECT_EQ(config->scopes[0].root.cls_name, "Canvas");
  EXPECT_EQ(config->scopes[1].name, "ChatRoom");
  ASSERT_EQ(config->templates.size(), 2u);
  EXPECT_EQ(config->templates[0].pattern, "canvas/*");
  EXPECT_EQ(config->templates[1].pattern, "chat/*");
}

TEST(ScopeConfigTest, DemoScopesBuild) {
  ScopeConfig config = LoadScopeConfigFile(kScopesPath).value();

  absl::StatusOr<std::unique_ptr<Scope>> canvas =
      BuildScope(Schema(), config.scopes[0].root, "canvas");
  ASSERT_OK(canvas);
  EXPECT_EQ((*canvas)->root().type().name(), "Canvas");
  EXPECT_EQ(*(*canvas)->root().Get("name"), Value::String("Shapes Demo"));
  EXPECT_EQ((*canvas)->size(), 1u);

  absl::StatusOr<std::unique_ptr<Scope>> chat =
      BuildScope(Schema(), config.scopes[1].root, "chat");
  ASSERT_OK(chat);
  const Scope& scope = **chat;
  EXPECT_EQ(*scope.root().Get("name"), Value::String("Chat Demo"));
  EXPECT_EQ(scope.size(), 2u);
  const ModelObject* attributes = Follow(scope, scope.root(), "attributes");
  ASSERT_NE(attributes, nullptr);
  EXPECT_EQ(attributes->type().name(), "ChatRoomAttributes");
  EXPECT_EQ(*attributes->Get("topic"), Value::String("Welcome"));
  EXPECT_EQ(*attributes->Get("status"), Value::Number(0));
  EXPECT_OK(scope.CheckInvariants());

  for (const TemplateSpec& t : config.templates) {
    EXPECT_TRUE(BuildScope(Schema(), t.root, t.pattern).ok()) << t.pattern;
  }
}

TEST(ScopeConfigTest, NestedObjectsInArraysAndDeeper) {
  ScopeConfig config = ParseScopeConfig(R"({"scopes": [{
      "name": "Room",
      "root": {"clsName": "ChatRoom", "properties": {
        "name": "Room",
        "users": [{"clsName": "User", "properties": {"username": "ann"}}],
        "messages": [
          {"clsName": "Message", "properties": {
             "text": "hi",
             "author": {"clsName": "User", "properties": {"username": "bob"}}}},
          {"clsName": "Message", "properties": {"text": "there"}}
        ]}}}]})",
                                        "test.json")
                           .value();
  absl::StatusOr<std::unique_ptr<Scope>> built =
      BuildScope(Schema(), config.scopes[0].root, "room");
  ASSERT_OK(built);
  const Scope& scope = **built;
  EXPECT_EQ(scope.size(), 5u);  // root, ann, bob, two messages
  EXPECT_OK(scope.CheckInvariants());

  const Value& messages = *scope.root().Get("messages");
  ASSERT_TRUE(messages.is_array());
  ASSERT_EQ(messages.as_array().size(), 2u);
  const ModelObject* first =
      scope.Find(*Uuid::Parse(messages.as_array()[0].as_string()));
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(*first->Get("text"), Value::String("hi"));
  const ModelObject* author = Follow(scope, *first, "author");
  ASSERT_NE(author, nullptr);
  EXPECT_EQ(*author->Get("username"), Value::String("bob"));

  // Every build mints fresh UUIDs.
  std::unique_ptr<Scope> again =
      BuildScope(Schema(), config.scopes[0].root, "room").value();
  EXPECT_NE(again->root().uuid(), scope.root().uuid());
  EXPECT_NE(*again->root().Get("messages"), messages);
}

TEST(ScopeConfigTest, EmptyListsAreFine) {
  absl::StatusOr<ScopeConfig> config = ParseScopeConfig("{}", "empty.json");
  ASSERT_OK(config);
  EXPECT_TRUE(config->scopes.empty());
  EXPECT_TRUE(config->templates.empty());
}

TEST(ScopeConfigTest, FirstMatchingTemplateWins) {
  ScopeConfig config = ParseScopeConfig(R"({"templates": [
      {"pattern": "a/special", "root": {"clsName": "Canvas"}},
      {"pattern": "a/*", "root": {"clsName": "ChatRoom"}},
      {"pattern": "*", "root": {"clsName": "Canvas"}}]})",
                                        "t.json")
                           .value();
  ASSERT_NE(config.FindTemplate("a/special"), nullptr);
  EXPECT_EQ(config.FindTemplate("a/special")->pattern, "a/special");
  EXPECT_EQ(config.FindTemplate("a/other")->pattern, "a/*");
  EXPECT_EQ(config.FindTemplate("b")->pattern, "*");
  ScopeConfig none = ParseScopeConfig("{}", "t.json").value();
  EXPECT_EQ(none.FindTemplate("a"), nullptr);
}

// Parse errors name the file and, where there is one, the scope.
struct BadFile {
  const char* json;
  const char* expected;  // substrings of the message, in order
};

class BadScopesFileTest : public ::testing::TestWithParam<BadFile> {};

TEST_P(BadScopesFileTest, ClearError) {
  absl::StatusOr<ScopeConfig> config =
      ParseScopeConfig(GetParam().json, "conf/scopes.json");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()),
              ::testing::StartsWith("conf/scopes.json: "));
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    Errors, BadScopesFileTest,
    ::testing::Values(
        BadFile{"{", "not valid JSON"}, BadFile{"[]", "must be a JSON object"},
        BadFile{R"({"scope": []})", "unknown key 'scope'"},
        BadFile{R"({"scopes": {}})", "\"scopes\" must be an array"},
        BadFile{R"({"scopes": [{"root": {"clsName": "Canvas"}}]})",
                "scope #0: requires a non-empty string \"name\""},
        BadFile{R"({"scopes": [{"name": "A"}]})",
                "scope 'A': requires \"root\""},
        BadFile{R"({"scopes": [{"name": "A", "root": {"clsName": "Canvas"}},
                               {"name": "A", "root": {"clsName": "Canvas"}}]})",
                "scope 'A': duplicate scope name"},
        BadFile{R"({"scopes": [{"name": "A", "root": {"properties": {}}}]})",
                "scope 'A': an object requires a non-empty string \"clsName\""},
        BadFile{R"({"scopes": [{"name": "A", "root": {"clsName": "ChatRoom",
                  "properties": {"attributes": {"topic": "x"}}}}]})",
                "scope 'A': property 'attributes': an object requires"},
        BadFile{R"({"scopes": [{"name": "A", "root": {"clsName": "Canvas",
                  "properties": {"shapes": [[1]]}}}]})",
                "scope 'A': property 'shapes': arrays must not contain arrays"},
        BadFile{R"({"scopes": [{"name": "A", "root": {"clsName": "Canvas",
                  "colour": 1}}]})",
                "scope 'A': unknown key 'colour'"},
        BadFile{R"({"scopes": [{"name": "A", "root": {"clsName": "Canvas"},
                  "params": {}}]})",
                "scope 'A': unknown key 'params'"},
        BadFile{R"({"templates": [{"pattern": "", "root": {"clsName": "C"}}]})",
                "template #0: requires a non-empty string \"pattern\""}));

TEST(ScopeConfigTest, BuildErrorsNameTheScopeAndTheReason) {
  ScopeConfig config = ParseScopeConfig(R"({"scopes": [
      {"name": "NoModel", "root": {"clsName": "Nope"}},
      {"name": "NoProp", "root": {"clsName": "Canvas", "properties": {"nme": "x"}}},
      {"name": "BadNested", "root": {"clsName": "ChatRoom", "properties": {
         "attributes": {"clsName": "ChatRoomAttributes",
                        "properties": {"status": 7}}}}},
      {"name": "WrongClass", "root": {"clsName": "Canvas", "properties": {
         "shapes": [{"clsName": "User"}]}}}]})",
                                        "conf/scopes.json")
                           .value();
  auto error = [&](size_t i) {
    absl::StatusOr<std::unique_ptr<Scope>> s =
        BuildScope(Schema(), config.scopes[i].root,
                   "conf/scopes.json: scope '" + config.scopes[i].name + "'");
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.status().message());
  };
  EXPECT_THAT(error(0), HasSubstr("conf/scopes.json: scope 'NoModel': "
                                  "No such model 'Nope'"));
  EXPECT_EQ(error(1),
            "conf/scopes.json: scope 'NoProp': the root Canvas is refused: "
            "No property at 'nme'");
  EXPECT_THAT(error(2),
              HasSubstr("conf/scopes.json: scope 'BadNested': a nested "
                        "ChatRoomAttributes object is refused: Not valid type "
                        "at 'status'"));
  EXPECT_THAT(error(3), HasSubstr("conf/scopes.json: scope 'WrongClass': "));
}

TEST(ScopeConfigTest, MissingFileNamesThePath) {
  absl::StatusOr<ScopeConfig> config = LoadScopeConfigFile("no/such/file.json");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("no/such/file.json"));
}

}  // namespace
}  // namespace jetstream
