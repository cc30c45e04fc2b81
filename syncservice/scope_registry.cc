#include "syncservice/scope_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "syncservice/store_persister.h"

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
    absl::StatusOr<std::unique_ptr<Scope>> scope = registry->MakeScope(
        s.name, s.root, absl::StrCat(c.source, ": scope '", s.name, "'"));
    if (!scope.ok()) return scope.status();
    registry->scopes_.emplace(
        s.name, registry->NewHostLocked(s.name, *std::move(scope)));
  }
  return registry;
}

absl::StatusOr<std::unique_ptr<Scope>> ScopeRegistry::MakeScope(
    const std::string& name, const ObjectSpec& root, const std::string& what) {
  auto build = [&] { return BuildScope(schema_, root, what); };
  if (options_.store == nullptr) return build();
  return LoadOrCreateScope(*options_.store, schema_, name, build);
}

std::shared_ptr<ScopeHost> ScopeRegistry::NewHostLocked(
    const std::string& name, std::unique_ptr<Scope> scope) {
  return std::make_shared<ScopeHost>(name, std::move(scope), options_.host);
}

bool ScopeRegistry::UsableLocked(const ScopeHost& host) const {
  // A failed host is replaced only when the scope can be loaded afresh. (The
  // registry takes a host's lock under its own, never the other way round.)
  return options_.store == nullptr || !host.failed();
}

absl::StatusOr<std::shared_ptr<ScopeHost>> ScopeRegistry::Fetch(
    absl::string_view name) {
  if (name.size() > options_.max_name_length) {
    return absl::InvalidArgumentError("Scope name too long");
  }
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = scopes_.find(name);
    if (it != scopes_.end() && UsableLocked(*it->second)) return it->second;
  }
  const ScopeSpec* static_spec = nullptr;
  for (const ScopeSpec& s : config_.scopes) {
    if (s.name == name) static_spec = &s;
  }
  const TemplateSpec* spec =
      static_spec != nullptr ? nullptr : config_.FindTemplate(name);
  if (spec == nullptr && static_spec == nullptr) {
    return absl::NotFoundError(kNoSuchScope);
  }

  absl::MutexLock lock(&mu_);
  // Another fetch may have created it meanwhile.
  auto it = scopes_.find(name);
  if (it != scopes_.end()) {
    if (UsableLocked(*it->second)) return it->second;
    // Its persist failed (fenced out, or the store failed): load afresh.
    LOG(WARNING) << "scope " << name
                 << " failed; loading it again from the store";
    scopes_.erase(it);
  }
  if (scopes_.size() >= options_.max_scopes) {
    return absl::ResourceExhaustedError("Too many scopes");
  }
  // The template was built at startup, so this only fails on a bug; the
  // message stays generic for clients and detailed in the status.
  // (A static scope is only missing here after it was dropped, with a store.)
  // With a store this loads under the registry's lock: first fetches of
  // different scopes wait for each other.
  absl::StatusOr<std::unique_ptr<Scope>> scope = MakeScope(
      std::string(name), static_spec != nullptr ? static_spec->root : spec->root,
      static_spec != nullptr
          ? absl::StrCat(config_.source, ": scope '", static_spec->name, "'")
          : absl::StrCat(config_.source, ": template '", spec->pattern, "'"));
  if (!scope.ok()) {
    LOG(ERROR) << "scope " << name << ": " << scope.status();
    return absl::InternalError(
        absl::StrCat("Could not create scope: ", scope.status().message()));
  }
  auto host = NewHostLocked(std::string(name), *std::move(scope));
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
