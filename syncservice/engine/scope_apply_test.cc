// Scope::Apply semantics: every apply-time error text
// (docs/protocol.md#apply-errors), the changeset algorithm
// (docs/protocol.md#changeset-algorithm), decisions D1, D2, D8, D9, D10 and
// D12 (docs/protocol.md#differences), orphan collection
// (docs/protocol.md#orphans), ScopeState (docs/protocol.md#scope-state),
// and ports of the original server's
// test/scope.js and of the server-relevant iOS StateMessage/SyncFragment
// cases.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/fragment_json.h"
#include "common/json.h"
#include "common/sync_fragment.h"
#include "common/uuid.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "syncservice/engine/schema.h"
#include "syncservice/engine/schema_loader.h"
#include "syncservice/engine/scope.h"
#include "tests/testing/engine_fixtures.h"
#include "tests/testing/status_matchers.h"

namespace jetstream {
namespace {

using ::jetstream::testing::Add;
using ::jetstream::testing::Change;
using ::jetstream::testing::DemoSchema;
using ::jetstream::testing::Fragment;
using ::jetstream::testing::Fragments;
using ::jetstream::testing::ReplyMessages;
using ::jetstream::testing::StateJson;
using ::jetstream::testing::TestUuid;
using ::jetstream::testing::TestUuidString;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// ---------------------------------------------------------------------------
// Helpers

// A graph of nodes: test/scope.js's cyclic graph, moves, cycles.
constexpr char kGraphSchema[] = R"({"models":{
  "Node":{"properties":{"name":"String","children":"[Node]","other":"Node"}}}})";

// Every value type, single and as a collection.
constexpr char kValuesSchema[] = R"({
  "enumerations":{
    "Mood":{"type":"String","values":["Happy","Sad"]},
    "Level":{"type":"Number","values":{"Low":0,"High":1}}},
  "models":{
    "Holder":{"properties":{
      "s":"String","n":"Number","b":"Boolean","d":"Date","mood":"Mood",
      "level":"Level","ss":"[String]","ns":"[Number]","bs":"[Boolean]",
      "ds":"[Date]","moods":"[Mood]","levels":"[Level]",
      "item":"Item","items":"[Item]"}},
    "Item":{"properties":{"label":"String"}}}})";

// Inheritance: Circle is a Shape, Label is not.
constexpr char kShapesSchema[] = R"({"models":{
  "Board":{"properties":{"shapes":"[Shape]","main":"Shape","labels":"[Label]"}},
  "Circle":{"extends":"Shape","properties":{"radius":"Number"}},
  "Shape":{"properties":{"x":"Number"}},
  "Label":{"properties":{"text":"String"}}}})";

std::shared_ptr<const Schema> SchemaOrDie(absl::string_view json) {
  auto schema = ParseSchema(json, "inline.json");
  if (!schema.ok()) {
    ADD_FAILURE() << schema.status();
    std::abort();
  }
  return *schema;
}

std::unique_ptr<Scope> NewScope(std::shared_ptr<const Schema> schema,
                                absl::string_view root_model,
                                uint64_t root = 1) {
  auto scope = Scope::Create(std::move(schema), root_model, TestUuid(root));
  if (!scope.ok()) {
    ADD_FAILURE() << scope.status();
    std::abort();
  }
  return *std::move(scope);
}

std::string Id(uint64_t n) { return TestUuidString(n); }
std::string UpperId(uint64_t n) { return absl::AsciiStrToUpper(Id(n)); }
// A quoted UUID, for building property JSON.
std::string Q(uint64_t n) { return absl::StrCat("\"", Id(n), "\""); }
// A JSON array of quoted UUIDs.
std::string L(std::initializer_list<uint64_t> ns) {
  return absl::StrCat(
      "[",
      absl::StrJoin(ns, ",",
                    [](std::string* out, uint64_t n) { out->append(Q(n)); }),
      "]");
}

Changeset Atomic(std::vector<SyncFragment> fragments) {
  return Changeset{std::move(fragments), /*atomic=*/true};
}

// Applies a changeset that must succeed entirely.
ChangesetResult ApplyOk(Scope& scope, std::vector<SyncFragment> fragments) {
  ChangesetResult r = scope.Apply(Changeset{std::move(fragments)});
  for (size_t i = 0; i < r.replies.size(); ++i) {
    EXPECT_TRUE(r.replies[i].ok())
        << "fragment " << i << ": " << r.replies[i].error->message;
  }
  return r;
}

// The message of the single reply of a one-fragment changeset.
std::string OnlyError(Scope& scope, SyncFragment fragment) {
  ChangesetResult r = scope.Apply(Changeset{{std::move(fragment)}});
  EXPECT_EQ(r.replies.size(), 1u);
  EXPECT_TRUE(r.applied.empty());
  return ReplyMessages(r).at(0);
}

std::vector<std::string> ReplyTypes(const ChangesetResult& r) {
  std::vector<std::string> out;
  for (const FragmentReply& reply : r.replies) {
    out.push_back(reply.ok() ? "" : reply.error->type);
  }
  return out;
}

std::vector<std::string> StateUuids(const Scope& scope) {
  std::vector<std::string> out;
  for (const SyncFragment& f : scope.State().fragments) {
    out.push_back(f.uuid.ToString());
  }
  return out;
}

// A Canvas scope (root 1) with shapes 2 and 3.
class CanvasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scope_ = NewScope(DemoSchema(), "Canvas");
    ApplyOk(*scope_, {Add(TestUuid(2), "Shape", R"({"x":1})"),
                      Add(TestUuid(3), "Shape", R"({"x":2})"),
                      Change(TestUuid(1), "Canvas",
                             absl::StrCat(R"({"shapes":)", L({2, 3}), "}"))});
    ASSERT_EQ(scope_->size(), 3u);
    ASSERT_EQ(scope_->version(), 1u);
  }
  std::unique_ptr<Scope> scope_;
};

// A ChatRoom scope (root 1) with attributes 2, user 3 and message 4 by 3.
class ChatRoomTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scope_ = NewScope(DemoSchema(), "ChatRoom");
    ApplyOk(
        *scope_,
        {Add(TestUuid(2), "ChatRoomAttributes",
             R"({"status":0,"topic":"Hello","tintColor":4278190335,"locale":"en_US"})"),
         Add(TestUuid(3), "User",
             R"({"username":"alice","color":1,"lastActive":1450582561.123})"),
         Add(TestUuid(4), "Message",
             absl::StrCat(R"({"author":)", Q(3),
                          R"(,"postedAt":1450582562.5,"text":"hi"})")),
         Change(TestUuid(1), "ChatRoom",
                absl::StrCat(R"({"name":"Chat Demo","attributes":)", Q(2),
                             R"(,"users":)", L({3}), R"(,"messages":)", L({4}),
                             "}"))});
    ASSERT_EQ(scope_->size(), 4u);
  }
  std::unique_ptr<Scope> scope_;
};

// A Node graph scope, root 1.
class GraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scope_ = NewScope(SchemaOrDie(kGraphSchema), "Node");
  }
  SyncFragment AddNode(uint64_t n, absl::string_view props = "{}") {
    return Add(TestUuid(n), "Node", props);
  }
  SyncFragment ChangeNode(uint64_t n, absl::string_view props) {
    return Change(TestUuid(n), "Node", props);
  }
  static std::string Children(std::initializer_list<uint64_t> ns) {
    return absl::StrCat(R"({"children":)", L(ns), "}");
  }
  static std::string Other(uint64_t n) {
    return n == 0 ? R"({"other":null})"
                  : absl::StrCat(R"({"other":)", Q(n), "}");
  }
  std::unique_ptr<Scope> scope_;
};

// A Holder scope (root 1) with item 2 under `item`.
class ValuesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scope_ = NewScope(schema_, "Holder");
    ApplyOk(*scope_, {Add(TestUuid(2), "Item"),
                      Change(TestUuid(1), "Holder",
                             absl::StrCat(R"({"item":)", Q(2), "}"))});
  }
  SyncFragment Set(absl::string_view props) {
    return Change(TestUuid(1), "Holder", props);
  }
  const Value& Get(absl::string_view name) { return *scope_->root().Get(name); }
  std::shared_ptr<const Schema> schema_ = SchemaOrDie(kValuesSchema);
  std::unique_ptr<Scope> scope_;
};

// ---------------------------------------------------------------------------
// Every apply-time error text (docs/protocol.md#apply-errors)

TEST_F(CanvasTest, NoPropertyAtKey) {
  EXPECT_EQ(OnlyError(*scope_, Change(TestUuid(1), "Canvas", R"({"bogus":1})")),
            "No property at 'bogus'");
  // Also for an add, and for a property of another model.
  ChangesetResult r = scope_->Apply(Changeset{{
      Add(TestUuid(9), "Shape", R"({"x":1,"shapes":[]})"),
      Change(TestUuid(1), "Canvas",
             absl::StrCat(R"({"shapes":)", L({2, 3, 9}), "}")),
  }});
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre("No property at 'shapes'",
                          absl::StrCat("No such ModelObjects '[", Q(9),
                                       "]' at 'shapes'")));
  EXPECT_EQ(scope_->size(), 3u);
  EXPECT_EQ(scope_->version(), 1u);
}

TEST_F(ValuesTest, CollectionTypeWithoutArrayValue) {
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"ss":"a"})")),
            "Collection type without array value at 'ss'");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"ns":5})")),
            "Collection type without array value at 'ns'");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"ds":null})")),
            "Collection type without array value at 'ds'");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"moods":"Happy"})")),
            "Collection type without array value at 'moods'");
}

TEST_F(CanvasTest, ModelCollectionWithoutArrayOfUuids) {
  EXPECT_EQ(
      OnlyError(*scope_, Change(TestUuid(1), "Canvas",
                                absl::StrCat(R"({"shapes":)", Q(2), "}"))),
      "Not valid type at 'shapes', should be array of UUIDs");
  EXPECT_EQ(
      OnlyError(*scope_, Change(TestUuid(1), "Canvas", R"({"shapes":null})")),
      "Not valid type at 'shapes', should be array of UUIDs");
  EXPECT_EQ(
      OnlyError(*scope_, Change(TestUuid(1), "Canvas", R"({"shapes":[1,2]})")),
      "Not valid type at 'shapes', should be array of UUIDs");
  EXPECT_THAT(scope_->root().Get("shapes")->as_array(), ::testing::SizeIs(2));
}

TEST_F(ValuesTest, ScalarTypeMismatch) {
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"n":"5"})")),
            "Not valid type at 'n', should be Number");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"s":7})")),
            "Not valid type at 's', should be String");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"b":"yes"})")),
            "Not valid type at 'b', should be Boolean");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"b":1})")),
            "Not valid type at 'b', should be Boolean");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"d":"20 December 2015"})")),
            "Not valid type at 'd', should be Date");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"d":true})")),
            "Not valid type at 'd', should be Date");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"s":[]})")),
            "Not valid type at 's', should be String");
  EXPECT_EQ(scope_->version(), 1u);
}

TEST_F(ChatRoomTest, EnumerationValueNotAllowed) {
  EXPECT_EQ(OnlyError(*scope_, Change(TestUuid(2), "ChatRoomAttributes",
                                      R"({"status":2})")),
            "Not valid type at 'status', should be one of [0,1]");
  EXPECT_EQ(OnlyError(*scope_, Change(TestUuid(2), "ChatRoomAttributes",
                                      R"({"status":"0"})")),
            "Not valid type at 'status', should be one of [0,1]");
  EXPECT_EQ(OnlyError(*scope_, Change(TestUuid(2), "ChatRoomAttributes",
                                      R"({"status":0.5})")),
            "Not valid type at 'status', should be one of [0,1]");
  EXPECT_EQ(*scope_->Find(TestUuid(2))->Get("status"), Value::Number(0));
}

TEST_F(ValuesTest, StringEnumerationValueNotAllowed) {
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"mood":"Angry"})")),
            R"(Not valid type at 'mood', should be one of ["Happy","Sad"])");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"level":"Low"})")),
            "Not valid type at 'level', should be one of [0,1]");
}

TEST_F(ChatRoomTest, ReferenceNotAStringIsNonUuid) {
  EXPECT_EQ(OnlyError(*scope_,
                      Change(TestUuid(1), "ChatRoom", R"({"attributes":5})")),
            "Cannot set property at 'attributes' as non-UUID");
  EXPECT_EQ(
      OnlyError(*scope_, Change(TestUuid(4), "Message", R"({"author":true})")),
      "Cannot set property at 'author' as non-UUID");
  EXPECT_EQ(
      OnlyError(*scope_, Change(TestUuid(4), "Message",
                                absl::StrCat(R"({"author":)", L({3}), "}"))),
      "Cannot set property at 'author' as non-UUID");
}

TEST_F(ChatRoomTest, NoSuchModelObjectForSingleReference) {
  EXPECT_EQ(
      OnlyError(*scope_, Change(TestUuid(1), "ChatRoom",
                                absl::StrCat(R"({"attributes":)", Q(99), "}"))),
      absl::StrCat("No such ModelObject '", Id(99), "' at 'attributes'"));
  // Not even a UUID.
  EXPECT_EQ(OnlyError(*scope_,
                      Change(TestUuid(4), "Message", R"({"author":"alice"})")),
            "No such ModelObject 'alice' at 'author'");
}

TEST_F(ChatRoomTest, NoSuchModelObjectsForCollectionListsTheMissingOnes) {
  EXPECT_EQ(OnlyError(*scope_, Change(TestUuid(1), "ChatRoom",
                                      absl::StrCat(R"({"users":)",
                                                   L({98, 3, 99}), "}"))),
            absl::StrCat("No such ModelObjects '[\"", Id(98), "\",\"", Id(99),
                         "\"]' at 'users'"));
  EXPECT_THAT(scope_->root().Get("users")->as_array(),
              ElementsAre(Value::String(Id(3))));
}

TEST_F(CanvasTest, AddOfAnExistingUuid) {
  ChangesetResult r = scope_->Apply(Changeset{{
      Add(TestUuid(2), "Shape", R"({"x":50})"),
      Add(TestUuid(1), "Shape"),
  }});
  EXPECT_THAT(
      ReplyMessages(r),
      ElementsAre(
          absl::StrCat("ModelObject with UUID '", Id(2), "' already exists"),
          absl::StrCat("ModelObject with UUID '", Id(1), "' already exists")));
  EXPECT_EQ(*scope_->Find(TestUuid(2))->Get("x"), Value::Number(1));
}

TEST_F(CanvasTest, NoSuchClassType) {
  // Unknown, not reachable from the root's type, and the root's own type.
  for (const char* cls : {"Bogus", "User", "Canvas"}) {
    SCOPED_TRACE(cls);
    ChangesetResult r = scope_->Apply(Changeset{{
        Add(TestUuid(9), cls),
        Change(TestUuid(1), "Canvas",
               absl::StrCat(R"({"shapes":)", L({2, 3, 9}), "}")),
    }});
    EXPECT_THAT(ReplyMessages(r),
                ElementsAre(absl::StrCat("No such class type '", cls, "'"),
                            absl::StrCat("No such ModelObjects '[", Q(9),
                                         "]' at 'shapes'")));
  }
  EXPECT_EQ(scope_->size(), 3u);
  EXPECT_EQ(scope_->version(), 1u);
}

TEST_F(CanvasTest, ChangeOfAnUnknownObject) {
  EXPECT_EQ(OnlyError(*scope_, Change(TestUuid(9), "Shape", R"({"x":1})")),
            "ModelObject not found");
}

TEST_F(CanvasTest, AddWithoutParent) {
  ChangesetResult r = scope_->Apply(Changeset{{
      Add(TestUuid(9), "Shape", R"({"x":1})"),
      Change(TestUuid(2), "Shape", R"({"x":7})"),
  }});
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre("No parents, parent sync fragment failed", ""));
  EXPECT_EQ(scope_->Find(TestUuid(9)), nullptr);
  ASSERT_EQ(r.applied.size(), 1u);
  EXPECT_EQ(r.applied[0].uuid, TestUuid(2));
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(GraphTest, AddWhoseOnlyParentHadNoParentFailsToo) {
  // 3 is referenced only by 2, which nothing references.
  ChangesetResult r = scope_->Apply(Changeset{{
      AddNode(2, Children({3})),
      AddNode(3),
  }});
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre("No parents, parent sync fragment failed",
                          "No parents, parent sync fragment failed"));
  EXPECT_EQ(scope_->size(), 1u);
  EXPECT_EQ(r.version, 0u);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(GraphTest, AddWhoseParentIsWithdrawnLaterInTheArrayFailsToo) {
  // The child's add comes first: it has a parent when first looked at, and
  // loses it when that parent is withdrawn.
  ChangesetResult r = scope_->Apply(Changeset{{
      AddNode(4),
      AddNode(3, Children({4})),
      AddNode(2, Children({3})),
  }});
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre("No parents, parent sync fragment failed",
                          "No parents, parent sync fragment failed",
                          "No parents, parent sync fragment failed"));
  EXPECT_EQ(scope_->size(), 1u);
  EXPECT_EQ(r.version, 0u);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(CanvasTest, RejectAllTypesEveryReplyAndTouchesNothing) {
  std::string before = StateJson(*scope_);
  ChangesetResult r = scope_->RejectAll(3, "validator denied");
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre("Could not apply SyncMessage: validator denied",
                          "Could not apply SyncMessage: validator denied",
                          "Could not apply SyncMessage: validator denied"));
  EXPECT_THAT(ReplyTypes(r), ElementsAre("could-not-apply-sync-message",
                                         "could-not-apply-sync-message",
                                         "could-not-apply-sync-message"));
  EXPECT_TRUE(r.applied.empty());
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(scope_->version(), 1u);
  EXPECT_EQ(StateJson(*scope_), before);
  EXPECT_THAT(scope_->RejectAll(0, "x").replies, IsEmpty());
}

TEST_F(ChatRoomTest, UntypedErrorsCarryNoType) {
  ChangesetResult r = scope_->Apply(Changeset{{
      Change(TestUuid(1), "ChatRoom", R"({"bogus":1})"),
      Change(TestUuid(9), "ChatRoom", R"({})"),
  }});
  EXPECT_THAT(ReplyTypes(r), ElementsAre("", ""));
  EXPECT_FALSE(r.replies[0].ok());
  EXPECT_FALSE(r.replies[1].ok());
}

// ---------------------------------------------------------------------------
// D1: atomic changesets are all or nothing (docs/protocol.md#d1-atomic)

TEST_F(CanvasTest, AtomicRejectionRepliesCiteTheFirstFailure) {
  std::string before = StateJson(*scope_);
  ChangesetResult r = scope_->Apply(Atomic({
      Change(TestUuid(2), "Shape", R"({"x":10})"),
      Add(TestUuid(9), "Shape", R"({"x":"wide"})"),
      Change(TestUuid(1), "Canvas",
             absl::StrCat(R"({"name":"n","shapes":)", L({2, 3}), "}")),
      Change(TestUuid(3), "Shape", R"({"nope":1})"),
  }));
  const std::string rejected =
      "Atomic changeset rejected: fragment 1 failed: Not valid type at 'x', "
      "should be Number";
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre(rejected, "Not valid type at 'x', should be Number",
                          rejected, "No property at 'nope'"));
  EXPECT_THAT(ReplyTypes(r), ElementsAre("atomic-changeset-rejected", "",
                                         "atomic-changeset-rejected", ""));
  EXPECT_TRUE(r.applied.empty());
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(scope_->version(), 1u);
  EXPECT_EQ(StateJson(*scope_), before);
  EXPECT_EQ(scope_->Find(TestUuid(9)), nullptr);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(CanvasTest, AtomicRollbackRestoresObjectsRemovedByOrphanCollection) {
  std::string before = StateJson(*scope_);
  ChangesetResult r = scope_->Apply(Atomic({
      Change(TestUuid(1), "Canvas", absl::StrCat(R"({"shapes":)", L({2}), "}")),
      Change(TestUuid(2), "Shape", R"({"x":"bad"})"),
  }));
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre("Atomic changeset rejected: fragment 1 failed: Not "
                          "valid type at 'x', should be Number",
                          "Not valid type at 'x', should be Number"));
  ASSERT_NE(scope_->Find(TestUuid(3)), nullptr);
  EXPECT_EQ(scope_->Find(TestUuid(3))->parent_count(), 1u);
  EXPECT_EQ(scope_->size(), 3u);
  EXPECT_EQ(StateJson(*scope_), before);
  EXPECT_OK(scope_->CheckInvariants());

  // The restored object's parent links are live: dropping it now removes it.
  ApplyOk(*scope_, {Change(TestUuid(1), "Canvas",
                           absl::StrCat(R"({"shapes":)", L({2}), "}"))});
  EXPECT_EQ(scope_->Find(TestUuid(3)), nullptr);
  EXPECT_EQ(scope_->version(), 2u);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(GraphTest, AtomicRollbackRestoresACascadeAndNewObjects) {
  ApplyOk(*scope_, {AddNode(2, Children({3, 4})), AddNode(3, Other(4)),
                    AddNode(4), ChangeNode(1, Children({2}))});
  std::string before = StateJson(*scope_);
  ChangesetResult r = scope_->Apply(Atomic({
      AddNode(5, R"({"name":"new"})"),
      ChangeNode(1, absl::StrCat(R"({"children":)", L({5}), "}")),
      AddNode(6),  // no parent
  }));
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre("Atomic changeset rejected: fragment 2 failed: No "
                          "parents, parent sync fragment failed",
                          "Atomic changeset rejected: fragment 2 failed: No "
                          "parents, parent sync fragment failed",
                          "No parents, parent sync fragment failed"));
  EXPECT_EQ(scope_->size(), 4u);
  EXPECT_EQ(scope_->Find(TestUuid(5)), nullptr);
  EXPECT_EQ(StateJson(*scope_), before);
  EXPECT_EQ(scope_->version(), 1u);
  EXPECT_OK(scope_->CheckInvariants());
  // Parent counts survived the rollback: 4 has two parents (2 and 3).
  EXPECT_EQ(scope_->Find(TestUuid(4))->parent_count(), 2u);
}

TEST_F(CanvasTest, AtomicChangesetThatSucceedsApplies) {
  ChangesetResult r = scope_->Apply(Atomic({
      Add(TestUuid(9), "Shape", R"({"x":9})"),
      Change(TestUuid(1), "Canvas", absl::StrCat(R"({"shapes":)", L({9}), "}")),
  }));
  EXPECT_THAT(ReplyMessages(r), ElementsAre("", ""));
  EXPECT_EQ(r.applied.size(), 2u);
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(scope_->size(), 2u);  // 2 and 3 were collected
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(CanvasTest, AtomicFalseKeepsPerFragmentSemantics) {
  ChangesetResult r = scope_->Apply(
      Changeset{{
                    Change(TestUuid(2), "Shape", R"({"x":"bad"})"),
                    Change(TestUuid(3), "Shape", R"({"x":30})"),
                },
                /*atomic=*/false});
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre("Not valid type at 'x', should be Number", ""));
  EXPECT_THAT(ReplyTypes(r), ElementsAre("", ""));
  ASSERT_EQ(r.applied.size(), 1u);
  EXPECT_EQ(*scope_->Find(TestUuid(3))->Get("x"), Value::Number(30));
  EXPECT_EQ(r.version, 2u);
}

// ---------------------------------------------------------------------------
// D2: dates are seconds, stored exactly (docs/protocol.md#d2-dates)

TEST_F(ChatRoomTest, DateStoredAsSecondsExactly) {
  ChangesetResult r = ApplyOk(
      *scope_,
      {Change(TestUuid(3), "User", R"({"lastActive":1450582599.987})")});
  EXPECT_EQ(*scope_->Find(TestUuid(3))->Get("lastActive"),
            Value::Number(1450582599.987));
  EXPECT_EQ(*r.applied[0].Find("lastActive"), Value::Number(1450582599.987));
  EXPECT_EQ(*scope_->Find(TestUuid(4))->Get("postedAt"),
            Value::Number(1450582562.5));
  std::string state = StateJson(*scope_);
  EXPECT_THAT(state, HasSubstr(R"("lastActive":1450582599.987)"));
  EXPECT_THAT(state, HasSubstr(R"("postedAt":1450582562.5)"));
}

TEST_F(ValuesTest, DateRoundTripsThroughStateAndRejectsOtherStrings) {
  ApplyOk(*scope_, {Set(R"({"d":1450582561.123})")});
  EXPECT_EQ(Get("d"), Value::Number(1450582561.123));
  EXPECT_THAT(StateJson(*scope_), HasSubstr(R"("d":1450582561.123,)"));
  auto copy =
      Scope::FromState(schema_, scope_->State().fragments, scope_->version());
  ASSERT_OK(copy);
  EXPECT_EQ(*(*copy)->root().Get("d"), Value::Number(1450582561.123));

  EXPECT_EQ(OnlyError(*scope_, Set(R"({"d":"1999/12/31"})")),
            "Not valid type at 'd', should be Date");
  EXPECT_EQ(Get("d"), Value::Number(1450582561.123));
  ApplyOk(*scope_, {Set(R"({"d":null})")});
  EXPECT_TRUE(Get("d").is_null());
}

TEST_F(ValuesTest, DateArraysAreNumbers) {
  ApplyOk(*scope_, {Set(R"({"ds":[1450582561.123,0,-1.5]})")});
  EXPECT_EQ(Get("ds"), Value::ArrayOf({Value::Number(1450582561.123),
                                       Value::Number(0), Value::Number(-1.5)}));
  EXPECT_THAT(StateJson(*scope_), HasSubstr(R"("ds":[1450582561.123,0,-1.5])"));
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"ds":["the 20th"]})")),
            "Not valid type at 'ds', should be Date");
}

// The original JavaScript client sends Dates through JSON.stringify, as
// ISO-8601 strings: they are stored, applied and broadcast as the seconds
// they name (docs/protocol.md#d2-dates).
TEST_F(ValuesTest, AnIsoDateIsStoredAsItsSeconds) {
  ChangesetResult r =
      ApplyOk(*scope_, {Set(R"({"d":"2015-12-20T03:36:01.123Z"})")});
  EXPECT_EQ(Get("d"), Value::Number(1450582561.123));
  EXPECT_EQ(*r.applied[0].Find("d"), Value::Number(1450582561.123));
  EXPECT_THAT(StateJson(*scope_), HasSubstr(R"("d":1450582561.123,)"));
  // Without a fraction, and with an offset.
  ApplyOk(*scope_, {Set(R"({"d":"2015-12-20T04:36:01+01:00"})")});
  EXPECT_EQ(Get("d"), Value::Number(1450582561));
}

TEST_F(ValuesTest, AnIsoDateArrayIsStoredAsItsSeconds) {
  ApplyOk(*scope_, {Set(R"({"ds":["1970-01-01T00:00:01.500Z",)"
                        R"("1970-01-01T01:00:02+01:00","2015-01-01"]})")});
  EXPECT_EQ(Get("ds"), Value::ArrayOf({Value::Number(1.5), Value::Number(2),
                                       Value::Number(1420070400)}));
  // One bad element fails the whole value, and nothing changes.
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"ds":["2015-01-01T00:00Z","x"]})")),
            "Not valid type at 'ds', should be Date");
  EXPECT_EQ(Get("ds"), Value::ArrayOf({Value::Number(1.5), Value::Number(2),
                                       Value::Number(1420070400)}));
}

// ---------------------------------------------------------------------------
// D8: a change's clsName must be the object's class
// (docs/protocol.md#d8-change-class)

TEST_F(CanvasTest, ChangeWithWrongClsNameIsRejected) {
  EXPECT_EQ(
      OnlyError(*scope_, Change(TestUuid(2), "Canvas", R"({"x":5})")),
      absl::StrCat("ModelObject '", Id(2), "' is a 'Shape', not a 'Canvas'"));
  EXPECT_EQ(
      OnlyError(*scope_, Change(TestUuid(1), "Bogus", R"({})")),
      absl::StrCat("ModelObject '", Id(1), "' is a 'Canvas', not a 'Bogus'"));
  EXPECT_EQ(*scope_->Find(TestUuid(2))->Get("x"), Value::Number(1));
}

TEST(InheritanceTest, ChangeNamingTheBaseClassIsRejected) {
  auto scope = NewScope(SchemaOrDie(kShapesSchema), "Board");
  ApplyOk(*scope, {Add(TestUuid(2), "Circle", R"({"x":1,"radius":2})"),
                   Change(TestUuid(1), "Board",
                          absl::StrCat(R"({"main":)", Q(2), "}"))});
  EXPECT_EQ(
      OnlyError(*scope, Change(TestUuid(2), "Shape", R"({"x":3})")),
      absl::StrCat("ModelObject '", Id(2), "' is a 'Circle', not a 'Shape'"));
  ApplyOk(*scope, {Change(TestUuid(2), "Circle", R"({"x":3})")});
  EXPECT_EQ(*scope->Find(TestUuid(2))->Get("x"), Value::Number(3));
}

// ---------------------------------------------------------------------------
// D9: references must point at the declared class (or a subclass)
// (docs/protocol.md#d9-reference-class)

TEST(InheritanceTest, ReferenceToTheWrongClassIsRejected) {
  auto scope = NewScope(SchemaOrDie(kShapesSchema), "Board");
  ApplyOk(*scope, {Add(TestUuid(2), "Shape"), Add(TestUuid(3), "Label"),
                   Change(TestUuid(1), "Board",
                          absl::StrCat(R"({"shapes":)", L({2}), R"(,"labels":)",
                                       L({3}), "}"))});
  EXPECT_EQ(OnlyError(*scope, Change(TestUuid(1), "Board",
                                     absl::StrCat(R"({"main":)", Q(3), "}"))),
            "Not valid type at 'main', should be Shape");
  EXPECT_EQ(
      OnlyError(*scope, Change(TestUuid(1), "Board",
                               absl::StrCat(R"({"shapes":)", L({2, 3}), "}"))),
      "Not valid type at 'shapes', should be Shape");
  EXPECT_EQ(
      OnlyError(*scope, Change(TestUuid(1), "Board",
                               absl::StrCat(R"({"labels":)", L({3, 2}), "}"))),
      "Not valid type at 'labels', should be Label");
  // The root itself is a Board, not a Shape.
  EXPECT_EQ(OnlyError(*scope, Change(TestUuid(1), "Board",
                                     absl::StrCat(R"({"main":)", Q(1), "}"))),
            "Not valid type at 'main', should be Shape");
  // Also in an add, whose failure then cascades to the change referencing it.
  ChangesetResult r = scope->Apply(Changeset{{
      Add(TestUuid(4), "Label"),
      Change(TestUuid(1), "Board", absl::StrCat(R"({"main":)", Q(4), "}")),
  }});
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre("No parents, parent sync fragment failed",
                          "Not valid type at 'main', should be Shape"));
  EXPECT_TRUE(scope->root().Get("main")->is_null());
  EXPECT_EQ(scope->size(), 3u);
  EXPECT_OK(scope->CheckInvariants());
}

TEST(InheritanceTest, SubclassInstanceIsAccepted) {
  auto scope = NewScope(SchemaOrDie(kShapesSchema), "Board");
  ChangesetResult r =
      ApplyOk(*scope, {Add(TestUuid(2), "Circle", R"({"x":1,"radius":5})"),
                       Add(TestUuid(3), "Shape", R"({"x":2})"),
                       Change(TestUuid(1), "Board",
                              absl::StrCat(R"({"main":)", Q(2), R"(,"shapes":)",
                                           L({3, 2}), "}"))});
  EXPECT_EQ(r.applied.size(), 3u);
  EXPECT_EQ(scope->Find(TestUuid(2))->type().name(), "Circle");
  EXPECT_EQ(scope->Find(TestUuid(2))->parent_count(), 2u);
  EXPECT_EQ(
      StateJson(*scope),
      absl::StrCat(R"([{"type":"change","uuid":)", Q(1),
                   R"(,"clsName":"Board","properties":{"shapes":)", L({3, 2}),
                   R"(,"main":)", Q(2), R"(,"labels":[]}},)",
                   R"({"type":"add","uuid":)", Q(3),
                   R"(,"clsName":"Shape","properties":{"x":2}},)",
                   R"({"type":"add","uuid":)", Q(2),
                   R"(,"clsName":"Circle","properties":{"x":1,"radius":5}}])"));
  EXPECT_OK(scope->CheckInvariants());
}

// ---------------------------------------------------------------------------
// D10: duplicate adds; adds that depend on failed adds
// (docs/protocol.md#d10-duplicate-adds)

TEST_F(CanvasTest, DuplicateAddInOneChangesetSecondFails) {
  ChangesetResult r = scope_->Apply(Changeset{{
      Add(TestUuid(9), "Shape", R"({"x":1})"),
      Add(TestUuid(9), "Shape", R"({"x":2})"),
      Change(TestUuid(1), "Canvas",
             absl::StrCat(R"({"shapes":)", L({2, 3, 9}), "}")),
  }});
  EXPECT_THAT(ReplyMessages(r),
              ElementsAre("",
                          absl::StrCat("ModelObject with UUID '", Id(9),
                                       "' already exists"),
                          ""));
  ASSERT_EQ(r.applied.size(), 2u);
  EXPECT_EQ(*r.applied[0].Find("x"), Value::Number(1));
  EXPECT_EQ(*scope_->Find(TestUuid(9))->Get("x"), Value::Number(1));
  EXPECT_EQ(scope_->size(), 4u);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(ChatRoomTest, AddReferencingAFailedAddFails) {
  ChangesetResult r = scope_->Apply(Changeset{{
      Add(TestUuid(5), "Message",
          absl::StrCat(R"({"author":)", Q(6), R"(,"text":"yo"})")),
      Add(TestUuid(6), "User", R"({"username":42})"),
      Change(TestUuid(1), "ChatRoom",
             absl::StrCat(R"({"users":)", L({3, 6}), R"(,"messages":)",
                          L({4, 5}), "}")),
  }});
  EXPECT_THAT(
      ReplyMessages(r),
      ElementsAre(
          absl::StrCat("No such ModelObject '", Id(6), "' at 'author'"),
          "Not valid type at 'username', should be String",
          absl::StrCat("No such ModelObjects '[", Q(6), "]' at 'users'")));
  EXPECT_TRUE(r.applied.empty());
  EXPECT_EQ(scope_->Find(TestUuid(5)), nullptr);
  EXPECT_EQ(scope_->Find(TestUuid(6)), nullptr);
  EXPECT_EQ(scope_->size(), 4u);
  EXPECT_EQ(scope_->version(), 1u);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(GraphTest, AddDependingOnAFailedAddFailsTransitively) {
  ChangesetResult r = scope_->Apply(Changeset{{
      AddNode(2, Other(3)),
      AddNode(3, Children({4})),
      AddNode(4, R"({"name":false})"),
      AddNode(5, R"({"name":"independent"})"),
      ChangeNode(1, Children({5, 2})),
  }});
  EXPECT_THAT(
      ReplyMessages(r),
      ElementsAre(
          absl::StrCat("No such ModelObject '", Id(3), "' at 'other'"),
          absl::StrCat("No such ModelObjects '[", Q(4), "]' at 'children'"),
          "Not valid type at 'name', should be String",
          "No parents, parent sync fragment failed",
          absl::StrCat("No such ModelObjects '[", Q(2), "]' at 'children'")));
  // 5 was valid but its only referrer failed.
  EXPECT_EQ(scope_->size(), 1u);
  EXPECT_TRUE(r.applied.empty());
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(GraphTest, FailedAddDoesNotBreakAnIndependentSibling) {
  ChangesetResult r = scope_->Apply(Changeset{{
      AddNode(2, R"({"name":1})"),
      AddNode(3, R"({"name":"ok"})"),
      ChangeNode(1, Children({3})),
  }});
  EXPECT_THAT(
      ReplyMessages(r),
      ElementsAre("Not valid type at 'name', should be String", "", ""));
  EXPECT_EQ(scope_->size(), 2u);
  EXPECT_EQ(r.version, 1u);
  EXPECT_OK(scope_->CheckInvariants());
}

// ---------------------------------------------------------------------------
// D12: a fragment without properties is {} (docs/protocol.md#d12-no-properties)

TEST_F(CanvasTest, FragmentsWithoutPropertiesAreEmpty) {
  SyncFragment add = Fragment(
      absl::StrCat(R"({"type":"add","uuid":)", Q(9), R"(,"clsName":"Shape"})"));
  SyncFragment change =
      Fragment(absl::StrCat(R"({"type":"change","uuid":)", Q(2),
                            R"(,"clsName":"Shape","properties":null})"));
  ASSERT_TRUE(add.properties.empty());
  ASSERT_TRUE(change.properties.empty());
  ChangesetResult r = scope_->Apply(Changeset{{
      add,
      change,
      Change(TestUuid(1), "Canvas",
             absl::StrCat(R"({"shapes":)", L({2, 3, 9}), "}")),
  }});
  EXPECT_THAT(ReplyMessages(r), ElementsAre("", "", ""));
  EXPECT_EQ(r.applied.size(), 3u);
  const ModelObject* added = scope_->Find(TestUuid(9));
  ASSERT_NE(added, nullptr);
  for (const Value& v : added->values()) EXPECT_TRUE(v.is_null());
  EXPECT_EQ(*scope_->Find(TestUuid(2))->Get("x"), Value::Number(1));
  // A change without properties on its own still applies.
  ChangesetResult alone = scope_->Apply(Changeset{{change}});
  EXPECT_THAT(ReplyMessages(alone), ElementsAre(""));
  EXPECT_EQ(alone.version, 3u);
}

// ---------------------------------------------------------------------------
// test/scope.js: applySyncFragments

TEST_F(CanvasTest, RemovesObjectsWithNoParents) {
  ChangesetResult r =
      ApplyOk(*scope_, {Change(TestUuid(1), "Canvas",
                               absl::StrCat(R"({"shapes":)", L({2}), "}"))});
  EXPECT_EQ(r.applied.size(), 1u);
  EXPECT_EQ(scope_->Find(TestUuid(3)), nullptr);
  EXPECT_NE(scope_->Find(TestUuid(2)), nullptr);
  EXPECT_EQ(scope_->size(), 2u);
  EXPECT_THAT(StateUuids(*scope_), ElementsAre(Id(1), Id(2)));
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(CanvasTest, ClearsTheOrphanSetAfterwards) {
  ApplyOk(*scope_, {Change(TestUuid(1), "Canvas",
                           absl::StrCat(R"({"shapes":)", L({2}), "}"))});
  ASSERT_EQ(scope_->size(), 2u);
  // Later changesets that orphan nothing remove nothing, even ones that add
  // and edit objects.
  ApplyOk(*scope_, {Change(TestUuid(2), "Shape", R"({"x":99})")});
  EXPECT_EQ(scope_->size(), 2u);
  ApplyOk(*scope_, {Add(TestUuid(3), "Shape"),
                    Change(TestUuid(1), "Canvas",
                           absl::StrCat(R"({"shapes":)", L({2, 3}), "}"))});
  EXPECT_EQ(scope_->size(), 3u);
  ApplyOk(*scope_, {Change(TestUuid(3), "Shape", R"({"x":1})")});
  EXPECT_EQ(scope_->size(), 3u);
  EXPECT_NE(scope_->Find(TestUuid(2)), nullptr);
  EXPECT_NE(scope_->Find(TestUuid(3)), nullptr);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(GraphTest, ClearsNewlyOrphanedObjectsAfterOrphansAreRemoved) {
  // root -> child -> {g1, g2}, g1 -> g2.
  ApplyOk(*scope_, {AddNode(2, Children({3, 4})), AddNode(3, Other(4)),
                    AddNode(4), ChangeNode(1, Children({2}))});
  ASSERT_EQ(scope_->size(), 4u);
  ChangesetResult r = ApplyOk(*scope_, {ChangeNode(1, Children({}))});
  EXPECT_EQ(r.applied.size(), 1u);
  EXPECT_EQ(scope_->size(), 1u);  // 3 removals
  EXPECT_EQ(scope_->Find(TestUuid(2)), nullptr);
  EXPECT_EQ(scope_->Find(TestUuid(3)), nullptr);
  EXPECT_EQ(scope_->Find(TestUuid(4)), nullptr);
  EXPECT_OK(scope_->CheckInvariants());
}

// ---------------------------------------------------------------------------
// Orphan semantics (docs/protocol.md#parents, docs/protocol.md#orphans)

TEST_F(GraphTest, ObjectMovedWithinOneChangesetSurvives) {
  ApplyOk(*scope_,
          {AddNode(2, Children({4})), AddNode(3),
           AddNode(4, R"({"name":"mover"})"), ChangeNode(1, Children({2, 3}))});
  // Removed from 2 first, then added to 3.
  ApplyOk(*scope_, {ChangeNode(2, Children({})), ChangeNode(3, Children({4}))});
  ASSERT_NE(scope_->Find(TestUuid(4)), nullptr);
  EXPECT_EQ(*scope_->Find(TestUuid(4))->Get("name"), Value::String("mover"));
  EXPECT_EQ(scope_->Find(TestUuid(4))->parent_count(), 1u);
  // And back again, added first this time.
  ApplyOk(*scope_, {ChangeNode(2, Children({4})), ChangeNode(3, Children({}))});
  EXPECT_NE(scope_->Find(TestUuid(4)), nullptr);
  // Into a new object of the same changeset.
  ApplyOk(*scope_, {ChangeNode(2, Children({})), AddNode(5, Children({4})),
                    ChangeNode(3, Children({5}))});
  EXPECT_NE(scope_->Find(TestUuid(4)), nullptr);
  EXPECT_EQ(scope_->size(), 5u);
  EXPECT_THAT(StateUuids(*scope_),
              ElementsAre(Id(1), Id(2), Id(3), Id(5), Id(4)));
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(GraphTest, ObjectWithTwoParentsSurvivesLosingOne) {
  ApplyOk(*scope_, {AddNode(2, Children({4})), AddNode(3, Children({4})),
                    AddNode(4), ChangeNode(1, Children({2, 3}))});
  EXPECT_EQ(scope_->Find(TestUuid(4))->parent_count(), 2u);
  // 2 leaves the scope; 4 keeps its other parent.
  ApplyOk(*scope_, {ChangeNode(1, Children({3}))});
  EXPECT_EQ(scope_->Find(TestUuid(2)), nullptr);
  ASSERT_NE(scope_->Find(TestUuid(4)), nullptr);
  EXPECT_EQ(scope_->Find(TestUuid(4))->parent_count(), 1u);
  EXPECT_EQ(scope_->size(), 3u);
  // Losing the last one removes it.
  ApplyOk(*scope_, {ChangeNode(3, Children({}))});
  EXPECT_EQ(scope_->Find(TestUuid(4)), nullptr);
  EXPECT_EQ(scope_->size(), 2u);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(GraphTest, SameParentUnderTwoKeysCountsTwice) {
  ApplyOk(*scope_,
          {AddNode(2), ChangeNode(1, absl::StrCat(R"({"children":)", L({2}),
                                                  R"(,"other":)", Q(2), "}"))});
  EXPECT_EQ(scope_->Find(TestUuid(2))->parent_count(), 2u);
  EXPECT_THAT(StateUuids(*scope_), ElementsAre(Id(1), Id(2)));  // listed once
  ApplyOk(*scope_, {ChangeNode(1, Children({}))});
  ASSERT_NE(scope_->Find(TestUuid(2)), nullptr);
  EXPECT_EQ(scope_->Find(TestUuid(2))->parent_count(), 1u);
  ApplyOk(*scope_, {ChangeNode(1, Other(0))});
  EXPECT_EQ(scope_->Find(TestUuid(2)), nullptr);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(GraphTest, DuplicateUuidInOneCollectionIsOneRelationship) {
  ApplyOk(*scope_, {AddNode(2), ChangeNode(1, Children({2, 2, 2}))});
  EXPECT_EQ(scope_->Find(TestUuid(2))->parent_count(), 1u);
  EXPECT_EQ(scope_->size(), 2u);
  // The collection keeps its duplicates; the state lists the object once.
  EXPECT_EQ(
      StateJson(*scope_),
      absl::StrCat(
          R"([{"type":"change","uuid":)", Q(1),
          R"(,"clsName":"Node","properties":{"name":null,"children":)",
          L({2, 2, 2}), R"(}},{"type":"add","uuid":)", Q(2),
          R"(,"clsName":"Node","properties":{"name":null,"children":[]}}])"));
  // Removing some occurrences keeps the parent.
  ApplyOk(*scope_, {ChangeNode(1, Children({2}))});
  ASSERT_NE(scope_->Find(TestUuid(2)), nullptr);
  EXPECT_EQ(scope_->Find(TestUuid(2))->parent_count(), 1u);
  EXPECT_OK(scope_->CheckInvariants());
  ApplyOk(*scope_, {ChangeNode(1, Children({}))});
  EXPECT_EQ(scope_->Find(TestUuid(2)), nullptr);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(GraphTest, DetachedCycleIsNotCollectedButLeavesTheState) {
  ApplyOk(*scope_, {AddNode(2, Other(3)), AddNode(3, Other(2)),
                    ChangeNode(1, Children({2}))});
  ASSERT_EQ(scope_->size(), 3u);
  ApplyOk(*scope_, {ChangeNode(1, Children({}))});
  // Parent count, not reachability: 2 and 3 keep each other.
  EXPECT_EQ(scope_->size(), 3u);
  EXPECT_NE(scope_->Find(TestUuid(2)), nullptr);
  EXPECT_NE(scope_->Find(TestUuid(3)), nullptr);
  EXPECT_THAT(StateUuids(*scope_), ElementsAre(Id(1)));
  EXPECT_OK(scope_->CheckInvariants());
  // A scope rebuilt from that state does not have them.
  auto copy = Scope::FromState(SchemaOrDie(kGraphSchema),
                               scope_->State().fragments, scope_->version());
  ASSERT_OK(copy);
  EXPECT_EQ((*copy)->size(), 1u);
}

TEST_F(GraphTest, SnapshotFragmentsKeepDetachedCyclesSoReplayIsExact) {
  ApplyOk(*scope_, {AddNode(2, Other(3)), AddNode(3, Other(2)),
                    ChangeNode(1, Children({2}))});
  ApplyOk(*scope_, {ChangeNode(1, Children({}))});
  rapidjson::StringBuffer state_buffer, snapshot_buffer;
  JsonWriter state_writer(state_buffer), snapshot_writer(snapshot_buffer);
  scope_->WriteStateFragments(state_writer);
  scope_->WriteSnapshotFragments(snapshot_writer);
  // Clients' state: the root only. The snapshot: the root first, then the
  // unreachable cycle as adds, by uuid.
  std::vector<SyncFragment> state =
      ParseFragmentsJson(state_buffer.GetString()).value();
  ASSERT_EQ(state.size(), 1u);
  std::vector<SyncFragment> snapshot =
      ParseFragmentsJson(snapshot_buffer.GetString()).value();
  ASSERT_EQ(snapshot.size(), 3u);
  EXPECT_EQ(snapshot[0].type, FragmentType::kChange);
  EXPECT_EQ(snapshot[0].uuid, TestUuid(1));
  EXPECT_EQ(snapshot[1].uuid, TestUuid(2));
  EXPECT_EQ(snapshot[2].uuid, TestUuid(3));
  auto copy =
      Scope::FromState(SchemaOrDie(kGraphSchema), snapshot, scope_->version());
  ASSERT_OK(copy);
  EXPECT_EQ((*copy)->size(), 3u);
  EXPECT_OK((*copy)->CheckInvariants());
  // Re-attaching the cycle gives the same result on both.
  ChangesetResult original =
      scope_->Apply(Changeset{{ChangeNode(1, Children({2}))}});
  ChangesetResult replayed =
      (*copy)->Apply(Changeset{{ChangeNode(1, Children({2}))}});
  EXPECT_TRUE(original.all_ok());
  EXPECT_TRUE(replayed.all_ok());
  EXPECT_EQ(original.version, replayed.version);
  EXPECT_EQ(StateJson(*scope_), StateJson(**copy));
  // With nothing detached, the snapshot is the state, byte for byte.
  rapidjson::StringBuffer a, b;
  JsonWriter wa(a), wb(b);
  scope_->WriteStateFragments(wa);
  scope_->WriteSnapshotFragments(wb);
  EXPECT_EQ(std::string(a.GetString()), std::string(b.GetString()));
}

TEST_F(GraphTest, ReferenceBackToTheRootDoesNotKeepAChildAlive) {
  ApplyOk(*scope_, {AddNode(2, Other(1)), ChangeNode(1, Children({2}))});
  EXPECT_EQ(scope_->root().parent_count(), 1u);
  EXPECT_THAT(StateUuids(*scope_), ElementsAre(Id(1), Id(2)));
  ApplyOk(*scope_, {ChangeNode(1, Children({}))});
  EXPECT_EQ(scope_->Find(TestUuid(2)), nullptr);
  EXPECT_EQ(scope_->root().parent_count(), 0u);
  EXPECT_EQ(scope_->size(), 1u);
  EXPECT_OK(scope_->CheckInvariants());
}

// ---------------------------------------------------------------------------
// Version and `applied`

TEST_F(CanvasTest, VersionGrowsOncePerChangesetThatAppliedSomething) {
  ChangesetResult empty = scope_->Apply(Changeset{});
  EXPECT_THAT(empty.replies, IsEmpty());
  EXPECT_FALSE(empty.changed());
  EXPECT_EQ(empty.version, 1u);

  ChangesetResult failed = scope_->Apply(Changeset{{
      Change(TestUuid(2), "Shape", R"({"x":"a"})"),
      Change(TestUuid(9), "Shape", R"({"x":1})"),
  }});
  EXPECT_FALSE(failed.changed());
  EXPECT_FALSE(failed.all_ok());
  EXPECT_EQ(failed.version, 1u);
  EXPECT_EQ(scope_->version(), 1u);

  ChangesetResult three =
      ApplyOk(*scope_, {Change(TestUuid(2), "Shape", R"({"x":5})"),
                        Change(TestUuid(3), "Shape", R"({"x":6})"),
                        Change(TestUuid(2), "Shape", R"({"y":7})")});
  EXPECT_TRUE(three.all_ok());
  EXPECT_EQ(three.version, 2u);

  ChangesetResult partial = scope_->Apply(Changeset{{
      Change(TestUuid(2), "Shape", R"({"x":"a"})"),
      Change(TestUuid(3), "Shape", R"({"x":8})"),
  }});
  EXPECT_TRUE(partial.changed());
  EXPECT_EQ(partial.version, 3u);
  EXPECT_EQ(scope_->version(), 3u);
  EXPECT_EQ(scope_->State().version, 3u);
}

TEST_F(ChatRoomTest, AppliedListsSuccessfulFragmentsInRequestOrderLowerCased) {
  // UUIDs with hex letters, so that upper-casing changes them.
  const uint64_t bob = 0xbeef5, post = 0xbeef6;
  ASSERT_NE(UpperId(bob), Id(bob));
  // The change comes first in the request although adds are applied first.
  std::vector<SyncFragment> fragments = Fragments(absl::StrCat(
      R"([{"type":"change","uuid":")", UpperId(1),
      R"(","clsName":"ChatRoom","properties":{"users":[")", UpperId(3),
      R"(",")", UpperId(bob), R"("],"messages":[")", UpperId(4), R"(",")",
      UpperId(post), R"("]}},)", R"({"type":"change","uuid":")", UpperId(3),
      R"(","clsName":"User","properties":{"color":"red"}},)",
      R"({"type":"add","uuid":")", UpperId(post),
      R"(","clsName":"Message","properties":{"author":")", UpperId(bob),
      R"(","text":"hey"}},)", R"({"type":"add","uuid":")", UpperId(bob),
      R"(","clsName":"User","properties":{"username":"bob"}}])"));
  ASSERT_EQ(*fragments[2].Find("author"), Value::String(UpperId(bob)));
  ChangesetResult r = scope_->Apply(Changeset{std::move(fragments)});
  EXPECT_THAT(
      ReplyMessages(r),
      ElementsAre("", "Not valid type at 'color', should be Number", "", ""));
  ASSERT_EQ(r.applied.size(), 3u);
  EXPECT_EQ(r.applied[0].uuid, TestUuid(1));
  EXPECT_EQ(r.applied[0].type, FragmentType::kChange);
  EXPECT_EQ(r.applied[1].uuid, TestUuid(post));
  EXPECT_EQ(r.applied[2].uuid, TestUuid(bob));
  EXPECT_EQ(
      EncodeFragments(r.applied),
      absl::StrCat(R"([{"type":"change","uuid":)", Q(1),
                   R"(,"clsName":"ChatRoom","properties":{"users":)",
                   L({3, bob}), R"(,"messages":)", L({4, post}), R"(}},)",
                   R"({"type":"add","uuid":)", Q(post),
                   R"(,"clsName":"Message","properties":{"author":)", Q(bob),
                   R"(,"text":"hey"}},)", R"({"type":"add","uuid":)", Q(bob),
                   R"(,"clsName":"User","properties":{"username":"bob"}}])"));
  // Stored references are lower case too, single and in collections.
  EXPECT_EQ(*scope_->Find(TestUuid(post))->Get("author"),
            Value::String(Id(bob)));
  EXPECT_EQ(*scope_->root().Get("users"),
            Value::ArrayOf({Value::String(Id(3)), Value::String(Id(bob))}));
  EXPECT_THAT(StateJson(*scope_), ::testing::Not(HasSubstr(UpperId(bob))));
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(ChatRoomTest, MissingReferencesAreReportedLowerCased) {
  const uint64_t ghost = 0xdead9;
  EXPECT_EQ(OnlyError(*scope_, Change(TestUuid(4), "Message",
                                      absl::StrCat(R"({"author":")",
                                                   UpperId(ghost), R"("})"))),
            absl::StrCat("No such ModelObject '", Id(ghost), "' at 'author'"));
  EXPECT_EQ(OnlyError(*scope_, Change(TestUuid(1), "ChatRoom",
                                      absl::StrCat(R"({"users":[")",
                                                   UpperId(ghost), R"("]})"))),
            absl::StrCat("No such ModelObjects '[", Q(ghost), "]' at 'users'"));
}

// ---------------------------------------------------------------------------
// Ordering and value rules

TEST_F(CanvasTest, AddsAreProcessedBeforeChanges) {
  ChangesetResult r = scope_->Apply(Changeset{{
      Change(TestUuid(1), "Canvas",
             absl::StrCat(R"({"shapes":)", L({2, 3, 9}), "}")),
      Add(TestUuid(9), "Shape", R"({"x":9})"),
  }});
  EXPECT_THAT(ReplyMessages(r), ElementsAre("", ""));
  EXPECT_EQ(scope_->size(), 4u);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(CanvasTest, ChangeCannotTargetAnObjectAddedInTheSameChangeset) {
  ChangesetResult r = scope_->Apply(Changeset{{
      Add(TestUuid(9), "Shape", R"({"x":9})"),
      Change(TestUuid(1), "Canvas",
             absl::StrCat(R"({"shapes":)", L({2, 3, 9}), "}")),
      Change(TestUuid(9), "Shape", R"({"x":10})"),
  }});
  EXPECT_THAT(ReplyMessages(r), ElementsAre("", "", "ModelObject not found"));
  EXPECT_EQ(*scope_->Find(TestUuid(9))->Get("x"), Value::Number(9));
  // In the next changeset it can.
  ApplyOk(*scope_, {Change(TestUuid(9), "Shape", R"({"x":10})")});
  EXPECT_EQ(*scope_->Find(TestUuid(9))->Get("x"), Value::Number(10));
}

TEST_F(ChatRoomTest, EnumerationAcceptsNull) {
  ApplyOk(*scope_,
          {Change(TestUuid(2), "ChatRoomAttributes", R"({"status":null})")});
  EXPECT_TRUE(scope_->Find(TestUuid(2))->Get("status")->is_null());
  ApplyOk(*scope_,
          {Change(TestUuid(2), "ChatRoomAttributes", R"({"status":1})")});
  EXPECT_EQ(*scope_->Find(TestUuid(2))->Get("status"), Value::Number(1));
}

TEST_F(ValuesTest, NullIsAcceptedForSingleValuesAndReferences) {
  ApplyOk(*scope_,
          {Set(R"({"s":"a","n":1,"b":true,"d":2,"mood":"Sad","level":1})")});
  ApplyOk(
      *scope_,
      {Set(
          R"({"s":null,"n":null,"b":null,"d":null,"mood":null,"level":null,"item":null})")});
  for (const char* name : {"s", "n", "b", "d", "mood", "level", "item"}) {
    EXPECT_TRUE(Get(name).is_null()) << name;
  }
  EXPECT_EQ(scope_->Find(TestUuid(2)), nullptr);  // lost its only parent
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"items":null})")),
            "Not valid type at 'items', should be array of UUIDs");
}

TEST_F(ValuesTest, ValueCollectionsRejectWrongElementTypes) {
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"ss":[1,2]})")),
            "Not valid type at 'ss', should be String");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"ns":["1"]})")),
            "Not valid type at 'ns', should be Number");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"bs":[0]})")),
            "Not valid type at 'bs', should be Boolean");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"moods":["Happy","Angry"]})")),
            R"(Not valid type at 'moods', should be one of ["Happy","Sad"])");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"levels":[0,2]})")),
            "Not valid type at 'levels', should be one of [0,1]");
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"ns":[null]})")),
            "Not valid type at 'ns', should be Number");
  // Mixed arrays cannot come off the wire (8.2) but are refused here too.
  SyncFragment mixed = Set("{}");
  mixed.properties.emplace_back(
      "ss", Value::ArrayOf({Value::String("a"), Value::Number(1)}));
  EXPECT_EQ(OnlyError(*scope_, mixed),
            "Not valid type at 'ss', should be String");
  SyncFragment with_null = Set("{}");
  with_null.properties.emplace_back(
      "ns", Value::ArrayOf({Value::Number(1), Value::Null()}));
  EXPECT_EQ(OnlyError(*scope_, with_null),
            "Not valid type at 'ns', should be Number");

  ApplyOk(*scope_, {Set(R"({"ss":["a","b"],"ns":[1,2.5],"bs":[true,false],)"
                        R"("moods":["Sad"],"levels":[1,0,1],"ds":[]})")});
  EXPECT_EQ(Get("ns"), Value::ArrayOf({Value::Number(1), Value::Number(2.5)}));
  EXPECT_EQ(Get("levels"), Value::ArrayOf({Value::Number(1), Value::Number(0),
                                           Value::Number(1)}));
}

TEST_F(ValuesTest, FirstInvalidKeyDecidesAndNothingIsAssigned) {
  EXPECT_EQ(OnlyError(*scope_, Set(R"({"s":"set?","n":"x","b":"y"})")),
            "Not valid type at 'n', should be Number");
  EXPECT_TRUE(Get("s").is_null());
  EXPECT_EQ(scope_->version(), 1u);
}

// ---------------------------------------------------------------------------
// ScopeState (docs/protocol.md#scope-state)

TEST_F(GraphTest, StateIsDepthFirstPreOrderInDeclarationOrder) {
  // root{children:[A,B], other:C}; A{children:[D]}; D{other:B}.
  ApplyOk(*scope_,
          {AddNode(5, absl::StrCat(R"({"name":"D","other":)", Q(3), "}")),
           AddNode(4), AddNode(3, R"({"name":"B"})"),
           AddNode(2, absl::StrCat(R"({"name":"A","children":)", L({5}), "}")),
           ChangeNode(1, absl::StrCat(R"({"name":"root","children":)",
                                      L({2, 3}), R"(,"other":)", Q(4), "}"))});
  ScopeState state = scope_->State();
  EXPECT_EQ(state.root_uuid, TestUuid(1));
  EXPECT_EQ(
      StateJson(*scope_),
      absl::StrCat(
          R"([{"type":"change","uuid":)", Q(1),
          R"(,"clsName":"Node","properties":{"name":"root","children":)",
          L({2, 3}), R"(,"other":)", Q(4), R"(}},)", R"({"type":"add","uuid":)",
          Q(2), R"(,"clsName":"Node","properties":{"name":"A","children":)",
          L({5}), R"(}},)", R"({"type":"add","uuid":)", Q(5),
          R"(,"clsName":"Node","properties":{"name":"D","children":[],"other":)",
          Q(3), R"(}},)", R"({"type":"add","uuid":)", Q(3),
          R"(,"clsName":"Node","properties":{"name":"B","children":[]}},)",
          R"({"type":"add","uuid":)", Q(4),
          R"(,"clsName":"Node","properties":{"name":null,"children":[]}}])"));
}

TEST_F(GraphTest, NewScopeStateIsTheRootAlone) {
  ScopeState state = scope_->State();
  EXPECT_EQ(state.version, 0u);
  EXPECT_EQ(
      EncodeFragments(state.fragments),
      absl::StrCat(
          R"([{"type":"change","uuid":)", Q(1),
          R"(,"clsName":"Node","properties":{"name":null,"children":[]}}])"));
}

TEST_F(ChatRoomTest, WriteStateFragmentsIsByteIdenticalToEncodeFragments) {
  ApplyOk(
      *scope_,
      {Change(
           TestUuid(4), "Message",
           R"({"text":"quote \" backslash \\ tab \t nl \n \u00e9 \u2603 \ud83d\ude00 \u0001"})"),
       Change(TestUuid(3), "User", R"({"color":-0.000001,"username":null})"),
       Change(TestUuid(2), "ChatRoomAttributes",
              R"({"tintColor":1e21,"status":null,"locale":""})")});
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  scope_->WriteStateFragments(writer);
  std::string written(buffer.GetString(), buffer.GetSize());
  EXPECT_EQ(written, EncodeFragments(scope_->State().fragments));
  EXPECT_THAT(written, HasSubstr(R"("tintColor":1e+21)"));
  EXPECT_THAT(written, HasSubstr(R"("color":-0.000001)"));

  // Also for a scope whose root is alone and one with an omitted reference.
  auto lone = NewScope(DemoSchema(), "ChatRoom", 7);
  rapidjson::StringBuffer buffer2;
  JsonWriter writer2(buffer2);
  lone->WriteStateFragments(writer2);
  EXPECT_EQ(std::string(buffer2.GetString(), buffer2.GetSize()),
            EncodeFragments(lone->State().fragments));
  EXPECT_EQ(EncodeFragments(lone->State().fragments),
            absl::StrCat(R"([{"type":"change","uuid":)", Q(7),
                         R"(,"clsName":"ChatRoom","properties":{"name":null,)"
                         R"("users":[],"messages":[]}}])"));
}

TEST_F(ChatRoomTest, StateOmitsNullReferencesKeepsNullValues) {
  ApplyOk(*scope_,
          {Change(TestUuid(4), "Message", R"({"author":null,"text":null})")});
  std::string state = StateJson(*scope_);
  // Message 4 now has no author key but a null text; user 3 still has
  // users as parent.
  EXPECT_THAT(
      state,
      HasSubstr(absl::StrCat(
          R"({"type":"add","uuid":)", Q(4),
          R"(,"clsName":"Message","properties":{"postedAt":1450582562.5,"text":null}})")));
  EXPECT_NE(scope_->Find(TestUuid(3)), nullptr);
}

TEST_F(ChatRoomTest, FromStateReproducesStateAndVersion) {
  ApplyOk(*scope_,
          {Change(TestUuid(2), "ChatRoomAttributes", R"({"status":1})")});
  ASSERT_EQ(scope_->version(), 2u);
  ScopeState state = scope_->State();
  auto copy = Scope::FromState(DemoSchema(), state.fragments, state.version);
  ASSERT_OK(copy);
  EXPECT_EQ((*copy)->version(), 2u);
  EXPECT_EQ((*copy)->root().uuid(), TestUuid(1));
  EXPECT_EQ((*copy)->size(), scope_->size());
  EXPECT_EQ(StateJson(**copy), StateJson(*scope_));
  EXPECT_OK((*copy)->CheckInvariants());
  // The copy behaves like the original.
  ApplyOk(**copy,
          {Change(TestUuid(1), "ChatRoom", R"({"messages":[],"users":[]})")});
  EXPECT_EQ((*copy)->size(), 2u);
  EXPECT_EQ((*copy)->version(), 3u);
}

TEST(FromStateTest, RejectsStatesThatDoNotApply) {
  auto schema = DemoSchema();
  EXPECT_FALSE(Scope::FromState(schema, {}, 0).ok());
  EXPECT_FALSE(Scope::FromState(schema, {Add(TestUuid(1), "Canvas")}, 0).ok());
  EXPECT_FALSE(Scope::FromState(schema, {Change(TestUuid(1), "Nope")}, 0).ok());
  auto bad =
      Scope::FromState(schema,
                       {Change(TestUuid(1), "Canvas",
                               absl::StrCat(R"({"shapes":)", L({2}), "}")),
                        Add(TestUuid(2), "Shape", R"({"x":"a"})")},
                       4);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(bad.status().message(),
            absl::StrCat("scope state fragment 0 does not apply: No such "
                         "ModelObjects '[",
                         Q(2), "]' at 'shapes'"));
  auto bad_value = Scope::FromState(
      schema, {Change(TestUuid(1), "Canvas", R"({"name":5})")}, 4);
  ASSERT_FALSE(bad_value.ok());
  EXPECT_EQ(bad_value.status().message(),
            "scope state fragment 0 does not apply: Not valid type at 'name', "
            "should be String");
}

// ---------------------------------------------------------------------------
// iOS StateMessageTests / SyncFragmentTests, as they concern a server

TEST(StateMessageTest, InitialStateRootAdoptsUuidAndChildIsAdded) {
  const std::string root = "0f3c2a8e-5b1d-4c7e-9a11-3d2f6b7c8e90";
  const std::string child = "6b1e0c3a-2f4d-4b8e-8c9a-1e2d3f4a5b6c";
  std::vector<SyncFragment> fragments = Fragments(absl::StrCat(
      R"([{"type":"change","uuid":")", root,
      R"(","clsName":"Canvas","properties":{"name":"Shapes Demo","shapes":[")",
      child, R"("]}},{"type":"add","uuid":")", child,
      R"(","clsName":"Shape","properties":{"x":10,"y":20,"width":100,"height":100,"color":null}}])"));
  std::string encoded = EncodeFragments(fragments);
  auto scope = Scope::FromState(DemoSchema(), std::move(fragments), 0);
  ASSERT_OK(scope);
  EXPECT_EQ((*scope)->root().uuid().ToString(), root);
  EXPECT_EQ((*scope)->State().root_uuid.ToString(), root);
  ASSERT_EQ((*scope)->size(), 2u);
  const ModelObject* shape = (*scope)->Find(*Uuid::Parse(child));
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(*shape->Get("y"), Value::Number(20));
  EXPECT_EQ(StateJson(**scope), encoded);
}

TEST_F(ChatRoomTest, ReapplyingAStateIsIdempotent) {
  const std::string state = StateJson(*scope_);
  // Rebuilding from a rebuilt state changes nothing.
  auto once = Scope::FromState(DemoSchema(), scope_->State().fragments, 1);
  ASSERT_OK(once);
  auto twice = Scope::FromState(DemoSchema(), (*once)->State().fragments, 1);
  ASSERT_OK(twice);
  EXPECT_EQ(StateJson(**twice), state);
  // Applying the state's fragments to the scope it came from: the adds are
  // refused (the objects exist), the root change re-sets equal values.
  ChangesetResult r = scope_->Apply(Changeset{scope_->State().fragments});
  const std::vector<std::string> messages = ReplyMessages(r);
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[0], "");
  for (uint64_t i = 1; i < 4; ++i) {
    EXPECT_EQ(messages[i], absl::StrCat("ModelObject with UUID '", Id(i + 1),
                                        "' already exists"));
  }
  EXPECT_EQ(StateJson(*scope_), state);
  EXPECT_EQ(scope_->size(), 4u);
  EXPECT_OK(scope_->CheckInvariants());
}

TEST_F(GraphTest, AddingDependentFirstIsOrderIndependent) {
  // child 2 refers to grandchild 3; every permutation of the three fragments
  // gives the same scope.
  std::vector<SyncFragment> fragments = {AddNode(3, R"({"name":"grandchild"})"),
                                         AddNode(2, Children({3})),
                                         ChangeNode(1, Children({2}))};
  std::vector<int> order = {0, 1, 2};
  std::string expected;
  do {
    auto scope = NewScope(SchemaOrDie(kGraphSchema), "Node");
    std::vector<SyncFragment> permuted;
    for (int i : order) permuted.push_back(fragments[i]);
    ChangesetResult r = ApplyOk(*scope, permuted);
    EXPECT_EQ(r.applied.size(), 3u);
    EXPECT_EQ(scope->size(), 3u);
    if (expected.empty()) expected = StateJson(*scope);
    EXPECT_EQ(StateJson(*scope), expected);
    // As a state, too: the dependent's add may come first.
    std::vector<SyncFragment> state = {ChangeNode(1, Children({2})),
                                       AddNode(3, R"({"name":"grandchild"})"),
                                       AddNode(2, Children({3}))};
    auto rebuilt = Scope::FromState(SchemaOrDie(kGraphSchema), state, 0);
    ASSERT_OK(rebuilt);
    EXPECT_EQ(StateJson(**rebuilt), expected);
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_THAT(expected, HasSubstr("grandchild"));
}

TEST(SyncFragmentTest, SerializationFailureWithoutTypeUuidOrClsName) {
  const std::string uuid = Id(1);
  EXPECT_EQ(ParseFragmentsJson(
                absl::StrCat(R"([{"uuid":")", uuid, R"(","clsName":"Shape"}])"))
                .status()
                .message(),
            "SyncFragment requires type");
  EXPECT_EQ(ParseFragmentsJson(R"([{"type":"add","clsName":"Shape"}])")
                .status()
                .message(),
            "SyncFragment requires uuid");
  EXPECT_EQ(ParseFragmentsJson(
                absl::StrCat(R"([{"type":"add","uuid":")", uuid, R"("}])"))
                .status()
                .message(),
            "Requires clsName or modelObject");
}

// ---------------------------------------------------------------------------
// The demo ChatRoom

TEST_F(ChatRoomTest, ChatRoomUsersMessagesAndAttributes) {
  EXPECT_EQ(
      StateJson(*scope_),
      absl::StrCat(
          R"([{"type":"change","uuid":)", Q(1),
          R"(,"clsName":"ChatRoom","properties":{"name":"Chat Demo","attributes":)",
          Q(2), R"(,"users":)", L({3}), R"(,"messages":)", L({4}), R"(}},)",
          R"({"type":"add","uuid":)", Q(2),
          R"(,"clsName":"ChatRoomAttributes","properties":{"status":0,"topic":"Hello",)"
          R"("tintColor":4278190335,"locale":"en_US"}},)",
          R"({"type":"add","uuid":)", Q(3),
          R"(,"clsName":"User","properties":{"username":"alice","color":1,)"
          R"("lastActive":1450582561.123}},)",
          R"({"type":"add","uuid":)", Q(4),
          R"(,"clsName":"Message","properties":{"author":)", Q(3),
          R"(,"postedAt":1450582562.5,"text":"hi"}}])"));
  EXPECT_EQ(scope_->Find(TestUuid(3))->parent_count(), 2u);  // users + author

  ChangesetResult r = scope_->Apply(Changeset{{
      Change(TestUuid(2), "ChatRoomAttributes", R"({"status":2})"),
      Change(TestUuid(2), "ChatRoomAttributes",
             R"({"status":1,"topic":"Closed"})"),
      Change(TestUuid(4), "Message", absl::StrCat(R"({"author":)", Q(4), "}")),
      Change(TestUuid(4), "Message", R"({"postedAt":"yesterday"})"),
      Change(TestUuid(1), "ChatRoom",
             absl::StrCat(R"({"messages":)", L({3}), "}")),
      Change(TestUuid(1), "ChatRoom",
             absl::StrCat(R"({"attributes":)", Q(3), "}")),
  }});
  EXPECT_THAT(
      ReplyMessages(r),
      ElementsAre(
          "Not valid type at 'status', should be one of [0,1]", "",
          "Not valid type at 'author', should be User",
          "Not valid type at 'postedAt', should be Date",
          "Not valid type at 'messages', should be Message",
          "Not valid type at 'attributes', should be ChatRoomAttributes"));
  EXPECT_EQ(*scope_->Find(TestUuid(2))->Get("status"), Value::Number(1));

  // A second user posts; then the first one logs out: still an author, so
  // it stays until its message goes too.
  ApplyOk(*scope_,
          {Add(TestUuid(5), "User", R"({"username":"bob"})"),
           Add(TestUuid(6), "Message",
               absl::StrCat(R"({"author":)", Q(5), R"(,"text":"yo"})")),
           Change(TestUuid(1), "ChatRoom",
                  absl::StrCat(R"({"users":)", L({3, 5}), R"(,"messages":)",
                               L({4, 6}), "}"))});
  EXPECT_EQ(scope_->size(), 6u);
  ApplyOk(*scope_, {Change(TestUuid(1), "ChatRoom",
                           absl::StrCat(R"({"users":)", L({5}), "}"))});
  ASSERT_NE(scope_->Find(TestUuid(3)), nullptr);
  EXPECT_EQ(scope_->Find(TestUuid(3))->parent_count(), 1u);
  ApplyOk(*scope_, {Change(TestUuid(1), "ChatRoom",
                           absl::StrCat(R"({"messages":)", L({6}), "}"))});
  EXPECT_EQ(scope_->Find(TestUuid(4)), nullptr);
  EXPECT_EQ(scope_->Find(TestUuid(3)),
            nullptr);  // cascade: its last parent left
  EXPECT_EQ(scope_->size(), 4u);
  EXPECT_EQ(scope_->version(), 5u);
  EXPECT_OK(scope_->CheckInvariants());
}

}  // namespace
}  // namespace jetstream
