// A small blocking HTTP/1.1 client over a POSIX socket, for tests. Every operation has a
// deadline; nothing blocks forever.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace itest {

using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

// A guard against a hang, not a speed limit: sanitizer builds on a loaded machine are slow.
inline constexpr std::chrono::milliseconds default_timeout{15000};

// A connected TCP socket to 127.0.0.1.
class Socket {
 public:
  Socket() = default;
  Socket(std::uint16_t port, std::chrono::milliseconds timeout = default_timeout);
  ~Socket();
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;

  bool is_open() const noexcept { return fd_ >= 0; }
  // Sends every byte; false on error or timeout.
  bool send_all(std::string_view data, std::chrono::milliseconds timeout = default_timeout);
  // Appends what arrives to `out`. >0: bytes read, 0: EOF, -1: timeout, -2: error.
  long recv_some(std::string& out, Clock::time_point deadline);
  void shutdown_write();
  void close();

 private:
  int fd_ = -1;
};

struct HttpResponse {
  int status = 0;
  Headers headers;  // names lower-cased
  std::string body;
  std::string head;  // status line and headers as received

  // The first value of header `name` (any case), or "".
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  nlohmann::json json() const;  // throws if the body is not JSON
};

// Parses a response head (status line and headers, without the blank line) into `r`.
// False when it is malformed.
bool parse_response_head(std::string_view head, HttpResponse& r);

// One keep-alive connection.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port);

  // Sends a request (with Host and, when there is a body, Content-Length) and reads the
  // response. Throws std::runtime_error on timeout or a broken response.
  HttpResponse request(std::string_view method, std::string_view target, std::string_view body = {},
                       const Headers& headers = {},
                       std::chrono::milliseconds timeout = default_timeout);

  // Raw access, for malformed or pipelined requests.
  bool send_raw(std::string_view bytes, std::chrono::milliseconds timeout = default_timeout);
  // The next response; nullopt on timeout, EOF before a full response, or garbage.
  std::optional<HttpResponse> read_response(std::chrono::milliseconds timeout = default_timeout);
  // True when the server closes the connection before the deadline.
  bool wait_eof(std::chrono::milliseconds timeout = default_timeout);

  Socket& socket() noexcept { return socket_; }

 private:
  std::uint16_t port_;
  Socket socket_;
  std::string buffer_;  // received, not yet consumed
};

// One request on a new connection.
HttpResponse http_request(std::uint16_t port, std::string_view method, std::string_view target,
                          std::string_view body = {}, const Headers& headers = {});

// POST /api/notifications with `j`; returns the response.
HttpResponse post_notification(std::uint16_t port, const nlohmann::json& j);

// POSTs a notification of `type` comment to `user` and returns its id (checks 202).
std::string publish(std::uint16_t port, const std::string& user, const std::string& title);

// Percent-encodes everything but unreserved characters.
std::string url_encode(std::string_view text);

}  // namespace itest
