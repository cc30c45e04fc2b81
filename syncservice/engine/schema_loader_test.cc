// The schema loader: ports of the original server's test/enumeration.js and
// of the schema half of test/model_object.js (`has`, inheritance), plus the
// loader's own rules (error texts naming file/model/property, inheritance
// cycles, defaults, arrays, CanContain, files, the demo schema).
#include "syncservice/engine/schema_loader.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "syncservice/engine/schema.h"
#include "syncservice/engine/scope.h"
#include "tests/testing/engine_fixtures.h"
#include "tests/testing/status_matchers.h"

namespace jetstream {
namespace {

using ::jetstream::testing::Add;
using ::jetstream::testing::Change;
using ::jetstream::testing::DemoSchema;
using ::jetstream::testing::ReplyMessages;
using ::jetstream::testing::TestUuid;
using ::jetstream::testing::TestUuidString;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<std::shared_ptr<const Schema>> Parse(absl::string_view json) {
  return ParseSchema(json, "x.json");
}

// The load error of `json`, or "<ok>" if it loads.
std::string ErrorOf(absl::string_view json) {
  auto schema = Parse(json);
  if (schema.ok()) return "<ok>";
  EXPECT_EQ(schema.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(schema.status().message());
}

// A schema holding the given enumerations and one trivial model.
std::string WithEnumerations(absl::string_view enumerations) {
  return absl::StrCat(R"({"enumerations":{)", enumerations,
                      R"(},"models":{"M":{"properties":{}}}})");
}

std::vector<std::string> PropertyNames(const ModelType& model) {
  std::vector<std::string> names;
  for (const Property& p : model.properties()) names.push_back(p.name);
  return names;
}

// ---------------------------------------------------------------------------
// test/enumeration.js

TEST(EnumerationTest, DefinesStringEnumeration) {
  auto schema = Parse(
      WithEnumerations(R"("Mood":{"type":"String","values":["Happy","Sad"]})"));
  ASSERT_OK(schema);
  const Enumeration* e = (*schema)->FindEnumeration("Mood");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->name, "Mood");
  EXPECT_FALSE(e->numeric);
  EXPECT_THAT(e->values,
              ElementsAre(Value::String("Happy"), Value::String("Sad")));
  EXPECT_TRUE(e->Contains(Value::String("Sad")));
  EXPECT_FALSE(e->Contains(Value::String("Angry")));
  EXPECT_FALSE(e->Contains(Value::Number(0)));
  EXPECT_EQ(e->ValuesJson(), R"(["Happy","Sad"])");
}

TEST(EnumerationTest, DefinesNumberEnumeration) {
  auto schema = Parse(WithEnumerations(
      R"("ChatRoomStatus":{"type":"Number","values":{"Open":0,"Closed":1}})"));
  ASSERT_OK(schema);
  const Enumeration* e = (*schema)->FindEnumeration("ChatRoomStatus");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->numeric);
  EXPECT_THAT(e->labels, ElementsAre("Open", "Closed"));
  EXPECT_THAT(e->values, ElementsAre(Value::Number(0), Value::Number(1)));
  EXPECT_TRUE(e->Contains(Value::Number(1)));
  EXPECT_FALSE(e->Contains(Value::Number(2)));
  EXPECT_FALSE(e->Contains(Value::String("Open")));
  EXPECT_EQ(e->ValuesJson(), "[0,1]");
  EXPECT_EQ((*schema)->FindEnumeration("Nope"), nullptr);
}

TEST(EnumerationTest, ThrowsWhenNameNotGiven) {
  EXPECT_EQ(ErrorOf(WithEnumerations(R"("":{"type":"String","values":["A"]})")),
            "x.json: enumeration '': a name needs letters, digits or '_'");
}

TEST(EnumerationTest, ThrowsWhenTypeNotStringOrNumber) {
  const std::string expected =
      R"(x.json: enumeration 'E': 'type' must be "String" or "Number")";
  EXPECT_EQ(
      ErrorOf(WithEnumerations(R"("E":{"type":"Boolean","values":[true]})")),
      expected);
  EXPECT_EQ(ErrorOf(WithEnumerations(R"("E":{"values":["A"]})")), expected);
  EXPECT_EQ(ErrorOf(WithEnumerations(R"("E":{"type":7,"values":["A"]})")),
            expected);
}

TEST(EnumerationTest, ThrowsWhenStringValuesNotAnArray) {
  EXPECT_EQ(ErrorOf(WithEnumerations(R"("E":{"type":"String","values":"A"})")),
            "x.json: enumeration 'E': 'values' must be a non-empty array of "
            "strings");
  EXPECT_EQ(ErrorOf(WithEnumerations(R"("E":{"type":"String"})")),
            "x.json: enumeration 'E': requires 'values'");
}

TEST(EnumerationTest, ThrowsWhenStringValuesEmpty) {
  EXPECT_EQ(ErrorOf(WithEnumerations(R"("E":{"type":"String","values":[]})")),
            "x.json: enumeration 'E': 'values' must be a non-empty array of "
            "strings");
}

TEST(EnumerationTest, ThrowsWhenStringValuesNotAllStrings) {
  EXPECT_EQ(
      ErrorOf(WithEnumerations(R"("E":{"type":"String","values":["A",1]})")),
      "x.json: enumeration 'E': every value must be a string");
}

TEST(EnumerationTest, ThrowsWhenNumberValuesEmptyOrNotAnObject) {
  const std::string expected =
      "x.json: enumeration 'E': 'values' must be a non-empty object of names "
      "to integers";
  EXPECT_EQ(ErrorOf(WithEnumerations(R"("E":{"type":"Number","values":{}})")),
            expected);
  EXPECT_EQ(
      ErrorOf(WithEnumerations(R"("E":{"type":"Number","values":[0,1]})")),
      expected);
}

TEST(EnumerationTest, ThrowsWhenNumberValuesNotAllIntegers) {
  EXPECT_EQ(ErrorOf(WithEnumerations(
                R"("E":{"type":"Number","values":{"A":0,"B":1.5}})")),
            "x.json: enumeration 'E': value 'B' is not an integer");
  EXPECT_EQ(
      ErrorOf(WithEnumerations(R"("E":{"type":"Number","values":{"A":"0"}})")),
      "x.json: enumeration 'E': value 'A' is not an integer");
  // Integers written with a fraction or an exponent are integers.
  EXPECT_EQ(ErrorOf(WithEnumerations(
                R"("E":{"type":"Number","values":{"A":1.0,"B":2e1,"C":-3}})")),
            "<ok>");
}

TEST(EnumerationTest, RepeatedValuesAndNameClashesAreErrors) {
  EXPECT_EQ(ErrorOf(WithEnumerations(
                R"("E":{"type":"Number","values":{"A":0,"B":0}})")),
            "x.json: enumeration 'E': value 'B' repeats an earlier value");
  EXPECT_EQ(
      ErrorOf(WithEnumerations(R"("E":{"type":"String","values":["A","A"]})")),
      R"(x.json: enumeration 'E': value "A" is repeated)");
  EXPECT_EQ(
      ErrorOf(WithEnumerations(R"("Date":{"type":"String","values":["A"]})")),
      "x.json: enumeration 'Date': the name is a built-in type");
  EXPECT_EQ(ErrorOf(R"({"enumerations":{"M":{"type":"String","values":["A"]}},
                        "models":{"M":{}}})"),
            "x.json: model 'M': the name is already an enumeration");
}

// ---------------------------------------------------------------------------
// test/model_object.js, `has` and inheritance

TEST(ModelSchemaTest, RedefiningAnInheritedPropertyIsAnError) {
  EXPECT_EQ(ErrorOf(R"({"models":{
                "Base":{"properties":{"a":"Number"}},
                "Sub":{"extends":"Base","properties":{"a":"String"}}}})"),
            "x.json: model 'Sub', property 'a': already defined by a base "
            "model");
}

TEST(ModelSchemaTest, DefiningAPropertyTwiceIsAnError) {
  EXPECT_EQ(
      ErrorOf(R"({"models":{"M":{"properties":{"a":"Number","a":"String"}}}})"),
      "x.json: model 'M', property 'a': defined twice");
  // A model with a base that repeats one of its *own* properties.
  EXPECT_EQ(ErrorOf(R"({"models":{
                "Base":{"properties":{"a":"Number"}},
                "Sub":{"extends":"Base","properties":{"b":"Number","b":"Number"}}}})"),
            "x.json: model 'Sub', property 'b': defined twice");
}

TEST(ModelSchemaTest, InheritsSupertypeProperties) {
  auto schema = Parse(R"({"models":{
      "Base":{"properties":{"a":"Number","b":"[Base]"}},
      "Sub":{"extends":"Base","properties":{"c":"String"}}}})");
  ASSERT_OK(schema);
  const ModelType* base = (*schema)->FindModel("Base");
  const ModelType* sub = (*schema)->FindModel("Sub");
  ASSERT_NE(base, nullptr);
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(sub->base(), base);
  EXPECT_EQ(base->base(), nullptr);
  ASSERT_NE(sub->FindProperty("a"), nullptr);
  EXPECT_EQ(sub->FindProperty("a")->type.base, BaseType::kNumber);
  ASSERT_NE(sub->FindProperty("b"), nullptr);
  EXPECT_EQ(sub->FindProperty("b")->type.model, base);
  EXPECT_EQ(base->FindProperty("c"), nullptr);
  EXPECT_TRUE(sub->IsA(*base));
  EXPECT_TRUE(sub->IsA(*sub));
  EXPECT_FALSE(base->IsA(*sub));
  // The inherited reference property is a reference property of Sub too.
  EXPECT_THAT(sub->reference_properties(), ElementsAre(1u));
}

TEST(ModelSchemaTest, PropertiesListInheritedFirst) {
  auto schema = Parse(R"({"models":{
      "A":{"properties":{"a1":"Number","a2":"String"}},
      "B":{"extends":"A","properties":{"b1":"Boolean"}},
      "C":{"extends":"B","properties":{"c1":"Date","c2":"[A]"}}}})");
  ASSERT_OK(schema);
  const ModelType* c = (*schema)->FindModel("C");
  EXPECT_THAT(PropertyNames(*c), ElementsAre("a1", "a2", "b1", "c1", "c2"));
  for (uint32_t i = 0; i < c->properties().size(); ++i) {
    EXPECT_EQ(c->properties()[i].index, i);
  }
  EXPECT_THAT(c->reference_properties(), ElementsAre(4u));
  EXPECT_THAT(PropertyNames(*(*schema)->FindModel("B")),
              ElementsAre("a1", "a2", "b1"));
}

TEST(ModelSchemaTest, LateInheritanceSubclassDeclaredBeforeItsBase) {
  auto schema = Parse(R"({"models":{
      "Circle":{"extends":"Round","properties":{"radius":"Number"}},
      "Round":{"extends":"Shape","properties":{"smooth":"Boolean"}},
      "Shape":{"properties":{"x":"Number","y":"Number"}}}})");
  ASSERT_OK(schema);
  const ModelType* circle = (*schema)->FindModel("Circle");
  EXPECT_THAT(PropertyNames(*circle),
              ElementsAre("x", "y", "smooth", "radius"));
  EXPECT_TRUE(circle->IsA(*(*schema)->FindModel("Shape")));
  // models() keeps declaration order.
  ASSERT_EQ((*schema)->models().size(), 3u);
  EXPECT_EQ((*schema)->models()[0]->name(), "Circle");
  EXPECT_EQ((*schema)->models()[2]->name(), "Shape");
}

TEST(ModelSchemaTest, UnknownTypeErrorNamesFileModelAndProperty) {
  EXPECT_EQ(
      ErrorOf(
          R"({"models":{"Shape":{"properties":{"x":"Number","color":"Colour"}}}})"),
      "x.json: model 'Shape', property 'color': unknown type 'Colour'");
  EXPECT_EQ(ErrorOf(R"({"models":{"Shape":{"properties":{"xs":"[Colour]"}}}})"),
            "x.json: model 'Shape', property 'xs': unknown type '[Colour]'");
  EXPECT_EQ(
      ErrorOf(R"({"models":{"Shape":{"properties":{"xs":"[[Number]]"}}}})"),
      "x.json: model 'Shape', property 'xs': unknown type '[[Number]]'");
  EXPECT_EQ(
      ErrorOf(R"({"models":{"Shape":{"properties":{"x":{"type":"number"}}}}})"),
      "x.json: model 'Shape', property 'x': unknown type 'number'");
  // The source name is whatever the caller passes.
  auto schema = ParseSchema(R"({"models":{"S":{"properties":{"c":"Colour"}}}})",
                            "conf/other.json");
  EXPECT_EQ(schema.status().message(),
            "conf/other.json: model 'S', property 'c': unknown type 'Colour'");
}

TEST(ModelSchemaTest, InheritanceCycleIsAnError) {
  EXPECT_EQ(ErrorOf(R"({"models":{"A":{"extends":"B"},"B":{"extends":"A"}}})"),
            "x.json: model 'A': inheritance forms a cycle");
  EXPECT_EQ(ErrorOf(R"({"models":{"A":{"extends":"A"}}})"),
            "x.json: model 'A': inheritance forms a cycle");
  EXPECT_EQ(
      ErrorOf(R"({"models":{"X":{},"A":{"extends":"B"},"B":{"extends":"C"},
                        "C":{"extends":"A"}}})"),
      "x.json: model 'A': inheritance forms a cycle");
}

TEST(ModelSchemaTest, StructuralErrors) {
  EXPECT_EQ(ErrorOf(R"({"models":{"A":{"extends":"Nope"}}})"),
            "x.json: model 'A': extends unknown model 'Nope'");
  EXPECT_EQ(ErrorOf(R"({"models":{"A":{"extends":3}}})"),
            "x.json: model 'A': 'extends' must be a model name");
  EXPECT_EQ(ErrorOf(R"({"models":{}})"),
            "x.json: 'models' must be a non-empty object");
  EXPECT_EQ(ErrorOf(R"({"enumerations":{}})"),
            "x.json: 'models' must be a non-empty object");
  EXPECT_EQ(ErrorOf(R"([])"), "x.json: the schema must be a JSON object");
  EXPECT_EQ(ErrorOf(R"({"models":{"A":{}},"extra":1})"),
            "x.json: unknown key 'extra' (expected 'enumerations', 'models')");
  EXPECT_EQ(ErrorOf(R"({"models":{"A":{"props":{}}}})"),
            "x.json: model 'A': unknown key 'props' (expected 'extends', "
            "'properties')");
  EXPECT_EQ(ErrorOf(R"({"models":{"A":[]}})"),
            "x.json: model 'A': must be an object");
  EXPECT_EQ(ErrorOf(R"({"models":{"String":{}}})"),
            "x.json: model 'String': the name is a built-in type");
  EXPECT_EQ(ErrorOf(R"({"models":{"A-B":{}}})"),
            "x.json: model 'A-B': a name needs letters, digits or '_'");
  EXPECT_EQ(ErrorOf(R"({"models":{"A":{"properties":[]}}})"),
            "x.json: model 'A': 'properties' must be an object");
  EXPECT_EQ(ErrorOf(R"({"models":{"A":{"properties":{"x":5}}}})"),
            "x.json: model 'A', property 'x': the type must be a string such "
            "as \"Number\"");
  EXPECT_EQ(ErrorOf(R"({"models":{"A":{"properties":{"x":{"default":1}}}}})"),
            "x.json: model 'A', property 'x': requires 'type'");
  EXPECT_EQ(
      ErrorOf(
          R"({"models":{"A":{"properties":{"x":{"type":"Number","min":1}}}}})"),
      "x.json: model 'A', property 'x': unknown key 'min' (expected "
      "'type', 'default')");
  // Not JSON at all: the source is named.
  auto bad = Parse("{models");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              ::testing::StartsWith("x.json: "));
}

// ---------------------------------------------------------------------------
// Defaults

TEST(SchemaDefaultsTest, ValidDefaultsApplyToNewObjects) {
  auto schema = Parse(R"({
    "enumerations":{"Level":{"type":"Number","values":{"Low":0,"High":1}}},
    "models":{
      "Root":{"properties":{"title":{"type":"String","default":"Untitled"},
                            "items":"[Item]"}},
      "Item":{"properties":{"x":{"type":"Number","default":5},
                            "on":{"type":"Boolean","default":true},
                            "at":{"type":"Date","default":1450582561.123},
                            "level":{"type":"Level","default":1},
                            "tags":{"type":"[String]","default":["a","b"]},
                            "plain":"Number",
                            "more":"[Number]",
                            "next":{"type":"Item","default":null},
                            "kids":{"type":"[Item]","default":[]}}}}})");
  ASSERT_OK(schema);
  const ModelType* item = (*schema)->FindModel("Item");
  EXPECT_EQ(item->FindProperty("x")->default_value, Value::Number(5));
  EXPECT_EQ(item->FindProperty("plain")->default_value, Value::Null());
  EXPECT_EQ(item->FindProperty("more")->default_value, Value::ArrayOf({}));
  EXPECT_EQ(item->FindProperty("kids")->default_value, Value::ArrayOf({}));

  // The root of a new scope and an added object start from the defaults.
  auto scope = Scope::Create(*schema, "Root", TestUuid(1));
  ASSERT_OK(scope);
  EXPECT_EQ(*(*scope)->root().Get("title"), Value::String("Untitled"));
  ChangesetResult r = (*scope)->Apply(Changeset{{
      Add(TestUuid(2), "Item", R"({"plain":3})"),
      Change(TestUuid(1), "Root",
             R"({"items":[")" + TestUuidString(2) + R"("]})"),
  }});
  EXPECT_THAT(ReplyMessages(r), ElementsAre("", ""));
  const ModelObject* added = (*scope)->Find(TestUuid(2));
  ASSERT_NE(added, nullptr);
  EXPECT_EQ(*added->Get("x"), Value::Number(5));
  EXPECT_EQ(*added->Get("on"), Value::Bool(true));
  EXPECT_EQ(*added->Get("at"), Value::Number(1450582561.123));
  EXPECT_EQ(*added->Get("level"), Value::Number(1));
  EXPECT_EQ(*added->Get("tags"),
            Value::ArrayOf({Value::String("a"), Value::String("b")}));
  EXPECT_EQ(*added->Get("plain"), Value::Number(3));
  EXPECT_EQ(*added->Get("more"), Value::ArrayOf({}));
  EXPECT_EQ(*added->Get("next"), Value::Null());
}

TEST(SchemaDefaultsTest, InvalidDefaultIsRejected) {
  EXPECT_EQ(
      ErrorOf(
          R"({"models":{"Shape":{"properties":{"x":{"type":"Number","default":"five"}}}}})"),
      R"(x.json: model 'Shape', property 'x': default "five" is not a valid Number)");
  EXPECT_EQ(
      ErrorOf(
          R"({"models":{"M":{"properties":{"d":{"type":"Date","default":"2015-12-20"}}}}})"),
      R"(x.json: model 'M', property 'd': default "2015-12-20" is not a valid Date)");
  EXPECT_EQ(
      ErrorOf(
          R"({"models":{"M":{"properties":{"b":{"type":"Boolean","default":0}}}}})"),
      "x.json: model 'M', property 'b': default 0 is not a valid Boolean");
  EXPECT_EQ(
      ErrorOf(R"({"enumerations":{"Level":{"type":"Number","values":{"Low":0}}},
                        "models":{"M":{"properties":{"l":{"type":"Level","default":3}}}}})"),
      "x.json: model 'M', property 'l': default 3 is not a valid Level");
  EXPECT_EQ(
      ErrorOf(
          R"({"models":{"M":{"properties":{"t":{"type":"[String]","default":"a"}}}}})"),
      R"(x.json: model 'M', property 't': default "a" is not a valid [String])");
  EXPECT_EQ(
      ErrorOf(
          R"({"models":{"M":{"properties":{"t":{"type":"[Number]","default":[1,"a"]}}}}})"),
      "x.json: model 'M', property 't': Property 't' array elements must "
      "all be of one type");
  EXPECT_EQ(
      ErrorOf(
          R"({"models":{"M":{"properties":{"t":{"type":"[Number]","default":["a"]}}}}})"),
      R"(x.json: model 'M', property 't': default ["a"] is not a valid [Number])");
  EXPECT_EQ(
      ErrorOf(
          R"({"models":{"M":{"properties":{"t":{"type":"[Number]","default":null}}}}})"),
      "x.json: model 'M', property 't': default null is not a valid [Number]");
  EXPECT_EQ(
      ErrorOf(
          R"({"models":{"M":{"properties":{"t":{"type":"String","default":{"a":1}}}}}})"),
      "x.json: model 'M', property 't': Property 't' not a string, number, "
      "boolean, array, date, null");
}

TEST(SchemaDefaultsTest, ReferenceDefaultIsRejected) {
  const std::string single = absl::StrCat(
      R"({"models":{"M":{"properties":{"next":{"type":"M","default":")",
      TestUuidString(1), R"("}}}}})");
  EXPECT_EQ(ErrorOf(single),
            "x.json: model 'M', property 'next': a reference cannot have a "
            "default");
  const std::string many = absl::StrCat(
      R"({"models":{"M":{"properties":{"kids":{"type":"[M]","default":[")",
      TestUuidString(1), R"("]}}}}})");
  EXPECT_EQ(ErrorOf(many),
            "x.json: model 'M', property 'kids': a reference cannot have a "
            "default");
}

// ---------------------------------------------------------------------------
// Arrays and containment

TEST(SchemaTypesTest, ArraysOfEveryBaseType) {
  auto schema = Parse(R"({
    "enumerations":{"Mood":{"type":"String","values":["Happy","Sad"]}},
    "models":{"M":{"properties":{
      "s":"[String]","n":"[Number]","b":"[Boolean]","d":"[Date]",
      "e":"[Mood]","m":"[M]","one":"M","mood":"Mood"}}}})");
  ASSERT_OK(schema);
  const ModelType* m = (*schema)->FindModel("M");
  struct Expect {
    const char* name;
    BaseType base;
    const char* type_name;
  };
  for (const Expect& e :
       std::vector<Expect>{{"s", BaseType::kString, "[String]"},
                           {"n", BaseType::kNumber, "[Number]"},
                           {"b", BaseType::kBoolean, "[Boolean]"},
                           {"d", BaseType::kDate, "[Date]"},
                           {"e", BaseType::kEnumeration, "[Mood]"},
                           {"m", BaseType::kModel, "[M]"}}) {
    SCOPED_TRACE(e.name);
    const Property* p = m->FindProperty(e.name);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(p->type.collection);
    EXPECT_EQ(p->type.base, e.base);
    EXPECT_EQ(p->type.Name(), e.type_name);
    EXPECT_EQ(p->default_value, Value::ArrayOf({}));
  }
  EXPECT_EQ(m->FindProperty("e")->type.enumeration,
            (*schema)->FindEnumeration("Mood"));
  EXPECT_EQ(m->FindProperty("m")->type.model, m);
  EXPECT_TRUE(m->FindProperty("m")->type.is_reference());
  EXPECT_FALSE(m->FindProperty("e")->type.is_reference());
  EXPECT_FALSE(m->FindProperty("one")->type.collection);
  EXPECT_EQ(m->FindProperty("one")->type.Name(), "M");
  EXPECT_EQ(m->FindProperty("mood")->type.Name(), "Mood");
  EXPECT_EQ(m->FindProperty("e")->type.ElementName(), "Mood");
  EXPECT_THAT(m->reference_properties(), ElementsAre(5u, 6u));
}

TEST(SchemaTypesTest, CanContainReachableTypesAndTheirSubclasses) {
  auto schema = Parse(R"({"models":{
      "Canvas":{"properties":{"shapes":"[Shape]","bg":"Paint"}},
      "Paint":{"properties":{"rgb":"Number"}},
      "Shape":{"properties":{"x":"Number"}},
      "Circle":{"extends":"Shape","properties":{"center":"Point"}},
      "Point":{"properties":{"x":"Number"}},
      "Base":{"properties":{}},
      "Sub":{"extends":"Base","properties":{"shape":"Shape"}},
      "Island":{"properties":{"n":"Number"}}}})");
  ASSERT_OK(schema);
  auto model = [&](const char* name) { return (*schema)->FindModel(name); };
  const ModelType& canvas = *model("Canvas");
  EXPECT_TRUE(canvas.CanContain(*model("Shape")));
  EXPECT_TRUE(canvas.CanContain(*model("Paint")));
  EXPECT_TRUE(
      canvas.CanContain(*model("Circle")));  // subclass of a reachable type
  EXPECT_TRUE(canvas.CanContain(*model("Point")));  // reachable through Circle
  EXPECT_FALSE(canvas.CanContain(canvas));  // not referenced by anything
  EXPECT_FALSE(canvas.CanContain(*model("Island")));
  EXPECT_FALSE(canvas.CanContain(*model("Base")));
  EXPECT_FALSE(canvas.CanContain(*model("Sub")));
  // Only downwards: a Shape root reaches nothing, a Circle root reaches Point.
  EXPECT_FALSE(model("Shape")->CanContain(*model("Point")));
  EXPECT_TRUE(model("Circle")->CanContain(*model("Point")));
  EXPECT_FALSE(model("Circle")->CanContain(*model("Circle")));
  // A subclass root reaches through its own declarations.
  EXPECT_TRUE(model("Sub")->CanContain(*model("Circle")));
  EXPECT_FALSE(model("Base")->CanContain(*model("Shape")));

  // The demo: ChatRoom contains its parts, Canvas only shapes.
  auto demo = DemoSchema();
  const ModelType& chat = *demo->FindModel("ChatRoom");
  for (const char* name : {"ChatRoomAttributes", "User", "Message"}) {
    EXPECT_TRUE(chat.CanContain(*demo->FindModel(name))) << name;
  }
  for (const char* name : {"ChatRoom", "Canvas", "Shape"}) {
    EXPECT_FALSE(chat.CanContain(*demo->FindModel(name))) << name;
  }
  EXPECT_TRUE(demo->FindModel("Canvas")->CanContain(*demo->FindModel("Shape")));
  EXPECT_FALSE(demo->FindModel("Canvas")->CanContain(*demo->FindModel("User")));
}

TEST(SchemaTypesTest, SelfReferenceMakesAModelContainItself) {
  auto schema =
      Parse(R"({"models":{"Node":{"properties":{"children":"[Node]"}}}})");
  ASSERT_OK(schema);
  const ModelType* node = (*schema)->FindModel("Node");
  EXPECT_TRUE(node->CanContain(*node));
}

// ---------------------------------------------------------------------------
// Files

TEST(LoadSchemaFileTest, MissingFileIsNotFoundNamingThePath) {
  auto schema = LoadSchemaFile("syncservice/config/no_such_schema.json");
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(schema.status().message(),
            "syncservice/config/no_such_schema.json: cannot open the schema "
            "file");
}

TEST(LoadSchemaFileTest, DemoSchemaLoadsWithTheExpectedModels) {
  auto loaded = LoadSchemaFile("syncservice/config/demo_schema.json");
  ASSERT_OK(loaded);
  const Schema& demo = **loaded;

  std::vector<std::string> names;
  for (const auto& m : demo.models()) names.push_back(m->name());
  EXPECT_THAT(names, ElementsAre("Canvas", "Shape", "ChatRoom",
                                 "ChatRoomAttributes", "User", "Message"));

  auto types = [&](const char* model) {
    std::vector<std::string> out;
    for (const Property& p : demo.FindModel(model)->properties()) {
      out.push_back(absl::StrCat(p.name, ":", p.type.Name()));
    }
    return out;
  };
  EXPECT_THAT(types("Canvas"), ElementsAre("name:String", "shapes:[Shape]"));
  EXPECT_THAT(types("Shape"),
              ElementsAre("x:Number", "y:Number", "width:Number",
                          "height:Number", "color:Number"));
  EXPECT_THAT(types("ChatRoom"),
              ElementsAre("name:String", "attributes:ChatRoomAttributes",
                          "users:[User]", "messages:[Message]"));
  EXPECT_THAT(types("ChatRoomAttributes"),
              ElementsAre("status:ChatRoomStatus", "topic:String",
                          "tintColor:Number", "locale:String"));
  EXPECT_THAT(types("User"), ElementsAre("username:String", "color:Number",
                                         "lastActive:Date"));
  EXPECT_THAT(types("Message"),
              ElementsAre("author:User", "postedAt:Date", "text:String"));

  const Enumeration* status = demo.FindEnumeration("ChatRoomStatus");
  ASSERT_NE(status, nullptr);
  EXPECT_TRUE(status->numeric);
  EXPECT_THAT(status->labels, ElementsAre("Open", "Closed"));
  EXPECT_EQ(status->ValuesJson(), "[0,1]");
  EXPECT_EQ(demo.FindModel("ChatRoomAttributes")
                ->FindProperty("status")
                ->type.enumeration,
            status);
  EXPECT_EQ(demo.FindModel("User")->FindProperty("lastActive")->type.base,
            BaseType::kDate);
  for (const auto& m : demo.models()) {
    EXPECT_EQ(m->base(), nullptr) << m->name();
    for (const Property& p : m->properties()) {
      EXPECT_EQ(p.default_value,
                p.type.collection ? Value::ArrayOf({}) : Value::Null())
          << m->name() << "." << p.name;
    }
  }
}

}  // namespace
}  // namespace jetstream
