#include "syncservice/scope_host.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/fragment_json.h"
#include "common/json.h"
#include "common/logging.h"
#include "syncservice/storage/scope_store.h"

namespace jetstream {

ScopeHost::ScopeHost(std::string name, std::unique_ptr<Scope> scope,
                     ScopeHostOptions options)
    : name_(std::move(name)),
      epoch_(options.epoch.empty() ? Uuid::Random().ToString()
                                   : std::move(options.epoch)),
      log_capacity_(options.log_capacity),
      validator_(options.validator),
      persister_(options.persister),
      metrics_(options.metrics),
      snapshot_every_(options.snapshot_every),
      on_failure_(std::move(options.on_failure)),
      lease_epoch_(options.lease_epoch),
      lease_valid_(std::move(options.lease_valid)),
      scope_(std::move(scope)),
      date_properties_(std::make_shared<const std::vector<std::string>>(
          DateProperties(scope_->schema()))) {
  absl::MutexLock lock(&mu_);
  released_version_ = scope_->version();
}

ScopeHost::~ScopeHost() = default;

void ScopeHost::RegisterLocked(const std::shared_ptr<ScopeWatcher>& watcher) {
  if (watcher != nullptr) watchers_.try_emplace(watcher.get(), watcher);
}

const ScopeSnapshot& ScopeHost::SnapshotLocked() {
  if (!snapshot_.has_value()) {
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    scope_->WriteStateFragments(writer);
    snapshot_ = ScopeSnapshot{name_,
                              epoch_,
                              scope_->version(),
                              scope_->root().uuid(),
                              std::make_shared<const std::string>(
                                  buffer.GetString(), buffer.GetSize()),
                              date_properties_};
  }
  return *snapshot_;
}

// ---------------------------------------------------------------- fetching

bool ScopeHost::Fetch(std::shared_ptr<ScopeWatcher> watcher,
                      SnapshotCallback on_snapshot, LostCallback on_lost) {
  absl::MutexLock lock(&mu_);
  if (failed_ || closing_ || !LeaseHoldsLocked()) return false;
  Release r;
  r.kind = Release::Kind::kSnapshot;
  r.watcher = std::move(watcher);
  r.snapshot = SnapshotLocked();
  r.on_snapshot = std::move(on_snapshot);
  r.on_lost = std::move(on_lost);
  releases_.push_back(std::move(r));
  ReleaseLocked();
  return true;
}

ScopeSnapshot ScopeHost::Fetch(const std::shared_ptr<ScopeWatcher>& watcher) {
  absl::Notification released;
  ScopeSnapshot out;
  if (!Fetch(
          watcher,
          [&](const ScopeSnapshot& s) {
            out = s;
            released.Notify();
          },
          [&](const absl::Status&) { released.Notify(); })) {
    return out;
  }
  released.WaitForNotification();
  return out;
}

ScopeSnapshot ScopeHost::Snapshot() { return Fetch(nullptr); }

// ---------------------------------------------------------------- applying

bool ScopeHost::Apply(Changeset changeset, ChangesetContext context,
                      ResultCallback done) {
  {
    absl::MutexLock lock(&mu_);
    if (failed_ || closing_) return false;
    jobs_.push_back(
        Job{std::move(changeset), std::move(context), std::move(done)});
    if (pumping_) return true;  // the running pump will get to it
    pumping_ = true;
  }
  Pump();
  return true;
}

ChangesetResult ScopeHost::Apply(Changeset changeset,
                                 const std::string& origin_session_id) {
  return Apply(std::move(changeset), origin_session_id,
               [](const ChangesetResult&) {});
}

ChangesetResult ScopeHost::Apply(
    Changeset changeset, const std::string& origin_session_id,
    absl::FunctionRef<void(const ChangesetResult&)> on_result) {
  absl::Notification released;
  ChangesetResult out;
  ChangesetContext context;
  context.origin_session_id = origin_session_id;
  const size_t n = changeset.fragments.size();
  if (!Apply(std::move(changeset), std::move(context),
             [&](const ChangesetResult& r) {
               on_result(r);
               out = r;
               released.Notify();
             })) {
    absl::MutexLock lock(&mu_);
    out = scope_->RejectAll(n, "the scope is unavailable");
    on_result(out);
    return out;
  }
  released.WaitForNotification();
  return out;
}

void ScopeHost::Pump() {
  for (;;) {
    std::shared_ptr<Job> job;
    std::vector<ObjectSnapshot> current;
    {
      absl::MutexLock lock(&mu_);
      if (jobs_.empty() || failed_ || !LeaseHoldsLocked()) {
        pumping_ = false;
        MaybeIdleLocked();
        return;
      }
      Job next = std::move(jobs_.front());
      jobs_.pop_front();
      if (validator_ == nullptr ||
          !validator_->Applies(name_, next.changeset, next.context)) {
        CommitLocked(std::move(next), ValidationOutcome{});
        continue;
      }
      current = CurrentObjectsLocked(next.changeset);
      job = std::make_shared<Job>(std::move(next));
    }

    // Validation runs without the lock: fetches, and other scopes, go on.
    // If it completes inline the loop continues here; otherwise its
    // completion commits and resumes pumping.
    struct Handoff {
      absl::Mutex mu;
      bool returned ABSL_GUARDED_BY(mu) = false;
      std::optional<ValidationOutcome> inline_outcome ABSL_GUARDED_BY(mu);
    };
    auto handoff = std::make_shared<Handoff>();
    std::weak_ptr<ScopeHost> weak = weak_from_this();
    SyncMetrics* metrics = metrics_;
    const absl::Time validate_start = absl::Now();
    validator_->Validate(
        name_, job->changeset, job->context, std::move(current),
        [weak, job, handoff, metrics,
         validate_start](ValidationOutcome outcome) {
          if (metrics != nullptr) {
            metrics->ObserveStage(SyncMetrics::Stage::kValidate,
                                  absl::Now() - validate_start);
          }
          {
            absl::MutexLock l(&handoff->mu);
            if (!handoff->returned) {
              handoff->inline_outcome = std::move(outcome);
              return;
            }
          }
          std::shared_ptr<ScopeHost> self = weak.lock();
          if (self == nullptr) return;
          {
            absl::MutexLock lock(&self->mu_);
            self->CommitOrRefuseLocked(std::move(*job), std::move(outcome));
          }
          self->Pump();
        });
    std::optional<ValidationOutcome> outcome;
    {
      absl::MutexLock l(&handoff->mu);
      handoff->returned = true;
      if (!handoff->inline_outcome.has_value()) return;
      outcome = std::move(handoff->inline_outcome);
    }
    absl::MutexLock lock(&mu_);
    CommitOrRefuseLocked(std::move(*job), *std::move(outcome));
  }
}

void ScopeHost::CommitOrRefuseLocked(Job job, ValidationOutcome outcome) {
  if (LeaseHoldsLocked()) {
    CommitLocked(std::move(job), std::move(outcome));
    return;
  }
  // The host stopped while the changeset was being validated.
  if (job.done) {
    job.done(
        scope_->RejectAll(job.changeset.fragments.size(), failure_reason_));
  }
}

std::vector<ObjectSnapshot> ScopeHost::CurrentObjectsLocked(
    const Changeset& changeset) const {
  std::vector<ObjectSnapshot> out;
  for (const SyncFragment& f : changeset.fragments) {
    const ModelObject* object = scope_->Find(f.uuid);
    if (object == nullptr) continue;
    bool seen = false;
    for (const ObjectSnapshot& o : out) seen = seen || o.uuid == f.uuid;
    if (seen) continue;
    ObjectSnapshot snapshot{f.uuid, object->type().name(), {}};
    for (const Property& p : object->type().properties()) {
      snapshot.properties.emplace_back(p.name, object->values()[p.index]);
    }
    out.push_back(std::move(snapshot));
  }
  return out;
}

ChangesetResult ScopeHost::ApplyOutcomeLocked(Changeset changeset,
                                              const ValidationOutcome& outcome,
                                              std::string* request_json) {
  const size_t n = changeset.fragments.size();
  if (outcome.reject_all) {
    ChangesetResult result;
    result.replies.assign(n, FragmentReply{*outcome.reject_all, {}});
    result.version = scope_->version();
    return result;
  }
  // Validator modifications replace or add values
  // (docs/protocol.md#d3-modifications).
  std::vector<PropertyList> modified(n);
  for (const auto& [index, properties] : outcome.modifications) {
    if (index >= n) continue;
    PropertyList& target = changeset.fragments[index].properties;
    for (const auto& [key, value] : properties) {
      SetProperty(target, key, value);
      modified[index].emplace_back(key, value);
    }
  }
  std::vector<std::optional<WireError>> refused(n);
  size_t first_refused = n;
  for (const auto& [index, error] : outcome.rejections) {
    if (index >= n) continue;
    refused[index] = error;
    first_refused = std::min(first_refused, index);
  }
  ChangesetResult result;
  result.replies.resize(n);
  if (first_refused < n && changeset.atomic) {
    // All or nothing (docs/protocol.md#d1-atomic): nothing is applied.
    for (size_t i = 0; i < n; ++i) {
      result.replies[i].error =
          refused[i]
              ? *refused[i]
              : WireError{absl::StrCat("Atomic changeset rejected: fragment ",
                                       first_refused, " failed: ",
                                       refused[first_refused]->message),
                          "atomic-changeset-rejected"};
    }
    result.version = scope_->version();
    return result;
  }
  Changeset kept;
  kept.atomic = changeset.atomic;
  std::vector<size_t> positions;
  for (size_t i = 0; i < n; ++i) {
    if (refused[i]) {
      result.replies[i].error = *refused[i];
    } else {
      positions.push_back(i);
      kept.fragments.push_back(std::move(changeset.fragments[i]));
    }
  }
  if (request_json != nullptr) *request_json = EncodeFragments(kept.fragments);
  ChangesetResult applied = scope_->Apply(std::move(kept));
  for (size_t k = 0; k < positions.size(); ++k) {
    FragmentReply& reply = result.replies[positions[k]];
    reply = std::move(applied.replies[k]);
    if (reply.ok()) reply.modifications = std::move(modified[positions[k]]);
  }
  result.applied = std::move(applied.applied);
  result.version = applied.version;
  return result;
}

void ScopeHost::CommitLocked(Job job, ValidationOutcome outcome) {
  // What replays this commit on recovery: the changeset as applied.
  std::string request_json;
  const bool atomic = job.changeset.atomic;
  const absl::Time apply_start = absl::Now();
  ChangesetResult result =
      ApplyOutcomeLocked(std::move(job.changeset), outcome,
                         persister_ != nullptr ? &request_json : nullptr);
  const bool succeeded = result.all_ok();
  if (metrics_ != nullptr) {
    metrics_->ObserveStage(SyncMetrics::Stage::kApply,
                           absl::Now() - apply_start);
    // Refused in part or whole; what was applied is counted at release.
    if (!succeeded && job.done) {
      metrics_->CountChangeset(SyncMetrics::Outcome::kRefused);
    }
  }
  QueueResultLocked(std::move(result), request_json, atomic,
                    job.context.origin_session_id, std::move(job.done));
  if (succeeded && !outcome.follow_up.empty()) {
    // Procedure follow-ups: a server-side change, to every session.
    std::string follow_json =
        persister_ != nullptr ? EncodeFragments(outcome.follow_up) : "";
    ChangesetResult follow =
        scope_->Apply(Changeset{std::move(outcome.follow_up), false});
    for (size_t i = 0; i < follow.replies.size(); ++i) {
      if (!follow.replies[i].ok()) {
        LOG(WARNING) << "scope " << name_ << ": procedure "
                     << job.context.procedure << " follow-up fragment " << i
                     << " refused: " << follow.replies[i].error->message;
      }
    }
    QueueResultLocked(std::move(follow), follow_json, false, "", nullptr);
  }
  ReleaseLocked();
}

void ScopeHost::QueueResultLocked(ChangesetResult result,
                                  const std::string& request_json, bool atomic,
                                  const std::string& origin,
                                  ResultCallback done) {
  Release r;
  r.kind = Release::Kind::kResult;
  r.done = std::move(done);
  r.ready_at = absl::Now();
  if (result.changed()) {
    snapshot_.reset();
    auto commit = std::make_shared<CommitRecord>();
    commit->scope = name_;
    commit->epoch = epoch_;
    commit->version = result.version;
    commit->origin_session_id = origin;
    commit->committed_at = r.ready_at;
    commit->fragments_json =
        std::make_shared<const std::string>(EncodeFragments(result.applied));
    r.commit = std::move(commit);
  }
  r.result = std::move(result);
  if (r.commit == nullptr || persister_ == nullptr) {
    releases_.push_back(std::move(r));
    return;
  }
  r.ready = false;
  PendingCommit pending;
  pending.scope = name_;
  pending.version = r.commit->version;
  pending.request_json = request_json;
  pending.atomic = atomic;
  pending.applied_json = *r.commit->fragments_json;
  pending.origin_session_id = origin;
  pending.lease_epoch = lease_epoch_;
  if (snapshot_every_ > 0 && pending.version % snapshot_every_ == 0) {
    rapidjson::StringBuffer buffer;
    JsonWriter writer(buffer);
    scope_->WriteSnapshotFragments(writer);
    pending.root_model = scope_->root().type().name();
    pending.snapshot_json = std::make_shared<const std::string>(
        buffer.GetString(), buffer.GetSize());
  }
  releases_.push_back(std::move(r));
  Release* entry = &releases_.back();
  std::weak_ptr<ScopeHost> weak = weak_from_this();
  // The persister never calls back inline (CommitPersister contract).
  persister_->Persist(std::move(pending), [weak, entry](absl::Status status) {
    if (std::shared_ptr<ScopeHost> self = weak.lock()) {
      self->OnPersisted(entry, std::move(status));
    }
  });
}

void ScopeHost::OnPersisted(Release* entry, absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (!failed_ && !status.ok()) {
    FailLocked(status, nullptr, /*notify_owner=*/true);
  }
  if (metrics_ != nullptr) {
    metrics_->ObserveStage(SyncMetrics::Stage::kPersist,
                           absl::Now() - entry->ready_at);
  }
  if (failed_) {
    if (metrics_ != nullptr && entry->done && !status.ok()) {
      metrics_->CountChangeset(SyncMetrics::Outcome::kFailed);
    }
    // The host stopped: the sender hears what became of its changeset (it
    // may well be stored: the host stopped for another reason); watchers
    // have been told the scope is lost and hear nothing more.
    if (entry->done) {
      if (status.ok()) {
        entry->done(entry->result);
      } else if (IsOutcomeUnknown(status)) {
        // Maybe stored: the sender learns it from the scope's state, which
        // every watcher gets afresh once the scope is served again.
        ChangesetResult unknown;
        unknown.replies.assign(
            entry->result.replies.size(),
            FragmentReply{OutcomeUnknown(status.message()), {}});
        unknown.version = entry->result.version;
        entry->done(unknown);
      } else {
        entry->done(
            scope_->RejectAll(entry->result.replies.size(), failure_reason_));
      }
    }
    releases_.remove_if([entry](const Release& r) { return &r == entry; });
    MaybeIdleLocked();
    return;
  }
  entry->ready = true;
  entry->ready_at = absl::Now();
  ReleaseLocked();
}

bool ScopeHost::CanReplayLocked(absl::string_view epoch, uint64_t after_version,
                                uint64_t up_to) const {
  if (epoch != epoch_ || after_version > up_to) return false;
  if (after_version == up_to) return true;
  return !log_.empty() && log_.front()->version <= after_version + 1 &&
         log_.back()->version >= up_to;
}

void ScopeHost::ReleaseLocked() {
  while (!failed_ && !releases_.empty() && releases_.front().ready) {
    // A read is answered only while the lease holds: after it, another
    // replica may have committed newer versions.
    if (releases_.front().kind != Release::Kind::kResult &&
        !LeaseHoldsLocked()) {
      return;
    }
    Release r = std::move(releases_.front());
    releases_.pop_front();
    switch (r.kind) {
      case Release::Kind::kResult:
        if (metrics_ != nullptr && r.commit != nullptr) {
          metrics_->ObserveStage(SyncMetrics::Stage::kRelease,
                                 absl::Now() - r.ready_at);
          if (r.done)
            metrics_->CountChangeset(SyncMetrics::Outcome::kCommitted);
        }
        if (r.done) r.done(r.result);
        if (r.commit != nullptr) {
          released_version_ = r.commit->version;
          if (log_capacity_ > 0) {
            if (log_.size() == log_capacity_) log_.pop_front();
            log_.push_back(r.commit);
          }
          for (const auto& [unused, watcher] : watchers_) {
            watcher->OnCommit(r.commit, /*replayed=*/false);
          }
        }
        break;
      case Release::Kind::kSnapshot:
        RegisterLocked(r.watcher);
        if (r.on_snapshot) r.on_snapshot(r.snapshot);
        break;
      case Release::Kind::kCatchUp: {
        if (r.watcher == nullptr) break;  // unwatched while waiting
        RegisterLocked(r.watcher);
        const uint64_t up_to = r.snapshot.version;
        if (!CanReplayLocked(r.epoch, r.after_version, up_to)) {
          r.watcher->OnResync(r.snapshot);
          break;
        }
        for (const CommitPtr& c : log_) {
          if (c->version > r.after_version && c->version <= up_to) {
            r.watcher->OnCommit(c, /*replayed=*/true);
          }
        }
        break;
      }
    }
  }
  MaybeIdleLocked();
}

bool ScopeHost::LeaseHoldsLocked() {
  if (failed_) return false;
  if (!lease_valid_ || lease_valid_()) return true;
  FailLocked(absl::AbortedError("the scope's lease ran out"), nullptr,
             /*notify_owner=*/true);
  return false;
}

void ScopeHost::MaybeIdleLocked() {
  if (!closing_ || !when_idle_ || pumping_ || !jobs_.empty() ||
      !releases_.empty()) {
    return;
  }
  std::function<void()> when_idle = std::move(when_idle_);
  when_idle_ = nullptr;
  when_idle();
}

void ScopeHost::Close(std::function<void()> when_idle) {
  absl::MutexLock lock(&mu_);
  closing_ = true;
  when_idle_ = std::move(when_idle);
  if (failed_) {
    // Nothing more will run: it is as idle as it gets.
    std::function<void()> now = std::move(when_idle_);
    when_idle_ = nullptr;
    if (now) now();
    return;
  }
  MaybeIdleLocked();
}

void ScopeHost::Stop(const absl::Status& why, const Member* moved_to) {
  absl::MutexLock lock(&mu_);
  FailLocked(why, moved_to, /*notify_owner=*/false);
}

void ScopeHost::FailLocked(const absl::Status& status, const Member* moved_to,
                           bool notify_owner) {
  if (failed_) return;
  failed_ = true;
  if (moved_to != nullptr) {
    LOG(INFO) << "scope " << name_ << " moves to " << moved_to->id;
  } else {
    LOG(ERROR) << "scope " << name_ << " stops: " << status;
  }
  failure_reason_ =
      absl::StrCat("the scope is unavailable here (", status.message(), ")");
  // Everyone watching, or waiting to, hears that the scope is gone here;
  // snapshots waiting behind unfinished commits will never be released.
  absl::flat_hash_set<ScopeWatcher*> told;
  auto tell = [&](const std::shared_ptr<ScopeWatcher>& watcher) {
    if (watcher != nullptr && told.insert(watcher.get()).second) {
      watcher->OnLost(name_, status, moved_to);
    }
  };
  for (const auto& [unused, watcher] : watchers_) tell(watcher);
  for (Release& r : releases_) {
    if (r.kind == Release::Kind::kSnapshot && r.on_lost) {
      r.on_lost(status);
      r.on_lost = nullptr;
    }
    if (r.kind == Release::Kind::kResult && r.ready && r.done) {
      // Durable already, only waiting for its turn: it stands.
      r.done(r.result);
      r.done = nullptr;
    }
    tell(r.watcher);
  }
  watchers_.clear();
  // Commits still being persisted stay until the persister calls back with
  // their outcome (OnPersisted answers their senders).
  releases_.remove_if([](const Release& r) { return r.ready; });
  for (Job& job : jobs_) {
    if (job.done) {
      job.done(
          scope_->RejectAll(job.changeset.fragments.size(), failure_reason_));
    }
  }
  jobs_.clear();
  if (notify_owner && on_failure_) on_failure_(name_, status);
  MaybeIdleLocked();
}

ScopeHost::CatchUp ScopeHost::Watch(
    const std::shared_ptr<ScopeWatcher>& watcher, absl::string_view epoch,
    uint64_t after_version) {
  std::shared_ptr<ScopeWatcher> unregistered;  // freed unlocked
  absl::MutexLock lock(&mu_);
  if (failed_ || closing_ || !LeaseHoldsLocked()) return CatchUp::kRefused;
  // A watcher watching already (its gateway moved the scope away and back)
  // gets nothing live until its catch-up: commits released meanwhile would
  // reach it ahead of the replay, out of order.
  if (auto it = watchers_.find(watcher.get()); it != watchers_.end()) {
    unregistered = std::move(it->second);
    watchers_.erase(it);
  }
  Release r;
  r.kind = Release::Kind::kCatchUp;
  r.watcher = watcher;
  r.snapshot = SnapshotLocked();
  r.epoch = std::string(epoch);
  r.after_version = after_version;
  // What the release will decide, if the log keeps what it holds now plus
  // the commits still waiting to be released.
  const uint64_t up_to = r.snapshot.version;
  bool replayable = epoch == epoch_ && after_version <= up_to;
  if (replayable && after_version < up_to) {
    uint64_t oldest =
        !log_.empty() ? log_.front()->version : released_version_ + 1;
    replayable = log_capacity_ > 0 && oldest <= after_version + 1;
  }
  releases_.push_back(std::move(r));
  ReleaseLocked();
  return replayable ? CatchUp::kReplayed : CatchUp::kResynced;
}

bool ScopeHost::Unwatch(const ScopeWatcher* watcher) {
  std::vector<std::shared_ptr<ScopeWatcher>> released;  // freed unlocked
  absl::MutexLock lock(&mu_);
  bool found = false;
  auto it = watchers_.find(watcher);
  if (it != watchers_.end()) {
    released.push_back(std::move(it->second));
    watchers_.erase(it);
    found = true;
  }
  for (Release& r : releases_) {
    if (r.watcher.get() == watcher) {
      released.push_back(std::move(r.watcher));
      r.watcher = nullptr;
      found = true;
    }
  }
  return found;
}

ScopeHostInfo ScopeHost::Info() const {
  absl::MutexLock lock(&mu_);
  return ScopeHostInfo{name_, scope_->root().type().name(), released_version_,
                       scope_->size(), watchers_.size()};
}

uint64_t ScopeHost::version() const {
  absl::MutexLock lock(&mu_);
  return released_version_;
}

bool ScopeHost::failed() const {
  absl::MutexLock lock(&mu_);
  return failed_;
}

bool ScopeHost::serving() const {
  absl::MutexLock lock(&mu_);
  return !failed_ && !closing_;
}

uint64_t ScopeHost::OldestLoggedVersionForTest() const {
  absl::MutexLock lock(&mu_);
  return log_.empty() ? 0 : log_.front()->version;
}

}  // namespace jetstream
