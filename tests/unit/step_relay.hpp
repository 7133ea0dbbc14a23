// StepRelay: a loopback TCP relay in front of a real Redis that hands each client command
// to a test's `step` before forwarding it, for a change of the server's state between two
// commands of one pipeline: no other client of the server can time that, since Redis reads
// a pipeline sent in one write at once. The replies are the server's, relayed as they come.
//
// The relay reads RESP requests (arrays of bulk strings, what notify's clients send); `step`
// runs on the relay's thread and may block (the client's later commands wait meanwhile).
// Threading: one thread of its own, joined by the destructor; construct and destroy on the
// test's thread.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace test {

class StepRelay {
 public:
  using Command = std::vector<std::string>;
  using Step = std::function<void(const Command&)>;

  StepRelay(std::uint16_t target_port, Step step)
      : target_port_(target_port), step_(std::move(step)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listener_ < 0)
      throw std::runtime_error("StepRelay: socket");
    sockaddr_in address = loopback(0);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 16) != 0) {
      ::close(listener_);
      throw std::runtime_error("StepRelay: bind/listen");
    }
    socklen_t length = sizeof address;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { run(); });
  }

  ~StepRelay() {
    stopping_ = true;
    thread_.join();
    for (auto& pair : pairs_) {
      ::close(pair.client);
      ::close(pair.server);
    }
    ::close(listener_);
  }

  StepRelay(const StepRelay&) = delete;
  StepRelay& operator=(const StepRelay&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  struct Pair {
    int client = -1;
    int server = -1;
    std::string pending;  // client bytes not yet a whole command
    bool closed = false;
  };

  static sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
  }

  static bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
      const auto n = ::send(fd, data, size, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  }

  // The length of the first whole request in `bytes` (`*N` then N `$len` strings) and its
  // parts; nullopt while it is incomplete.
  static std::optional<std::size_t> first_request(const std::string& bytes, Command& parts) {
    std::size_t at = 0;
    const auto number_line = [&](char kind) -> std::optional<long> {
      if (at >= bytes.size())
        return std::nullopt;
      if (bytes[at] != kind)
        throw std::runtime_error("StepRelay: not a RESP request");
      const auto end = bytes.find("\r\n", at);
      if (end == std::string::npos)
        return std::nullopt;
      const long value = std::strtol(bytes.c_str() + at + 1, nullptr, 10);
      at = end + 2;
      return value;
    };
    parts.clear();
    const auto count = number_line('*');
    if (!count)
      return std::nullopt;
    for (long i = 0; i < *count; ++i) {
      const auto length = number_line('$');
      if (!length)
        return std::nullopt;
      if (at + static_cast<std::size_t>(*length) + 2 > bytes.size())
        return std::nullopt;
      parts.emplace_back(bytes, at, static_cast<std::size_t>(*length));
      at += static_cast<std::size_t>(*length) + 2;
    }
    return at;
  }

  void accept_one() {
    const int client = ::accept(listener_, nullptr, nullptr);
    if (client < 0)
      return;
    const int server = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address = loopback(target_port_);
    if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&address), sizeof address)) {
      ::close(client);
      if (server >= 0)
        ::close(server);
      return;
    }
    pairs_.push_back(Pair{client, server, {}, false});
  }

  // Forwards the whole commands of the pair's client bytes, each after its step.
  bool forward_commands(Pair& pair) {
    Command parts;
    for (;;) {
      const auto length = first_request(pair.pending, parts);
      if (!length)
        return true;
      step_(parts);
      if (!write_all(pair.server, pair.pending.data(), *length))
        return false;
      pair.pending.erase(0, *length);
    }
  }

  void run() {
    char buffer[64 * 1024];
    while (!stopping_) {
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      for (const auto& pair : pairs_) {
        fds.push_back({pair.closed ? -1 : pair.client, POLLIN, 0});
        fds.push_back({pair.closed ? -1 : pair.server, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 50) <= 0)
        continue;
      if (fds[0].revents & POLLIN)
        accept_one();
      for (std::size_t p = 0; p < pairs_.size() && 1 + 2 * p + 1 < fds.size(); ++p) {
        auto& pair = pairs_[p];
        if (fds[1 + 2 * p].revents & (POLLIN | POLLHUP | POLLERR)) {
          const auto n = ::recv(pair.client, buffer, sizeof buffer, 0);
          if (n <= 0) {
            pair.closed = true;
            ::shutdown(pair.server, SHUT_RDWR);
            continue;
          }
          pair.pending.append(buffer, static_cast<std::size_t>(n));
          if (!forward_commands(pair)) {
            pair.closed = true;
            ::shutdown(pair.client, SHUT_RDWR);
            continue;
          }
        }
        if (fds[1 + 2 * p + 1].revents & (POLLIN | POLLHUP | POLLERR)) {
          const auto n = ::recv(pair.server, buffer, sizeof buffer, 0);
          if (n <= 0 || !write_all(pair.client, buffer, static_cast<std::size_t>(n))) {
            pair.closed = true;
            ::shutdown(pair.client, SHUT_RDWR);
          }
        }
      }
    }
  }

  std::uint16_t target_port_;
  Step step_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::vector<Pair> pairs_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace test
