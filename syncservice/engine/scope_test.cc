// Behaviour of Scope::Apply on the demo Canvas schema: the changeset
// semantics of docs/protocol.md#changeset-algorithm as seen in the
// transcript of docs/protocol.md#transcript.
#include "syncservice/engine/scope.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/engine_fixtures.h"
#include "tests/testing/status_matchers.h"

namespace jetstream {
namespace {

using ::jetstream::testing::Add;
using ::jetstream::testing::Change;
using ::jetstream::testing::DemoSchema;
using ::jetstream::testing::ReplyMessages;
using ::jetstream::testing::StateJson;
using ::jetstream::testing::TestUuid;
using ::testing::ElementsAre;

class CanvasScopeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scope_ = *Scope::Create(DemoSchema(), "Canvas", root_);
  }
  std::string Id(int n) { return TestUuid(n).ToString(); }

  Uuid root_ = TestUuid(1);
  std::unique_ptr<Scope> scope_;
};

TEST_F(CanvasScopeTest, AddWithParentInSameChangesetCommitsAndBumpsVersion) {
  ChangesetResult r = scope_->Apply(Changeset{{
      Add(TestUuid(2), "Shape",
          R"({"x":50,"y":50,"width":100,"height":100,"color":4279308287})"),
      Change(root_, "Canvas", R"({"shapes":[")" + Id(2) + R"("]})"),
  }});
  EXPECT_THAT(ReplyMessages(r), ElementsAre("", ""));
  EXPECT_EQ(r.applied.size(), 2u);
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(scope_->size(), 2u);
  EXPECT_EQ(
      StateJson(*scope_),
      R"([{"type":"change","uuid":")" + Id(1) +
          R"(","clsName":"Canvas","properties":{"name":null,"shapes":[")" +
          Id(2) + R"("]}},{"type":"add","uuid":")" + Id(2) +
          R"(","clsName":"Shape","properties":{"x":50,"y":50,"width":100,"height":100,"color":4279308287}}])");
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(CanvasScopeTest, BadFragmentFailsAloneWithoutAtomic) {
  scope_->Apply(Changeset{
      {Add(TestUuid(2), "Shape"), Add(TestUuid(3), "Shape"),
       Change(root_, "Canvas",
              R"({"shapes":[")" + Id(2) + R"(",")" + Id(3) + R"("]})")}});
  ChangesetResult r = scope_->Apply(Changeset{{
      Change(TestUuid(3), "Shape", R"({"x":"left"})"),
      Change(TestUuid(2), "Shape", R"({"x":20})"),
  }});
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre("Not valid type at 'x', should be Number", ""));
  ASSERT_EQ(r.applied.size(), 1u);
  EXPECT_EQ(r.applied[0].uuid, TestUuid(2));
  EXPECT_EQ(*scope_->Find(TestUuid(2))->Get("x"), Value::Number(20));
  EXPECT_TRUE(scope_->Find(TestUuid(3))->Get("x")->is_null());
}

TEST_F(CanvasScopeTest, DroppingTheLastParentRemovesTheObject) {
  scope_->Apply(Changeset{
      {Add(TestUuid(2), "Shape"), Add(TestUuid(3), "Shape"),
       Change(root_, "Canvas",
              R"({"shapes":[")" + Id(2) + R"(",")" + Id(3) + R"("]})")}});
  ChangesetResult r = scope_->Apply(Changeset{
      {Change(root_, "Canvas", R"({"shapes":[")" + Id(3) + R"("]})")}});
  EXPECT_THAT(ReplyMessages(r), ElementsAre(""));
  EXPECT_EQ(scope_->Find(TestUuid(2)), nullptr);
  EXPECT_NE(scope_->Find(TestUuid(3)), nullptr);
  EXPECT_EQ(scope_->size(), 2u);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(CanvasScopeTest, AtomicChangesetIsAllOrNothing) {
  std::string before = StateJson(*scope_);
  ChangesetResult r = scope_->Apply(Changeset{
      {Add(TestUuid(2), "Shape", R"({"x":1})"),
       Change(root_, "Canvas", R"({"shapes":[")" + Id(2) + R"("],"name":"n"})"),
       Change(root_, "Canvas", R"({"name":7})")},
      /*atomic=*/true});
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre("Atomic changeset rejected: fragment 2 failed: Not "
                          "valid type at 'name', should be String",
                          "Atomic changeset rejected: fragment 2 failed: Not "
                          "valid type at 'name', should be String",
                          "Not valid type at 'name', should be String"));
  EXPECT_EQ(r.replies[0].error->type, "atomic-changeset-rejected");
  EXPECT_EQ(r.replies[2].error->type, "");
  EXPECT_TRUE(r.applied.empty());
  EXPECT_EQ(r.version, 0u);
  EXPECT_EQ(StateJson(*scope_), before);
  EXPECT_EQ(scope_->size(), 1u);
  EXPECT_OK(scope_->CheckInvariants());
}

}  // namespace
}  // namespace jetstream
