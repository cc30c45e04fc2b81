#include "syncservice/hooks/hooks.h"

#include <utility>

namespace jetstream::hooks {

absl::StatusOr<std::unique_ptr<Hooks>> Hooks::Create(const std::string& path,
                                                     const Schema* schema,
                                                     HookCallMetrics* metrics) {
  HookConfig config;
  if (!path.empty()) {
    absl::StatusOr<HookConfig> loaded = LoadHookConfigFile(path);
    if (!loaded.ok()) return loaded.status();
    config = *std::move(loaded);
  }
  return FromConfig(std::move(config), schema, metrics);
}

std::unique_ptr<Hooks> Hooks::FromConfig(HookConfig config,
                                         const Schema* schema,
                                         HookCallMetrics* metrics) {
  std::unique_ptr<Hooks> hooks(new Hooks());
  hooks->config_ = std::make_unique<const HookConfig>(std::move(config));
  hooks->clients_ = std::make_unique<HookClients>(*hooks->config_, metrics);
  hooks->validator_ = std::make_unique<DownstreamValidator>(
      hooks->config_.get(), hooks->clients_.get(), schema);
  hooks->access_ = std::make_unique<DownstreamAccess>(hooks->config_.get(),
                                                      hooks->clients_.get());
  return hooks;
}

}  // namespace jetstream::hooks
