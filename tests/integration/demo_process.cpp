#include "demo_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace itest {
namespace {

using Clock = std::chrono::steady_clock;

ExitStatus decode(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) {
    s.exited = true;
    s.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    s.signal = WTERMSIG(status);
  }
  return s;
}

// Waits for `pid` until `deadline`; nullopt when it is still running.
std::optional<ExitStatus> wait_until(pid_t pid, Clock::time_point deadline) {
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return decode(status);
    if (r < 0 && errno != EINTR)
      return ExitStatus{};  // not our child any more
    if (Clock::now() >= deadline)
      return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

struct Pipe {
  int read = -1;
  int write = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe2 failed");
    read = fds[0];
    write = fds[1];
  }
};

pid_t spawn(const std::string& path, const std::vector<std::string>& args, int out_fd, int err_fd) {
  std::vector<std::string> argv_storage;
  argv_storage.push_back(path);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage)
    argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  if (err_fd >= 0)
    posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    throw std::runtime_error("cannot start " + path + ": " + std::strerror(rc));
  return pid;
}

// Reads what is available on `fd` until EOF or `deadline`; false on timeout.
bool read_all(int fd, std::string& out, Clock::time_point deadline) {
  char buf[4096];
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0)
      return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return true;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

RunResult run_to_completion(const std::string& path, const std::vector<std::string>& args,
                            std::chrono::milliseconds timeout) {
  Pipe out;
  Pipe err;
  const pid_t pid = spawn(path, args, out.write, err.write);
  ::close(out.write);
  ::close(err.write);
  const auto deadline = Clock::now() + timeout;
  RunResult result;
  // The outputs are small (a usage text): read stdout to EOF, then stderr.
  read_all(out.read, result.out, deadline);
  read_all(err.read, result.err, deadline);
  ::close(out.read);
  ::close(err.read);
  auto status = wait_until(pid, deadline);
  if (!status) {
    ::kill(pid, SIGKILL);
    status = wait_until(pid, Clock::now() + std::chrono::seconds(5));
  }
  result.status = status.value_or(ExitStatus{});
  return result;
}

DemoProcess::DemoProcess(std::vector<std::string> args, std::chrono::milliseconds start_timeout) {
  std::vector<std::string> full{"--port", "0"};
  full.insert(full.end(), args.begin(), args.end());
  Pipe out;
  pid_ = spawn(NOTIFY_DEMO_PATH, full, out.write, -1);
  ::close(out.write);
  stdout_fd_ = out.read;

  // Read the first line: "listening on http://127.0.0.1:PORT".
  const auto deadline = Clock::now() + start_timeout;
  std::string line;
  char c = 0;
  while (line.find('\n') == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{stdout_fd_, POLLIN, 0};
    const int r = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      terminate(std::chrono::seconds(2));
      throw std::runtime_error("notify-demo did not say where it listens in time; got '" + line +
                               "'");
    }
    const ssize_t n = ::read(stdout_fd_, &c, 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      terminate(std::chrono::seconds(2));
      throw std::runtime_error("notify-demo exited before listening; got '" + line + "'");
    }
    line += c;
  }
  const std::string prefix = "listening on http://127.0.0.1:";
  if (line.rfind(prefix, 0) != 0) {
    terminate(std::chrono::seconds(2));
    throw std::runtime_error("unexpected first line from notify-demo: '" + line + "'");
  }
  const unsigned long port = std::stoul(line.substr(prefix.size()));
  if (port == 0 || port > 65535) {
    terminate(std::chrono::seconds(2));
    throw std::runtime_error("bad port in '" + line + "'");
  }
  port_ = static_cast<std::uint16_t>(port);
}

DemoProcess::~DemoProcess() {
  if (!reaped_ && pid_ > 0) {
    // A clean exit is part of every test: a crash, a hang or a sanitizer report in the demo
    // (exit code != 0) fails the test that ran it.
    const auto status = terminate(std::chrono::seconds(5));
    CHECK_MESSAGE(status.has_value(), "notify-demo did not exit within 5 s of SIGTERM");
    if (status) {
      CHECK_MESSAGE(status->exited, "notify-demo was killed by signal " << status->signal);
      CHECK_MESSAGE(status->code == 0, "notify-demo exited with code " << status->code);
    }
  }
  if (stdout_fd_ >= 0)
    ::close(stdout_fd_);
}

std::optional<ExitStatus> DemoProcess::terminate(std::chrono::milliseconds timeout) {
  if (reaped_ || pid_ <= 0)
    return std::nullopt;
  ::kill(pid_, SIGTERM);
  auto status = wait_until(pid_, Clock::now() + timeout);
  if (!status) {
    ::kill(pid_, SIGKILL);
    wait_until(pid_, Clock::now() + std::chrono::seconds(5));
  }
  reaped_ = true;
  return status;
}

std::optional<ExitStatus> DemoProcess::kill_now() {
  if (reaped_ || pid_ <= 0)
    return std::nullopt;
  ::kill(pid_, SIGKILL);
  reaped_ = true;
  return wait_until(pid_, Clock::now() + std::chrono::seconds(5));
}

}  // namespace itest
