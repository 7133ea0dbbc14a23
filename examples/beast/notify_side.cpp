#include "notify_side.hpp"

#include "http_message.hpp"  // the demo's JSON error responses (examples/demo/http_message.hpp)

#include <notify/asio_transport.hpp>
#include <notify/hub.hpp>
#include <notify/notification.hpp>
#include <notify/sse_sink.hpp>
#include <notify/websocket_sink.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

namespace beast_host {
namespace {

using Transport = notify::AsioTransport<asio::ip::tcp::socket>;

// {"error": message}; a message that quotes client bytes (a JSON parse error does) may hold
// invalid UTF-8, which the demo's error response replaces rather than throws on.
Answer error_answer(unsigned status, std::string_view message) {
  return {status, demo::HttpResponse::error(static_cast<int>(status), message).body};
}

// A descriptor on its way to a socket: closed unless one took it (a handler that never
// runs, because the hub's thread stopped, must not leak it).
class PendingDescriptor {
 public:
  explicit PendingDescriptor(SocketHandle handle) : handle_(handle) {}
  PendingDescriptor(const PendingDescriptor&) = delete;
  PendingDescriptor& operator=(const PendingDescriptor&) = delete;
  ~PendingDescriptor() {
    if (handle_.descriptor >= 0)
      ::close(handle_.descriptor);
  }

  // A socket of `io` that owns the descriptor, or nullopt (then it is closed here).
  std::optional<asio::ip::tcp::socket> adopt(asio::io_context& io) {
    asio::ip::tcp::socket socket(io);
    std::error_code ec;
    socket.assign(handle_.ipv6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), handle_.descriptor, ec);
    if (ec)
      return std::nullopt;
    handle_.descriptor = -1;
    return socket;
  }

 private:
  SocketHandle handle_;
};

// Nothing was written on a refused connection yet (a sink writes its preamble once
// attached), so the answer is a plain HTTP error, like the host's others.
void refuse(const std::shared_ptr<Transport>& transport, std::shared_ptr<notify::Sink> sink,
            int status, std::string_view message) {
  auto bytes = std::make_shared<std::string>(
      demo::serialize(demo::HttpResponse::error(status, message), false));
  asio::async_write(transport->stream(), asio::buffer(*bytes),
                    [transport, sink = std::move(sink), bytes](std::error_code, std::size_t) {
                      transport->close();
                    });
}

}  // namespace

class NotifySide::Impl {
 public:
  explicit Impl(const notify::HubOptions& options)
      : hub_(io_.get_executor(), options),
        keep_running_(asio::make_work_guard(io_)),
        thread_([this] { io_.run(); }) {}

  ~Impl() { stop(); }

  Answer publish(std::string_view body) {
    try {
      const auto id = hub_.publish(notify::parse_notification(body));
      return {202, nlohmann::json{{"id", id}}.dump()};
    } catch (const nlohmann::json::exception& e) {  // not JSON, or a field of the wrong type
      return error_answer(400, e.what());
    } catch (const std::invalid_argument& e) {  // notify::ValidationError names the field
      return error_answer(400, e.what());
    } catch (const std::exception& e) {  // the store or the bus failed, or the hub stopped
      return error_answer(503, e.what());
    }
  }

  // Runs on the hub's thread: the transport has no strand (Threading::single).
  template <typename MakeSink>
  void open(SocketHandle handle, std::string user, std::string cursor, MakeSink make_sink) {
    auto pending = std::make_shared<PendingDescriptor>(handle);
    asio::post(io_, [this, pending, user = std::move(user), cursor = std::move(cursor),
                     make_sink = std::move(make_sink)]() mutable {
      auto socket = pending->adopt(io_);
      if (!socket)
        return;
      auto transport = notify::make_asio_transport(std::move(*socket), notify::Threading::single);
      std::shared_ptr<notify::Sink> sink;
      try {
        sink = make_sink(transport);
        std::error_code ec;
        hub_.attach(std::move(user), sink, cursor, ec);  // init snapshot, replay, then live
        if (ec)
          sink->refuse(ec);  // 429 or 503 with a JSON error, in place of the stream's head
      } catch (const std::exception& e) {  // the store failed
        std::fprintf(stderr, "notify-beast: cannot open a stream: %s\n", e.what());
        refuse(transport, std::move(sink), 503, e.what());
      }
    });
  }

  void stop() {
    std::call_once(stopped_, [this] {
      hub_.stop();  // ends every stream
      keep_running_.reset();
      if (thread_.joinable())
        thread_.join();
    });
  }

 private:
  asio::io_context io_;
  notify::NotificationHub hub_;
  asio::executor_work_guard<asio::io_context::executor_type> keep_running_;
  std::thread thread_;
  std::once_flag stopped_;
};

namespace {

notify::HubOptions hub_options(const StreamLimits& limits) {
  notify::HubOptions options;
  if (limits.max_connections > 0)
    options.max_connections = limits.max_connections;
  return options;
}

}  // namespace

NotifySide::NotifySide(StreamLimits limits) : impl_(std::make_unique<Impl>(hub_options(limits))) {}
NotifySide::~NotifySide() = default;

Answer NotifySide::publish(std::string_view body) {
  return impl_->publish(body);
}

void NotifySide::open_events(SocketHandle socket, std::string user, std::string cursor) {
  impl_->open(socket, std::move(user), std::move(cursor),
              [](const auto& transport) { return notify::SseSink::create(transport); });
}

void NotifySide::open_websocket(SocketHandle socket, std::string user, std::string cursor,
                                notify::ws::HandshakeResult handshake) {
  impl_->open(socket, std::move(user), std::move(cursor),
              [handshake = std::move(handshake)](const auto& transport) {
                return notify::WebSocketSink::create(transport, handshake);
              });
}

void NotifySide::stop() {
  impl_->stop();
}

}  // namespace beast_host
