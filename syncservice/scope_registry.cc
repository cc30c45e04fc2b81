#include "syncservice/scope_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace jetstream {

ScopeRegistry::ScopeRegistry(std::shared_ptr<const Schema> schema,
                             ScopeConfig config, ScopeRegistryOptions options)
    : schema_(std::move(schema)),
      config_(std::move(config)),
      options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<ScopeRegistry>> ScopeRegistry::Create(
    std::shared_ptr<const Schema> schema, ScopeConfig config,
    ScopeRegistryOptions options) {
  std::unique_ptr<ScopeRegistry> registry(new ScopeRegistry(
      std::move(schema), std::move(config), std::move(options)));
  const ScopeConfig& c = registry->config_;
  for (const TemplateSpec& t : c.templates) {
    absl::StatusOr<std::unique_ptr<Scope>> trial =
        BuildScope(registry->schema_, t.root,
                   absl::StrCat(c.source, ": template '", t.pattern, "'"));
    if (!trial.ok()) return trial.status();
  }
  absl::MutexLock lock(&registry->mu_);
  for (const ScopeSpec& s : c.scopes) {
    absl::StatusOr<std::unique_ptr<Scope>> scope =
        BuildScope(registry->schema_, s.root,
                   absl::StrCat(c.source, ": scope '", s.name, "'"));
    if (!scope.ok()) return scope.status();
    registry->scopes_.emplace(
        s.name, std::make_shared<ScopeHost>(s.name, *std::move(scope),
                                            registry->options_.host));
  }
  return registry;
}

absl::StatusOr<std::shared_ptr<ScopeHost>> ScopeRegistry::Fetch(
    absl::string_view name) {
  if (name.size() > options_.max_name_length) {
    return absl::InvalidArgumentError("Scope name too long");
  }
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = scopes_.find(name);
    if (it != scopes_.end()) return it->second;
  }
  const TemplateSpec* spec = config_.FindTemplate(name);
  if (spec == nullptr) return absl::NotFoundError(kNoSuchScope);

  absl::MutexLock lock(&mu_);
  // Another fetch may have created it meanwhile.
  auto it = scopes_.find(name);
  if (it != scopes_.end()) return it->second;
  if (scopes_.size() >= options_.max_scopes) {
    return absl::ResourceExhaustedError("Too many scopes");
  }
  // The template was built at startup, so this only fails on a bug; the
  // message stays generic for clients and detailed in the status.
  absl::StatusOr<std::unique_ptr<Scope>> scope = BuildScope(
      schema_, spec->root,
      absl::StrCat(config_.source, ": template '", spec->pattern, "'"));
  if (!scope.ok()) {
    return absl::InternalError(
        absl::StrCat("Could not create scope: ", scope.status().message()));
  }
  auto host = std::make_shared<ScopeHost>(std::string(name), *std::move(scope),
                                          options_.host);
  scopes_.emplace(std::string(name), host);
  return host;
}

std::shared_ptr<ScopeHost> ScopeRegistry::Find(absl::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = scopes_.find(name);
  return it == scopes_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<ScopeHost>> ScopeRegistry::List() const {
  std::vector<std::shared_ptr<ScopeHost>> out;
  {
    absl::ReaderMutexLock lock(&mu_);
    out.reserve(scopes_.size());
    for (const auto& [name, host] : scopes_) out.push_back(host);
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a->name() < b->name(); });
  return out;
}

}  // namespace jetstream
