#include "gateway/sync/grpc_sync_client.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/post.hpp"
#include "common/grpc_link.h"
#include "common/logging.h"

namespace jetstream::gateway {
namespace net = boost::asio;

namespace {
constexpr absl::Duration kMinBackoff = absl::Milliseconds(50);
constexpr absl::Duration kMaxBackoff = absl::Seconds(1);
}  // namespace

// One Connect stream. Holds itself alive (self_) until gRPC's OnDone.
class GrpcSyncClient::Stream
    : public grpc::ClientBidiReactor<sync::v1::GatewayFrame,
                                     sync::v1::ServiceFrame> {
 public:
  Stream(GrpcSyncClient* client, uint64_t generation)
      : client_(client), generation_(generation) {}

  void Begin(std::shared_ptr<Stream> self) {
    self_ = std::move(self);
    client_->StreamStarted();
    if (!client_->bearer_token_.empty()) {
      context_.AddMetadata("authorization", "Bearer " + client_->bearer_token_);
    }
    client_->stub_->async()->Connect(&context_, this);
    StartRead(&incoming_);
    StartCall();
  }

  // Hub executor. Requests queued during one hub turn go out together: the
  // write starts from a handler posted behind the turn's other work, so
  // under load one GatewayFrame carries the requests of many connections,
  // up to kGatewayFrameSoftBytes (common/grpc_link.h) a frame. `bytes` is
  // the request's size. `self` is this stream, kept alive by that handler.
  void Queue(sync::v1::GatewayRequest request, size_t bytes,
             std::shared_ptr<Stream> self) {
    if (hub_batch_.empty() ||
        (hub_batch_.back().second > 0 &&
         hub_batch_.back().second + bytes > kGatewayFrameSoftBytes)) {
      hub_batch_.emplace_back();
    }
    *hub_batch_.back().first.add_requests() = std::move(request);
    hub_batch_.back().second += bytes;
    if (send_posted_) return;
    send_posted_ = true;
    net::post(client_->hub_, [self = std::move(self)] { self->SendBatch(); });
  }

  void Cancel() { context_.TryCancel(); }

  void OnReadInitialMetadataDone(bool ok) override {
    if (!ok) return;
    net::post(client_->hub_, [client = client_, g = generation_] {
      client->OnStreamConnected(g);
    });
  }

  // gRPC thread. Frames wait in inbox_ for the hub; only the first of a
  // run posts a handler (one wake-up of the hub for all frames that arrive
  // while it is busy), which takes them all, in order.
  void OnReadDone(bool ok) override {
    if (!ok) return;
    bool post = false;
    {
      absl::MutexLock lock(&inbox_mu_);
      if (inbox_size_ == inbox_.size()) inbox_.emplace_back();
      // incoming_ takes the cleared spare in exchange: the next read parses
      // into its already allocated events, strings and sub-messages.
      inbox_[inbox_size_++].Swap(&incoming_);
      post = !drain_posted_;
      drain_posted_ = true;
    }
    if (post) {
      net::post(client_->hub_, [self = self_] { self->DrainInbox(); });
    }
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok || done_) return;
    if (!queue_.empty()) WriteQueuedLocked();
  }

  void OnDone(const grpc::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    GrpcSyncClient* client = client_;
    net::post(client->hub_, [client, g = generation_, status] {
      client->OnStreamDone(g, status);
    });
    client->StreamFinished();
    self_.reset();  // may delete this
  }

 private:
  // Hub executor: hands the turn's requests to the write queue, topping up
  // the last frame waiting there while it has room.
  void SendBatch() {
    send_posted_ = false;
    absl::MutexLock lock(&mu_);
    if (done_) {
      hub_batch_.clear();
      return;
    }
    for (auto& [frame, bytes] : hub_batch_) {
      if (!queue_.empty() && queue_.back().second > 0 &&
          queue_.back().second + bytes <= kGatewayFrameSoftBytes) {
        for (auto& r : *frame.mutable_requests()) {
          *queue_.back().first.add_requests() = std::move(r);
        }
        queue_.back().second += bytes;
      } else {
        queue_.push_back({std::move(frame), bytes});
      }
    }
    hub_batch_.clear();
    if (!writing_) WriteQueuedLocked();
  }

  // Hub executor: delivers the frames read so far, in order.
  void DrainInbox() {
    size_t count = 0;
    {
      absl::MutexLock lock(&inbox_mu_);
      draining_.swap(inbox_);
      std::swap(count, inbox_size_);  // the inbox gets the cleared spares
      drain_posted_ = false;
    }
    for (size_t i = 0; i < count; ++i) {
      client_->OnFrame(generation_, draining_[i]);
      // Clear() keeps the allocated elements for reuse (see OnReadDone).
      draining_[i].Clear();
    }
  }

  // The oldest queued frame goes out: batching under load, within the
  // frame size both ends agreed on.
  void WriteQueuedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    outgoing_.Clear();
    outgoing_.Swap(&queue_.front().first);
    queue_.pop_front();
    writing_ = true;
    StartWrite(&outgoing_);
  }

  GrpcSyncClient* const client_;
  const uint64_t generation_;
  std::shared_ptr<Stream> self_;
  grpc::ClientContext context_;
  sync::v1::ServiceFrame incoming_;

  // Hub executor state: the turn's frames and their sizes.
  std::vector<std::pair<sync::v1::GatewayFrame, size_t>> hub_batch_;
  bool send_posted_ = false;
  // Frames being delivered; beyond them, cleared spares.
  std::vector<sync::v1::ServiceFrame> draining_;

  // Frames read and not yet delivered to the hub: inbox_[0, inbox_size_);
  // the rest are cleared frames kept for their allocations. Frames and
  // spares move between inbox_ and draining_ by swapping the vectors.
  absl::Mutex inbox_mu_;
  std::vector<sync::v1::ServiceFrame> inbox_ ABSL_GUARDED_BY(inbox_mu_);
  size_t inbox_size_ ABSL_GUARDED_BY(inbox_mu_) = 0;
  bool drain_posted_ ABSL_GUARDED_BY(inbox_mu_) = false;

  absl::Mutex mu_;
  // Frames waiting for the write in flight, with their sizes.
  std::deque<std::pair<sync::v1::GatewayFrame, size_t>> queue_
      ABSL_GUARDED_BY(mu_);
  sync::v1::GatewayFrame outgoing_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

GrpcSyncClient::GrpcSyncClient(HubExecutor hub,
                               std::shared_ptr<grpc::Channel> channel,
                               absl::Duration request_timeout,
                               std::string bearer_token, const Clock& clock)
    : hub_(hub),
      channel_(std::move(channel)),
      stub_(sync::v1::SyncService::NewStub(channel_)),
      request_timeout_(request_timeout),
      bearer_token_(std::move(bearer_token)),
      clock_(clock),
      reconnect_timer_(hub),
      sweep_timer_(hub),
      backoff_(kMinBackoff) {}

GrpcSyncClient::~GrpcSyncClient() {
  if (stream_ != nullptr) stream_->Cancel();
  stream_.reset();
  // gRPC callbacks reference this object until OnDone has run.
  absl::MutexLock lock(&streams_mu_);
  streams_mu_.Await(absl::Condition(
      +[](int* live) { return *live == 0; }, &live_streams_));
}

void GrpcSyncClient::StreamStarted() {
  absl::MutexLock lock(&streams_mu_);
  ++live_streams_;
}

void GrpcSyncClient::StreamFinished() {
  absl::MutexLock lock(&streams_mu_);
  --live_streams_;
}

void GrpcSyncClient::Start() {
  OpenStream();
  ArmSweep();
}

void GrpcSyncClient::Shutdown() {
  net::post(hub_, [this] {
    shutdown_ = true;
    reconnect_timer_.cancel();
    sweep_timer_.cancel();
    if (stream_ != nullptr) stream_->Cancel();
  });
}

void GrpcSyncClient::OpenStream() {
  if (shutdown_) return;
  ++generation_;
  stream_ = std::make_shared<Stream>(this, generation_);
  // Optimistic: requests go out at once; if the service is down the stream
  // ends quickly and they fail with kUnavailable. connected() waits for the
  // service's first word (its initial metadata).
  stream_->Begin(stream_);
}

void GrpcSyncClient::OnStreamConnected(uint64_t generation) {
  if (generation != generation_) return;
  if (backoff_ != kMinBackoff) {
    LOG(INFO) << "sync service stream established";
  }
  backoff_ = kMinBackoff;
  connected_ = true;
  if (listener_ != nullptr) listener_->OnStreamStarted();
}

void GrpcSyncClient::OnStreamDone(uint64_t generation, grpc::Status status) {
  if (generation != generation_) return;
  connected_ = false;
  stream_.reset();
  // Sent and never answered: whether an apply took effect is unknown.
  FailAll(absl::UnknownError(
      "the connection to the sync service was lost before it answered"));
  if (listener_ != nullptr) listener_->OnStreamEnded();
  if (shutdown_) return;
  LOG(WARNING) << "sync service stream ended (" << status.error_code() << ": "
               << status.error_message() << "); reconnecting in "
               << absl::FormatDuration(backoff_);
  reconnect_timer_.expires_after(absl::ToChronoNanoseconds(backoff_));
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  reconnect_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) OpenStream();
  });
}

void GrpcSyncClient::Send(sync::v1::GatewayRequest request) {
  if (stream_ == nullptr) return;
  const size_t bytes = request.ByteSizeLong();
  stream_->Queue(std::move(request), bytes, stream_);
}

template <typename Fill>
void GrpcSyncClient::Track(Pending pending, Fill fill) {
  pending.deadline = clock_.Now() + request_timeout_;
  if (stream_ == nullptr) {
    Fail(pending, absl::UnavailableError("Sync service unavailable"));
    return;
  }
  uint64_t id = next_request_id_++;
  sync::v1::GatewayRequest r;
  r.set_request_id(id);
  fill(r);
  if (r.ByteSizeLong() > kMaxGatewayRequestBytes) {
    // The service would refuse the frame, and with it the whole stream.
    Fail(pending, absl::InvalidArgumentError(
                      "the request is too large for the sync service"));
    return;
  }
  pending_.emplace(id, std::move(pending));
  Send(std::move(r));
}

void GrpcSyncClient::Fetch(sync::v1::FetchRequest request, FetchCallback done) {
  Pending pending;
  pending.fetch = std::move(done);
  Track(std::move(pending), [&](sync::v1::GatewayRequest& r) {
    *r.mutable_fetch() = std::move(request);
  });
}

void GrpcSyncClient::Apply(sync::v1::ApplyRequest request, ApplyCallback done) {
  Pending pending;
  pending.apply = std::move(done);
  Track(std::move(pending), [&](sync::v1::GatewayRequest& r) {
    *r.mutable_apply() = std::move(request);
  });
}

void GrpcSyncClient::AuthorizeSession(sync::v1::AuthorizeSessionRequest request,
                                      AuthorizeCallback done) {
  Pending pending;
  pending.authorize = std::move(done);
  Track(std::move(pending), [&](sync::v1::GatewayRequest& r) {
    *r.mutable_authorize_session() = std::move(request);
  });
}

void GrpcSyncClient::Watch(sync::v1::WatchRequest request) {
  sync::v1::GatewayRequest r;
  r.set_request_id(next_request_id_++);
  *r.mutable_watch() = std::move(request);
  Send(std::move(r));
}

void GrpcSyncClient::Unwatch(const std::string& scope) {
  sync::v1::GatewayRequest r;
  r.set_request_id(next_request_id_++);
  r.mutable_unwatch()->set_scope(scope);
  Send(std::move(r));
}

void GrpcSyncClient::OnFrame(uint64_t generation,
                             sync::v1::ServiceFrame& frame) {
  if (generation != generation_) return;
  for (sync::v1::ServiceEvent& event : *frame.mutable_events()) {
    switch (event.kind_case()) {
      case sync::v1::ServiceEvent::kFetchResult: {
        auto it = pending_.find(event.fetch_result().request_id());
        if (it == pending_.end() || !it->second.fetch) break;
        FetchCallback done = std::move(it->second.fetch);
        pending_.erase(it);
        done(std::move(*event.mutable_fetch_result()));
        break;
      }
      case sync::v1::ServiceEvent::kApplyResult: {
        // One that already failed (timed out) is dropped: its commit, if
        // any, follows, and the listener decides who gets it.
        auto it = pending_.find(event.apply_result().request_id());
        if (it == pending_.end() || !it->second.apply) break;
        ApplyCallback done = std::move(it->second.apply);
        pending_.erase(it);
        done(std::move(*event.mutable_apply_result()));
        break;
      }
      case sync::v1::ServiceEvent::kSessionAuthorization: {
        auto it = pending_.find(event.session_authorization().request_id());
        if (it == pending_.end() || !it->second.authorize) break;
        AuthorizeCallback done = std::move(it->second.authorize);
        pending_.erase(it);
        done(std::move(*event.mutable_session_authorization()));
        break;
      }
      case sync::v1::ServiceEvent::kCommit:
        if (listener_ != nullptr) listener_->OnCommit(event.commit());
        break;
      case sync::v1::ServiceEvent::kResync:
        if (listener_ != nullptr)
          listener_->OnResync(event.resync().snapshot());
        break;
      case sync::v1::ServiceEvent::kScopeLost: {
        const sync::v1::ScopeLost& lost = event.scope_lost();
        if (lost.has_moved_to()) {
          VLOG(1) << "scope '" << lost.scope() << "' moved to "
                  << lost.moved_to().member_id();
        } else {
          LOG(WARNING) << "sync service lost scope '" << lost.scope()
                       << "': " << lost.error().message();
        }
        if (listener_ != nullptr) listener_->OnScopeLostEvent(lost);
        break;
      }
      case sync::v1::ServiceEvent::kMembership:
        if (listener_ != nullptr) listener_->OnMembership(event.membership());
        break;
      case sync::v1::ServiceEvent::KIND_NOT_SET:
        break;
    }
  }
}

void GrpcSyncClient::Fail(Pending& pending, const absl::Status& status) {
  // Never inline: the caller may be in the middle of its own bookkeeping.
  if (pending.fetch) {
    net::post(hub_,
              [done = std::move(pending.fetch), status] { done(status); });
  }
  if (pending.apply) {
    net::post(hub_,
              [done = std::move(pending.apply), status] { done(status); });
  }
  if (pending.authorize) {
    net::post(hub_,
              [done = std::move(pending.authorize), status] { done(status); });
  }
}

void GrpcSyncClient::FailAll(const absl::Status& status) {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) Fail(p, status);
}

void GrpcSyncClient::ArmSweep() {
  sweep_timer_.expires_after(std::chrono::milliseconds(250));
  sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || shutdown_) return;
    absl::Time now = clock_.Now();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline <= now) {
        Fail(it->second, absl::DeadlineExceededError(
                             "Sync service did not answer in time"));
        pending_.erase(it++);
      } else {
        ++it;
      }
    }
    ArmSweep();
  });
}

}  // namespace jetstream::gateway
