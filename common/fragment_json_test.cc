#include "common/fragment_json.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace jetstream {
namespace {

constexpr char kRoot[] = "0f3c2a8e-5b1d-4c7e-9a11-3d2f6b7c8e90";
constexpr char kShape[] = "6b1e0c3a-2f4d-4b8e-8c9a-1e2d3f4a5b6c";

TEST(FragmentJsonTest, RoundTripsByteForByte) {
  const std::string json =
      std::string(R"([{"type":"change","uuid":")") + kRoot +
      R"(","clsName":"Canvas","properties":{"name":"Shapes Demo","shapes":[")" +
      kShape + R"("]}},{"type":"add","uuid":")" + kShape +
      R"(","clsName":"Shape","properties":{"x":10,"y":20.5,"width":100,"height":1e+21,"color":null,"ok":true,"tags":["a","b\n\"c\"/é"]}}])";
  absl::StatusOr<std::vector<SyncFragment>> fragments =
      ParseFragmentsJson(json);
  ASSERT_OK(fragments);
  ASSERT_EQ(fragments->size(), 2u);
  EXPECT_EQ((*fragments)[0].type, FragmentType::kChange);
  EXPECT_EQ((*fragments)[1].type, FragmentType::kAdd);
  EXPECT_EQ(EncodeFragments(*fragments), json);
}

TEST(FragmentJsonTest, LowerCasesUuidAndTreatsMissingPropertiesAsEmpty) {
  auto fragments = ParseFragmentsJson(
      R"([{"type":"change","uuid":"0F3C2A8E-5B1D-4C7E-9A11-3D2F6B7C8E90","clsName":"Canvas"},
          {"type":"change","uuid":"0f3c2a8e-5b1d-4c7e-9a11-3d2f6b7c8e90","clsName":"Canvas","properties":null}])");
  ASSERT_OK(fragments);
  EXPECT_TRUE((*fragments)[0].properties.empty());
  EXPECT_TRUE((*fragments)[1].properties.empty());
  EXPECT_EQ((*fragments)[0].uuid.ToString(), kRoot);
}

TEST(FragmentJsonTest, DuplicateKeysKeepTheLastValue) {
  auto fragments = ParseFragmentsJson(
      R"([{"type":"change","uuid":"0f3c2a8e-5b1d-4c7e-9a11-3d2f6b7c8e90","clsName":"Shape","properties":{"x":1,"y":2,"x":3}}])");
  ASSERT_OK(fragments);
  ASSERT_EQ((*fragments)[0].properties.size(), 2u);
  EXPECT_EQ((*fragments)[0].properties[0].first, "x");
  EXPECT_EQ((*fragments)[0].properties[0].second, Value::Number(3));
}

TEST(FragmentJsonTest, ParseTimeValidationRejectsMalformedFragments) {
  const std::string uuid = kRoot;
  auto fails = [](const std::string& json) {
    return ParseFragmentsJson(json).status();
  };
  EXPECT_EQ(fails("{}").message(), "SyncFragments not on `fragments`");
  EXPECT_FALSE(fails("[1]").ok());
  EXPECT_FALSE(fails(R"([{"uuid":")" + uuid + R"(","clsName":"A"}])").ok());
  EXPECT_FALSE(
      fails(R"([{"type":"remove","uuid":")" + uuid + R"(","clsName":"A"}])")
          .ok());
  EXPECT_FALSE(fails(R"([{"type":"add","uuid":"nope","clsName":"A"}])").ok());
  EXPECT_EQ(fails(R"([{"type":"add","uuid":")" + uuid + R"("}])").message(),
            "Requires clsName or modelObject");
  EXPECT_EQ(fails(R"([{"type":"add","uuid":")" + uuid +
                  R"(","clsName":"A","properties":{"k":{"a":1}}}])")
                .message(),
            "Property 'k' not a string, number, boolean, array, date, null");
  EXPECT_FALSE(fails(R"([{"type":"add","uuid":")" + uuid +
                     R"(","clsName":"A","properties":{"k":[[1]]}}])")
                   .ok());
  EXPECT_FALSE(fails(R"([{"type":"add","uuid":")" + uuid +
                     R"(","clsName":"A","properties":{"k":[1,"a"]}}])")
                   .ok());
  EXPECT_FALSE(fails(R"([{"type":"add","uuid":")" + uuid +
                     R"(","clsName":"A","properties":[1]}])")
                   .ok());
  EXPECT_FALSE(fails("[").ok());
  EXPECT_FALSE(fails("[\"\xff\"]").ok());
}

TEST(FragmentJsonTest, DeeplyNestedInputIsAnErrorNotACrash) {
  std::string deep(100000, '[');
  EXPECT_FALSE(ParseFragmentsJson(deep).ok());
  std::string closed = deep + std::string(100000, ']');
  EXPECT_FALSE(ParseFragmentsJson(closed).ok());
}

TEST(FragmentJsonTest, RepliesAreEmptyObjectsOrErrors) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartArray();
  WriteFragmentReply(writer, FragmentReply{});
  WriteFragmentReply(writer,
                     FragmentReply{WireError{"No property at 'foo'", ""}, {}});
  WriteFragmentReply(writer,
                     FragmentReply{WireError{"Scope at index 3 was not found",
                                             "scope-index-not-found"},
                                   {}});
  WriteFragmentReply(
      writer, FragmentReply{std::nullopt, {{"text", Value::String("hi")}}});
  writer.EndArray();
  EXPECT_EQ(
      std::string(buffer.GetString()),
      R"([{},{"error":{"message":"No property at 'foo'"}},)"
      R"({"error":{"message":"Scope at index 3 was not found","type":"scope-index-not-found"}},)"
      R"({"modifications":{"text":"hi"}}])");
}

}  // namespace
}  // namespace jetstream
