// GrpcSyncClient against a scripted SyncService, over gRPC's in-process
// channel (or 127.0.0.1:0 where HTTP/2 pings matter): frames stay under the
// agreed size, a request too large for the service fails alone, an idle
// stream with the agreed keepalive stays up (and one without the service's
// side of the agreement is torn down), a broken stream fails pending
// requests as unknown outcomes and is reopened, a request with no stream
// fails at once, the timeout sweep fails what the service does not answer,
// and a result after the timeout is dropped while its commit is delivered
// as sent.

#include "gateway/sync/grpc_sync_client.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/strand.hpp"
#include "common/grpc_link.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/manual_clock.h"
#include "tests/testing/status_matchers.h"

namespace jetstream::gateway {
namespace {

namespace net = boost::asio;
using sync::v1::GatewayFrame;
using sync::v1::ServiceFrame;

// A SyncService whose Connect streams the test scripts: it records every
// frame and request, and sends what the test tells it to.
class ScriptedService final : public sync::v1::SyncService::CallbackService {
 public:
  class Stream : public grpc::ServerBidiReactor<GatewayFrame, ServiceFrame> {
   public:
    explicit Stream(ScriptedService* service) : service_(service) {
      StartSendInitialMetadata();
      StartRead(&frame_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        End(grpc::Status::OK);
        return;
      }
      service_->Received(frame_);
      frame_.Clear();
      StartRead(&frame_);
    }
    void OnWriteDone(bool ok) override {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (ok && !queue_.empty()) WriteLocked();
    }
    void OnDone() override {
      service_->Ended();
      delete this;
    }
    void Send(ServiceFrame frame) {
      absl::MutexLock lock(&mu_);
      queue_.push_back(std::move(frame));
      if (!writing_) WriteLocked();
    }
    // Ends the stream from the service's side, once.
    void End(grpc::Status status) {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      Finish(std::move(status));
    }

   private:
    void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      writing_ = true;
      out_ = std::move(queue_.front());
      queue_.pop_front();
      StartWrite(&out_);
    }
    ScriptedService* const service_;
    GatewayFrame frame_;
    absl::Mutex mu_;
    std::deque<ServiceFrame> queue_ ABSL_GUARDED_BY(mu_);
    ServiceFrame out_;
    bool writing_ ABSL_GUARDED_BY(mu_) = false;
    bool finished_ ABSL_GUARDED_BY(mu_) = false;
  };

  grpc::ServerBidiReactor<GatewayFrame, ServiceFrame>* Connect(
      grpc::CallbackServerContext*) override {
    auto* stream = new Stream(this);
    absl::MutexLock lock(&mu_);
    ++streams_;
    stream_ = stream;
    return stream;
  }

  void Received(const GatewayFrame& frame) {
    absl::MutexLock lock(&mu_);
    frame_bytes_.push_back(frame.ByteSizeLong());
    for (const auto& r : frame.requests()) requests_.push_back(r);
  }
  void Ended() {
    absl::MutexLock lock(&mu_);
    stream_ = nullptr;
    ++ended_;
  }

  // Waits for `n` requests in all.
  std::vector<sync::v1::GatewayRequest> WaitForRequests(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return requests_.size() >= n;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(30));
    return requests_;
  }
  void Send(ServiceFrame frame) {
    absl::MutexLock lock(&mu_);
    ASSERT_NE(stream_, nullptr);
    stream_->Send(std::move(frame));
  }
  // Ends the open stream with `status`, as a restarting service would.
  void EndStream(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    ASSERT_NE(stream_, nullptr);
    stream_->End(std::move(status));
  }
  std::vector<size_t> frame_bytes() {
    absl::MutexLock lock(&mu_);
    return frame_bytes_;
  }
  int streams() {
    absl::MutexLock lock(&mu_);
    return streams_;
  }
  int ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

 private:
  absl::Mutex mu_;
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  int streams_ ABSL_GUARDED_BY(mu_) = 0;
  int ended_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<size_t> frame_bytes_ ABSL_GUARDED_BY(mu_);
  std::vector<sync::v1::GatewayRequest> requests_ ABSL_GUARDED_BY(mu_);
};

// What the client tells its listener.
class EventLog : public SyncClient::Listener {
 public:
  void OnCommit(const sync::v1::Commit& commit) override {
    Add("commit origin=" + commit.origin_session_id());
  }
  void OnResync(const sync::v1::ScopeSnapshot&) override { Add("resync"); }
  void OnStreamStarted() override { Add("started"); }
  void OnScopeLost(const std::string& scope) override { Add("lost " + scope); }
  void OnStreamEnded() override {
    Add("ended");
    if (on_ended) on_ended();
  }
  // Runs on the hub inside OnStreamEnded, when set before the stream ends.
  std::function<void()> on_ended;

  void Add(std::string e) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(e));
  }
  bool WaitFor(const std::string& event, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::find(events_.begin(), events_.end(), event) != events_.end();
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
  }
  // Waits until `event` was seen `n` times.
  bool WaitForCount(const std::string& event, int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::count(events_.begin(), events_.end(), event) >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
  }
  std::vector<std::string> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
};

// How the client reaches the scripted service.
enum class Transport {
  kInProcess,  // gRPC's in-process channel: no sockets, no HTTP/2 pings
  kTcp,        // 127.0.0.1:0, for what the HTTP/2 transport itself does
};

class GrpcSyncClientTest : public ::testing::Test {
 protected:
  // Starts the service (with the link's server settings unless told not
  // to) and a client on a hub thread.
  void Start(Transport transport = Transport::kInProcess,
             LinkKeepalive keepalive = {}, bool agreed = true,
             absl::Duration request_timeout = absl::Seconds(10)) {
    grpc::ServerBuilder builder;
    int port = 0;
    if (transport == Transport::kTcp) {
      builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                               &port);
    }
    builder.RegisterService(&service_);
    if (agreed) ConfigureSyncServiceServer(keepalive, builder);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    std::shared_ptr<grpc::Channel> channel =
        transport == Transport::kTcp
            ? grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                        grpc::InsecureChannelCredentials(),
                                        GatewayChannelArguments(keepalive))
            : server_->InProcessChannel(GatewayChannelArguments(keepalive));
    client_ = std::make_unique<GrpcSyncClient>(hub_, channel, request_timeout,
                                               "", clock_);
    client_->SetListener(&log_);
    work_.emplace(net::make_work_guard(ioc_));
    thread_ = std::thread([this] { ioc_.run(); });
    OnHub([this] { client_->Start(); });
    ASSERT_TRUE(log_.WaitFor("started", absl::Seconds(30)));
  }

  void TearDown() override {
    if (client_ != nullptr) client_->Shutdown();
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
    work_.reset();
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
    client_.reset();
  }

  // Runs `f` on the hub and waits for it.
  template <typename F>
  void OnHub(F f) {
    absl::Notification done;
    net::post(hub_, [&] {
      f();
      done.Notify();
    });
    done.WaitForNotification();
  }

  // What a request's callback got: awaitable, and counted (a callback must
  // run once).
  struct Outcome {
    absl::Notification done;
    absl::Status status;
    int calls = 0;
  };
  // Sends a small apply from the hub; `outcome` records its answer.
  void ApplyOnHub(Outcome& outcome) {
    OnHub([&] {
      client_->Apply(BigApply(10),
                     [&outcome](absl::StatusOr<sync::v1::ApplyResult> r) {
                       outcome.status = r.status();
                       if (++outcome.calls == 1) outcome.done.Notify();
                     });
    });
  }

  static sync::v1::ApplyRequest BigApply(size_t bytes) {
    sync::v1::ApplyRequest apply;
    apply.set_scope("Canvas");
    apply.set_session_id("s");
    auto* fragment = apply.add_fragments();
    fragment->set_uuid(std::string(bytes, 'x'));
    return apply;
  }

  // The service outlives the io_context: handlers that never ran when the
  // hub stopped still hold streams (and their gRPC calls), and are
  // destroyed with it, before the server goes.
  // Request deadlines are passed when the test moves this clock.
  ::jetstream::testing::ManualClock clock_;
  ScriptedService service_;
  std::unique_ptr<grpc::Server> server_;
  net::io_context ioc_;
  HubExecutor hub_ = net::make_strand(ioc_);
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::thread thread_;
  std::unique_ptr<GrpcSyncClient> client_;
  EventLog log_;
};

TEST_F(GrpcSyncClientTest, TheRequestsOfOneTurnGoInFramesUnderTheAgreedSize) {
  Start();
  constexpr int kRequests = 10;
  constexpr size_t kBytes = 600 * 1024;
  OnHub([&] {
    for (int i = 0; i < kRequests; ++i) {
      client_->Apply(BigApply(kBytes), [](auto) {});
    }
  });
  std::vector<sync::v1::GatewayRequest> got =
      service_.WaitForRequests(kRequests);
  ASSERT_EQ(got.size(), static_cast<size_t>(kRequests));
  for (int i = 1; i < kRequests; ++i) {
    EXPECT_LT(got[i - 1].request_id(), got[i].request_id());  // in order
  }
  // One turn's requests, but not one frame: none passes the soft size by
  // more than the one request that crossed it.
  std::vector<size_t> frames = service_.frame_bytes();
  EXPECT_GE(frames.size(), 5u);
  for (size_t bytes : frames)
    EXPECT_LT(bytes, kGatewayFrameSoftBytes + kBytes + 1024);
  EXPECT_EQ(service_.streams(), 1);
}

TEST_F(GrpcSyncClientTest,
       ARequestTooLargeForTheServiceFailsAloneAndTheStreamLives) {
  Start();
  absl::Notification failed;
  absl::Status status;
  OnHub([&] {
    client_->Apply(BigApply(kMaxGatewayRequestBytes + 1),
                   [&](absl::StatusOr<sync::v1::ApplyResult> r) {
                     status = r.status();
                     failed.Notify();
                   });
    client_->Apply(BigApply(10), [](auto) {});
  });
  failed.WaitForNotification();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  ASSERT_EQ(service_.WaitForRequests(1).size(), 1u);
  EXPECT_EQ(service_.ended(), 0);
  EXPECT_EQ(service_.streams(), 1);
}

TEST_F(GrpcSyncClientTest, AnIdleStreamWithTheAgreedKeepaliveStaysUp) {
  // Pings every 100 ms: 30 of them while the stream carries nothing.
  LinkKeepalive fast{absl::Milliseconds(100), absl::Seconds(5)};
  Start(Transport::kTcp, fast);
  EXPECT_FALSE(log_.WaitFor("ended", absl::Seconds(3)));
  EXPECT_EQ(service_.streams(), 1);
  OnHub([&] { client_->Apply(BigApply(10), [](auto) {}); });
  EXPECT_EQ(service_.WaitForRequests(1).size(), 1u);
}

TEST_F(GrpcSyncClientTest, AServerWithoutTheAgreementTearsTheIdleStreamDown) {
  // The same pings against gRPC's default server policy (one ping without
  // data per 5 minutes): GOAWAY too_many_pings, and the client reconnects.
  LinkKeepalive fast{absl::Milliseconds(100), absl::Seconds(5)};
  Start(Transport::kTcp, fast, /*agreed=*/false);
  EXPECT_TRUE(log_.WaitFor("ended", absl::Seconds(30)));
}

TEST_F(GrpcSyncClientTest,
       AStreamThatBreaksFailsPendingRequestsAsUnknownOutcomes) {
  Start();
  Outcome apply;
  ApplyOnHub(apply);
  ASSERT_EQ(service_.WaitForRequests(1).size(), 1u);
  server_->Shutdown(std::chrono::system_clock::now());
  apply.done.WaitForNotification();
  // Sent and never answered: it may have been applied.
  EXPECT_EQ(apply.status.code(), absl::StatusCode::kUnknown) << apply.status;
}

TEST_F(GrpcSyncClientTest, ALateApplyResultIsDroppedAndItsCommitKeepsOrigin) {
  Start();
  Outcome apply;
  ApplyOnHub(apply);
  std::vector<sync::v1::GatewayRequest> got = service_.WaitForRequests(1);
  ASSERT_EQ(got.size(), 1u);
  clock_.Advance(absl::Seconds(11));  // past its deadline: the sweep fails it
  apply.done.WaitForNotification();
  EXPECT_EQ(apply.status.code(), absl::StatusCode::kDeadlineExceeded);
  // The service applied it after all: its late result, then its commit.
  ServiceFrame late;
  auto* result = late.add_events()->mutable_apply_result();
  result->set_request_id(got[0].request_id());
  result->add_replies();
  result->set_version(7);
  auto* commit = late.add_events()->mutable_commit();
  commit->set_scope("Canvas");
  commit->set_version(7);
  commit->set_origin_session_id("s");
  service_.Send(late);
  // The commit reaches the listener as sent: who gets it (here its sender
  // too, which was told the apply failed) is the listener's decision. The
  // late result answers nobody a second time.
  EXPECT_TRUE(log_.WaitFor("commit origin=s", absl::Seconds(30)));
  OnHub([&] { EXPECT_EQ(apply.calls, 1); });
}

TEST_F(GrpcSyncClientTest,
       AStreamTheServiceEndsIsReopenedAndCarriesNewRequests) {
  Start();
  Outcome apply;
  ApplyOnHub(apply);
  ASSERT_EQ(service_.WaitForRequests(1).size(), 1u);
  service_.EndStream(grpc::Status(grpc::StatusCode::UNAVAILABLE, "restart"));
  apply.done.WaitForNotification();
  EXPECT_EQ(apply.status.code(), absl::StatusCode::kUnknown) << apply.status;
  // The listener hears the end, then a new start (it re-watches then).
  ASSERT_TRUE(log_.WaitForCount("started", 2, absl::Seconds(30)));
  std::vector<std::string> events = log_.events();
  auto ended = std::find(events.begin(), events.end(), "ended");
  ASSERT_NE(ended, events.end());
  EXPECT_NE(std::find(ended, events.end(), "started"), events.end());
  EXPECT_EQ(service_.streams(), 2);
  OnHub([&] { EXPECT_TRUE(client_->connected()); });

  // The new stream carries requests, and their answers come back.
  absl::Notification fetched;
  absl::StatusOr<sync::v1::FetchResult> result;
  OnHub([&] {
    sync::v1::FetchRequest fetch;
    fetch.set_scope("Canvas");
    client_->Fetch(fetch, [&](absl::StatusOr<sync::v1::FetchResult> r) {
      result = std::move(r);
      fetched.Notify();
    });
  });
  std::vector<sync::v1::GatewayRequest> got = service_.WaitForRequests(2);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_TRUE(got[1].has_fetch());
  ServiceFrame answer;
  answer.add_events()->mutable_fetch_result()->set_request_id(
      got[1].request_id());
  service_.Send(answer);
  fetched.WaitForNotification();
  EXPECT_OK(result);
}

TEST_F(GrpcSyncClientTest, ARequestWithNoStreamOpenFailsAtOnceButNotInline) {
  Start();
  // Between a stream's end and the reconnect there is no stream: a request
  // then fails with kUnavailable (clients get an error, never a hang), and
  // its callback runs after the call returns, never inside it.
  absl::Notification failed;
  absl::Status status;
  bool returned = false;
  bool inline_call = false;
  log_.on_ended = [&] {
    sync::v1::FetchRequest fetch;
    fetch.set_scope("Canvas");
    client_->Fetch(fetch, [&](absl::StatusOr<sync::v1::FetchResult> r) {
      inline_call = !returned;
      status = r.status();
      failed.Notify();
    });
    returned = true;
  };
  service_.EndStream(grpc::Status(grpc::StatusCode::UNAVAILABLE, "restart"));
  failed.WaitForNotification();
  EXPECT_FALSE(inline_call);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  // Nothing of it reached the service.
  EXPECT_TRUE(service_.WaitForRequests(0).empty());
  OnHub([&] { log_.on_ended = nullptr; });  // before the next stream ends
}

TEST_F(GrpcSyncClientTest,
       TheSweepFailsUnansweredRequestsAndIgnoresLateAnswers) {
  Start();
  int answers = 0;
  absl::Notification answered;
  absl::Status status;
  OnHub([&] {
    sync::v1::FetchRequest fetch;
    fetch.set_scope("Canvas");
    client_->Fetch(fetch, [&](absl::StatusOr<sync::v1::FetchResult> r) {
      ++answers;
      status = r.status();
      answered.Notify();
    });
  });
  std::vector<sync::v1::GatewayRequest> got = service_.WaitForRequests(1);
  ASSERT_EQ(got.size(), 1u);
  clock_.Advance(absl::Seconds(11));  // past its deadline: the sweep fails it
  answered.WaitForNotification();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  // The service answers after all, and then commits something else: the
  // late answer is dropped (the callback ran once), and the stream lives.
  ServiceFrame late;
  late.add_events()->mutable_fetch_result()->set_request_id(
      got[0].request_id());
  auto* commit = late.add_events()->mutable_commit();
  commit->set_scope("Canvas");
  commit->set_version(3);
  commit->set_origin_session_id("other");
  service_.Send(late);
  ASSERT_TRUE(log_.WaitFor("commit origin=other", absl::Seconds(30)));
  OnHub([&] { EXPECT_EQ(answers, 1); });
  EXPECT_EQ(service_.streams(), 1);
}

}  // namespace
}  // namespace jetstream::gateway
