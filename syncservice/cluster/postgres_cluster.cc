#include "syncservice/cluster/postgres_cluster.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "syncservice/storage/internal/pg_connection.h"

namespace jetstream {
namespace {

using pg_internal::Connection;
using pg_internal::Result;

constexpr const char* kRegister = R"sql(
INSERT INTO jetstream_members (member_id, incarnation, address, heartbeat_at,
                               draining)
VALUES ($1, $2, $3, clock_timestamp(), false)
ON CONFLICT (member_id) DO UPDATE
  SET incarnation = EXCLUDED.incarnation, address = EXCLUDED.address,
      heartbeat_at = EXCLUDED.heartbeat_at, draining = false
)sql";

constexpr const char* kHeartbeat = R"sql(
UPDATE jetstream_members SET heartbeat_at = clock_timestamp()
WHERE member_id = $1 AND incarnation = $2
RETURNING 1
)sql";

constexpr const char* kIncarnationOf =
    "SELECT incarnation FROM jetstream_members WHERE member_id = $1";

// $1 owner, $2 ttl in ms, $3 the scopes held here (text[]).
constexpr const char* kRenew = R"sql(
UPDATE jetstream_leases
SET expires_at = clock_timestamp() + $2::bigint * interval '1 millisecond'
WHERE owner = $1 AND scope = ANY($3::text[])
  AND expires_at > clock_timestamp()
RETURNING scope, epoch
)sql";

// $1 ttl in ms.
constexpr const char* kView = R"sql(
SELECT member_id, address,
       heartbeat_at > clock_timestamp() - $1::bigint * interval '1 millisecond'
         AND NOT draining,
       floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint
FROM jetstream_members ORDER BY member_id COLLATE "C"
)sql";

constexpr const char* kLockLease = R"sql(
SELECT owner, epoch, expires_at > clock_timestamp(),
       extract(epoch FROM (expires_at - clock_timestamp()))
FROM jetstream_leases WHERE scope = $1 FOR UPDATE
)sql";

// $1 scope, $2 owner, $3 ttl in ms.
constexpr const char* kInsertLease = R"sql(
INSERT INTO jetstream_leases (scope, owner, epoch, expires_at)
VALUES ($1, $2, 1, clock_timestamp() + $3::bigint * interval '1 millisecond')
ON CONFLICT (scope) DO NOTHING
RETURNING epoch
)sql";

constexpr const char* kTakeLease = R"sql(
UPDATE jetstream_leases
SET owner = $2, epoch = epoch + 1,
    expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond'
WHERE scope = $1
RETURNING epoch
)sql";

// $1 incarnation, $2 ttl in ms.
constexpr const char* kHolder = R"sql(
SELECT member_id, address,
       heartbeat_at > clock_timestamp() - $2::bigint * interval '1 millisecond'
         AND NOT draining
FROM jetstream_members WHERE incarnation = $1
)sql";

constexpr const char* kRelease = R"sql(
UPDATE jetstream_leases
SET expires_at = clock_timestamp() - interval '1 millisecond'
WHERE scope = $1 AND owner = $2 AND epoch = $3
)sql";

constexpr const char* kDrain = R"sql(
UPDATE jetstream_members SET draining = true
WHERE member_id = $1 AND incarnation = $2
)sql";

constexpr const char* kLeave =
    "DELETE FROM jetstream_members WHERE member_id = $1 AND incarnation = $2";

// A PostgreSQL text[] literal of `items`.
std::string TextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresCluster>> PostgresCluster::Open(
    const std::string& conninfo, PostgresClusterOptions options) {
  if (options.heartbeat_interval <= absl::ZeroDuration()) {
    options.heartbeat_interval = options.lease_ttl / 3;
  }
  pg_internal::ConnectOptions connect;
  connect.connect_timeout = options.connect_timeout;
  // A call stuck on a dead connection must not outlive a lease by much.
  connect.tcp_user_timeout = options.lease_ttl / 2;
  connect.application_name = options.application_name;
  auto no_setup = [](Connection&) { return absl::OkStatus(); };
  absl::StatusOr<std::unique_ptr<Connection>> control =
      Connection::Open(conninfo, connect, no_setup);
  if (!control.ok()) return control.status();
  absl::StatusOr<std::unique_ptr<Connection>> leases =
      Connection::Open(conninfo, connect, no_setup);
  if (!leases.ok()) return leases.status();
  return std::unique_ptr<PostgresCluster>(new PostgresCluster(
      std::move(options), *std::move(control), *std::move(leases)));
}

absl::StatusOr<std::unique_ptr<PostgresCluster>> PostgresCluster::Start(
    const std::string& conninfo, PostgresClusterOptions options) {
  const Member self = options.self;
  absl::StatusOr<std::unique_ptr<PostgresCluster>> cluster =
      Open(conninfo, std::move(options));
  if (!cluster.ok()) return cluster.status();
  absl::Status joined = (*cluster)->Join(self);
  if (!joined.ok()) return joined;
  return cluster;
}

absl::Status PostgresCluster::Join(const Member& self) {
  {
    absl::MutexLock lock(&mu_);
    if (joined_) return absl::FailedPreconditionError("joined already");
    self_ = self;
  }
  const PostgresClusterOptions& o = options_;
  absl::StatusOr<Result> registered = control_->Query(
      kRegister,
      {self.id.c_str(), o.incarnation.c_str(), self.address.c_str()});
  if (!registered.ok()) return registered.status();
  {
    absl::MutexLock lock(&mu_);
    joined_ = true;
  }
  absl::Status view = ReadView();
  if (!view.ok()) return view;
  LOG(INFO) << "cluster member=" << self.id << " address=" << self.address
            << " incarnation=" << o.incarnation
            << " lease_ttl=" << absl::FormatDuration(o.lease_ttl)
            << " live_members=" << members().members.size();
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  watchdog_thread_ = std::thread([this] { WatchdogLoop(); });
  return absl::OkStatus();
}

Member PostgresCluster::self() const {
  absl::MutexLock lock(&mu_);
  return self_;
}

PostgresCluster::PostgresCluster(PostgresClusterOptions options,
                                 std::unique_ptr<Connection> control,
                                 std::unique_ptr<Connection> leases)
    : options_(std::move(options)),
      ttl_millis_(
          std::to_string(absl::ToInt64Milliseconds(options_.lease_ttl))),
      control_(std::move(control)),
      leases_(std::move(leases)) {
  absl::MutexLock lock(&mu_);
  self_ = options_.self;
}

PostgresCluster::~PostgresCluster() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  if (watchdog_thread_.joinable()) watchdog_thread_.join();
  std::string self_id;
  {
    absl::MutexLock lock(&mu_);
    if (!joined_) return;
    self_id = self_.id;
  }
  // Gone at once from every view, rather than when the heartbeat ages out.
  absl::MutexLock lock(&leases_mu_);
  if (leases_->ok() || leases_->Reset().ok()) {
    leases_->Query(kLeave, {self_id.c_str(), options_.incarnation.c_str()})
        .IgnoreError();
  }
}

void PostgresCluster::SetListener(Listener* listener) {
  absl::MutexLock lock(&listener_mu_);
  listener_ = listener;
}

MemberView PostgresCluster::members() const {
  absl::MutexLock lock(&mu_);
  return view_;
}

size_t PostgresCluster::leases_held() const {
  absl::MutexLock lock(&mu_);
  return held_.size();
}

bool PostgresCluster::superseded() const {
  absl::MutexLock lock(&mu_);
  return superseded_;
}

PostgresCluster::Clock::duration PostgresCluster::ValidFor() const {
  // The database's expiry is at least lease_ttl after the statement was
  // sent; a margin covers the two clocks' rates.
  return std::chrono::duration_cast<Clock::duration>(
      absl::ToChronoNanoseconds(options_.lease_ttl * 0.95));
}

bool PostgresCluster::Valid(const std::string& scope, uint64_t epoch) const {
  const Clock::time_point now = Clock::now();
  absl::MutexLock lock(&mu_);
  auto it = held_.find(scope);
  return it != held_.end() && it->second.epoch == epoch &&
         now < it->second.valid_until;
}

absl::StatusOr<LeaseOutcome> PostgresCluster::Acquire(
    const std::string& scope) {
  {
    absl::MutexLock lock(&mu_);
    if (!joined_) {
      return absl::UnavailableError(
          "the replica has not joined its cluster yet");
    }
    if (superseded_) {
      return absl::FailedPreconditionError(
          absl::StrCat("another process registered as member ", self_.id));
    }
  }
  absl::MutexLock lock(&leases_mu_);
  absl::StatusOr<LeaseOutcome> outcome;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (!leases_->ok()) {
      absl::Status reset = leases_->Reset();
      if (!reset.ok()) return reset;
    }
    outcome = TryAcquire(scope);
    // A lost connection or an insert race: once more.
    if (outcome.ok() || (leases_->ok() && !absl::IsAborted(outcome.status()))) {
      break;
    }
  }
  return outcome;
}

absl::StatusOr<LeaseOutcome> PostgresCluster::TryAcquire(
    const std::string& scope) {
  Connection& c = *leases_;
  const std::string& me = options_.incarnation;
  absl::Status begun = c.Exec("BEGIN");
  if (!begun.ok()) return begun;
  auto fail = [&](absl::Status status) -> absl::StatusOr<LeaseOutcome> {
    if (c.ok()) c.Exec("ROLLBACK").IgnoreError();
    return status;
  };
  absl::StatusOr<Result> row = c.Query(kLockLease, {scope.c_str()});
  if (!row.ok()) return fail(row.status());
  LeaseOutcome outcome;
  Clock::time_point sent = Clock::now();
  if (row->rows() == 1 && row->Bool(0, 2) && row->Text(0, 0) != me) {
    // Somebody else's, unexpired.
    const std::string owner = row->Text(0, 0);
    outcome.expires_in = absl::Seconds(row->Double(0, 3));
    absl::Status ended = c.Exec("COMMIT");
    if (!ended.ok()) return ended;
    absl::StatusOr<Result> holder =
        c.Query(kHolder, {owner.c_str(), ttl_millis_.c_str()});
    if (!holder.ok()) return holder.status();
    if (holder->rows() == 1) {
      outcome.holder = Member{holder->Text(0, 0), holder->Text(0, 1)};
      outcome.holder_live = holder->Bool(0, 2);
    }
    return outcome;
  }
  absl::StatusOr<Result> taken =
      row->rows() == 0
          ? c.Query(kInsertLease,
                    {scope.c_str(), me.c_str(), ttl_millis_.c_str()})
          : c.Query(kTakeLease,
                    {scope.c_str(), me.c_str(), ttl_millis_.c_str()});
  if (!taken.ok()) return fail(taken.status());
  if (taken->rows() != 1) {
    // Another replica inserted the first row meanwhile: look again.
    return fail(absl::AbortedError("lease row created concurrently"));
  }
  outcome.epoch = static_cast<uint64_t>(taken->Int(0, 0));
  absl::Status committed = c.Exec("COMMIT");
  if (!committed.ok()) return committed;
  outcome.granted = true;
  {
    absl::MutexLock lock(&mu_);
    held_[scope] = Held{outcome.epoch, sent + ValidFor(), sent};
    ++held_changes_;
  }
  VLOG(1) << "lease acquired scope=" << scope << " epoch=" << outcome.epoch;
  return outcome;
}

void PostgresCluster::Release(const std::string& scope, uint64_t epoch) {
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(scope);
    if (it == held_.end() || it->second.epoch != epoch) return;
    held_.erase(it);
    ++held_changes_;
  }
  std::string epoch_text = std::to_string(epoch);
  absl::MutexLock lock(&leases_mu_);
  if (!leases_->ok() && !leases_->Reset().ok()) return;  // it expires instead
  absl::StatusOr<Result> released = leases_->Query(
      kRelease,
      {scope.c_str(), options_.incarnation.c_str(), epoch_text.c_str()});
  if (!released.ok()) {
    LOG(WARNING) << "lease of scope " << scope
                 << " not released (it expires instead): " << released.status();
  }
}

void PostgresCluster::Drain() {
  const std::string self_id = self().id;
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
  }
  {
    absl::MutexLock lock(&leases_mu_);
    if (leases_->ok() || leases_->Reset().ok()) {
      absl::StatusOr<Result> r = leases_->Query(
          kDrain, {self_id.c_str(), options_.incarnation.c_str()});
      if (!r.ok())
        LOG(WARNING) << "cluster: cannot mark draining: " << r.status();
    }
  }
  // The local view drops this member at once (the listener hears of it
  // from the next read, or from the caller).
  absl::MutexLock lock(&mu_);
  auto& m = view_.members;
  m.erase(std::remove_if(m.begin(), m.end(),
                         [&](const Member& x) { return x.id == self_id; }),
          m.end());
}

void PostgresCluster::HeartbeatLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop),
                               options_.heartbeat_interval)) {
        return;
      }
    }
    Beat();
  }
}

bool PostgresCluster::database_reachable() const {
  absl::MutexLock lock(&mu_);
  return reachable_;
}

bool PostgresCluster::Beat() {
  const bool reachable = BeatOnce();
  bool changed = false;
  {
    absl::MutexLock lock(&mu_);
    changed = reachable_ != reachable;
    reachable_ = reachable;
  }
  if (changed) {
    LOG(WARNING) << "cluster: the database is "
                 << (reachable ? "reachable again" : "unreachable");
    absl::MutexLock lock(&listener_mu_);
    if (listener_ != nullptr) listener_->OnDatabaseReachable(reachable);
  }
  return reachable;
}

bool PostgresCluster::BeatOnce() {
  Connection& c = *control_;
  if (!c.ok()) {
    absl::Status reset = c.Reset();
    if (!reset.ok()) {
      LOG_EVERY_N(WARNING, 10) << "cluster: database unreachable: " << reset;
      return false;
    }
  }
  absl::Status status = Heartbeat();
  if (status.ok()) status = Renew();
  if (status.ok()) status = ReadView();
  if (!status.ok()) {
    LOG_EVERY_N(WARNING, 10) << "cluster: heartbeat failed: " << status;
    return false;
  }
  return true;
}

absl::Status PostgresCluster::Heartbeat() {
  {
    absl::MutexLock lock(&mu_);
    if (superseded_) return absl::OkStatus();
  }
  const Member self = PostgresCluster::self();
  absl::StatusOr<Result> beat = control_->Query(
      kHeartbeat, {self.id.c_str(), options_.incarnation.c_str()});
  if (!beat.ok()) return beat.status();
  if (beat->rows() == 1) return absl::OkStatus();
  absl::StatusOr<Result> who =
      control_->Query(kIncarnationOf, {self.id.c_str()});
  if (!who.ok()) return who.status();
  if (who->rows() == 0) {
    // Our row was removed (by an operator, say): register again.
    return control_
        ->Query(kRegister, {self.id.c_str(), options_.incarnation.c_str(),
                            self.address.c_str()})
        .status();
  }
  // Another process took this member id: it serves the scopes now.
  LOG(ERROR) << "cluster: member " << self.id
             << " was registered by another process (incarnation "
             << who->Text(0, 0) << "); this one stops serving";
  std::vector<std::pair<std::string, uint64_t>> lost;
  {
    absl::MutexLock lock(&mu_);
    superseded_ = true;
    for (const auto& [scope, held] : held_)
      lost.emplace_back(scope, held.epoch);
    held_.clear();
    ++held_changes_;
  }
  for (const auto& [scope, epoch] : lost) {
    TellLost(scope, epoch,
             absl::FailedPreconditionError("superseded by another process"));
  }
  return absl::OkStatus();
}

absl::Status PostgresCluster::Renew() {
  std::vector<std::string> scopes;
  {
    absl::MutexLock lock(&mu_);
    if (held_.empty()) return absl::OkStatus();
    scopes.reserve(held_.size());
    for (const auto& [scope, held] : held_) scopes.push_back(scope);
  }
  const std::string array = TextArray(scopes);
  const Clock::time_point sent = Clock::now();
  absl::StatusOr<Result> renewed = control_->Query(
      kRenew,
      {options_.incarnation.c_str(), ttl_millis_.c_str(), array.c_str()});
  if (!renewed.ok()) return renewed.status();
  absl::flat_hash_map<std::string, uint64_t> found;
  for (int row = 0; row < renewed->rows(); ++row) {
    found[renewed->Text(row, 0)] = static_cast<uint64_t>(renewed->Int(row, 1));
  }
  std::vector<std::pair<std::string, uint64_t>> lost;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = held_.begin(); it != held_.end();) {
      auto f = found.find(it->first);
      if (f != found.end() && f->second == it->second.epoch) {
        it->second.valid_until =
            std::max(it->second.valid_until, sent + ValidFor());
        ++it;
      } else if (it->second.granted_at < sent) {
        // Not in the database any more (released elsewhere, expired there,
        // or taken over).
        lost.emplace_back(it->first, it->second.epoch);
        held_.erase(it++);
      } else {
        ++it;  // granted after this renewal was sent
      }
    }
    ++held_changes_;
  }
  for (const auto& [scope, epoch] : lost) {
    TellLost(scope, epoch,
             absl::AbortedError("the lease could not be renewed: the "
                                "database no longer has it"));
  }
  return absl::OkStatus();
}

absl::Status PostgresCluster::ReadView() {
  absl::StatusOr<Result> rows = control_->Query(kView, {ttl_millis_.c_str()});
  if (!rows.ok()) return rows.status();
  MemberView view;
  for (int row = 0; row < rows->rows(); ++row) {
    view.as_of_micros = rows->Int(row, 3);
    if (!rows->Bool(row, 2)) continue;
    view.members.push_back(Member{rows->Text(row, 0), rows->Text(row, 1)});
  }
  bool changed = false;
  {
    absl::MutexLock lock(&mu_);
    if (draining_) {
      auto& m = view.members;
      const std::string& self_id = self_.id;
      m.erase(std::remove_if(m.begin(), m.end(),
                             [&](const Member& x) { return x.id == self_id; }),
              m.end());
    }
    changed = !view_.SameMembers(view);
    view_ = view;
  }
  absl::MutexLock lock(&listener_mu_);
  if (changed) {
    LOG(INFO) << "cluster: " << view.members.size() << " live members";
    if (listener_ != nullptr) listener_->OnMembersChanged(view);
  }
  if (listener_ != nullptr) listener_->OnHeartbeat(view);
  return absl::OkStatus();
}

void PostgresCluster::WatchdogLoop() {
  for (;;) {
    std::vector<std::pair<std::string, uint64_t>> lost;
    {
      absl::MutexLock lock(&mu_);
      const uint64_t changes = held_changes_;
      Clock::time_point earliest = Clock::time_point::max();
      for (const auto& [scope, held] : held_) {
        earliest = std::min(earliest, held.valid_until);
      }
      auto woken = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || held_changes_ != changes;
      };
      const Clock::time_point now = Clock::now();
      if (earliest > now) {
        absl::Duration wait =
            earliest == Clock::time_point::max()
                ? absl::Seconds(60)
                : absl::FromChrono(earliest - now) + absl::Milliseconds(1);
        mu_.AwaitWithTimeout(absl::Condition(&woken), wait);
      }
      if (stopping_) return;
      const Clock::time_point after = Clock::now();
      for (auto it = held_.begin(); it != held_.end();) {
        if (it->second.valid_until <= after) {
          lost.emplace_back(it->first, it->second.epoch);
          held_.erase(it++);
        } else {
          ++it;
        }
      }
    }
    for (const auto& [scope, epoch] : lost) {
      LOG(WARNING) << "lease of scope " << scope << " (epoch " << epoch
                   << ") ran out before it was renewed";
      TellLost(scope, epoch,
               absl::AbortedError("the lease ran out before it was renewed"));
    }
  }
}

void PostgresCluster::TellLost(const std::string& scope, uint64_t epoch,
                               const absl::Status& why) {
  absl::MutexLock lock(&listener_mu_);
  if (listener_ != nullptr) listener_->OnLeaseLost(scope, epoch, why);
}

}  // namespace jetstream
