// The demo's HTTP API (docs/PROTOCOL.md): routes a parsed request to the hub and answers it,
// or says that the request opens an event stream.
//
// Thread safety: handle() and open_stream() are safe from any thread (the hub is).
#pragma once

#include "http_message.hpp"

#include <notify/hub.hpp>

#include <asio/ip/tcp.hpp>

#include <string>
#include <variant>

namespace demo {

// GET /api/notifications/stream, authenticated: the connection becomes an event stream.
struct StreamRequest {
  std::string user;
  std::string cursor;  // Last-Event-ID, else ?lastEventId=, else empty
};

class Api {
 public:
  using Outcome = std::variant<HttpResponse, StreamRequest>;

  explicit Api(notify::NotificationHub& hub) : hub_(hub) {}

  // Never throws: an exception becomes a 500 response.
  Outcome handle(const HttpRequest& request) noexcept;

  // Hands the socket (nothing written yet) to an SseSink attached to the hub. When the hub
  // refuses the connection, answers with a JSON error and closes instead.
  void open_stream(asio::ip::tcp::socket socket, StreamRequest request) noexcept;

 private:
  Outcome route(const HttpRequest& request);

  notify::NotificationHub& hub_;
};

}  // namespace demo
