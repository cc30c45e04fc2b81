// File: tests/testing/process.h
//
// Runs a real binary as a child process for end-to-end tests: starts it,
// waits for its "LISTENING host:port" line on stdout, and kills it (SIGTERM,
// then SIGKILL) when destroyed. stderr goes to the test's log.

#ifndef JETSTREAM_TESTS_TESTING_PROCESS_H_
#define JETSTREAM_TESTS_TESTING_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace jetstream::testing {

class ChildProcess {
 public:
  // Starts `binary` with `args` and waits up to `timeout` for the line
  // "LISTENING <host>:<port>". `binary` is relative to the runfiles root
  // (e.g. "gateway/gateway").
  static absl::StatusOr<std::unique_ptr<ChildProcess>> StartListening(
      const std::string& binary, const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(30));

  ~ChildProcess();

  const std::string& address() const { return address_; }  // "host:port"
  // The stdout lines printed before the LISTENING line, in order.
  const std::vector<std::string>& earlier_lines() const {
    return earlier_lines_;
  }
  int port() const { return port_; }
  // The port of the "METRICS ip:port" line printed before LISTENING, or
  // -1 if there was none.
  int metrics_port() const;
  pid_t pid() const { return pid_; }

  // Sends `signal` and waits for the exit; returns the wait status.
  int Kill(int signal);
  // Sends `signal` and returns at once (SIGSTOP, SIGCONT).
  void Signal(int signal);
  // SIGTERM, then waits up to `timeout`; returns true on a clean exit 0.
  bool Terminate(absl::Duration timeout = absl::Seconds(10));

 private:
  ChildProcess() = default;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string address_;
  std::vector<std::string> earlier_lines_;
  int port_ = 0;
  bool exited_ = false;
};

// The path of a runfile (relative to the workspace root) that exists when
// tests run under Bazel.
std::string Runfile(const std::string& path);

}  // namespace jetstream::testing

#endif  // JETSTREAM_TESTS_TESTING_PROCESS_H_
