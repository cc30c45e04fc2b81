// File: syncservice/scope_registry.h
//
// The scopes this sync service holds, by name. Static scopes from the scopes
// file are created at startup; a name that matches a template becomes a
// scope on its first fetch; anything else is "No such scope" (docs/protocol.md#scope-fetch; the
// original demo's fetch handler answers exactly that, and the message reaches clients
// verbatim as ScopeFetchReply.error).
//
// Example:
//   auto registry = ScopeRegistry::Create(schema, config).value();
//   absl::StatusOr<std::shared_ptr<ScopeHost>> host =
//       registry->Fetch("Canvas");
//
// With a store (ScopeRegistryOptions::store, durable scopes): static scopes
// are loaded at startup (a scope that does not rebuild fails the start with
// an error naming it), template scopes on their first fetch; a scope the
// store does not have yet is built from the configuration and stored as
// version 0 (LoadOrCreateScope()). If a host's persist fails (kAborted:
// another owner committed that version, or the store failed) the host stops;
// the next Fetch() of the scope replaces it with one loaded afresh from the
// store.
// Streams watching the dropped host hear ScopeWatcher::OnLost() (the
// gateway watches the scope again and gets the reloaded state); see README
// "Several sync service replicas".
//
// Thread-safety: all methods are thread-safe. Hosts are shared: a host stays
// alive while anyone holds it; the registry drops one only when it failed
// (scope eviction is future work).

#ifndef JETSTREAM_SYNCSERVICE_SCOPE_REGISTRY_H_
#define JETSTREAM_SYNCSERVICE_SCOPE_REGISTRY_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "syncservice/engine/schema.h"
#include "syncservice/scope_config.h"
#include "syncservice/scope_host.h"
#include "syncservice/storage/scope_store.h"

namespace jetstream {

// The exact error text for an unknown scope name.
inline constexpr absl::string_view kNoSuchScope = "No such scope";

struct ScopeRegistryOptions {
  ScopeHostOptions host;
  // At most this many scopes exist; further template fetches fail with
  // kResourceExhausted (clients choose template names freely).
  size_t max_scopes = 10000;
  // Longer names are refused with kInvalidArgument.
  size_t max_name_length = 256;
  // Durable scopes: where scopes are loaded from and created in. Not owned;
  // must outlive the registry. Null: scopes live in memory only. The hosts'
  // persister (host.persister) should write to the same store.
  ScopeStore* store = nullptr;
};

class ScopeRegistry {
 public:
  // ScopeRegistry::Create()
  //
  // Builds every static scope of `config` and one trial instance of every
  // template, so a bad scopes file fails at startup. Errors are
  // kInvalidArgument naming the file and the scope or template.
  static absl::StatusOr<std::unique_ptr<ScopeRegistry>> Create(
      std::shared_ptr<const Schema> schema, ScopeConfig config,
      ScopeRegistryOptions options = {});

  ScopeRegistry(const ScopeRegistry&) = delete;
  ScopeRegistry& operator=(const ScopeRegistry&) = delete;

  // ScopeRegistry::Fetch()
  //
  // The scope named `name`, creating it from the first matching template if
  // it does not exist yet. Unknown names are kNotFound with the message
  // kNoSuchScope.
  absl::StatusOr<std::shared_ptr<ScopeHost>> Fetch(absl::string_view name);

  // The existing scope named `name`, or nullptr. Never creates one.
  std::shared_ptr<ScopeHost> Find(absl::string_view name) const;

  // Every scope, sorted by name.
  std::vector<std::shared_ptr<ScopeHost>> List() const;

  // Names of the static scopes and template patterns, for the startup log.
  const ScopeConfig& config() const { return config_; }

 private:
  ScopeRegistry(std::shared_ptr<const Schema> schema, ScopeConfig config,
                ScopeRegistryOptions options);

  // A host for `name` with `scope`, dropped from the registry if it fails.
  std::shared_ptr<ScopeHost> NewHostLocked(const std::string& name,
                                           std::unique_ptr<Scope> scope)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Builds `root` (loading or creating it in the store if there is one).
  absl::StatusOr<std::unique_ptr<Scope>> MakeScope(const std::string& name,
                                                   const ObjectSpec& root,
                                                   const std::string& what);
  bool UsableLocked(const ScopeHost& host) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<const Schema> schema_;
  const ScopeConfig config_;
  const ScopeRegistryOptions options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<ScopeHost>> scopes_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace jetstream

#endif  // JETSTREAM_SYNCSERVICE_SCOPE_REGISTRY_H_
