// The demo's HTTP API (docs/PROTOCOL.md): routes a parsed request to the hub and answers it
// (now, or later for a publish waiting for the store), or says that the request opens an
// event stream (SSE) or a WebSocket.
//
// Thread safety: handle(), open_stream() and open_websocket() are safe from any thread (the
// hub is; the options are read-only after construction).
#pragma once

#include "client_stream.hpp"
#include "http_message.hpp"

#include <notify/hub.hpp>
#include <notify/ws_handshake.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace demo {

// GET /api/notifications/stream, authenticated: the connection becomes an event stream.
struct StreamRequest {
  std::string user;
  std::string cursor;  // Last-Event-ID, else ?lastEventId=, else empty
};

// GET /api/notifications/ws, authenticated, with a valid opening handshake: the connection
// becomes a WebSocket.
struct WebSocketRequest {
  std::string user;
  std::string cursor;                     // Last-Event-ID, else ?lastEventId=, else empty
  notify::ws::HandshakeResult handshake;  // status 101; its response is not written yet
};

// Bytes to write as they are, then close the connection (a refused WebSocket handshake:
// notify::ws::accept_handshake() wrote the whole response, JSON body included).
struct RawResponse {
  std::string bytes;
};

// The response comes later (a publish waiting for the store): the connection calls `start`
// once with the function that writes the response, which may be called from any thread.
struct PendingResponse {
  using Respond = std::function<void(HttpResponse)>;
  std::function<void(Respond)> start;
};

struct ApiOptions {
  // Origins a WebSocket handshake may come from ("https://app.example.com"), compared
  // case-insensitively; a request without an Origin header (not a browser) is allowed too.
  // Empty: every origin is allowed — for development only.
  std::vector<std::string> allowed_origins;
  // Streams and sockets end with session:end "expired" this long after they open; 0: never.
  std::chrono::seconds session{0};
};

class Api {
 public:
  using Outcome =
      std::variant<HttpResponse, StreamRequest, WebSocketRequest, RawResponse, PendingResponse>;

  explicit Api(notify::NotificationHub& hub, ApiOptions options = {});

  // Never throws: an exception becomes a 500 response.
  Outcome handle(const HttpRequest& request) noexcept;

  // The stream's io_context must be run by one thread (the transport has no strand).
  // Hands the stream (TCP or TLS, nothing written yet) to an SseSink attached to the hub.
  // When the hub refuses the connection, answers with a JSON error and closes instead.
  void open_stream(ClientStream stream, StreamRequest request) noexcept;

  // Hands the stream (nothing written yet) to a WebSocketSink attached to the hub; the sink
  // writes the 101 response first. When the hub refuses the connection, answers with a JSON
  // error and closes instead.
  void open_websocket(ClientStream stream, WebSocketRequest request) noexcept;

 private:
  // The sink, with its session's deadline when ApiOptions::session is set.
  std::shared_ptr<notify::Sink> with_session_deadline(std::shared_ptr<notify::Sink> sink) const;
  Outcome route(const HttpRequest& request);
  Outcome websocket(const HttpRequest& request, std::string user, std::string cursor) const;

  notify::NotificationHub& hub_;
  ApiOptions options_;
  notify::ws::HandshakeOptions handshake_options_;
};

}  // namespace demo
