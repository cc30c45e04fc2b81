#include "gateway/sync/hub_fanout.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/strand.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_sync_client.h"
#include "tests/testing/manual_clock.h"

namespace jetstream::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Records what a hub receives, and checks it runs on that hub.
class RecordingHub : public SyncClient::Listener {
 public:
  explicit RecordingHub(HubExecutor hub) : hub_(std::move(hub)) {}

  void OnCommit(const sync::v1::Commit& commit) override {
    Record(absl::StrCat("commit ", commit.version()));
  }
  void OnFannedOutCommit(const FannedOutCommit& commit) override {
    encoded.push_back(commit.encoded);
    received.push_back(commit.received);
    SyncClient::Listener::OnFannedOutCommit(commit);
  }
  void OnResync(const sync::v1::ScopeSnapshot& snapshot) override {
    Record(absl::StrCat("resync ", snapshot.version()));
  }
  void OnStreamStarted() override { Record("stream started"); }
  void OnStreamEnded() override { Record("stream ended"); }
  void OnScopeLost(const std::string& scope) override {
    Record("lost " + scope);
  }
  void Record(std::string event) {
    if (!hub_.running_in_this_thread()) event += " (off its hub)";
    events.push_back(std::move(event));
  }

  std::vector<std::string> events;
  std::vector<std::shared_ptr<const std::string>> encoded;
  std::vector<absl::Time> received;

 private:
  HubExecutor hub_;
};

sync::v1::Commit Commit(const std::string& scope, uint64_t version) {
  sync::v1::Commit commit;
  commit.set_scope(scope);
  commit.set_epoch("e1");
  commit.set_version(version);
  commit.set_fragments_json(absl::StrCat("[", version, "]"));
  return commit;
}

sync::v1::FetchResult Fetched(const std::string& scope, uint64_t version) {
  sync::v1::FetchResult result;
  result.mutable_snapshot()->set_scope(scope);
  result.mutable_snapshot()->set_epoch("e1");
  result.mutable_snapshot()->set_version(version);
  return result;
}

class HubFanoutTest : public ::testing::Test {
 protected:
  HubFanoutTest()
      : link_(boost::asio::make_strand(ioc_)),
        hub_a_(boost::asio::make_strand(ioc_)),
        hub_b_(boost::asio::make_strand(ioc_)),
        upstream_(link_),
        fanout_(link_, upstream_, clock_,
                [this](const sync::v1::Commit& commit) {
                  ++encodings_;
                  return std::make_shared<const std::string>(
                      "body " + commit.fragments_json());
                }),
        a_(fanout_.AddHub(hub_a_)),
        b_(fanout_.AddHub(hub_b_)),
        recorded_a_(hub_a_),
        recorded_b_(hub_b_) {
    a_.SetListener(&recorded_a_);
    b_.SetListener(&recorded_b_);
  }

  // A fetch of `scope` from `hub`, answered at `version`; the answer is
  // recorded on the hub.
  void FetchAndAnswer(SyncClient& hub, RecordingHub& recorded,
                      const std::string& scope, uint64_t version) {
    sync::v1::FetchRequest request;
    request.set_scope(scope);
    hub.Fetch(request, [&recorded](absl::StatusOr<sync::v1::FetchResult> r) {
      recorded.Record(absl::StrCat("fetched ", r->snapshot().version()));
    });
    Run();
    upstream_.AnswerFetch(upstream_.fetches().size() - 1,
                          Fetched(scope, version));
    Run();
  }

  // Runs everything posted so far, and what that posts.
  void Run() {
    ioc_.restart();
    ioc_.poll();
  }

  boost::asio::io_context ioc_;
  HubExecutor link_;
  HubExecutor hub_a_;
  HubExecutor hub_b_;
  testing::ManualClock clock_;
  testing::FakeSyncClient upstream_;
  int encodings_ = 0;
  HubFanout fanout_;
  SyncClient& a_;
  SyncClient& b_;
  RecordingHub recorded_a_;
  RecordingHub recorded_b_;
};

TEST_F(HubFanoutTest, ACommitIsEncodedOnceAndReachesEveryWatchingHub) {
  FetchAndAnswer(a_, recorded_a_, "room", 5);
  FetchAndAnswer(b_, recorded_b_, "room", 5);
  ASSERT_EQ(upstream_.fetches().size(), 2u);

  upstream_.SendCommit(Commit("room", 6));
  upstream_.SendCommit(Commit("room", 7));
  Run();

  EXPECT_THAT(recorded_a_.events,
              ElementsAre("fetched 5", "commit 6", "commit 7"));
  EXPECT_THAT(recorded_b_.events,
              ElementsAre("fetched 5", "commit 6", "commit 7"));
  EXPECT_EQ(encodings_, 2);  // once per commit, not once per hub
  ASSERT_EQ(recorded_a_.encoded.size(), 2u);
  ASSERT_EQ(recorded_b_.encoded.size(), 2u);
  EXPECT_EQ(recorded_a_.encoded[0], recorded_b_.encoded[0]);  // one body
  EXPECT_EQ(*recorded_a_.encoded[1], "body [7]");
  EXPECT_EQ(recorded_a_.received[0], clock_.Now());
}

TEST_F(HubFanoutTest, AHubThatDoesNotWatchAScopeGetsNoneOfItsCommits) {
  FetchAndAnswer(a_, recorded_a_, "room", 5);
  FetchAndAnswer(b_, recorded_b_, "other", 1);

  upstream_.SendCommit(Commit("room", 6));
  upstream_.SendCommit(Commit("nobody's", 2));
  Run();

  EXPECT_THAT(recorded_a_.events, ElementsAre("fetched 5", "commit 6"));
  EXPECT_THAT(recorded_b_.events, ElementsAre("fetched 1"));
  EXPECT_EQ(encodings_, 1);
}

TEST_F(HubFanoutTest, AnApplysAnswerPrecedesItsCommitOnTheHub) {
  FetchAndAnswer(a_, recorded_a_, "room", 5);
  a_.Apply(sync::v1::ApplyRequest(),
           [this](absl::StatusOr<sync::v1::ApplyResult>) {
             recorded_a_.Record("applied");
           });
  Run();
  ASSERT_EQ(upstream_.applies().size(), 1u);

  // The link gets the answer, then the commit, in one turn.
  upstream_.AnswerApply(0, sync::v1::ApplyResult());
  upstream_.SendCommit(Commit("room", 6));
  Run();

  EXPECT_THAT(recorded_a_.events,
              ElementsAre("fetched 5", "applied", "commit 6"));
}

TEST_F(HubFanoutTest, TheLinkStopsWatchingWhenTheLastHubDoes) {
  FetchAndAnswer(a_, recorded_a_, "room", 5);
  FetchAndAnswer(b_, recorded_b_, "room", 5);

  a_.Unwatch("room");
  Run();
  EXPECT_THAT(upstream_.unwatches(), IsEmpty());
  EXPECT_EQ(fanout_.WatchersForTest("room"), 1u);
  upstream_.SendCommit(Commit("room", 6));
  Run();
  EXPECT_THAT(recorded_a_.events, ElementsAre("fetched 5"));
  EXPECT_THAT(recorded_b_.events, ElementsAre("fetched 5", "commit 6"));

  b_.Unwatch("room");
  Run();
  EXPECT_THAT(upstream_.unwatches(), ElementsAre("room"));
  EXPECT_EQ(fanout_.WatchersForTest("room"), 0u);
}

TEST_F(HubFanoutTest, AWatchBehindWhatTheLinkPassedOnWatchesAfresh) {
  FetchAndAnswer(a_, recorded_a_, "room", 5);
  FetchAndAnswer(b_, recorded_b_, "room", 5);
  upstream_.SendCommit(Commit("room", 6));
  upstream_.SendCommit(Commit("room", 7));
  Run();

  // Hub a is caught up: its watch goes upstream as it is.
  sync::v1::WatchRequest caught_up;
  caught_up.set_scope("room");
  caught_up.set_epoch("e1");
  caught_up.set_after_version(7);
  a_.Watch(caught_up);
  Run();
  EXPECT_THAT(upstream_.unwatches(), IsEmpty());
  ASSERT_EQ(upstream_.watches().size(), 1u);

  // Hub b missed 6 and 7 (a gap): the holder must replay them, so the scope
  // is watched afresh from b's version.
  sync::v1::WatchRequest behind = caught_up;
  behind.set_after_version(5);
  b_.Watch(behind);
  Run();
  EXPECT_THAT(upstream_.unwatches(), ElementsAre("room"));
  ASSERT_EQ(upstream_.watches().size(), 2u);
  EXPECT_EQ(upstream_.watches()[1].after_version(), 5u);
  // Both hubs still watch, and get the replay (each drops what it has).
  upstream_.SendCommit(Commit("room", 6));
  Run();
  EXPECT_EQ(recorded_a_.events.back(), "commit 6");
  EXPECT_EQ(recorded_b_.events.back(), "commit 6");
}

TEST_F(HubFanoutTest, StreamAndScopeEventsReachTheHubsThatNeedThem) {
  FetchAndAnswer(a_, recorded_a_, "room", 5);
  upstream_.StartStream();
  upstream_.LoseScope("room");
  sync::v1::ScopeSnapshot snapshot = Fetched("room", 9).snapshot();
  upstream_.SendResync(snapshot);
  Run();

  EXPECT_THAT(recorded_a_.events, ElementsAre("fetched 5", "stream started",
                                              "lost room", "resync 9"));
  // Hub b watches nothing: it hears of the stream only.
  EXPECT_THAT(recorded_b_.events, ElementsAre("stream started"));
}

}  // namespace
}  // namespace jetstream::gateway
