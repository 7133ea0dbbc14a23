// DemoProcess: runs notify-demo (NOTIFY_DEMO_PATH) as a child process on a free port.
//
// The constructor starts `notify-demo --port 0 <args>` and waits (with a deadline) for its
// "listening on http://127.0.0.1:PORT" line on stdout. The destructor sends SIGTERM, waits,
// and sends SIGKILL if the process does not exit in time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace itest {

// How a child process ended: exit code, or the signal that killed it.
struct ExitStatus {
  bool exited = false;
  int code = -1;   // when exited
  int signal = 0;  // when killed by a signal
};

// Runs `path args...` to completion (with a deadline; SIGKILL after it) and returns how it
// ended and what it wrote on stdout and stderr.
struct RunResult {
  ExitStatus status;
  std::string out;
  std::string err;
};
RunResult run_to_completion(const std::string& path, const std::vector<std::string>& args,
                            std::chrono::milliseconds timeout);

class DemoProcess {
 public:
  explicit DemoProcess(std::vector<std::string> args = {},
                       std::chrono::milliseconds start_timeout = std::chrono::seconds(10));
  ~DemoProcess();
  DemoProcess(const DemoProcess&) = delete;
  DemoProcess& operator=(const DemoProcess&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  pid_t pid() const noexcept { return pid_; }

  // Sends SIGTERM and waits up to `timeout` for the process to end; nullopt if it did not
  // (it is then killed).
  std::optional<ExitStatus> terminate(std::chrono::milliseconds timeout);
  // Sends SIGKILL (a crash: nothing is flushed or closed) and reaps the process; the
  // destructor then checks nothing. Returns how it ended.
  std::optional<ExitStatus> kill_now();

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::uint16_t port_ = 0;
  bool reaped_ = false;
};

}  // namespace itest
