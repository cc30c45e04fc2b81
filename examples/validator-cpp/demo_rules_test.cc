#include "examples/validator-cpp/demo_rules.h"

#include <string>

#include "gtest/gtest.h"

namespace jetstream::examples {
namespace {

namespace v1 = hooks::v1;

sync::v1::SyncFragment* AddFragment(v1::ValidateChangesetRequest* request,
                                    const std::string& cls) {
  sync::v1::SyncFragment* f = request->add_fragments();
  f->set_type(sync::v1::SyncFragment::ADD);
  f->set_uuid("00000000-0000-4000-8000-00000000000" +
              std::to_string(request->fragments_size()));
  f->set_cls_name(cls);
  return f;
}

void SetNumber(sync::v1::SyncFragment* f, const std::string& name, double v) {
  sync::v1::Property* p = f->add_properties();
  p->set_name(name);
  p->mutable_value()->set_number_value(v);
}

void SetString(sync::v1::SyncFragment* f, const std::string& name,
               const std::string& v) {
  sync::v1::Property* p = f->add_properties();
  p->set_name(name);
  p->mutable_value()->set_string_value(v);
}

TEST(DemoRulesTest, ShapesStayOnTheCanvas) {
  v1::ValidateChangesetRequest request;
  sync::v1::SyncFragment* inside = AddFragment(&request, "Shape");
  SetNumber(inside, "x", 9900);
  SetNumber(inside, "width", 100);
  sync::v1::SyncFragment* outside = AddFragment(&request, "Shape");
  SetNumber(outside, "x", 9901);
  SetNumber(outside, "width", 100);
  sync::v1::SyncFragment* negative = AddFragment(&request, "Shape");
  SetNumber(negative, "y", -1);
  v1::ValidateChangesetResponse response;
  ApplyDemoRules(request, &response);
  ASSERT_EQ(response.rejections_size(), 2);
  EXPECT_EQ(response.rejections(0).fragment(), 1u);
  EXPECT_EQ(response.rejections(1).fragment(), 2u);
  EXPECT_EQ(response.rejections(0).message(),
            "Shape must stay inside the 0..10000 canvas");
}

TEST(DemoRulesTest, ChangeUsesTheCurrentWidth) {
  v1::ValidateChangesetRequest request;
  sync::v1::SyncFragment* move = AddFragment(&request, "Shape");
  move->set_type(sync::v1::SyncFragment::CHANGE);
  SetNumber(move, "x", 9950);
  v1::ObjectState* current = request.add_current();
  current->set_uuid(move->uuid());
  current->set_cls_name("Shape");
  sync::v1::Property* width = current->add_properties();
  width->set_name("width");
  width->mutable_value()->set_number_value(100);
  v1::ValidateChangesetResponse response;
  ApplyDemoRules(request, &response);
  EXPECT_EQ(response.rejections_size(), 1);
}

TEST(DemoRulesTest, MessagesAreTrimmedOrRejected) {
  v1::ValidateChangesetRequest request;
  SetString(AddFragment(&request, "Message"), "text", std::string(600, 'a'));
  SetString(AddFragment(&request, "Message"), "text", "  ");
  // 501 two-byte characters: cut at a character boundary.
  std::string umlauts;
  for (int i = 0; i < 501; ++i) umlauts += "\xc3\xa4";
  SetString(AddFragment(&request, "Message"), "text", umlauts);
  SetString(AddFragment(&request, "Message"), "text", "hello");
  v1::ValidateChangesetResponse response;
  ApplyDemoRules(request, &response);
  ASSERT_EQ(response.rejections_size(), 1);
  EXPECT_EQ(response.rejections(0).fragment(), 1u);
  EXPECT_EQ(response.rejections(0).message(), "Message text must not be empty");
  ASSERT_EQ(response.modifications_size(), 2);
  EXPECT_EQ(response.modifications(0).fragment(), 0u);
  EXPECT_EQ(response.modifications(0).properties(0).value().string_value(),
            std::string(500, 'a'));
  EXPECT_EQ(response.modifications(1).fragment(), 2u);
  EXPECT_EQ(
      response.modifications(1).properties(0).value().string_value().size(),
      1000u);
}

}  // namespace
}  // namespace jetstream::examples
