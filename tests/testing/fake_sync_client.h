// File: tests/testing/fake_sync_client.h
//
// FakeSyncClient: a gateway SyncClient (gateway/sync/sync_client.h) for unit
// tests of the session layer. It records every request and holds its
// callback until the test answers it; answers and listener events are
// posted to the hub executor, as the real client delivers them, so the test
// drives the order of everything by running the io_context.
//
// Example:
//   boost::asio::io_context ioc;
//   gateway::HubExecutor hub = boost::asio::make_strand(ioc);
//   FakeSyncClient sync(hub);
//   gateway::SessionManager manager(hub, options, sync);
//   ... a client sends ScopeFetch ...
//   ioc.poll();
//   sync.AnswerFetch(0, Snapshot("Canvas", "e1", 5));
//   ioc.poll();  // the session now has its ScopeFetchReply and ScopeState
//
// Thread-safety: none; use it from the thread that runs the io_context.

#ifndef JETSTREAM_TESTS_TESTING_FAKE_SYNC_CLIENT_H_
#define JETSTREAM_TESTS_TESTING_FAKE_SYNC_CLIENT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/asio/post.hpp"
#include "gateway/core/hub_executor.h"
#include "gateway/sync/sync_client.h"
#include "proto/sync/v1/sync_service.pb.h"

namespace jetstream::testing {

class FakeSyncClient : public gateway::SyncClient {
 public:
  template <typename Request, typename Callback>
  struct Pending {
    Request request;
    Callback done;  // empty once answered
  };

  explicit FakeSyncClient(gateway::HubExecutor hub) : hub_(std::move(hub)) {}

  // gateway::SyncClient
  void SetListener(Listener* listener) override { listener_ = listener; }
  void Fetch(sync::v1::FetchRequest request, FetchCallback done) override {
    fetches_.push_back({std::move(request), std::move(done)});
  }
  void Apply(sync::v1::ApplyRequest request, ApplyCallback done) override {
    applies_.push_back({std::move(request), std::move(done)});
  }
  void AuthorizeSession(sync::v1::AuthorizeSessionRequest request,
                        AuthorizeCallback done) override {
    authorizations_.push_back({std::move(request), std::move(done)});
  }
  void Watch(sync::v1::WatchRequest request) override {
    watches_.push_back(std::move(request));
  }
  void Unwatch(const std::string& scope) override {
    unwatches_.push_back(scope);
  }
  bool connected() const override { return connected_; }

  // What the gateway asked, in order (answered ones included).
  const std::vector<Pending<sync::v1::FetchRequest, FetchCallback>>& fetches()
      const {
    return fetches_;
  }
  const std::vector<Pending<sync::v1::ApplyRequest, ApplyCallback>>& applies()
      const {
    return applies_;
  }
  const std::vector<
      Pending<sync::v1::AuthorizeSessionRequest, AuthorizeCallback>>&
  authorizations() const {
    return authorizations_;
  }
  const std::vector<sync::v1::WatchRequest>& watches() const {
    return watches_;
  }
  const std::vector<std::string>& unwatches() const { return unwatches_; }
  void set_connected(bool connected) { connected_ = connected; }

  // Answers the i-th request of its kind (posted to the hub). Each request
  // is answered once; a second answer is a test bug and aborts.
  void AnswerFetch(size_t i, absl::StatusOr<sync::v1::FetchResult> result) {
    Answer(fetches_.at(i).done, std::move(result));
  }
  void AnswerApply(size_t i, absl::StatusOr<sync::v1::ApplyResult> result) {
    Answer(applies_.at(i).done, std::move(result));
  }
  void AnswerAuthorization(
      size_t i, absl::StatusOr<sync::v1::SessionAuthorization> result) {
    Answer(authorizations_.at(i).done, std::move(result));
  }

  // Listener events, posted to the hub.
  void SendCommit(sync::v1::Commit commit) {
    Post([this, commit = std::move(commit)] { listener_->OnCommit(commit); });
  }
  void SendResync(sync::v1::ScopeSnapshot snapshot) {
    Post([this, snapshot = std::move(snapshot)] {
      listener_->OnResync(snapshot);
    });
  }
  void StartStream() {
    Post([this] { listener_->OnStreamStarted(); });
  }
  void LoseScope(std::string scope) {
    Post([this, scope = std::move(scope)] { listener_->OnScopeLost(scope); });
  }

 private:
  template <typename Callback, typename Result>
  void Answer(Callback& done, Result result) {
    if (!done) std::abort();  // answered twice
    Post([done = std::exchange(done, nullptr),
          result = std::move(result)]() mutable { done(std::move(result)); });
  }
  template <typename F>
  void Post(F f) {
    boost::asio::post(hub_, std::move(f));
  }

  gateway::HubExecutor hub_;
  Listener* listener_ = nullptr;
  bool connected_ = true;
  std::vector<Pending<sync::v1::FetchRequest, FetchCallback>> fetches_;
  std::vector<Pending<sync::v1::ApplyRequest, ApplyCallback>> applies_;
  std::vector<Pending<sync::v1::AuthorizeSessionRequest, AuthorizeCallback>>
      authorizations_;
  std::vector<sync::v1::WatchRequest> watches_;
  std::vector<std::string> unwatches_;
};

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_TESTING_FAKE_SYNC_CLIENT_H_
