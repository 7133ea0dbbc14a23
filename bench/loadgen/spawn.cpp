#include "spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace loadgen {

Child spawn_server(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  if (argv.empty())
    throw std::runtime_error("spawn: no command");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = fork();
  if (pid < 0)
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "notify-loadgen: cannot run %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  Child child;
  child.pid = pid;
  child.stdout_fd = fds[0];
  std::string seen;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  static constexpr std::string_view marker = "listening on ";
  for (;;) {
    const auto at = seen.find(marker);
    if (at != std::string::npos) {
      const auto eol = seen.find('\n', at);
      if (eol != std::string::npos) {
        child.url = seen.substr(at + marker.size(), eol - at - marker.size());
        return child;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      break;
    pollfd p{fds[0], POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    char buf[512];
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0)
      break;
    seen.append(buf, static_cast<std::size_t>(n));
  }
  stop_server(child, std::chrono::milliseconds(2000));
  throw std::runtime_error("spawn: '" + argv[0] + "' printed no 'listening on' line: " + seen);
}

std::string stop_server(Child& child, std::chrono::milliseconds grace) {
  if (child.pid <= 0)
    return "not started";
  kill(child.pid, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  pid_t r = 0;
  while ((r = waitpid(child.pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (r == 0) {
    kill(child.pid, SIGKILL);
    waitpid(child.pid, &status, 0);
  }
  child.pid = -1;
  if (child.stdout_fd >= 0)
    close(child.stdout_fd);
  child.stdout_fd = -1;
  if (WIFEXITED(status))
    return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "signal " + std::to_string(WTERMSIG(status));
  return "unknown";
}

}  // namespace loadgen
