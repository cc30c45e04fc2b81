#include "syncservice/hooks/hook_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::hooks {
namespace {

using ::testing::HasSubstr;

TEST(HookConfigTest, ParsesHooksAndProcedures) {
  absl::StatusOr<HookConfig> config = ParseHookConfig(R"({
    "hooks": [
      {"name": "b", "kind": "validator", "endpoint": "x:1", "order": 2},
      {"name": "a", "kind": "validator", "endpoint": "x:2", "order": 1,
       "scopes": ["canvas/*"], "models": ["Shape"], "deadline_ms": 250,
       "failure": "open"},
      {"name": "s", "kind": "session_authorizer", "endpoint": "x:3"},
      {"name": "c", "kind": "scope_authorizer", "endpoint": "x:4"}
    ],
    "procedures": [
      {"name": "ChatRoom.postMessage", "endpoint": "x:5",
       "constraints": [
         {"type": "add", "clsName": "Message",
          "properties": {"text": {"$hasNewValue": true}, "n": 3},
          "allowAdditionalProperties": true},
         {"type": "change", "clsName": "ChatRoom",
          "properties": {"messages": {"$array": "insert"}}}]}
    ]})",
                                                      "test.json");
  ASSERT_OK(config);
  ASSERT_EQ(config->validators.size(), 2u);
  EXPECT_EQ(config->validators[0].name, "a");
  EXPECT_EQ(config->validators[0].deadline, absl::Milliseconds(250));
  EXPECT_EQ(config->validators[0].failure, FailurePolicy::kOpen);
  EXPECT_EQ(config->validators[1].failure, FailurePolicy::kClosed);
  EXPECT_EQ(config->validators[1].deadline, absl::Seconds(1));
  EXPECT_TRUE(config->validators[0].AppliesToScope("canvas/1"));
  EXPECT_FALSE(config->validators[0].AppliesToScope("Canvas"));
  EXPECT_TRUE(config->validators[1].AppliesToScope("anything"));
  ASSERT_TRUE(config->session_authorizer.has_value());
  EXPECT_EQ(config->scope_authorizers.size(), 1u);
  ASSERT_EQ(config->procedures.count("ChatRoom.postMessage"), 1u);
  const HookSpec& p = config->procedures.at("ChatRoom.postMessage");
  ASSERT_EQ(p.constraints.size(), 2u);
  EXPECT_EQ(p.constraints[0].properties[0].second.kind,
            PropertyConstraint::Kind::kHasNewValue);
  EXPECT_EQ(p.constraints[0].properties[1].second.value, Value::Number(3));
  EXPECT_EQ(p.constraints[1].properties[0].second.kind,
            PropertyConstraint::Kind::kArrayInsert);
  EXPECT_FALSE(p.constraints[1].allow_additional_properties);
}

TEST(HookConfigTest, ModelsFilterFragments) {
  HookSpec spec;
  spec.models = {"Shape"};
  SyncFragment shape;
  shape.cls_name = "Shape";
  SyncFragment canvas;
  canvas.cls_name = "Canvas";
  EXPECT_TRUE(spec.AppliesToFragments({canvas, shape}));
  EXPECT_FALSE(spec.AppliesToFragments({canvas}));
}

TEST(HookConfigTest, RefusesMistakes) {
  struct Case {
    const char* json;
    const char* error;
  } cases[] = {
      {R"([])", "must be a JSON object"},
      {R"({"hook": []})", "unknown key 'hook'"},
      {R"({"hooks": [{"name": "a", "endpoint": "x"}]})", "'kind' is required"},
      {R"({"hooks": [{"name": "a", "kind": "v", "endpoint": "x"}]})",
       "unknown kind 'v'"},
      {R"({"hooks": [{"name": "a", "kind": "validator"}]})",
       "'endpoint' is required"},
      {R"({"hooks": [{"name": "a", "kind": "validator", "endpoint": "x",
          "failure": "maybe"}]})",
       "unknown failure policy 'maybe'"},
      {R"({"hooks": [{"name": "a", "kind": "validator", "endpoint": "x",
          "deadline_ms": 0}]})",
       "'deadline_ms' must be a positive integer"},
      {R"({"hooks": [{"name": "a", "kind": "validator", "endpoint": "x"},
                     {"name": "a", "kind": "validator", "endpoint": "y"}]})",
       "duplicate name 'a'"},
      {R"({"hooks": [
          {"name": "a", "kind": "session_authorizer", "endpoint": "x"},
          {"name": "b", "kind": "session_authorizer", "endpoint": "y"}]})",
       "only one session_authorizer"},
      {R"({"procedures": [{"name": "post", "endpoint": "x"}]})",
       "ModelName.procedureName"},
      {R"({"procedures": [{"name": "A.b", "endpoint": "x",
          "constraints": [{"type": "remove", "clsName": "A"}]}]})",
       "'type' must be"},
      {R"({"procedures": [{"name": "A.b", "endpoint": "x",
          "constraints": [{"type": "add", "clsName": "A",
                           "properties": {"k": {"$x": 1}}}]}]})",
       "property 'k'"},
      {R"({"procedures": [{"name": "A.b", "endpoint": "x", "kind": "v"}]})",
       "unknown key 'kind'"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<HookConfig> config = ParseHookConfig(c.json, "f.json");
    ASSERT_FALSE(config.ok()) << c.json;
    EXPECT_THAT(config.status().message(), HasSubstr(c.error)) << c.json;
    EXPECT_THAT(config.status().message(), HasSubstr("f.json"));
  }
}

TEST(HookConfigTest, MissingFileIsAnError) {
  EXPECT_FALSE(LoadHookConfigFile("/nonexistent/hooks.json").ok());
}

}  // namespace
}  // namespace jetstream::hooks
