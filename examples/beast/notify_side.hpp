// NotifySide: everything of notify in the Beast host, behind a header without Asio.
//
// notify is built on standalone Asio and Beast on Boost.Asio. The two cannot be included in
// one translation unit (both define the same helpers in the global namespace), so this class
// is the boundary: notify_side.cpp includes standalone Asio and notify, the Beast files
// include Boost and this header. A stream request's socket crosses it as a descriptor: the
// Boost socket gives it up (release()) and a standalone socket takes it (assign()). The
// kernel socket stays open in between, and nothing was read after the request, so no byte
// is lost.
//
// Thread safety: every member function is safe from any thread. The hub and its streams run
// on a thread of their own, started by the constructor and joined by the destructor.
#pragma once

#include <notify/ws_handshake.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace beast_host {

// A connected TCP socket's descriptor, owned by whoever holds it.
struct SocketHandle {
  int descriptor = -1;
  bool ipv6 = false;
};

// The answer to a request that NotifySide handles alone: HTTP status and JSON body.
struct Answer {
  unsigned status = 0;
  std::string json;
};

struct StreamLimits {
  std::size_t max_connections = 0;  // streams and sockets at once; 0: the hub's default
};

class NotifySide {
 public:
  // A hub on the in-process bus and a memory store, with HubOptions' defaults (heartbeat
  // 30 s, batching 200 ms) but for `limits`.
  explicit NotifySide(StreamLimits limits = {});
  ~NotifySide();
  NotifySide(const NotifySide&) = delete;
  NotifySide& operator=(const NotifySide&) = delete;

  // Publishes the notification a request body describes (the demo's camelCase JSON):
  // 202 {"id":ID}, 400 for a bad body, 503 when the store, the bus or the hub refuses.
  Answer publish(std::string_view body);

  // Takes `socket` (its request read, nothing written) for an SSE stream of `user`, or a
  // WebSocket whose handshake accept_handshake() accepted, resuming after `cursor` (the
  // Last-Event-ID) when not empty. A connection the hub refuses gets an HTTP error.
  void open_events(SocketHandle socket, std::string user, std::string cursor);
  void open_websocket(SocketHandle socket, std::string user, std::string cursor,
                      notify::ws::HandshakeResult handshake);

  // Ends every stream and stops the thread; idempotent (the destructor calls it).
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace beast_host
