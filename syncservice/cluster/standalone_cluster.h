// File: syncservice/cluster/standalone_cluster.h
//
// StandaloneCluster: the Cluster of a sync service without peers (SQLite or
// memory store). It holds every scope, always, at epoch 0: commits carry no
// lease, nothing is redirected, and no lease is ever lost.
//
// Thread-safety: thread-safe (immutable).

#ifndef JETSTREAM_SYNCSERVICE_CLUSTER_STANDALONE_CLUSTER_H_
#define JETSTREAM_SYNCSERVICE_CLUSTER_STANDALONE_CLUSTER_H_

#include <string>
#include <utility>

#include "syncservice/cluster/cluster.h"

namespace jetstream {

class StandaloneCluster : public Cluster {
 public:
  explicit StandaloneCluster(Member self) : self_(std::move(self)) {}

  void SetListener(Listener*) override {}
  Member self() const override { return self_; }
  bool standalone() const override { return true; }
  MemberView members() const override { return MemberView{{self_}, 0}; }
  absl::StatusOr<LeaseOutcome> Acquire(const std::string&) override {
    LeaseOutcome granted;
    granted.granted = true;
    return granted;
  }
  void Release(const std::string&, uint64_t) override {}
  bool Valid(const std::string&, uint64_t) const override { return true; }
  void Drain() override {}

 private:
  const Member self_;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_CLUSTER_STANDALONE_CLUSTER_H_
