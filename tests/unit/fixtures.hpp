// Builders and clients shared by the unit tests: notification drafts, hub options without
// batching, an SSE client over a RecordingTransport, and a connected pair of loopback sockets.
#pragma once

#include <notify/asio_transport.hpp>
#include <notify/hub.hpp>
#include <notify/notification.hpp>
#include <notify/sse_sink.hpp>

#include "doubles.hpp"

#include <asio/ip/tcp.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace test {

inline notify::Notification draft(const std::string& user, const std::string& title = "t") {
  notify::Notification n;
  n.user_id = user;
  n.type = "comment";
  n.title = title;
  return n;
}

inline notify::Notification broadcast(const std::string& title) {
  notify::Notification n;
  n.broadcast = true;
  n.type = "system";
  n.title = title;
  return n;
}

inline notify::HubOptions no_batching() {
  notify::HubOptions o;
  o.batch_window = std::chrono::milliseconds(0);
  return o;
}

// One SSE client connection over a RecordingTransport, attached on construction.
struct SseClient {
  std::shared_ptr<RecordingTransport> transport;
  std::shared_ptr<notify::SseSink> sink;

  SseClient(asio::io_context& io, notify::NotificationHub& hub, const std::string& user,
            std::string_view cursor = {}) {
    transport = std::make_shared<RecordingTransport>(io);
    sink = notify::SseSink::create(transport);
    hub.attach(user, sink, cursor);
  }
  std::vector<SseEvent> events() const { return parse_sse(transport->bytes()); }
  std::vector<SseEvent> of_type(const std::string& type) const {
    std::vector<SseEvent> out;
    for (auto& e : events())
      if (e.type == type)
        out.push_back(e);
    return out;
  }
  std::size_t count() const { return events().size(); }
};

// The two ways an AsioTransport orders its operations, for TEST_CASE_TEMPLATE: with a strand
// (reads into the sink's own buffer) and single-threaded (non-blocking reads and writes).
struct StrandMode {
  static constexpr auto value = notify::Threading::strand;
};
struct SingleThreadMode {
  static constexpr auto value = notify::Threading::single;
};

// A connected pair of real loopback TCP sockets. With `buffer_bytes`, the client's receive
// buffer (set before connecting, so the window is offered small from the start) and the
// server's send buffer are that small: a server's write waits as soon as the client stops
// reading.
struct SocketPair {
  asio::ip::tcp::socket server;
  asio::ip::tcp::socket client;
  explicit SocketPair(asio::io_context& io, int buffer_bytes = 0) : server(io), client(io) {
    asio::ip::tcp::acceptor acceptor(
        io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.open(asio::ip::tcp::v4());
    if (buffer_bytes > 0)
      client.set_option(asio::socket_base::receive_buffer_size(buffer_bytes));
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
    if (buffer_bytes > 0)
      server.set_option(asio::socket_base::send_buffer_size(buffer_bytes));
  }
};

}  // namespace test
