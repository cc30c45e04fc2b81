#include "syncservice/scope_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/logging.h"
#include "syncservice/store_persister.h"

namespace jetstream {

ScopeRegistry::ScopeRegistry(std::shared_ptr<const Schema> schema,
                             ScopeConfig config, ScopeRegistryOptions options)
    : schema_(std::move(schema)),
      config_(std::move(config)),
      options_(std::move(options)),
      workers_(std::make_shared<WorkerPool>(options_.loader_threads)) {}

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
  if (!registry->standalone()) {
    // Static scopes are loaded where their leases go, on first request.
    for (const ScopeSpec& s : c.scopes) {
      absl::StatusOr<std::unique_ptr<Scope>> trial =
          BuildScope(registry->schema_, s.root,
                     absl::StrCat(c.source, ": scope '", s.name, "'"));
      if (!trial.ok()) return trial.status();
    }
    return registry;
  }
  for (const ScopeSpec& s : c.scopes) {
    absl::StatusOr<std::unique_ptr<Scope>> scope = registry->MakeScope(s.name);
    if (!scope.ok()) return scope.status();
    absl::MutexLock lock(&registry->mu_);
    auto entry = std::make_shared<Entry>();
    entry->generation = registry->next_generation_++;
    entry->state = Entry::State::kServing;
    entry->host =
        registry->NewHost(s.name, *std::move(scope), 0, entry->generation);
    registry->entries_.emplace(s.name, std::move(entry));
  }
  return registry;
}

ScopeRegistry::~ScopeRegistry() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  workers_->Shutdown();
  std::vector<Waiter> waiting;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, entry] : entries_) {
      for (Waiter& w : entry->waiters) waiting.push_back(std::move(w));
      entry->waiters.clear();
    }
  }
  ScopeLookup down;
  down.status = absl::UnavailableError("the sync service is shutting down");
  for (Waiter& w : waiting) w.done(down);
}

bool ScopeRegistry::standalone() const {
  return options_.cluster == nullptr || options_.cluster->standalone();
}

const ObjectSpec* ScopeRegistry::SpecFor(absl::string_view name,
                                         std::string* what) const {
  for (const ScopeSpec& s : config_.scopes) {
    if (s.name == name) {
      *what = absl::StrCat(config_.source, ": scope '", s.name, "'");
      return &s.root;
    }
  }
  if (const TemplateSpec* t = config_.FindTemplate(name)) {
    *what = absl::StrCat(config_.source, ": template '", t->pattern, "'");
    return &t->root;
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<Scope>> ScopeRegistry::MakeScope(
    const std::string& name) {
  std::string what;
  const ObjectSpec* root = SpecFor(name, &what);
  if (root == nullptr) return absl::NotFoundError(kNoSuchScope);
  auto build = [&] { return BuildScope(schema_, *root, what); };
  if (options_.store == nullptr) return build();
  return LoadOrCreateScope(*options_.store, schema_, name, build);
}

std::shared_ptr<ScopeHost> ScopeRegistry::NewHost(const std::string& name,
                                                  std::unique_ptr<Scope> scope,
                                                  uint64_t epoch,
                                                  uint64_t generation) {
  ScopeHostOptions host = options_.host;
  host.lease_epoch = epoch;
  if (!standalone()) {
    Cluster* cluster = options_.cluster;
    host.lease_valid = [cluster, name, epoch] {
      return cluster->Valid(name, epoch);
    };
  }
  // Called under the host's lock: only hands the work to a worker.
  std::weak_ptr<WorkerPool> workers = workers_;
  host.on_failure = [this, workers, name, generation, epoch](
                        const std::string&, const absl::Status&) {
    if (std::shared_ptr<WorkerPool> pool = workers.lock()) {
      pool->Post([this, name, generation, epoch] {
        OnHostFailed(name, generation, epoch);
      });
    }
  };
  return std::make_shared<ScopeHost>(name, std::move(scope), std::move(host));
}

void ScopeRegistry::Acquire(absl::string_view name, RoutingHints hints,
                            LookupCallback done) {
  ScopeLookup now;
  if (name.size() > options_.max_name_length) {
    now.status = absl::InvalidArgumentError("Scope name too long");
    done(std::move(now));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (stopping_) {
      now.status = absl::UnavailableError("the sync service is shutting down");
    } else if (it != entries_.end()) {
      Entry& e = *it->second;
      switch (e.state) {
        case Entry::State::kLoading:
          e.waiters.push_back(Waiter{hints, std::move(done)});
          return;
        case Entry::State::kServing:
          if (e.handing_to_waiters) {
            e.waiters.push_back(Waiter{hints, std::move(done)});
            return;
          }
          if (e.host->serving()) {
            now.host = e.host;
          } else {
            // It stopped (its failure is being handled): load afresh.
            entries_.erase(it);
            it = entries_.end();
          }
          break;
        case Entry::State::kLeaving:
          now.redirect = e.leaving_to;
          break;
      }
    }
    if (!stopping_ && it == entries_.end()) {
      std::string what;
      if (SpecFor(name, &what) == nullptr) {
        now.status = absl::NotFoundError(kNoSuchScope);
      } else if (draining_) {
        // Leaving: never take a lease on the way out.
        now.redirect =
            options_.cluster->members().Preferred(name).value_or(Member{});
      } else if (entries_.size() >= options_.max_scopes) {
        now.status = absl::ResourceExhaustedError("Too many scopes");
      } else {
        auto entry = std::make_shared<Entry>();
        entry->generation = next_generation_++;
        entry->waiters.push_back(Waiter{hints, std::move(done)});
        const uint64_t generation = entry->generation;
        std::string key(name);
        entries_.emplace(key, std::move(entry));
        workers_->Post([this, key, generation] { Load(key, generation); });
        return;
      }
    }
  }
  done(std::move(now));
}

absl::StatusOr<std::shared_ptr<ScopeHost>> ScopeRegistry::Fetch(
    absl::string_view name) {
  absl::Notification found;
  ScopeLookup lookup;
  Acquire(name, RoutingHints{}, [&](ScopeLookup l) {
    lookup = std::move(l);
    found.Notify();
  });
  found.WaitForNotification();
  if (lookup.host != nullptr) return lookup.host;
  if (lookup.redirect.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "scope '", name, "' is served by member '", lookup.redirect->id, "'"));
  }
  return lookup.status;
}

void ScopeRegistry::Load(const std::string& name, uint64_t generation) {
  RoutingHints any;
  bool draining = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end() || it->second->generation != generation ||
        it->second->state != Entry::State::kLoading) {
      return;
    }
    for (const Waiter& w : it->second->waiters) {
      any.take_over |= w.hints.take_over;
      any.rerouted |= w.hints.rerouted;
    }
    draining = draining_;
  }
  if (draining) {
    // Leaving: no new lease on the way out.
    ScopeLookup there;
    there.redirect =
        options_.cluster->members().Preferred(name).value_or(Member{});
    AnswerWaiters(name, generation, nullptr, there);
    return;
  }
  uint64_t epoch = 0;
  if (!standalone()) {
    Cluster& cluster = *options_.cluster;
    const std::string self = cluster.self().id;
    if (!any.take_over) {
      // A request for a scope that belongs to another live member goes
      // there, resends included: a replica that just handed the scope off
      // must not take it back from a resend that raced the handoff.
      std::optional<Member> preferred = cluster.members().Preferred(name);
      if (preferred.has_value() && preferred->id != self) {
        ScopeLookup there;
        there.redirect = *preferred;
        AnswerWaiters(name, generation, nullptr, there);
        return;
      }
    }
    absl::StatusOr<LeaseOutcome> lease = cluster.Acquire(name);
    if (!lease.ok()) {
      LOG(WARNING) << "scope " << name << ": no lease: " << lease.status();
      ScopeLookup failed;
      failed.status = absl::UnavailableError(absl::StrCat(
          "the scope cannot be served now (", lease.status().message(), ")"));
      AnswerWaiters(name, generation, nullptr, failed);
      return;
    }
    if (!lease->granted) {
      // Requests go to the live holder, but for take-over ones (their
      // gateway cannot reach it): those wait here for the lease to be
      // released or to expire. (A gateway follows a few redirects at most,
      // so replicas that disagree for a moment cannot bounce a request
      // forever.)
      if (lease->holder_live && !lease->holder.id.empty()) {
        ScopeLookup there;
        there.redirect = lease->holder;
        if (!AnswerWaiters(
                name, generation,
                [](const Waiter& w) { return !w.hints.take_over; }, there)) {
          return;
        }
      }
      bool gave_up = false;
      {
        absl::MutexLock lock(&mu_);
        auto it = entries_.find(name);
        if (it == entries_.end() || it->second->generation != generation) {
          return;
        }
        Entry& e = *it->second;
        if (e.wait_deadline == absl::InfiniteFuture()) {
          e.wait_deadline = absl::Now() + options_.max_lease_wait;
        }
        gave_up = absl::Now() > e.wait_deadline;
      }
      if (gave_up) {
        ScopeLookup failed;
        failed.status = absl::UnavailableError(
            absl::StrCat("the scope is held by another replica (",
                         lease->holder.id.empty() ? "gone" : lease->holder.id,
                         ") and was not released in time"));
        AnswerWaiters(name, generation, nullptr, failed);
        return;
      }
      // Short looks: a handoff releases the lease long before it expires.
      absl::Duration delay =
          std::clamp(lease->expires_in + absl::Milliseconds(5),
                     absl::Milliseconds(10), absl::Milliseconds(100));
      workers_->PostAfter(delay,
                          [this, name, generation] { Load(name, generation); });
      return;
    }
    epoch = lease->epoch;
    if (options_.metrics != nullptr) options_.metrics->CountLeaseAcquired();
  }
  // Always from the store: never a copy from an earlier tenure.
  const absl::Time load_start = absl::Now();
  absl::StatusOr<std::unique_ptr<Scope>> scope = MakeScope(name);
  if (options_.metrics != nullptr) {
    if (scope.ok()) {
      options_.metrics->ObserveScopeLoad(absl::Now() - load_start);
    } else if (!absl::IsNotFound(scope.status())) {
      options_.metrics->CountStoreError();
    }
  }
  if (!scope.ok()) {
    LOG(ERROR) << "scope " << name << ": " << scope.status();
    if (!standalone()) options_.cluster->Release(name, epoch);
    ScopeLookup failed;
    failed.status =
        absl::IsNotFound(scope.status())
            ? scope.status()
            : absl::InternalError(absl::StrCat("Could not create scope: ",
                                               scope.status().message()));
    AnswerWaiters(name, generation, nullptr, failed);
    return;
  }
  Serve(name, generation, NewHost(name, *std::move(scope), epoch, generation),
        epoch);
}

bool ScopeRegistry::AnswerWaiters(
    const std::string& name, uint64_t generation,
    const std::function<bool(const Waiter&)>& pick, const ScopeLookup& answer) {
  std::vector<Waiter> answered;
  bool left = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end() || it->second->generation != generation) {
      return false;
    }
    std::deque<Waiter>& waiters = it->second->waiters;
    std::deque<Waiter> kept;
    for (Waiter& w : waiters) {
      if (pick == nullptr || pick(w)) {
        answered.push_back(std::move(w));
      } else {
        kept.push_back(std::move(w));
      }
    }
    waiters.swap(kept);
    left = !waiters.empty();
    if (!left) entries_.erase(it);
  }
  for (Waiter& w : answered) w.done(answer);
  return left;
}

void ScopeRegistry::Serve(const std::string& name, uint64_t generation,
                          std::shared_ptr<ScopeHost> host, uint64_t epoch) {
  std::deque<Waiter> batch;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end() || it->second->generation != generation) {
      // Dropped meanwhile (shutting down).
      host->Stop(absl::UnavailableError("the sync service is shutting down"));
      if (!standalone()) options_.cluster->Release(name, epoch);
      return;
    }
    Entry& e = *it->second;
    e.host = host;
    e.epoch = epoch;
    e.state = Entry::State::kServing;
    e.serving_since = absl::Now();
    e.handing_to_waiters = true;
    batch.swap(e.waiters);
  }
  VLOG(1) << "scope " << name << " served here, lease epoch " << epoch;
  ScopeLookup here;
  here.host = host;
  // The waiters get the host in order; later requests queue behind them
  // until none is left, so no request overtakes an earlier one.
  for (;;) {
    for (Waiter& w : batch) w.done(here);
    batch.clear();
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end() || it->second->generation != generation) return;
    Entry& e = *it->second;
    if (e.waiters.empty()) {
      e.handing_to_waiters = false;
      if (draining_) {
        // HandOffAll() began while it loaded.
        std::optional<Member> to = options_.cluster->members().Preferred(name);
        HandOff(name, to.has_value() ? &*to : nullptr);
      } else if (e.recheck_placement) {
        // The members changed while the waiters were handed the host.
        e.recheck_placement = false;
        HandOffIfMisplaced(name, options_.cluster->members());
      }
      return;
    }
    batch.swap(e.waiters);
  }
}

void ScopeRegistry::OnHostFailed(const std::string& name, uint64_t generation,
                                 uint64_t epoch) {
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it != entries_.end() && it->second->generation == generation) {
      LOG(WARNING) << "scope " << name
                   << " stopped here; the next request loads it afresh";
      entries_.erase(it);
    }
  }
  // Its memory may be ahead of the store: whoever serves it next, here or
  // elsewhere, loads it with a new epoch.
  if (!standalone()) options_.cluster->Release(name, epoch);
}

void ScopeRegistry::HandOff(const std::string& name, const Member* to) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  Entry& e = *it->second;
  if (e.state != Entry::State::kServing) return;
  if (e.handing_to_waiters) {
    // Not before the waiters have the host (Serve() checks again then), so
    // no request overtakes an earlier one; a membership change is not lost.
    e.recheck_placement = true;
    return;
  }
  e.state = Entry::State::kLeaving;
  e.leaving_to = to != nullptr ? *to : Member{};
  LOG(INFO) << "scope " << name << " hands off to "
            << (to != nullptr ? to->id : std::string("whoever asks next"));
  std::weak_ptr<WorkerPool> workers = workers_;
  const uint64_t generation = e.generation;
  // Called once the queued work is done, under the host's lock.
  e.host->Close([this, workers, name, generation] {
    if (std::shared_ptr<WorkerPool> pool = workers.lock()) {
      pool->Post([this, name, generation] { HandedOff(name, generation); });
    }
  });
}

void ScopeRegistry::HandedOff(const std::string& name, uint64_t generation) {
  std::shared_ptr<ScopeHost> host;
  uint64_t epoch = 0;
  Member to;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end() || it->second->generation != generation) return;
    host = it->second->host;
    epoch = it->second->epoch;
    to = it->second->leaving_to;
  }
  // Released first, so the next holder can take it the moment the
  // watchers move there; meanwhile requests here are redirected.
  options_.cluster->Release(name, epoch);
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it != entries_.end() && it->second->generation == generation) {
      entries_.erase(it);
    }
  }
  host->Stop(absl::AbortedError("handed off to another replica"),
             to.id.empty() ? nullptr : &to);
}

void ScopeRegistry::OnMembersChanged(const MemberView& view) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  HandOffMisplaced(view, absl::ZeroDuration());
}

void ScopeRegistry::Rebalance(const MemberView& view) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  HandOffMisplaced(view, options_.rebalance_after);
}

void ScopeRegistry::HandOffMisplaced(const MemberView& view,
                                     absl::Duration min_tenure) {
  const absl::Time now = absl::Now();
  std::vector<std::string> names;
  for (const auto& [name, entry] : entries_) {
    if (entry->state == Entry::State::kServing &&
        now - entry->serving_since >= min_tenure) {
      names.push_back(name);
    }
  }
  for (const std::string& name : names) HandOffIfMisplaced(name, view);
}

void ScopeRegistry::HandOffIfMisplaced(const std::string& name,
                                       const MemberView& view) {
  const std::string self = options_.cluster->self().id;
  std::optional<Member> preferred = view.Preferred(name);
  if (preferred.has_value() && preferred->id != self) {
    HandOff(name, &*preferred);
  } else if (!preferred.has_value() && !view.Contains(self)) {
    HandOff(name, nullptr);  // leaving, and nobody else is there
  }
}

void ScopeRegistry::OnLeaseLost(const std::string& scope, uint64_t epoch,
                                const absl::Status& why) {
  std::shared_ptr<ScopeHost> host;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(scope);
    if (it != entries_.end() && it->second->host != nullptr &&
        it->second->epoch == epoch) {
      host = it->second->host;
      entries_.erase(it);
    }
  }
  if (host != nullptr) {
    if (options_.metrics != nullptr) options_.metrics->CountLeaseLost();
    host->Stop(why);
  }
}

bool ScopeRegistry::HandOffAll(absl::Duration timeout) {
  if (standalone()) return true;
  options_.cluster->Drain();
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
  }
  OnMembersChanged(options_.cluster->members());
  absl::MutexLock lock(&mu_);
  auto released = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& [name, entry] : entries_) {
      if (entry->state != Entry::State::kLoading) return false;
    }
    return true;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&released), timeout);
}

std::shared_ptr<ScopeHost> ScopeRegistry::Find(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second->state != Entry::State::kServing) {
    return nullptr;
  }
  return it->second->host;
}

std::vector<std::shared_ptr<ScopeHost>> ScopeRegistry::List() const {
  std::vector<std::shared_ptr<ScopeHost>> out;
  {
    absl::MutexLock lock(&mu_);
    out.reserve(entries_.size());
    for (const auto& [name, entry] : entries_) {
      if (entry->host != nullptr) out.push_back(entry->host);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a->name() < b->name(); });
  return out;
}

}  // namespace jetstream
