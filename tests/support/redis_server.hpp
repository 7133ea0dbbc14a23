// RedisServer: a redis-server child process on a free loopback port, for tests.
//
// The tests start their own server (nothing else is touched): a free port is found by
// binding a socket to port 0, then `redis-server --port P --bind 127.0.0.1 ...` is spawned
// (posix_spawn) in a temporary directory and waited for (PING answered). kill() sends
// SIGKILL to that child only; start() again reuses the port and the directory (with
// appendonly, the data survives). The destructor kills the child and removes the directory.
// RedisServer::sentinel() starts a Redis Sentinel the same way (`redis-server CONF
// --sentinel`, the configuration written into the directory).
// Header-only: shared by the unit and integration test runners.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace testredis {

// The redis-server executable on PATH, or "" when it is not installed.
inline std::string find_redis_server() {
  if (const char* explicit_path = std::getenv("NOTIFY_TEST_REDIS_SERVER"))
    return explicit_path;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    auto end = dirs.find(':', start);
    if (end == std::string::npos)
      end = dirs.size();
    const std::string candidate = dirs.substr(start, end - start) + "/redis-server";
    if (::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    start = end + 1;
  }
  return {};
}

// A port nobody listens on right now (bind to port 0, read it, close).
inline std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// One blocking round trip of an inline command ("PING\r\n"), after AUTH when `password` is
// not empty; the raw reply, or "".
inline std::string raw_command(std::uint16_t port, const std::string& command,
                               std::chrono::milliseconds timeout = std::chrono::milliseconds(1000),
                               const std::string& password = {}) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return {};
  timeval tv{};
  tv.tv_sec = static_cast<long>(timeout.count() / 1000);
  tv.tv_usec = static_cast<long>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  std::string reply;
  char buffer[65536];
  const auto round_trip = [&](const std::string& text) {
    reply.clear();
    if (::send(fd, text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size()))
      return false;
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0)
      reply.assign(buffer, static_cast<std::size_t>(n));
    return n > 0;
  };
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      (password.empty() || (round_trip("AUTH " + password + "\r\n") && reply == "+OK\r\n")))
    round_trip(command);
  ::close(fd);
  return reply;
}

class RedisServer {
 public:
  // Starts the server; `appendonly` keeps the data across kill() + start(). `password`:
  // requirepass and masterauth (command() authenticates). `cluster_node`: cluster-enabled,
  // with a cluster bus port of its own (free when it starts, not the port + 10000).
  explicit RedisServer(bool appendonly = false, std::vector<std::string> extra = {},
                       std::string sentinel_conf = {}, std::string password = {},
                       bool cluster_node = false)
      : executable_(find_redis_server()),
        appendonly_(appendonly),
        extra_(std::move(extra)),
        sentinel_conf_(std::move(sentinel_conf)),
        password_(std::move(password)),
        cluster_node_(cluster_node) {
    if (executable_.empty())
      return;
    char tmpl[] = "/tmp/notify-redis-test-XXXXXX";
    if (!::mkdtemp(tmpl))
      throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      if (cluster_node_)
        cluster_port_ = free_port();
      if (start())
        return;
    }
    throw std::runtime_error("redis-server did not start");
  }

  ~RedisServer() {
    kill();
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // A sentinel that watches the primary at 127.0.0.1:`primary_port` under the name `master`:
  // quorum 1, down after `down_after_ms` without an answer, so that one sentinel fails over.
  // `extra_conf`: more configuration lines (requirepass ...).
  static std::unique_ptr<RedisServer> sentinel(std::uint16_t primary_port,
                                               const std::string& master, int down_after_ms = 500,
                                               const std::string& extra_conf = {}) {
    const std::string m = " " + master;
    return std::make_unique<RedisServer>(
        false, std::vector<std::string>{},
        "sentinel monitor" + m + " 127.0.0.1 " + std::to_string(primary_port) + " 1\n" +
            "sentinel down-after-milliseconds" + m + " " + std::to_string(down_after_ms) + "\n" +
            "sentinel failover-timeout" + m + " 3000\n" + "sentinel parallel-syncs" + m + " 1\n" +
            extra_conf);
  }

  bool available() const noexcept { return !executable_.empty(); }
  std::uint16_t port() const noexcept { return port_; }
  std::uint16_t cluster_port() const noexcept { return cluster_port_; }  // cluster_node only
  pid_t pid() const noexcept { return pid_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  // Starts (again) on the same port; true when it answers PING within `patience` (a server
  // loading its data answers LOADING until it is done). Else it is killed.
  bool start(std::chrono::milliseconds patience = std::chrono::seconds(5)) {
    if (pid_ > 0)
      return true;
    std::vector<std::string> args{executable_,
                                  "--port",
                                  std::to_string(port_),
                                  "--bind",
                                  "127.0.0.1",
                                  "--save",
                                  "",
                                  "--dir",
                                  dir_,
                                  "--appendonly",
                                  appendonly_ ? "yes" : "no",
                                  "--appendfsync",
                                  "always",
                                  "--daemonize",
                                  "no",
                                  "--logfile",
                                  dir_ + "/redis.log",
                                  "--protected-mode",
                                  "no"};
    if (!password_.empty())
      args.insert(args.end(), {"--requirepass", password_, "--masterauth", password_});
    if (cluster_node_)
      args.insert(args.end(),
                  {"--cluster-enabled", "yes", "--cluster-port", std::to_string(cluster_port_)});
    args.insert(args.end(), extra_.begin(), extra_.end());
    if (!sentinel_conf_.empty()) {
      // A sentinel reads (and rewrites) a configuration file; it takes no data options.
      const auto conf = dir_ + "/sentinel.conf";
      std::ofstream(conf) << "port " << port_ << "\nbind 127.0.0.1\nprotected-mode no\n"
                          << "daemonize no\ndir " << dir_ << "\nlogfile " << dir_
                          << "/sentinel.log\n"
                          << sentinel_conf_;
      args = {executable_, conf, "--sentinel"};
    }
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    if (::posix_spawn(&pid, executable_.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
      return false;
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto pong = raw_command(port_, "PING\r\n");
      if (pong.rfind("+PONG", 0) == 0 || pong.rfind("-NOAUTH", 0) == 0)
        return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: port taken?
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill();
    return false;
  }

  // SIGKILL to this child only, then reaps it.
  void kill() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // An inline command's raw RESP reply ("" when the server is not reachable, or did not
  // answer within `timeout`: generous, since a machine running other suites beside this one
  // has taken more than a second to answer a DBSIZE).
  std::string command(const std::string& line,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) const {
    return raw_command(port_, line + "\r\n", timeout, password_);
  }

 private:
  std::string executable_;
  bool appendonly_;
  std::vector<std::string> extra_;
  std::string sentinel_conf_;  // not empty: a sentinel with this configuration
  std::string password_;
  bool cluster_node_;
  std::string dir_;
  std::uint16_t port_ = 0;
  std::uint16_t cluster_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace testredis
