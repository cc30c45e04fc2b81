#include "syncservice/hooks/procedure_constraints.h"

#include "gtest/gtest.h"
#include "syncservice/hooks/hook_config.h"

namespace jetstream::hooks {
namespace {

const char kRoom[] = "0f3c2a8e-5b1d-4c7e-9a11-3d2f6b7c8e90";
const char kMsg[] = "6b1e0c3a-2f4d-4b8e-8c9a-1e2d3f4a5b6c";
const char kOld[] = "a4d1c2b3-0000-4000-8000-00000000000a";

std::vector<ProcedureConstraint> PostMessage() {
  absl::StatusOr<HookConfig> config = ParseHookConfig(R"({"procedures": [
      {"name": "ChatRoom.postMessage", "endpoint": "x",
       "constraints": [
         {"type": "add", "clsName": "Message",
          "properties": {"text": {"$hasNewValue": true}},
          "allowAdditionalProperties": true},
         {"type": "change", "clsName": "ChatRoom",
          "properties": {"messages": {"$array": "insert"}}}]}]})",
                                                      "t");
  return config->procedures.at("ChatRoom.postMessage").constraints;
}

SyncFragment Fragment(FragmentType type, const char* uuid, const char* cls,
                      PropertyList properties) {
  SyncFragment f;
  f.type = type;
  f.uuid = *Uuid::Parse(uuid);
  f.cls_name = cls;
  f.properties = std::move(properties);
  return f;
}

std::vector<ObjectSnapshot> RoomWith(int messages) {
  Value::Array list;
  for (int i = 0; i < messages; ++i) list.push_back(Value::String(kOld));
  return {ObjectSnapshot{
      *Uuid::Parse(kRoom), "ChatRoom", {{"messages", Value::ArrayOf(list)}}}};
}

TEST(ProcedureConstraintsTest, PostMessageMatches) {
  std::vector<SyncFragment> fragments = {
      Fragment(FragmentType::kAdd, kMsg, "Message",
               {{"text", Value::String("hi")}, {"postedAt", Value::Number(1)}}),
      Fragment(FragmentType::kChange, kRoom, "ChatRoom",
               {{"messages",
                 Value::ArrayOf({Value::String(kOld), Value::String(kMsg)})}})};
  EXPECT_TRUE(MatchesConstraints(PostMessage(), fragments, RoomWith(1)));
  // The array did not grow.
  EXPECT_FALSE(MatchesConstraints(PostMessage(), fragments, RoomWith(2)));
}

TEST(ProcedureConstraintsTest, EveryFragmentMustMatch) {
  std::vector<SyncFragment> fragments = {
      Fragment(FragmentType::kAdd, kMsg, "Message", {}),  // no text
  };
  EXPECT_FALSE(MatchesConstraints(PostMessage(), fragments, RoomWith(0)));
  fragments = {Fragment(FragmentType::kChange, kRoom, "ChatRoom",
                        {{"messages", Value::ArrayOf({Value::String(kMsg)})},
                         {"name", Value::String("x")}})};
  // Additional properties are not allowed on the second constraint.
  EXPECT_FALSE(MatchesConstraints(PostMessage(), fragments, RoomWith(0)));
}

TEST(ProcedureConstraintsTest, NoConstraintsMatchOnlyEmptyChangesets) {
  EXPECT_TRUE(MatchesConstraints({}, {}, {}));
  EXPECT_FALSE(MatchesConstraints(
      {}, {Fragment(FragmentType::kAdd, kMsg, "Message", {})}, {}));
}

TEST(ProcedureConstraintsTest, LiteralsAndRemove) {
  ProcedureConstraint c;
  c.type = FragmentType::kChange;
  c.cls_name = "ChatRoom";
  PropertyConstraint remove;
  remove.kind = PropertyConstraint::Kind::kArrayRemove;
  c.properties = {{"messages", remove}};
  SyncFragment shorter = Fragment(FragmentType::kChange, kRoom, "ChatRoom",
                                  {{"messages", Value::ArrayOf({})}});
  EXPECT_TRUE(MatchesConstraint(c, shorter, RoomWith(1)));
  EXPECT_FALSE(MatchesConstraint(c, shorter, RoomWith(0)));
  PropertyConstraint literal;
  literal.value = Value::String("closed");
  c.properties = {{"status", literal}};
  EXPECT_TRUE(
      MatchesConstraint(c,
                        Fragment(FragmentType::kChange, kRoom, "ChatRoom",
                                 {{"status", Value::String("closed")}}),
                        {}));
  EXPECT_FALSE(
      MatchesConstraint(c,
                        Fragment(FragmentType::kChange, kRoom, "ChatRoom",
                                 {{"status", Value::String("open")}}),
                        {}));
}

}  // namespace
}  // namespace jetstream::hooks
