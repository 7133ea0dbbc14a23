#include "http_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace itest {
namespace {

int millis_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 1 << 30));
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

bool parse_response_head(std::string_view head, HttpResponse& r) {
  const auto eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, eol);
  if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/")
    return false;
  const auto sp = status_line.find(' ');
  if (sp == std::string_view::npos || sp + 4 > status_line.size())
    return false;
  try {
    r.status = std::stoi(std::string(status_line.substr(sp + 1, 3)));
  } catch (...) {
    return false;
  }
  std::size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    auto next = head.find("\r\n", pos);
    if (next == std::string_view::npos)
      next = head.size();
    const std::string_view line = head.substr(pos, next - pos);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos)
      return false;
    r.headers.emplace_back(lower(line.substr(0, colon)), trim(line.substr(colon + 1)));
    pos = next + 2;
  }
  return true;
}

// --- Socket ---------------------------------------------------------------------------

Socket::Socket(std::uint16_t port, std::chrono::milliseconds timeout) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0)
    throw std::runtime_error("socket() failed");
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      close();
      throw std::runtime_error(std::string("connect failed: ") + std::strerror(errno));
    }
    pollfd p{fd_, POLLOUT, 0};
    const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (r <= 0 || err != 0) {
      close();
      throw std::runtime_error(std::string("connect failed: ") +
                               (r <= 0 ? "timeout" : std::strerror(err)));
    }
  }
}

Socket::~Socket() {
  close();
}

Socket::Socket(Socket&& other) noexcept : fd_(other.fd_) {
  other.fd_ = -1;
}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

bool Socket::send_all(std::string_view data, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!data.empty()) {
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      const int left = millis_left(deadline);
      if (left == 0 || ::poll(&p, 1, left) <= 0)
        return false;
      continue;
    }
    return false;
  }
  return true;
}

long Socket::recv_some(std::string& out, Clock::time_point deadline) {
  char buf[16384];
  while (true) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      return static_cast<long>(n);
    }
    if (n == 0)
      return 0;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -2;
    pollfd p{fd_, POLLIN, 0};
    const int left = millis_left(deadline);
    if (left == 0)
      return -1;
    const int r = ::poll(&p, 1, left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0)
      return -1;
    if (r < 0)
      return -2;
  }
}

void Socket::shutdown_write() {
  if (fd_ >= 0)
    ::shutdown(fd_, SHUT_WR);
}

void Socket::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

// --- HttpResponse ---------------------------------------------------------------------

std::string HttpResponse::header(std::string_view name) const {
  const std::string key = lower(name);
  for (const auto& h : headers) {
    if (h.first == key)
      return h.second;
  }
  return {};
}

bool HttpResponse::has_header(std::string_view name) const {
  const std::string key = lower(name);
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return h.first == key; });
}

nlohmann::json HttpResponse::json() const {
  return nlohmann::json::parse(body);
}

// --- HttpClient -----------------------------------------------------------------------

HttpClient::HttpClient(std::uint16_t port) : port_(port), socket_(port) {}

HttpResponse HttpClient::request(std::string_view method, std::string_view target,
                                 std::string_view body, const Headers& headers,
                                 std::chrono::milliseconds timeout) {
  std::string req;
  req += method;
  req += ' ';
  req += target;
  req += " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) + "\r\n";
  bool has_length = false;
  for (const auto& h : headers) {
    req += h.first + ": " + h.second + "\r\n";
    if (lower(h.first) == "content-length")
      has_length = true;
  }
  if (!body.empty() && !has_length)
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (!body.empty() && method == "POST") {
    const bool has_type = std::any_of(headers.begin(), headers.end(), [](const auto& h) {
      return lower(h.first) == "content-type";
    });
    if (!has_type)
      req += "Content-Type: application/json\r\n";
  }
  req += "\r\n";
  req += body;
  if (!send_raw(req, timeout))
    throw std::runtime_error("sending " + std::string(method) + " " + std::string(target) +
                             " failed");
  auto response = read_response(timeout);
  if (!response)
    throw std::runtime_error("no response to " + std::string(method) + " " + std::string(target));
  return std::move(*response);
}

bool HttpClient::send_raw(std::string_view bytes, std::chrono::milliseconds timeout) {
  return socket_.send_all(bytes, timeout);
}

std::optional<HttpResponse> HttpClient::read_response(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const auto end = buffer_.find("\r\n\r\n");
    if (end != std::string::npos) {
      HttpResponse r;
      r.head = buffer_.substr(0, end);
      if (!parse_response_head(r.head, r))
        return std::nullopt;
      buffer_.erase(0, end + 4);
      if (r.status >= 100 && r.status < 200)
        continue;  // 100 Continue: the real one follows
      if (r.has_header("content-length")) {
        const std::size_t length = std::stoul(r.header("content-length"));
        while (buffer_.size() < length) {
          if (socket_.recv_some(buffer_, deadline) <= 0)
            return std::nullopt;
        }
        r.body = buffer_.substr(0, length);
        buffer_.erase(0, length);
      } else {
        // No length: the body ends with the connection.
        while (true) {
          const long n = socket_.recv_some(buffer_, deadline);
          if (n == 0)
            break;
          if (n < 0)
            return std::nullopt;
        }
        r.body = std::move(buffer_);
        buffer_.clear();
      }
      return r;
    }
    if (socket_.recv_some(buffer_, deadline) <= 0)
      return std::nullopt;
  }
}

bool HttpClient::wait_eof(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const long n = socket_.recv_some(buffer_, deadline);
    if (n == 0 || n == -2)
      return true;  // EOF, or reset
    if (n == -1)
      return false;
  }
}

HttpResponse http_request(std::uint16_t port, std::string_view method, std::string_view target,
                          std::string_view body, const Headers& headers) {
  HttpClient client(port);
  return client.request(method, target, body, headers);
}

HttpResponse post_notification(std::uint16_t port, const nlohmann::json& j) {
  return http_request(port, "POST", "/api/notifications", j.dump());
}

std::string publish(std::uint16_t port, const std::string& user, const std::string& title) {
  const auto r = post_notification(port, {{"userId", user}, {"type", "comment"}, {"title", title}});
  if (r.status != 202)
    throw std::runtime_error("publish: status " + std::to_string(r.status) + ": " + r.body);
  return r.json().at("id").get<std::string>();
}

std::string url_encode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace itest
