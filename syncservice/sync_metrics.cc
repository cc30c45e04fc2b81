// File: syncservice/sync_metrics.cc

#include "syncservice/sync_metrics.h"

#include "common/metrics/metrics_registry.h"

namespace jetstream {

SyncMetrics::SyncMetrics(prometheus::Registry& registry)
    : batch_size_(NewHistogram(registry, "jetstream_sync_commit_batch_size",
                               "Writes per group-commit transaction.",
                               CountBuckets())),
      store_write_(NewHistogram(registry, "jetstream_sync_store_write_seconds",
                                "One group-commit transaction, fsync included.",
                                LatencyBuckets())),
      store_errors_(NewCounter(registry, "jetstream_sync_store_errors_total",
                               "Store transactions or reads that failed.")),
      scope_load_(
          NewHistogram(registry, "jetstream_sync_scope_load_seconds",
                       "Loading a scope from the store or configuration.",
                       LatencyBuckets())),
      leases_acquired_(NewCounter(registry,
                                  "jetstream_sync_leases_acquired_total",
                                  "Scope leases taken by this replica.")),
      leases_lost_(NewCounter(registry, "jetstream_sync_leases_lost_total",
                              "Scope leases lost (expired or taken over).")) {
  auto& stages = prometheus::BuildHistogram()
                     .Name("jetstream_sync_commit_stage_seconds")
                     .Help("Time a changeset spends in each commit stage.")
                     .Register(registry);
  const char* stage_names[] = {"validate", "apply", "persist", "release"};
  for (int i = 0; i < 4; ++i) {
    stage_[i] = &stages.Add({{"stage", stage_names[i]}}, LatencyBuckets());
  }
  auto& outcomes = prometheus::BuildCounter()
                       .Name("jetstream_sync_changesets_total")
                       .Help(
                           "Changesets by outcome: committed, refused (by "
                           "validation or the engine) or failed.")
                       .Register(registry);
  const char* outcome_names[] = {"committed", "refused", "failed"};
  for (int i = 0; i < 3; ++i) {
    outcome_[i] = &outcomes.Add({{"outcome", outcome_names[i]}});
  }
}

void SyncMetrics::ObserveStage(Stage stage, absl::Duration took) {
  stage_[static_cast<int>(stage)]->Observe(absl::ToDoubleSeconds(took));
}

void SyncMetrics::CountChangeset(Outcome outcome) {
  outcome_[static_cast<int>(outcome)]->Increment();
}

void SyncMetrics::ObserveScopeLoad(absl::Duration took) {
  scope_load_.Observe(absl::ToDoubleSeconds(took));
}

void SyncMetrics::CountStoreError() { store_errors_.Increment(); }
void SyncMetrics::CountLeaseAcquired() { leases_acquired_.Increment(); }
void SyncMetrics::CountLeaseLost() { leases_lost_.Increment(); }

void SyncMetrics::OnBatchWritten(size_t writes, absl::Duration took, bool ok) {
  batch_size_.Observe(static_cast<double>(writes));
  store_write_.Observe(absl::ToDoubleSeconds(took));
  if (!ok) store_errors_.Increment();
}

}  // namespace jetstream
