// File: syncservice/sync_metrics.h
//
// The sync service's own metrics (docs/metrics.md), recorded where the work
// happens: ScopeHost times each commit stage and counts changesets by
// outcome, ScopeRegistry times scope loads and counts leases, and the
// store's writer reports each group-commit batch (StoreObserver). The
// standard gRPC metrics come from interceptors (common/metrics), hook
// latencies from hooks::HookCallMetrics.
//
// Thread-safety: every method is thread-safe and cheap (a prometheus-cpp
// metric update). Lifetime: must outlive the store, the registry and every
// host that records into it.

#ifndef JETSTREAM_SYNCSERVICE_SYNC_METRICS_H_
#define JETSTREAM_SYNCSERVICE_SYNC_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstddef>

#include "absl/time/time.h"
#include "syncservice/storage/scope_store.h"

namespace jetstream {

class SyncMetrics : public StoreObserver {
 public:
  // The stages of a commit (scope_host.h): validation by hooks, applying
  // to the engine, persisting (fsync included), and waiting for release
  // in order once durable.
  enum class Stage { kValidate, kApply, kPersist, kRelease };
  // What became of a changeset that came with a reply callback.
  enum class Outcome { kCommitted, kRefused, kFailed };

  explicit SyncMetrics(prometheus::Registry& registry);

  void ObserveStage(Stage stage, absl::Duration took);
  void CountChangeset(Outcome outcome);
  void ObserveScopeLoad(absl::Duration took);
  // A store read (loading a scope) failed.
  void CountStoreError();
  void CountLeaseAcquired();
  void CountLeaseLost();

  // StoreObserver
  void OnBatchWritten(size_t writes, absl::Duration took, bool ok) override;

 private:
  prometheus::Histogram* stage_[4];
  prometheus::Counter* outcome_[3];
  prometheus::Histogram& batch_size_;
  prometheus::Histogram& store_write_;
  prometheus::Counter& store_errors_;
  prometheus::Histogram& scope_load_;
  prometheus::Counter& leases_acquired_;
  prometheus::Counter& leases_lost_;
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_SYNC_METRICS_H_
