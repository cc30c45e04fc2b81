#include "tests/testing/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace jetstream::testing {

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir != nullptr && workspace != nullptr) {
    std::string full = absl::StrCat(srcdir, "/", workspace, "/", path);
    if (access(full.c_str(), F_OK) == 0) return full;
  }
  return path;
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::StartListening(
    const std::string& binary, const std::vector<std::string>& args,
    absl::Duration timeout) {
  std::string path = Runfile(binary);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    // Die with the test.
    setpgid(0, 0);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(path.c_str()));
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  auto child = std::unique_ptr<ChildProcess>(new ChildProcess());
  child->pid_ = pid;
  child->stdout_fd_ = out[0];

  std::string line;
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat(binary, " did not print LISTENING in time"));
    }
    pollfd p{out[0], POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r <= 0) continue;
    char c;
    ssize_t n = read(out[0], &c, 1);
    if (n <= 0) {
      return absl::UnavailableError(absl::StrCat(binary, " exited early"));
    }
    if (c != '\n') {
      line.push_back(c);
      continue;
    }
    absl::string_view l = line;
    if (absl::ConsumePrefix(&l, "LISTENING ")) {
      child->address_ = std::string(l);
      size_t colon = l.rfind(':');
      if (colon == absl::string_view::npos ||
          !absl::SimpleAtoi(l.substr(colon + 1), &child->port_)) {
        return absl::InternalError(absl::StrCat("bad LISTENING line: ", line));
      }
      return child;
    }
    child->earlier_lines_.push_back(line);
    line.clear();
  }
}

int ChildProcess::Kill(int signal) {
  if (exited_) return 0;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  exited_ = true;
  return status;
}

void ChildProcess::Signal(int signal) {
  if (!exited_) kill(pid_, signal);
}

bool ChildProcess::Terminate(absl::Duration timeout) {
  if (exited_) return false;
  kill(pid_, SIGTERM);
  absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (absl::Now() < deadline) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    absl::SleepFor(absl::Milliseconds(10));  // polling a child's exit
  }
  Kill(SIGKILL);
  return false;
}

ChildProcess::~ChildProcess() {
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGCONT);  // a stopped child would not die of SIGKILL's wait
    Kill(SIGKILL);
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

int ChildProcess::metrics_port() const {
  for (const std::string& line : earlier_lines_) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "METRICS ")) continue;
    int port = 0;
    if (absl::SimpleAtoi(rest.substr(rest.rfind(':') + 1), &port)) {
      return port;
    }
  }
  return -1;
}

}  // namespace jetstream::testing
