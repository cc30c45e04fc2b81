// File: gateway/sync/hub_fanout.h
//
// The gateway's hubs, one per event-loop thread, share one link to the sync
// service (the router and its streams). HubFanout sits between them: each
// hub gets a SyncClient of its own (AddHub), whose calls hop to the link's
// executor and whose answers and events hop back to the hub. A commit is
// decoded and encoded once, then handed to every hub that watches its
// scope (FannedOutCommit).
//
// Watches. The link watches a scope while any hub does: a hub watches it
// from its first Fetch (or a Watch) until its Unwatch. A hub's Watch that
// asks for commits the link already passed on (a hub catching up after a
// gap, or one that fell behind) watches the scope afresh upstream
// (Unwatch, then the Watch), so the holder replays from that hub's
// version; the other hubs drop what they already have, by version. A Watch
// at or past what the link passed on is sent as it is (the router sends
// one per stream).
//
// Order. Everything a hub receives (answers, commits, resyncs, stream and
// scope events) comes in the order the link produced it, because each is
// posted from the link's executor to the hub's strand in turn. So an
// apply's answer still precedes its commit, and a fetch's answer precedes
// the commits after its snapshot, on every hub.
//
// Thread-safety: a hub's SyncClient is called on that hub's executor only;
// its callbacks and listener run there. The fan-out's Listener methods run
// on the link's executor. Lifetime: the fan-out and its hub clients must
// outlive the threads that run the executors (posted work refers to them).

#ifndef JETSTREAM_GATEWAY_SYNC_HUB_FANOUT_H_
#define JETSTREAM_GATEWAY_SYNC_HUB_FANOUT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "gateway/core/clock.h"
#include "gateway/core/hub_executor.h"
#include "gateway/sync/sync_client.h"

namespace jetstream::gateway {

class HubFanout : public SyncClient::Listener {
 public:
  // Makes the body every hub shares of a commit (FannedOutCommit::encoded);
  // runs on the link's executor.
  using Encoder = std::function<std::shared_ptr<const std::string>(
      const sync::v1::Commit& commit)>;

  // `upstream` is the link (called on `link` only); the fan-out becomes its
  // listener. `clock` stamps FannedOutCommit::received. Both must outlive
  // the fan-out.
  HubFanout(HubExecutor link, SyncClient& upstream, const Clock& clock,
            Encoder encode);
  ~HubFanout() override;
  HubFanout(const HubFanout&) = delete;
  HubFanout& operator=(const HubFanout&) = delete;

  // A SyncClient for the hub on `hub`, owned by the fan-out. Call every
  // AddHub before the link starts.
  SyncClient& AddHub(HubExecutor hub);

  // SyncClient::Listener, on the link's executor.
  void OnCommit(const sync::v1::Commit& commit) override;
  void OnResync(const sync::v1::ScopeSnapshot& snapshot) override;
  void OnStreamStarted() override;
  void OnScopeLost(const std::string& scope) override;
  void OnStreamEnded() override;

  // Hubs watching `scope` now (link executor), for tests.
  size_t WatchersForTest(const std::string& scope) const;

 private:
  class HubClient;
  // A scope some hub watches.
  struct Watched {
    absl::InlinedVector<HubClient*, 4> hubs;
    // The newest state the link passed on for it (commit or resync).
    std::string epoch;
    uint64_t version = 0;
  };

  // Link executor: hub interest in a scope.
  void AddWatcher(const std::string& scope, HubClient* hub);
  // Returns whether no hub watches `scope` any more.
  bool RemoveWatcher(const std::string& scope, HubClient* hub);
  void Watch(HubClient* hub, sync::v1::WatchRequest request);
  void Unwatch(HubClient* hub, const std::string& scope);

  const HubExecutor link_;
  SyncClient& upstream_;
  const Clock& clock_;
  const Encoder encode_;
  std::vector<std::unique_ptr<HubClient>> hubs_;
  absl::flat_hash_map<std::string, Watched> watched_;
};

}  // namespace jetstream::gateway

#endif  // JETSTREAM_GATEWAY_SYNC_HUB_FANOUT_H_
