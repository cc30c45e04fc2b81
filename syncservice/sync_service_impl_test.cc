// End-to-end tests of the SyncService over a real gRPC channel: a
// SyncServer with the demo schema and scopes on 127.0.0.1:0, gateway
// streams and backend calls from the generated client.

#include "syncservice/sync_service_impl.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/fragment_json.h"
#include "common/fragment_proto.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/sync/v1/sync_service.grpc.pb.h"
#include "syncservice/sync_server.h"
#include "tests/testing/status_matchers.h"

namespace jetstream {
namespace {

using sync::v1::ApplyChangesetRequest;
using sync::v1::ApplyChangesetResponse;
using sync::v1::GatewayFrame;
using sync::v1::GatewayRequest;
using sync::v1::GetScopeRequest;
using sync::v1::GetScopeResponse;
using sync::v1::ListScopesRequest;
using sync::v1::ListScopesResponse;
using sync::v1::ServiceEvent;
using sync::v1::ServiceFrame;
using sync::v1::SyncService;
using ::testing::HasSubstr;

// Generous: only reached when something is broken.
constexpr auto kDeadline = std::chrono::seconds(60);

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + kDeadline;
}

// Fragments from JSON, as protos.
google::protobuf::RepeatedPtrField<sync::v1::SyncFragment> ProtoFragments(
    absl::string_view json) {
  google::protobuf::RepeatedPtrField<sync::v1::SyncFragment> out;
  const std::vector<SyncFragment> fragments = ParseFragmentsJson(json).value();
  for (const SyncFragment& f : fragments) {
    ToProto(f, out.Add());
  }
  return out;
}

// The root UUID of a snapshot.
std::string RootOf(const sync::v1::ScopeSnapshot& snapshot) {
  return snapshot.root_uuid();
}

// Adds shape `uuid` to canvas `root` as its only shape.
std::string AddShapeJson(const std::string& root, const std::string& uuid) {
  return absl::StrCat(R"([{"type":"add","uuid":")", uuid,
                      R"(","clsName":"Shape","properties":{"x":5}},)",
                      R"({"type":"change","uuid":")", root,
                      R"(","clsName":"Canvas","properties":{"shapes":[")", uuid,
                      R"("]}}])");
}

std::string RenameJson(const std::string& root, absl::string_view name) {
  return absl::StrCat(R"([{"type":"change","uuid":")", root,
                      R"(","clsName":"Canvas","properties":{"name":")", name,
                      R"("}}])");
}

// A gateway's Connect stream, driven synchronously. Every read is bounded
// by the context deadline, so a missing event fails instead of hanging.
class GatewayStream {
 public:
  explicit GatewayStream(SyncService::Stub* stub) {
    context_.set_deadline(Deadline());
    stream_ = stub->Connect(&context_);
  }

  ~GatewayStream() { Close(); }

  void Send(const GatewayFrame& frame) { ASSERT_TRUE(stream_->Write(frame)); }

  void Fetch(uint64_t id, const std::string& scope,
             const std::string& session = "session") {
    GatewayFrame frame;
    GatewayRequest* r = frame.add_requests();
    r->set_request_id(id);
    r->mutable_fetch()->set_scope(scope);
    r->mutable_fetch()->set_session_id(session);
    r->mutable_fetch()->set_params_json("{}");
    Send(frame);
  }

  void Apply(uint64_t id, const std::string& scope, const std::string& session,
             absl::string_view fragments_json, bool atomic = false) {
    GatewayFrame frame;
    AddApply(&frame, id, scope, session, fragments_json, atomic);
    Send(frame);
  }

  static void AddApply(GatewayFrame* frame, uint64_t id,
                       const std::string& scope, const std::string& session,
                       absl::string_view fragments_json, bool atomic = false) {
    GatewayRequest* r = frame->add_requests();
    r->set_request_id(id);
    r->mutable_apply()->set_scope(scope);
    r->mutable_apply()->set_session_id(session);
    r->mutable_apply()->set_atomic(atomic);
    *r->mutable_apply()->mutable_fragments() = ProtoFragments(fragments_json);
  }

  void Watch(const std::string& scope, const std::string& epoch,
             uint64_t after) {
    GatewayFrame frame;
    GatewayRequest* r = frame.add_requests();
    r->set_request_id(0);
    r->mutable_watch()->set_scope(scope);
    r->mutable_watch()->set_epoch(epoch);
    r->mutable_watch()->set_after_version(after);
    Send(frame);
  }

  void Unwatch(const std::string& scope) {
    GatewayFrame frame;
    frame.add_requests()->mutable_unwatch()->set_scope(scope);
    Send(frame);
  }

  // The next event but a Membership (those are kept in memberships()); fails
  // the test (and returns an empty event) if the stream ends first.
  ServiceEvent Next() {
    while (pending_.empty()) {
      ServiceFrame frame;
      if (!stream_->Read(&frame)) {
        ADD_FAILURE() << "stream ended while waiting for an event";
        return ServiceEvent();
      }
      ++frames_;
      for (ServiceEvent& e : *frame.mutable_events()) {
        if (e.has_membership()) {
          memberships_.push_back(e.membership());
          continue;
        }
        pending_.push_back(std::move(e));
      }
    }
    ServiceEvent e = std::move(pending_.front());
    pending_.pop_front();
    return e;
  }

  sync::v1::FetchResult NextFetchResult() {
    ServiceEvent e = Next();
    EXPECT_TRUE(e.has_fetch_result()) << e.DebugString();
    return e.fetch_result();
  }
  sync::v1::Commit NextCommit() {
    ServiceEvent e = Next();
    EXPECT_TRUE(e.has_commit()) << e.DebugString();
    return e.commit();
  }
  sync::v1::ApplyResult NextApplyResult() {
    ServiceEvent e = Next();
    EXPECT_TRUE(e.has_apply_result()) << e.DebugString();
    return e.apply_result();
  }

  // Half-closes and waits for the server's status.
  grpc::Status Close() {
    if (closed_) return grpc::Status::OK;
    closed_ = true;
    stream_->WritesDone();
    ServiceFrame ignored;
    while (stream_->Read(&ignored)) {
    }
    return stream_->Finish();
  }

  int frames() const { return frames_; }
  const std::vector<sync::v1::Membership>& memberships() const {
    return memberships_;
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<GatewayFrame, ServiceFrame>> stream_;
  std::deque<ServiceEvent> pending_;
  std::vector<sync::v1::Membership> memberships_;
  int frames_ = 0;
  bool closed_ = false;
};

class SyncServiceImplTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SyncServerOptions options;
    options.listen = "127.0.0.1:0";
    options.shutdown_grace = absl::ZeroDuration();
    absl::StatusOr<std::unique_ptr<SyncServer>> server =
        SyncServer::Start(options);
    ASSERT_OK(server);
    server_ = *std::move(server);
    ASSERT_NE(server_->port(), 0);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    stub_ = SyncService::NewStub(channel_);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
  }

  std::unique_ptr<GatewayStream> NewStream() {
    return std::make_unique<GatewayStream>(stub_.get());
  }

  grpc::Status GetScope(const std::string& scope, GetScopeResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    GetScopeRequest request;
    request.set_scope(scope);
    return stub_->GetScope(&context, request, response);
  }

  ListScopesResponse ListScopes() {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    ListScopesResponse response;
    grpc::Status status =
        stub_->ListScopes(&context, ListScopesRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // The scope's entry in ListScopes, if listed.
  std::optional<sync::v1::ScopeInfo> FindInfo(const std::string& scope) {
    const ListScopesResponse list = ListScopes();
    for (const auto& info : list.scopes()) {
      if (info.scope() == scope) return info;
    }
    return std::nullopt;
  }

  grpc::Status BackendApply(const std::string& scope,
                            absl::string_view fragments_json,
                            ApplyChangesetResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    ApplyChangesetRequest request;
    request.set_scope(scope);
    *request.mutable_fragments() = ProtoFragments(fragments_json);
    return stub_->ApplyChangeset(&context, request, response);
  }

  std::unique_ptr<SyncServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<SyncService::Stub> stub_;
};

TEST_F(SyncServiceImplTest, FetchReturnsTheSnapshot) {
  auto a = NewStream();
  a->Fetch(7, "Canvas");
  sync::v1::FetchResult result = a->NextFetchResult();
  EXPECT_EQ(result.request_id(), 7u);
  EXPECT_FALSE(result.has_error());
  const sync::v1::ScopeSnapshot& s = result.snapshot();
  EXPECT_EQ(s.scope(), "Canvas");
  EXPECT_FALSE(s.epoch().empty());
  std::vector<SyncFragment> state =
      ParseFragmentsJson(s.fragments_json()).value();
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].type, FragmentType::kChange);
  EXPECT_EQ(state[0].cls_name, "Canvas");
  EXPECT_EQ(state[0].uuid.ToString(), s.root_uuid());
  EXPECT_EQ(*state[0].Find("name"), Value::String("Shapes Demo"));
  EXPECT_OK(a->Close());
}

TEST_F(SyncServiceImplTest, UnknownScopeIsNoSuchScope) {
  auto a = NewStream();
  a->Fetch(1, "Nope");
  sync::v1::FetchResult result = a->NextFetchResult();
  EXPECT_EQ(result.request_id(), 1u);
  EXPECT_EQ(result.error().message(), "No such scope");
  EXPECT_EQ(result.error().type(), "");
  EXPECT_FALSE(result.has_snapshot());
}

TEST_F(SyncServiceImplTest, ApplyReachesTheOriginatorAndEveryWatcher) {
  auto a = NewStream();
  auto b = NewStream();
  a->Fetch(1, "Canvas", "session-a");
  b->Fetch(1, "Canvas", "session-b");
  sync::v1::ScopeSnapshot snap = a->NextFetchResult().snapshot();
  EXPECT_EQ(b->NextFetchResult().snapshot().version(), snap.version());

  const std::string shape = "6b1e0c3a-2f4d-4b8e-8c9a-1e2d3f4a5b6c";
  a->Apply(2, "Canvas", "session-a", AddShapeJson(RootOf(snap), shape));

  // On the originating stream the result comes before its own commit.
  sync::v1::ApplyResult result = a->NextApplyResult();
  EXPECT_EQ(result.request_id(), 2u);
  ASSERT_EQ(result.replies_size(), 2);
  EXPECT_FALSE(result.replies(0).has_error());
  EXPECT_FALSE(result.replies(1).has_error());
  EXPECT_EQ(result.version(), snap.version() + 1);

  for (GatewayStream* s : {a.get(), b.get()}) {
    sync::v1::Commit commit = s->NextCommit();
    EXPECT_EQ(commit.scope(), "Canvas");
    EXPECT_EQ(commit.epoch(), snap.epoch());
    EXPECT_EQ(commit.version(), snap.version() + 1);
    EXPECT_EQ(commit.origin_session_id(), "session-a");
    EXPECT_FALSE(commit.replayed());
    std::vector<SyncFragment> applied =
        ParseFragmentsJson(commit.fragments_json()).value();
    ASSERT_EQ(applied.size(), 2u);
    EXPECT_EQ(applied[0].uuid.ToString(), shape);
  }
}

TEST_F(SyncServiceImplTest, FailedFragmentsAreRepliedAndNotBroadcast) {
  auto a = NewStream();
  a->Fetch(1, "Canvas");
  sync::v1::ScopeSnapshot snap = a->NextFetchResult().snapshot();
  a->Apply(2, "Canvas", "s",
           absl::StrCat(R"([{"type":"change","uuid":")", RootOf(snap),
                        R"(","clsName":"Canvas","properties":{"colour":1}}])"));
  sync::v1::ApplyResult result = a->NextApplyResult();
  ASSERT_EQ(result.replies_size(), 1);
  EXPECT_EQ(result.replies(0).error().message(), "No property at 'colour'");
  EXPECT_EQ(result.version(), snap.version());
  // The next event is the next request's, not a commit.
  a->Fetch(3, "Canvas");
  EXPECT_EQ(a->NextFetchResult().request_id(), 3u);
}

TEST_F(SyncServiceImplTest, TemplateScopeIsCreatedOnFirstFetch) {
  EXPECT_FALSE(FindInfo("canvas/room-1").has_value());
  auto a = NewStream();
  a->Fetch(1, "canvas/room-1");
  sync::v1::FetchResult result = a->NextFetchResult();
  ASSERT_FALSE(result.has_error()) << result.error().message();
  EXPECT_EQ(result.snapshot().scope(), "canvas/room-1");
  EXPECT_THAT(result.snapshot().fragments_json(),
              HasSubstr(R"("clsName":"Canvas","properties":{"name":"Canvas")"));
  std::optional<sync::v1::ScopeInfo> info = FindInfo("canvas/room-1");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->root_model(), "Canvas");
  EXPECT_EQ(info->watchers(), 1u);
}

TEST_F(SyncServiceImplTest, BackendApplyHasNoOriginAndReachesWatchers) {
  auto a = NewStream();
  a->Fetch(1, "Canvas");
  sync::v1::ScopeSnapshot snap = a->NextFetchResult().snapshot();

  ApplyChangesetResponse response;
  grpc::Status status =
      BackendApply("Canvas", RenameJson(RootOf(snap), "Renamed"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.replies_size(), 1);
  EXPECT_FALSE(response.replies(0).has_error());
  EXPECT_EQ(response.version(), snap.version() + 1);

  sync::v1::Commit commit = a->NextCommit();
  EXPECT_EQ(commit.origin_session_id(), "");
  EXPECT_EQ(commit.version(), snap.version() + 1);
  EXPECT_THAT(commit.fragments_json(), HasSubstr(R"("name":"Renamed")"));

  // Errors of backend calls are gRPC statuses.
  status = BackendApply("Nope", "[]", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "No such scope");
}

TEST_F(SyncServiceImplTest, GetScope) {
  GetScopeResponse response;
  grpc::Status status = GetScope("ChatRoom", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.snapshot().scope(), "ChatRoom");
  std::vector<SyncFragment> state =
      ParseFragmentsJson(response.snapshot().fragments_json()).value();
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[1].cls_name, "ChatRoomAttributes");
  EXPECT_EQ(*state[1].Find("topic"), Value::String("Welcome"));

  status = GetScope("Nope", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "No such scope");
}

TEST_F(SyncServiceImplTest, ListScopes) {
  auto a = NewStream();
  a->Fetch(1, "ChatRoom");
  a->NextFetchResult();
  ListScopesResponse list = ListScopes();
  ASSERT_EQ(list.scopes_size(), 2);
  EXPECT_EQ(list.scopes(0).scope(), "Canvas");
  EXPECT_EQ(list.scopes(0).root_model(), "Canvas");
  EXPECT_EQ(list.scopes(0).object_count(), 1u);
  EXPECT_EQ(list.scopes(0).watchers(), 0u);
  EXPECT_EQ(list.scopes(1).scope(), "ChatRoom");
  EXPECT_EQ(list.scopes(1).object_count(), 2u);
  EXPECT_EQ(list.scopes(1).watchers(), 1u);
}

TEST_F(SyncServiceImplTest, MalformedRequestsGetErrorsAndTheServerLives) {
  auto a = NewStream();
  a->Fetch(1, "Canvas");
  sync::v1::ScopeSnapshot snap = a->NextFetchResult().snapshot();

  GatewayFrame frame;
  GatewayRequest* r = frame.add_requests();
  r->set_request_id(2);
  r->mutable_apply()->set_scope("Canvas");
  r->mutable_apply()->set_session_id("s");
  sync::v1::SyncFragment* good = r->mutable_apply()->add_fragments();
  good->set_type(sync::v1::SyncFragment::CHANGE);
  good->set_uuid(RootOf(snap));
  good->set_cls_name("Canvas");
  sync::v1::SyncFragment* bad = r->mutable_apply()->add_fragments();
  bad->set_type(sync::v1::SyncFragment::ADD);
  bad->set_uuid("not-a-uuid");
  bad->set_cls_name("Shape");
  // An unknown fragment type, in a second request of the same frame.
  r = frame.add_requests();
  r->set_request_id(3);
  r->mutable_apply()->set_scope("Canvas");
  sync::v1::SyncFragment* untyped = r->mutable_apply()->add_fragments();
  untyped->set_uuid(RootOf(snap));
  untyped->set_cls_name("Canvas");
  // An empty request, and an apply to an unknown scope.
  frame.add_requests()->set_request_id(4);
  GatewayStream::AddApply(&frame, 5, "Nope", "s",
                          RenameJson(RootOf(snap), "x"));
  a->Send(frame);

  sync::v1::ApplyResult result = a->NextApplyResult();
  EXPECT_EQ(result.request_id(), 2u);
  ASSERT_EQ(result.replies_size(), 2);
  for (const auto& reply : result.replies()) {
    EXPECT_EQ(reply.error().type(), "could-not-apply-sync-message");
    EXPECT_EQ(reply.error().message(),
              "Could not apply SyncMessage: fragment 1: fragment uuid "
              "'not-a-uuid' is not a UUID");
  }
  EXPECT_EQ(result.version(), snap.version());

  result = a->NextApplyResult();
  EXPECT_EQ(result.request_id(), 3u);
  ASSERT_EQ(result.replies_size(), 1);
  EXPECT_THAT(result.replies(0).error().message(),
              HasSubstr("fragment type must be ADD or CHANGE"));

  result = a->NextApplyResult();
  EXPECT_EQ(result.request_id(), 5u);
  ASSERT_EQ(result.replies_size(), 1);
  EXPECT_EQ(result.replies(0).error().message(),
            "Could not apply SyncMessage: No such scope");

  // Backend calls with bad fragments are INVALID_ARGUMENT.
  ApplyChangesetResponse response;
  ApplyChangesetRequest request;
  request.set_scope("Canvas");
  request.add_fragments()->set_uuid("zzz");
  grpc::ClientContext context;
  grpc::Status status = stub_->ApplyChangeset(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // Nothing changed, and the service still answers.
  a->Fetch(6, "Canvas");
  sync::v1::FetchResult again = a->NextFetchResult();
  EXPECT_EQ(again.request_id(), 6u);
  EXPECT_EQ(again.snapshot().version(), snap.version());
  GetScopeResponse get;
  EXPECT_OK(GetScope("Canvas", &get));
}

TEST_F(SyncServiceImplTest, ProceduresAreRefusedAsAWhole) {
  auto a = NewStream();
  a->Fetch(1, "Canvas");
  sync::v1::ScopeSnapshot snap = a->NextFetchResult().snapshot();
  GatewayFrame frame;
  GatewayStream::AddApply(&frame, 2, "Canvas", "s",
                          RenameJson(RootOf(snap), "x"), /*atomic=*/true);
  frame.mutable_requests(0)->mutable_apply()->set_procedure("Canvas.paint");
  a->Send(frame);
  sync::v1::ApplyResult result = a->NextApplyResult();
  ASSERT_EQ(result.replies_size(), 1);
  EXPECT_EQ(result.replies(0).error().message(),
            "Could not apply SyncMessage: No such procedure 'paint' for model "
            "'Canvas'");
}

TEST_F(SyncServiceImplTest, ManyRequestsInOneFrameAnswerInOrder) {
  auto a = NewStream();
  a->Fetch(1, "Canvas");
  sync::v1::ScopeSnapshot snap = a->NextFetchResult().snapshot();
  GatewayFrame frame;
  constexpr int kApplies = 50;
  for (int i = 0; i < kApplies; ++i) {
    GatewayStream::AddApply(&frame, 100 + i, "Canvas", "s",
                            RenameJson(RootOf(snap), absl::StrCat("n", i)));
  }
  a->Send(frame);
  // Per request: its result, then its commit.
  for (int i = 0; i < kApplies; ++i) {
    sync::v1::ApplyResult result = a->NextApplyResult();
    EXPECT_EQ(result.request_id(), 100u + i);
    EXPECT_EQ(result.version(), snap.version() + 1 + i);
    EXPECT_EQ(a->NextCommit().version(), snap.version() + 1 + i);
  }
  // Coalesced: fewer frames than events (the fetch result went alone).
  EXPECT_LT(a->frames(), 1 + 2 * kApplies);
}

TEST_F(SyncServiceImplTest, FetchRacingWithAppliesSeesEveryLaterCommitOnce) {
  GetScopeResponse initial;
  ASSERT_OK(GetScope("Canvas", &initial));
  const std::string root = initial.snapshot().root_uuid();
  constexpr int kApplies = 200;
  std::thread writer([&] {
    for (int i = 0; i < kApplies; ++i) {
      ApplyChangesetResponse response;
      grpc::Status status = BackendApply(
          "Canvas", RenameJson(root, absl::StrCat("w", i)), &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
  });
  auto a = NewStream();
  a->Fetch(1, "Canvas");
  sync::v1::FetchResult fetched = a->NextFetchResult();
  writer.join();
  const uint64_t final_version = initial.snapshot().version() + kApplies;
  for (uint64_t v = fetched.snapshot().version() + 1; v <= final_version; ++v) {
    sync::v1::Commit commit = a->NextCommit();
    ASSERT_EQ(commit.version(), v);
  }
  // And nothing more: a fetch now answers at the final version.
  a->Fetch(2, "Canvas");
  EXPECT_EQ(a->NextFetchResult().snapshot().version(), final_version);
}

TEST_F(SyncServiceImplTest, WatchReplaysMissedCommitsOrResyncs) {
  std::string epoch;
  uint64_t version = 0;
  std::string root;
  {
    auto a = NewStream();
    a->Fetch(1, "Canvas");
    sync::v1::ScopeSnapshot snap = a->NextFetchResult().snapshot();
    epoch = snap.epoch();
    version = snap.version();
    root = snap.root_uuid();
    EXPECT_OK(a->Close());
  }
  ApplyChangesetResponse response;
  ASSERT_OK(BackendApply("Canvas", RenameJson(root, "one"), &response));
  ASSERT_OK(BackendApply("Canvas", RenameJson(root, "two"), &response));

  // The re-opened stream catches up from the log.
  auto b = NewStream();
  b->Watch("Canvas", epoch, version);
  for (uint64_t v = version + 1; v <= version + 2; ++v) {
    sync::v1::Commit replayed = b->NextCommit();
    EXPECT_EQ(replayed.version(), v);
    EXPECT_TRUE(replayed.replayed());
    EXPECT_EQ(replayed.epoch(), epoch);
  }

  // An epoch the scope never had: the full state instead.
  auto c = NewStream();
  c->Watch("Canvas", "some-other-epoch", version);
  ServiceEvent e = c->Next();
  ASSERT_TRUE(e.has_resync()) << e.DebugString();
  EXPECT_EQ(e.resync().snapshot().version(), version + 2);
  EXPECT_EQ(e.resync().snapshot().epoch(), epoch);
  EXPECT_THAT(e.resync().snapshot().fragments_json(),
              HasSubstr(R"("name":"two")"));

  // Unwatch: later commits no longer reach b; c still gets them.
  b->Unwatch("Canvas");
  c->Fetch(5, "ChatRoom");  // a marker that b's unwatch was processed
  c->NextFetchResult();
  b->Fetch(6, "ChatRoom");
  b->NextFetchResult();
  ASSERT_TRUE(
      BackendApply("Canvas", RenameJson(root, "three"), &response).ok());
  sync::v1::Commit live = c->NextCommit();
  EXPECT_EQ(live.version(), version + 3);
  EXPECT_FALSE(live.replayed());
  b->Fetch(7, "Canvas");
  EXPECT_EQ(b->NextFetchResult().request_id(), 7u);  // no commit before it
}

TEST_F(SyncServiceImplTest, ClosedStreamsUnwatchTheirScopes) {
  auto a = NewStream();
  auto b = NewStream();
  a->Fetch(1, "Canvas");
  b->Fetch(1, "Canvas");
  a->NextFetchResult();
  b->NextFetchResult();
  EXPECT_EQ(FindInfo("Canvas")->watchers(), 2u);
  EXPECT_OK(a->Close());
  EXPECT_OK(b->Close());
  ASSERT_TRUE(server_->service().WaitForNoStreamsForTest(absl::Seconds(60)));
  EXPECT_EQ(FindInfo("Canvas")->watchers(), 0u);
}

TEST_F(SyncServiceImplTest, CancelledStreamWhileCommitsFlow) {
  // A gateway that vanishes mid-stream (cancel) while another writer keeps
  // committing: the reactor goes away cleanly and the scope forgets it.
  GetScopeResponse initial;
  ASSERT_OK(GetScope("Canvas", &initial));
  const std::string root = initial.snapshot().root_uuid();
  {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    auto stream = stub_->Connect(&context);
    GatewayFrame frame;
    GatewayRequest* r = frame.add_requests();
    r->set_request_id(1);
    r->mutable_fetch()->set_scope("Canvas");
    ASSERT_TRUE(stream->Write(frame));
    ServiceFrame first;
    ASSERT_TRUE(stream->Read(&first));
    std::thread writer([&] {
      for (int i = 0; i < 100; ++i) {
        ApplyChangesetResponse response;
        BackendApply("Canvas", RenameJson(root, absl::StrCat("c", i)),
                     &response);
      }
    });
    context.TryCancel();
    writer.join();
    stream->Finish();
  }
  ASSERT_TRUE(server_->service().WaitForNoStreamsForTest(absl::Seconds(60)));
  EXPECT_EQ(FindInfo("Canvas")->watchers(), 0u);
}

}  // namespace
}  // namespace jetstream
