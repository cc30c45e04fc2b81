// File: syncservice/hooks/hooks.h
//
// Downstream hooks, assembled: the hooks file, a client channel per hook,
// and the ChangesetValidator and AccessPolicy they back. The composition
// root (sync_server.cc) owns one Hooks and hands validator() to the scope
// hosts and access() to the SyncService.
//
// Example:
//   auto hooks = Hooks::Create("hooks.json", schema.get(), &metrics).value();
//   registry_options.host.validator = hooks->validator();
//
// Thread-safety: immutable after Create(); the parts are thread-safe.
// Lifetime: must outlive the server and every scope host.

#ifndef JETSTREAM_SYNCSERVICE_HOOKS_HOOKS_H_
#define JETSTREAM_SYNCSERVICE_HOOKS_HOOKS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "syncservice/engine/schema.h"
#include "syncservice/hooks/downstream_access.h"
#include "syncservice/hooks/downstream_validator.h"
#include "syncservice/hooks/hook_clients.h"
#include "syncservice/hooks/hook_config.h"
#include "syncservice/rpc/interceptors.h"

namespace jetstream::hooks {

class Hooks {
 public:
  // Loads `path` (empty: no hooks, everything accepted; procedures are then
  // all unknown). Fails with the loader's error. `schema` and `metrics`
  // must outlive the result.
  static absl::StatusOr<std::unique_ptr<Hooks>> Create(
      const std::string& path, const Schema* schema, HookCallMetrics* metrics);
  static std::unique_ptr<Hooks> FromConfig(HookConfig config,
                                           const Schema* schema,
                                           HookCallMetrics* metrics);

  const HookConfig& config() const { return *config_; }
  ChangesetValidator* validator() { return validator_.get(); }
  AccessPolicy* access() { return access_.get(); }

 private:
  Hooks() = default;

  std::unique_ptr<const HookConfig> config_;
  std::unique_ptr<HookClients> clients_;
  std::unique_ptr<DownstreamValidator> validator_;
  std::unique_ptr<DownstreamAccess> access_;
};

}  // namespace jetstream::hooks

#endif  // JETSTREAM_SYNCSERVICE_HOOKS_HOOKS_H_
