// File: tests/deploy/container_test.cc
//
// The image of deploy/Containerfile, run as containers. The suite builds the
// runtime stage from the binaries of this build (deploy/build_image.sh
// --runtime-only; the Debian base image is made once and reused), then each
// test runs a sync service container and a gateway container the way a
// cluster runs them: the image's own user (numeric, not root), a read-only
// root filesystem, the sync service's data on a volume, host networking on
// loopback ports chosen by the kernel (the programs print "LISTENING
// host:port", read here from the container's log).
//
// It needs podman (tools/setup.sh installs it), or docker where podman is
// absent. Where containers cannot be built or run, every test fails and says
// why: nothing is skipped.

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_helpers.h"
#include "tests/e2e/system_fixture.h"
#include "tests/testing/process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/ws_test_client.h"

namespace jetstream::testing {
namespace {

constexpr uid_t kImageUid = 10001;
constexpr char kDataMount[] = "/var/lib/jetstream";

struct CommandResult {
  int exit_code = -1;  // -1: did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs argv[0] (looked up in PATH) and collects its output.
CommandResult RunCommand(const std::vector<std::string>& argv) {
  CommandResult result;
  int out[2];
  if (pipe(out) != 0) {
    result.output = "pipe failed";
    return result;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(out[1], STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run %s\n", args[0]);
    _exit(127);
  }
  close(out[1]);
  char buffer[4096];
  ssize_t n;
  while ((n = read(out[0], buffer, sizeof(buffer))) > 0) {
    result.output.append(buffer, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

std::string Describe(const std::vector<std::string>& argv,
                     const CommandResult& r) {
  return absl::StrCat("`", absl::StrJoin(argv, " "), "` exited ", r.exit_code,
                      ":\n", r.output);
}

// The container engine: podman, else docker; "" if neither is on the PATH.
std::string FindEngine() {
  const char* path = std::getenv("PATH");
  for (const char* name : {"podman", "docker"}) {
    for (absl::string_view dir :
         absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
      std::string candidate = absl::StrCat(dir, "/", name);
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return "";
}

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

// The uids of a process (real, effective, saved, filesystem), from
// /proc/<pid>/status; empty if it cannot be read.
std::vector<std::string> Uids(const std::string& pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "Uid:")) {
      return absl::StrSplit(rest, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    }
  }
  return {};
}

// Shape uuid -> x, from a ScopeState message.
std::map<std::string, double> ShapeXs(const std::string& state_message) {
  std::map<std::string, double> out;
  JsonDocument doc = ParseOrDie(state_message);
  for (const JsonValue& f : doc["fragments"].GetArray()) {
    if (std::string(f["clsName"].GetString()) != "Shape") continue;
    out[f["uuid"].GetString()] = f["properties"]["x"].GetDouble();
  }
  return out;
}

class ContainerTest : public ::testing::Test {
 protected:
  // Builds the image once for the suite; a failure is kept and reported by
  // every test.
  static void SetUpTestSuite() {
    engine_ = new std::string(FindEngine());
    setup_error_ = new std::string();
    image_ =
        new std::string(absl::StrCat("localhost/jetstream-test:", getpid()));
    if (engine_->empty()) {
      *setup_error_ =
          "containers cannot run here: neither podman nor docker is on the "
          "PATH (tools/setup.sh installs podman)";
      return;
    }
    if (absl::EndsWith(*engine_, "/podman")) {
      // The project's podman settings (runc, cgroupfs, no default ulimits),
      // as deploy/build_image.sh uses them.
      setenv("CONTAINERS_CONF",
             Runfile("deploy/podman/containers.conf").c_str(), 0);
    }
    // The runfiles root holds gateway/gateway and syncservice/syncservice.
    std::string bin_dir = Runfile("gateway/gateway");
    bin_dir = bin_dir.substr(
        0, bin_dir.size() - std::string("/gateway/gateway").size());
    std::vector<std::string> build = {
        "bash",           Runfile("deploy/build_image.sh"),
        "--runtime-only", bin_dir,
        "--tag",          *image_};
    setenv("ENGINE", engine_->c_str(), 1);
    CommandResult r = RunCommand(build);
    if (r.exit_code != 0) {
      *setup_error_ =
          absl::StrCat("containers cannot be built here: ", Describe(build, r));
    }
  }

  static void TearDownTestSuite() {
    if (!engine_->empty() && setup_error_->empty()) {
      RunCommand({*engine_, "rmi", *image_});
    }
    delete engine_;
    delete setup_error_;
    delete image_;
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error_->empty()) << *setup_error_;
    data_dir_ = absl::StrCat(
        TempDir(), "/data-",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    RunCommand({"rm", "-rf", data_dir_});
    ASSERT_EQ(mkdir(data_dir_.c_str(), 0750), 0) << data_dir_;
    // The volume belongs to the image's user, as a Kubernetes fsGroup or a
    // chown by the operator would make it.
    if (geteuid() == 0) {
      ASSERT_EQ(chown(data_dir_.c_str(), kImageUid, kImageUid), 0);
    }
  }

  void TearDown() override {
    for (const std::string& name : containers_) {
      RunCommand({*engine_, "rm", "-f", name});
    }
  }

  std::string Engine() const { return *engine_; }

  std::string ContainerName(absl::string_view role) {
    return absl::StrCat("jetstream-test-", getpid(), "-", role, "-",
                        containers_.size());
  }

  // Starts a container of the image running `args` (the entrypoint's:
  // "syncservice ..." or "gateway ..."), detached, and follows its log up to
  // the LISTENING line. `volume` mounts the data folder. Fails the test (and
  // returns null) if it does not get there.
  struct Started {
    std::string name;
    std::unique_ptr<ChildProcess> log;  // `engine logs -f`
  };
  absl::StatusOr<Started> StartContainer(absl::string_view role,
                                         const std::vector<std::string>& args,
                                         bool volume) {
    Started started;
    started.name = ContainerName(role);
    std::vector<std::string> run = {
        Engine(),         "run",        "-d", "--name", started.name,
        "--network=host", "--read-only"};
    if (volume) {
      std::string mount = absl::StrCat(data_dir_, ":", kDataMount);
      // Rootless podman maps uids: let it give the folder to the user.
      if (geteuid() != 0 && absl::EndsWith(Engine(), "/podman")) {
        absl::StrAppend(&mount, ":U");
      }
      run.push_back("-v");
      run.push_back(mount);
    }
    run.push_back(*image_);
    run.insert(run.end(), args.begin(), args.end());
    CommandResult r = RunCommand(run);
    if (r.exit_code != 0) {
      return absl::UnavailableError(
          absl::StrCat("containers cannot run here: ", Describe(run, r)));
    }
    containers_.push_back(started.name);
    absl::StatusOr<std::unique_ptr<ChildProcess>> log =
        ChildProcess::StartListening(Engine(), {"logs", "-f", started.name},
                                     absl::Seconds(60));
    if (!log.ok()) {
      CommandResult logs = RunCommand({Engine(), "logs", started.name});
      return absl::UnavailableError(
          absl::StrCat(started.name, " did not start listening (",
                       log.status().message(), "); its log:\n", logs.output));
    }
    started.log = *std::move(log);
    return started;
  }

  // The pid, on this machine, of a container's main process.
  std::string ContainerPid(const std::string& name) {
    CommandResult r =
        RunCommand({Engine(), "inspect", "-f", "{{.State.Pid}}", name});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return std::string(absl::StripAsciiWhitespace(r.output));
  }

  // Stops a container (SIGTERM, as a cluster does) and returns its exit
  // code; -1 if that cannot be read.
  int StopContainer(const std::string& name) {
    CommandResult stop = RunCommand({Engine(), "stop", "-t", "30", name});
    EXPECT_EQ(stop.exit_code, 0) << stop.output;
    CommandResult code =
        RunCommand({Engine(), "inspect", "-f", "{{.State.ExitCode}}", name});
    int exit_code = -1;
    if (code.exit_code != 0 ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(code.output),
                          &exit_code)) {
      ADD_FAILURE() << code.output;
    }
    return exit_code;
  }

  std::vector<std::string> SyncServiceArgs(int port) {
    return {"syncservice", absl::StrCat("--listen=127.0.0.1:", port),
            "--metrics_listen=127.0.0.1:0"};
  }
  std::vector<std::string> GatewayArgs(const std::string& sync_address) {
    return {"gateway",
            "--listen_address=127.0.0.1",
            "--port=0",
            "--sync_service=" + sync_address,
            "--ping_interval=1h",
            "--sync_request_timeout=2s"};
  }

  std::unique_ptr<WsTestClient> ConnectWithSession(int gateway_port) {
    absl::StatusOr<std::unique_ptr<WsTestClient>> client =
        WsTestClient::Connect("127.0.0.1", gateway_port);
    EXPECT_OK(client);
    if (!client.ok()) return nullptr;
    absl::StatusOr<std::string> token = (*client)->CreateSession();
    EXPECT_OK(token);
    if (!token.ok()) return nullptr;
    return *std::move(client);
  }

  // Fetches until the gateway has reconnected and the scope is served.
  absl::StatusOr<Fetched> FetchUntilServed(WsTestClient& client,
                                           const std::string& name) {
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    absl::Status last;
    // Backing off as clients do (5 ms doubling to 100 ms): a tight loop
    // would run into the session's message rate limit.
    absl::Duration pause = absl::Milliseconds(5);
    while (absl::Now() < deadline) {
      absl::StatusOr<Fetched> f = FetchState(client, name);
      if (f.ok()) return f;
      if (!absl::IsNotFound(f.status())) return f.status();
      last = f.status();
      absl::SleepFor(pause);
      pause = std::min(pause * 2, absl::Milliseconds(100));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("not served again: ", last.ToString()));
  }

  static std::string* engine_;
  static std::string* setup_error_;
  static std::string* image_;
  std::string data_dir_;
  std::vector<std::string> containers_;
};

std::string* ContainerTest::engine_ = nullptr;
std::string* ContainerTest::setup_error_ = nullptr;
std::string* ContainerTest::image_ = nullptr;

// Both programs run as the image's numeric user on a read-only root; the
// sync service's default store is created on the volume, owned by that user.
TEST_F(ContainerTest, RunAsTheImageUserOnAReadOnlyRootWithTheStoreOnTheVolume) {
  absl::StatusOr<Started> sync =
      StartContainer("sync", SyncServiceArgs(0), /*volume=*/true);
  ASSERT_OK(sync);
  absl::StatusOr<Started> gateway = StartContainer(
      "gateway", GatewayArgs(sync->log->address()), /*volume=*/false);
  ASSERT_OK(gateway);

  for (const std::string& name : {sync->name, gateway->name}) {
    EXPECT_THAT(Uids(ContainerPid(name)),
                ::testing::ElementsAre("10001", "10001", "10001", "10001"))
        << name;
    CommandResult write =
        RunCommand({Engine(), "exec", name, "touch", "/etc/jetstream/probe"});
    EXPECT_NE(write.exit_code, 0) << name << " could write its root filesystem";
    EXPECT_THAT(write.output, ::testing::HasSubstr("Read-only file system"));
  }

  struct stat db;
  std::string db_path = data_dir_ + "/jetstream.db";
  ASSERT_EQ(stat(db_path.c_str(), &db), 0) << db_path << " was not created";
  EXPECT_EQ(db.st_uid, kImageUid);

  // The gateway answers through the sync service: a session can be made.
  std::unique_ptr<WsTestClient> client =
      ConnectWithSession(gateway->log->port());
  ASSERT_NE(client, nullptr);

  // SIGTERM stops both cleanly (each program is the container's main
  // process, so it gets the signal itself).
  EXPECT_EQ(StopContainer(gateway->name), 0);
  EXPECT_EQ(StopContainer(sync->name), 0);
}

// A changeset acknowledged through the containers is still there after the
// sync service's container is stopped and a new one starts on the same
// volume; the gateway container stays up and reconnects.
TEST_F(ContainerTest, AChangesetSurvivesASyncServiceContainerRestart) {
  absl::StatusOr<Started> sync =
      StartContainer("sync", SyncServiceArgs(0), /*volume=*/true);
  ASSERT_OK(sync);
  const int sync_port = sync->log->port();
  absl::StatusOr<Started> gateway = StartContainer(
      "gateway", GatewayArgs(sync->log->address()), /*volume=*/false);
  ASSERT_OK(gateway);
  const int gateway_port = gateway->log->port();

  const std::string scope = "canvas/container-restart";
  const std::string shape = TestUuid(0xc0, 1);
  std::unique_ptr<WsTestClient> writer = ConnectWithSession(gateway_port);
  ASSERT_NE(writer, nullptr);
  absl::StatusOr<Fetched> fetched = FetchState(*writer, scope);
  ASSERT_OK(fetched);
  absl::Status added = AddShapes(*writer, *fetched, {shape});
  ASSERT_OK(added);
  absl::StatusOr<uint64_t> sync_index = writer->SendScopeSync(
      fetched->scope_index, FragmentList({MoveShapeFragment(shape, 42, 7)}));
  ASSERT_OK(sync_index);
  absl::StatusOr<UntilReply> reply = ReadUntilReply(*writer, *sync_index);
  ASSERT_OK(reply);
  ASSERT_EQ(Field(reply->reply, "fragmentReplies"), "[{}]") << reply->reply;

  // A session for reading afterwards (creating one needs the sync service).
  std::unique_ptr<WsTestClient> reader = ConnectWithSession(gateway_port);
  ASSERT_NE(reader, nullptr);

  // The sync service's container goes; a new one starts on the same volume
  // and port (the gateway's --sync_service names it).
  EXPECT_EQ(StopContainer(sync->name), 0);
  sync->log.reset();
  absl::StatusOr<Started> again =
      StartContainer("sync", SyncServiceArgs(sync_port), /*volume=*/true);
  ASSERT_OK(again);
  ASSERT_EQ(again->log->port(), sync_port);

  absl::StatusOr<Fetched> after = FetchUntilServed(*reader, scope);
  ASSERT_OK(after);
  EXPECT_EQ(after->root_uuid, fetched->root_uuid);
  std::map<std::string, double> xs = ShapeXs(after->state);
  ASSERT_EQ(xs.count(shape), 1u) << after->state;
  EXPECT_EQ(xs[shape], 42);

  EXPECT_EQ(StopContainer(gateway->name), 0);
  EXPECT_EQ(StopContainer(again->name), 0);
}

}  // namespace
}  // namespace jetstream::testing
