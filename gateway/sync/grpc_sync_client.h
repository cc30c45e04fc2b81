// File: gateway/sync/grpc_sync_client.h
//
// SyncClient over one long-lived SyncService.Connect stream. Requests of all
// sessions are queued and written in batches (one GatewayFrame per write,
// one write in flight; the requests of one hub turn always share a frame);
// incoming frames are handed to the hub executor in order, those that
// arrive while the hub is busy in one hand-off, so an apply's result is
// always delivered before its commit. It is a transport: who receives a
// commit is the listener's decision. When the stream breaks, every
// pending request fails with kUnavailable at once (clients get error replies,
// never hangs) and the client reconnects by itself with backoff; the listener
// then re-watches.
//
// Thread-safety: public methods on the hub executor only. gRPC's own
// threads only touch the write queue (under a mutex) and post to the hub.

#ifndef JETSTREAM_GATEWAY_SYNC_GRPC_SYNC_CLIENT_H_
#define JETSTREAM_GATEWAY_SYNC_GRPC_SYNC_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "boost/asio/steady_timer.hpp"
#include "gateway/core/clock.h"
#include "gateway/core/hub_executor.h"
#include "gateway/sync/sync_client.h"
#include "grpcpp/grpcpp.h"
#include "proto/sync/v1/sync_service.grpc.pb.h"

namespace jetstream::gateway {

class GrpcSyncClient : public SyncClient {
 public:
  // `bearer_token`, if not empty, is sent as `authorization: Bearer <token>`
  // on the stream (the sync service's --auth_tokens_file). `clock` (which
  // must outlive the client) decides when a request passed its deadline;
  // the sweep that checks runs every 250 ms on the hub's timer.
  GrpcSyncClient(HubExecutor hub, std::shared_ptr<grpc::Channel> channel,
                 absl::Duration request_timeout, std::string bearer_token = "",
                 const Clock& clock = Clock::Real());
  // Blocks until the stream's gRPC callbacks are finished (it waits on a
  // condition that the stream's OnDone signals). Destroy before the hub's
  // io_context, after it stopped running.
  ~GrpcSyncClient() override;

  // Opens the first stream. Call once, on the hub executor.
  void Start();
  // Stops reconnecting and cancels the stream. Any thread.
  void Shutdown() override;

  // SyncClient
  void SetListener(Listener* listener) override { listener_ = listener; }
  void Fetch(sync::v1::FetchRequest request, FetchCallback done) override;
  void Apply(sync::v1::ApplyRequest request, ApplyCallback done) override;
  void AuthorizeSession(sync::v1::AuthorizeSessionRequest request,
                        AuthorizeCallback done) override;
  void Watch(sync::v1::WatchRequest request) override;
  void Unwatch(const std::string& scope) override;
  bool connected() const override { return connected_.load(); }

 private:
  class Stream;
  struct Pending {
    FetchCallback fetch;
    ApplyCallback apply;
    AuthorizeCallback authorize;
    absl::Time deadline;
  };

  void Send(sync::v1::GatewayRequest request);
  // Registers `pending` under a new request id and sends the request that
  // `fill` completes; with no stream open, fails it at once (never inline).
  template <typename Fill>
  void Track(Pending pending, Fill fill);
  void OpenStream();
  void OnStreamConnected(uint64_t generation);
  void OnFrame(uint64_t generation, sync::v1::ServiceFrame& frame);
  void OnStreamDone(uint64_t generation, grpc::Status status);
  void FailAll(const absl::Status& status);
  void Fail(Pending& pending, const absl::Status& status);
  void ArmSweep();

  HubExecutor hub_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<sync::v1::SyncService::Stub> stub_;
  const absl::Duration request_timeout_;
  const std::string bearer_token_;
  const Clock& clock_;
  Listener* listener_ = nullptr;

  // Hub-executor state.
  std::shared_ptr<Stream> stream_;
  uint64_t generation_ = 0;
  uint64_t next_request_id_ = 1;
  absl::flat_hash_map<uint64_t, Pending> pending_;
  boost::asio::steady_timer reconnect_timer_;
  boost::asio::steady_timer sweep_timer_;
  absl::Duration backoff_;
  bool shutdown_ = false;

  // Called by a stream when it starts and from its OnDone (gRPC's thread).
  void StreamStarted();
  void StreamFinished();

  std::atomic<bool> connected_{false};
  // Streams whose gRPC callbacks may still run (any thread); the
  // destructor waits for none.
  absl::Mutex streams_mu_;
  int live_streams_ ABSL_GUARDED_BY(streams_mu_) = 0;
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SYNC_GRPC_SYNC_CLIENT_H_
