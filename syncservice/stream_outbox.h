// File: syncservice/stream_outbox.h
//
// The outgoing half of one Connect stream (proto/sync/v1/sync_service.proto):
// the events waiting to go to a gateway, coalesced into ServiceFrames with
// exactly one write in flight, and the ScopeWatcher of every scope the
// stream watches.
//
// Events that carry a commit or a snapshot keep their shared JSON bytes
// until the frame is built; a frame holds events until it passes
// `max_frame_bytes` (one oversized event still goes alone).

#ifndef JETSTREAM_SYNCSERVICE_STREAM_OUTBOX_H_
#define JETSTREAM_SYNCSERVICE_STREAM_OUTBOX_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/sync/v1/sync_service.grpc.pb.h"
#include "syncservice/scope_host.h"
#include "syncservice/sync_proto.h"

namespace jetstream {

using ConnectReactorBase =
    grpc::ServerBidiReactor<sync::v1::GatewayFrame, sync::v1::ServiceFrame>;

// A commit to send; `replayed` as in ScopeWatcher::OnCommit.
struct CommitEvent {
  CommitPtr commit;
  bool replayed = false;
};

// A snapshot to send: a FetchResult answering `request_id`, or a Resync.
struct SnapshotEvent {
  bool resync = false;
  uint64_t request_id = 0;
  ScopeSnapshot snapshot;
  bool read_only = false;  // FetchResult.read_only
};

// An event waiting in a stream's queue. Commits and snapshots keep their
// shared JSON bytes until the frame is built; the rest is built eagerly.
using OutEvent =
    std::variant<sync::v1::ServiceEvent, CommitEvent, SnapshotEvent>;

// Roughly the bytes an event adds to a frame.
inline size_t EstimateBytes(const OutEvent& event) {
  constexpr size_t kOverhead = 64;
  if (const auto* c = std::get_if<CommitEvent>(&event)) {
    return kOverhead + c->commit->fragments_json->size() +
           c->commit->origin_session_id.size() + c->commit->scope.size();
  }
  if (const auto* s = std::get_if<SnapshotEvent>(&event)) {
    return kOverhead + s->snapshot.fragments_json->size() +
           s->snapshot.scope.size();
  }
  return kOverhead + std::get<sync::v1::ServiceEvent>(event).ByteSizeLong();
}

inline void AppendTo(OutEvent& event, sync::v1::ServiceFrame* frame) {
  sync::v1::ServiceEvent* out = frame->add_events();
  if (auto* event_commit = std::get_if<CommitEvent>(&event)) {
    const CommitRecord& c = *event_commit->commit;
    sync::v1::Commit* proto = out->mutable_commit();
    proto->set_scope(c.scope);
    proto->set_epoch(c.epoch);
    proto->set_version(c.version);
    proto->set_origin_session_id(c.origin_session_id);
    proto->set_fragments_json(*c.fragments_json);
    proto->set_replayed(event_commit->replayed);
    proto->set_committed_unix_micros(absl::ToUnixMicros(c.committed_at));
  } else if (auto* s = std::get_if<SnapshotEvent>(&event)) {
    if (s->resync) {
      SnapshotToProto(s->snapshot, out->mutable_resync()->mutable_snapshot());
    } else {
      sync::v1::FetchResult* result = out->mutable_fetch_result();
      result->set_request_id(s->request_id);
      result->set_read_only(s->read_only);
      SnapshotToProto(s->snapshot, result->mutable_snapshot());
    }
  } else {
    out->Swap(&std::get<sync::v1::ServiceEvent>(event));
  }
}

// Outbox
//
// The outgoing half of one Connect stream, and the ScopeWatcher of the
// scopes it watches. Shared: scope hosts hold it while it is registered, so
// it may outlive its reactor; once Detach() ran it drops every event and
// never touches the reactor again.
//
// Threads: Push() comes from the reactor's reactions and from any thread
// that commits to a watched scope (under that scope's lock); WriteDone() and
// Close() come from reactions. Lock order: scope lock, then mu_. StartWrite()
// and Finish() are called without mu_.
//
// Invariants: at most one write is in flight (write_in_flight_); `batch_`
// and `frame_` belong to that write; Finish() is called once, only while no
// write is in flight, so the reactor (whose OnDone needs Finish) stays alive
// for as long as a write is in flight.
class Outbox final : public ScopeWatcher {
 public:
  Outbox(ConnectReactorBase* reactor, size_t max_frame_bytes)
      : max_frame_bytes_(max_frame_bytes), reactor_(reactor) {}

  // ScopeWatcher
  void OnCommit(const CommitPtr& commit, bool replayed) override {
    Push(CommitEvent{commit, replayed});
  }
  void OnResync(const ScopeSnapshot& snapshot) override {
    Push(SnapshotEvent{/*resync=*/true, 0, snapshot});
  }
  void OnLost(const std::string& scope, const absl::Status& why,
              const Member* moved_to) override {
    PushScopeLost(scope, why.message(), moved_to);
  }

  // Tells the gateway that this replica does not (or no longer) serve
  // `scope`, and where it went if known.
  void PushScopeLost(const std::string& scope, absl::string_view why,
                     const Member* moved_to) {
    sync::v1::ServiceEvent event;
    sync::v1::ScopeLost* lost = event.mutable_scope_lost();
    lost->set_scope(scope);
    lost->mutable_error()->set_message(std::string(why));
    if (moved_to != nullptr)
      RedirectToProto(*moved_to, lost->mutable_moved_to());
    Push(std::move(event));
  }

  // Queues `event` and starts a write if none is in flight. Never blocks
  // beyond mu_. Dropped once the stream is closing.
  void Push(OutEvent event) {
    ConnectReactorBase* writer = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (reactor_ == nullptr || closing_) return;
      queue_.push_back(std::move(event));
      writer = StartWriteLocked();
    }
    if (writer != nullptr) Write(writer);
  }

  // Hold() / Release(): between them Push() only queues; Release() starts
  // the write of everything queued meanwhile (unless one is in flight,
  // which continues with it). The reactor holds the outbox while it
  // dispatches one GatewayFrame, so the answers its requests produce on
  // the spot leave together in one sync::v1::ServiceFrame.
  void Hold() {
    absl::MutexLock lock(&mu_);
    ++holds_;
  }
  void Release() {
    ConnectReactorBase* writer = nullptr;
    {
      absl::MutexLock lock(&mu_);
      --holds_;
      writer = StartWriteLocked();
    }
    if (writer != nullptr) Write(writer);
  }

  // If something is queued and no write is in flight or held off, takes
  // the batch and returns the reactor to Write() it to (outside mu_).
  ConnectReactorBase* StartWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (write_in_flight_ || holds_ > 0 || queue_.empty() ||
        reactor_ == nullptr) {
      return nullptr;
    }
    write_in_flight_ = true;
    TakeBatchLocked();
    return reactor_;
  }

  // OnWriteDone: continue with everything queued meanwhile, or finish.
  void WriteDone(bool ok) {
    ConnectReactorBase* writer = nullptr;
    bool write_more = false;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        // The stream is broken: nothing more can be delivered.
        closing_ = true;
        queue_.clear();
        SetStatusLocked(
            grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      }
      if (queue_.empty()) {
        write_in_flight_ = false;
        finish = FinishDueLocked();
      } else {
        TakeBatchLocked();
        write_more = true;
      }
      writer = reactor_;
    }
    if (write_more) {
      Write(writer);
    } else if (finish.has_value()) {
      writer->Finish(*finish);
    }
  }

  // The read side ended: `flush` (the gateway half-closed) sends what is
  // queued first; otherwise (cancelled) it is dropped. Either way no new
  // events are accepted and the stream finishes once no write is in flight.
  void Close(bool flush) {
    ConnectReactorBase* writer = nullptr;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;
      if (!flush) {
        queue_.clear();
        SetStatusLocked(grpc::Status::CANCELLED);
      }
      finish = FinishDueLocked();
      writer = reactor_;
    }
    if (finish.has_value()) writer->Finish(*finish);
  }

  // OnDone: the reactor is going away.
  void Detach() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    queue_.clear();
  }

 private:
  // The status to finish with, if the caller must call Finish() now; marks
  // the stream finished.
  std::optional<grpc::Status> FinishDueLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!closing_ || write_in_flight_ || !queue_.empty() || finished_ ||
        reactor_ == nullptr) {
      return std::nullopt;
    }
    finished_ = true;
    return status_;
  }

  // The first failure wins.
  void SetStatusLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (status_.ok()) status_ = std::move(status);
  }

  // Moves the events of the next frame from queue_ to batch_.
  void TakeBatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_t bytes = 0;
    while (!queue_.empty() && (batch_.empty() || bytes < max_frame_bytes_)) {
      bytes += EstimateBytes(queue_.front());
      batch_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }

  // Builds frame_ from batch_ and starts the write. Only the owner of the
  // in-flight write calls this, without mu_.
  void Write(ConnectReactorBase* writer) {
    frame_.Clear();
    for (OutEvent& event : batch_) AppendTo(event, &frame_);
    batch_.clear();
    writer->StartWrite(&frame_);
  }

  const size_t max_frame_bytes_;

  absl::Mutex mu_;
  ConnectReactorBase* reactor_ ABSL_GUARDED_BY(mu_);  // null once detached
  std::deque<OutEvent> queue_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  int holds_ ABSL_GUARDED_BY(mu_) = 0;  // Hold() calls not yet Release()d
  bool closing_ ABSL_GUARDED_BY(mu_) = false;   // accepts no more events
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish() was called
  grpc::Status status_ ABSL_GUARDED_BY(mu_);    // what Finish() reports

  // Owned by the write in flight.
  std::vector<OutEvent> batch_;
  sync::v1::ServiceFrame frame_;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_STREAM_OUTBOX_H_
