#include "tests/testing/postgres_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <postgresql/libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace jetstream::testing {
namespace {

std::string ErrnoText(absl::string_view what) {
  return absl::StrCat(what, ": ", std::strerror(errno));
}

// The newest /usr/lib/postgresql/<major>/bin that has a postgres binary.
std::string FindBinDir() {
  std::string best;
  int best_major = -1;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    int major = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &major)) continue;
    std::string bin = entry.path().string() + "/bin";
    if (access((bin + "/postgres").c_str(), X_OK) == 0 && major > best_major) {
      best_major = major;
      best = bin;
    }
  }
  return best;
}

// A free TCP port on 127.0.0.1 (bound to port 0, then released).
absl::StatusOr<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(ErrnoText("socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::string error = ErrnoText("bind");
    close(fd);
    return absl::InternalError(error);
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// Forks and execs `argv` as `uid`/`gid` (unless -1) in `cwd`, in a new
// process group, output appended to `log`. The child gets SIGQUIT (a
// postmaster's immediate shutdown) when this process dies.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                            const std::string& cwd, const std::string& log,
                            uid_t uid, gid_t gid) {
  // Everything the child needs is prepared before fork().
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(ErrnoText("fork"));
  if (pid == 0) {
    setpgid(0, 0);
    int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int in = open("/dev/null", O_RDONLY);
    if (out < 0 || in < 0 || chdir(cwd.c_str()) != 0) _exit(126);
    dup2(in, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
    if (uid != static_cast<uid_t>(-1)) {
      if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        _exit(125);
      }
    }
    // After setuid, which clears it.
    prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (getppid() != parent) _exit(124);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

std::string ReadTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (text.size() > max_bytes)
    text = "..." + text.substr(text.size() - max_bytes);
  return text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start(
    Options options) {
  auto server =
      std::unique_ptr<PostgresServer>(new PostgresServer(std::move(options)));
  absl::Status status = server->Init();
  // A port taken between FreePort() and the postmaster's bind() makes it
  // exit at once: try another.
  for (int attempt = 0; status.ok() && attempt < 3; ++attempt) {
    absl::StatusOr<int> port = FreePort();
    if (!port.ok()) return port.status();
    server->port_ = *port;
    status = server->Launch();
    if (status.ok()) return server;
  }
  return status;
}

absl::Status PostgresServer::Init() {
  bin_dir_ = options_.bin_dir.empty() ? FindBinDir() : options_.bin_dir;
  if (bin_dir_.empty()) {
    return absl::NotFoundError(
        "no PostgreSQL server under /usr/lib/postgresql (install the Debian "
        "package postgresql)");
  }
  if (getuid() == 0) {
    // initdb and postgres refuse to run as root.
    passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      return absl::NotFoundError(
          "running as root, but there is no postgres user to run the server "
          "as (install the Debian package postgresql)");
    }
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
  }
  char tmpl[] = "/tmp/jetstream-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr)
    return absl::InternalError(ErrnoText("mkdtemp"));
  dir_ = tmpl;
  if (uid_ != static_cast<uid_t>(-1) && chown(dir_.c_str(), uid_, gid_) != 0) {
    return absl::InternalError(ErrnoText(absl::StrCat("chown ", dir_)));
  }
  std::string log = dir_ + "/initdb.log";
  absl::StatusOr<pid_t> pid =
      Spawn({bin_dir_ + "/initdb", "-D", dir_ + "/data", "-U", "postgres", "-A",
             "trust", "-E", "UTF8", "--locale=C", "--no-sync"},
            dir_, log, uid_, gid_);
  if (!pid.ok()) return pid.status();
  int wstatus = 0;
  while (waitpid(*pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return absl::InternalError(absl::StrCat(
        "initdb failed (wait status ", wstatus, "): ", ReadTail(log, 4000)));
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::Launch() {
  std::vector<std::string> argv = {
      bin_dir_ + "/postgres",      "-D", dir_ + "/data", "-p",
      std::to_string(port_),       "-k", dir_,           "-c",
      "listen_addresses=127.0.0.1"};
  for (const std::string& setting : options_.settings) {
    argv.push_back("-c");
    argv.push_back(setting);
  }
  absl::StatusOr<pid_t> pid =
      Spawn(argv, dir_, dir_ + "/postgres.log", uid_, gid_);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  return WaitUntilReady();
}

absl::Status PostgresServer::WaitUntilReady() {
  const std::string conninfo =
      absl::StrCat(ConnectionString("postgres"), " connect_timeout=2");
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  while (true) {
    int wstatus = 0;
    if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError(
          absl::StrCat("postgres exited during startup (wait status ", wstatus,
                       "): ", LogTail()));
    }
    if (PQping(conninfo.c_str()) == PQPING_OK) return absl::OkStatus();
    if (absl::Now() > deadline) {
      Kill(SIGKILL).IgnoreError();
      return absl::DeadlineExceededError(absl::StrCat(
          "postgres did not accept connections within ",
          absl::FormatDuration(options_.start_timeout), ": ", LogTail()));
    }
    // Polling a condition with a deadline: the server has no way to tell us.
    absl::SleepFor(absl::Milliseconds(20));
  }
}

PostgresServer::~PostgresServer() {
  if (pid_ > 0) Stop().IgnoreError();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PostgresServer::ConnectionString(
    const std::string& database) const {
  return absl::StrCat("host=127.0.0.1 port=", port_,
                      " user=postgres dbname=", database);
}

absl::Status PostgresServer::CreateDatabase(const std::string& database) {
  PGconn* conn = PQconnectdb(ConnectionString("postgres").c_str());
  absl::Status status;
  if (PQstatus(conn) != CONNECTION_OK) {
    status = absl::UnavailableError(
        absl::StrCat("cannot connect: ", PQerrorMessage(conn)));
  } else {
    char* name = PQescapeIdentifier(conn, database.c_str(), database.size());
    std::string sql = absl::StrCat("CREATE DATABASE ", name,
                                   " TEMPLATE template0 ENCODING 'UTF8'");
    PQfreemem(name);
    PGresult* result = PQexec(conn, sql.c_str());
    if (PQresultStatus(result) != PGRES_COMMAND_OK) {
      status = absl::InternalError(
          absl::StrCat(sql, ": ", PQresultErrorMessage(result)));
    }
    PQclear(result);
  }
  PQfinish(conn);
  return status;
}

absl::Status PostgresServer::Stop(absl::Duration timeout) {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGINT);  // fast shutdown
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int wstatus = 0;
    pid_t r = waitpid(pid_, &wstatus, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      pid_ = -1;
      return absl::OkStatus();
    }
    if (absl::Now() > deadline) {
      Kill(SIGKILL).IgnoreError();
      return absl::DeadlineExceededError(
          absl::StrCat("postgres did not stop within ",
                       absl::FormatDuration(timeout), "; killed"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::Status PostgresServer::Kill(int signal) {
  if (pid_ <= 0)
    return absl::FailedPreconditionError("postgres is not running");
  const pid_t group = pid_;
  if (kill(-group, signal) != 0) return absl::InternalError(ErrnoText("kill"));
  int wstatus = 0;
  while (waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (signal == SIGKILL) {
    // A backend forked while the signal was on its way escapes it, and
    // would keep the data directory busy: kill the group until it is empty.
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (kill(-group, SIGKILL) == 0 && absl::Now() < deadline) {
      // Reaps those that were handed to this process, if any.
      while (waitpid(-group, nullptr, WNOHANG) > 0) {
      }
      absl::SleepFor(absl::Milliseconds(5));  // waiting for processes to die
    }
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::Restart() {
  if (pid_ > 0) return absl::FailedPreconditionError("postgres is running");
  if (absl::Status s = WaitForOldBackends(); !s.ok()) return s;
  return Launch();
}

absl::Status PostgresServer::WaitForOldBackends() {
  // Every backend makes itself a process-group leader (setsid), so a
  // SIGKILL to the postmaster's group misses those already running: they
  // exit once they notice the postmaster is gone, and until then they hold
  // its shared memory, and a new postmaster refuses to start ("pre-existing
  // shared memory block is still in use"). The old postmaster.pid names
  // the segment (line 7: key and id): wait until nothing is attached.
  std::ifstream pid_file(dir_ + "/data/postmaster.pid");
  std::string line;
  for (int i = 0; i < 7 && std::getline(pid_file, line); ++i) {
  }
  std::istringstream fields(line);
  long key = 0;
  int shmid = -1;
  if (!(fields >> key >> shmid) || shmid < 0) {
    return absl::OkStatus();  // a clean shutdown removed it
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    struct shmid_ds info;
    if (shmctl(shmid, IPC_STAT, &info) != 0 || info.shm_nattch == 0) {
      return absl::OkStatus();  // gone, or no process attached
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "old postgres backends still attached to shared memory segment ",
          shmid, " after 30 s"));
    }
    // Polling a condition with a deadline: the kernel has no way to tell us.
    absl::SleepFor(absl::Milliseconds(10));
  }
}

std::string PostgresServer::LogTail() const {
  return ReadTail(dir_ + "/postgres.log", 4000);
}

absl::StatusOr<std::string> PostgresServer::NewSchema() {
  static std::atomic<int> counter{0};
  std::string schema = absl::StrCat("test_schema_", counter++);
  absl::Status created = ExecSql(ConnectionString("postgres"),
                                 absl::StrCat("CREATE SCHEMA ", schema));
  if (!created.ok()) return created;
  return absl::StrCat(ConnectionString("postgres"),
                      " options=-csearch_path=", schema);
}

absl::Status ExecSql(const std::string& conninfo, const std::string& sql) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  absl::Status status;
  if (PQstatus(conn) != CONNECTION_OK) {
    status = absl::UnavailableError(
        absl::StrCat("cannot connect: ", PQerrorMessage(conn)));
  } else {
    PGresult* result = PQexec(conn, sql.c_str());
    ExecStatusType st = PQresultStatus(result);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      status = absl::InternalError(
          absl::StrCat(sql, ": ", PQresultErrorMessage(result)));
    }
    PQclear(result);
  }
  PQfinish(conn);
  return status;
}

absl::StatusOr<std::vector<std::vector<std::string>>> QuerySql(
    const std::string& conninfo, const std::string& sql) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    absl::Status status = absl::UnavailableError(
        absl::StrCat("cannot connect: ", PQerrorMessage(conn)));
    PQfinish(conn);
    return status;
  }
  PGresult* result = PQexec(conn, sql.c_str());
  if (PQresultStatus(result) != PGRES_TUPLES_OK) {
    absl::Status status = absl::InternalError(
        absl::StrCat(sql, ": ", PQresultErrorMessage(result)));
    PQclear(result);
    PQfinish(conn);
    return status;
  }
  std::vector<std::vector<std::string>> rows(PQntuples(result));
  for (int r = 0; r < PQntuples(result); ++r) {
    for (int c = 0; c < PQnfields(result); ++c) {
      rows[r].emplace_back(PQgetvalue(result, r, c),
                           static_cast<size_t>(PQgetlength(result, r, c)));
    }
  }
  PQclear(result);
  PQfinish(conn);
  return rows;
}

}  // namespace jetstream::testing
