// AsioTransport<Stream>: a Transport over an Asio stream the host has accepted, such as
// asio::ip::tcp::socket or asio::ssl::stream<asio::ip::tcp::socket> (after its handshake).
//
// The transport owns the stream. By default it serializes its operations on a strand, so
// the host may run its io_context on several threads. A host that runs each io_context on
// one thread (one io_context per core, the fastest layout) passes Threading::single: no
// strand, and the sinks on that io_context share one flush task per fan-out.
//
// Over a plain TCP socket, write_now() is a non-blocking sendmsg(): a sink with nothing in
// flight writes straight away instead of starting an asynchronous operation.
//
// A stream with a closing handshake of its own (asio::ssl::stream: TLS close_notify) is
// ended with it: close() cancels what is in flight, runs async_shutdown() and closes the
// socket when it completes or after closing_handshake_limit, whichever comes first. That
// takes a transport owned by a shared_ptr (make_asio_transport); otherwise, and for other
// streams, close() closes the socket at once.
//
// Thread safety: as Transport: use it from executor() only (Sinks do so).
#pragma once

#include <notify/transport.hpp>

#include <asio/bind_executor.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace notify {

// How an AsioTransport orders its operations.
enum class Threading : std::uint8_t {
  strand,  // its own strand: the io_context may be run by several threads (the default)
  single,  // the stream's executor as it is: the host runs that io_context on one thread
};

namespace detail {
// A non-blocking gathered write to a socket descriptor (sendmsg with MSG_DONTWAIT).
NOTIFY_EXPORT std::size_t write_now_to_socket(int descriptor, BufferSpan buffers,
                                              std::error_code& ec);
// A non-blocking read from a socket descriptor (recv with MSG_DONTWAIT); 0 bytes is eof.
NOTIFY_EXPORT std::size_t read_now_from_socket(int descriptor, asio::mutable_buffer buffer,
                                               std::error_code& ec);
// The bytes in a socket's receive queue (FIONREAD); 0 for -1 or when it cannot tell.
NOTIFY_EXPORT std::size_t bytes_waiting(int descriptor) noexcept;

// Whether Stream has a closing handshake (asio::ssl::stream::async_shutdown).
template <typename Stream, typename = void>
struct has_async_shutdown : std::false_type {};
template <typename Stream>
struct has_async_shutdown<Stream, std::void_t<decltype(std::declval<Stream&>().async_shutdown(
                                      std::declval<void (*)(std::error_code)>()))>>
    : std::true_type {};

// What close() needs for a closing handshake: the transport's owner, and whether it began.
// A stream without one gets the empty base, so a TCP connection stays as small as it was.
template <typename Self>
struct ClosingHandshakeState : std::enable_shared_from_this<Self> {
  bool closing = false;
};
struct NoClosingHandshake {};

template <typename Stream, typename = void>
struct has_lowest_layer : std::false_type {};
template <typename Stream>
struct has_lowest_layer<Stream, std::void_t<decltype(std::declval<Stream&>().lowest_layer())>>
    : std::true_type {};

// Whether Stream (a socket) has a native descriptor.
template <typename Stream, typename = void>
struct has_native_handle : std::false_type {};
template <typename Stream>
struct has_native_handle<Stream, std::void_t<decltype(std::declval<Stream&>().native_handle())>>
    : std::true_type {};

// The descriptor of the socket under `stream` (a TLS stream's TCP socket); -1 without one.
template <typename Stream>
int descriptor_under(Stream& stream) noexcept {
  if constexpr (has_lowest_layer<Stream>::value) {
    auto& socket = stream.lowest_layer();
    if constexpr (has_native_handle<std::remove_reference_t<decltype(socket)>>::value) {
      return static_cast<int>(socket.native_handle());
    } else {
      return -1;
    }
  } else {
    return -1;
  }
}
}  // namespace detail

template <typename Stream>
class AsioTransport final
    : public Transport,
      public std::conditional_t<detail::has_async_shutdown<Stream>::value,
                                detail::ClosingHandshakeState<AsioTransport<Stream>>,
                                detail::NoClosingHandshake> {
 public:
  // A plain TCP socket: non-blocking writes and reads go straight to its descriptor.
  static constexpr bool is_tcp = std::is_same_v<Stream, asio::ip::tcp::socket>;
  // A stream whose end has a handshake of its own (TLS), run by close().
  static constexpr bool has_closing_handshake = detail::has_async_shutdown<Stream>::value;
  // How long close() waits for that handshake (the peer's close_notify) before it closes
  // the socket anyway.
  static constexpr std::chrono::milliseconds closing_handshake_limit{1000};

  explicit AsioTransport(Stream stream, Threading threading = Threading::strand,
                         std::string_view kind = default_kind())
      : stream_(std::move(stream)),
        strand_(threading == Threading::strand ? std::make_unique<asio::any_io_executor>(
                                                     asio::make_strand(stream_.get_executor()))
                                               : nullptr),
        descriptor_(detail::descriptor_under(stream_)),
        kind_(kind) {}

  asio::any_io_executor executor() const override {
    return strand_ ? *strand_ : asio::any_io_executor(stream_.get_executor());
  }

  bool single_threaded() const noexcept override { return !strand_; }

  bool can_write_now() const noexcept override { return is_tcp; }

  std::size_t write_now(BufferSpan buffers, std::error_code& ec) override {
    if constexpr (is_tcp) {
      return detail::write_now_to_socket(stream_.native_handle(), buffers, ec);
    } else {
      return Transport::write_now(buffers, ec);
    }
  }

  int socket_descriptor() const noexcept override {
    if constexpr (is_tcp) {
      return stream_.native_handle();
    } else {
      return -1;
    }
  }

  void async_write(BufferSpan buffers, std::shared_ptr<TransportHandler> handler) override {
    written_.store(0, std::memory_order_relaxed);
    start(
        [&](auto done) {
          // The completion condition runs after each partial write: it records the progress.
          asio::async_write(
              stream_, buffers,
              [this](const std::error_code& ec, std::size_t so_far) {
                written_.store(so_far, std::memory_order_relaxed);
                return asio::transfer_all()(ec, so_far);
              },
              std::move(done));
        },
        [h = std::move(handler)](std::error_code ec, std::size_t n) { h->on_write(ec, n); });
  }

  std::uint64_t write_progress() const noexcept override {
    return written_.load(std::memory_order_relaxed);
  }

  // From the descriptor the stream had when it was handed over: read from the sweep's
  // thread, which must not touch the stream the executor's thread uses. (Not for writes:
  // once the socket is closed that number may be another connection's; here it can only
  // spare a closed sink a ping timeout.)
  bool input_waiting() const noexcept override { return detail::bytes_waiting(descriptor_) > 0; }

  bool can_read() const noexcept override { return true; }

  // Waiting for readiness is only safe without a strand: the reactor runs on this thread,
  // so no readiness edge can pass between read_now()'s would_block and the wait.
  bool can_read_now() const noexcept override { return !strand_ && is_tcp; }

  void async_wait_readable(std::shared_ptr<TransportHandler> handler) override {
    if constexpr (is_tcp) {
      if (!strand_) {
        stream_.async_wait(asio::socket_base::wait_read,
                           [h = std::move(handler)](std::error_code ec) { h->on_read(ec, 0); });
        return;
      }
    }
    Transport::async_wait_readable(std::move(handler));
  }

  std::size_t read_now(asio::mutable_buffer buffer, std::error_code& ec) override {
    if constexpr (is_tcp) {
      return detail::read_now_from_socket(stream_.native_handle(), buffer, ec);
    } else {
      return Transport::read_now(buffer, ec);
    }
  }

  void async_read_some(asio::mutable_buffer buffer,
                       std::shared_ptr<TransportHandler> handler) override {
    start([&](auto done) { stream_.async_read_some(buffer, std::move(done)); },
          [h = std::move(handler)](std::error_code ec, std::size_t n) { h->on_read(ec, n); });
  }

  void close() noexcept override {
    if constexpr (has_closing_handshake) {
      if (start_closing_handshake())
        return;
    }
    close_socket();
  }

  // A TLS stream has no half-close: its close() sends close_notify and reads until the
  // peer's answer, which serves as the linger a half-closed TCP socket gets.
  bool shutdown_send() noexcept override {
    if constexpr (has_closing_handshake) {
      return false;
    } else {
      std::error_code ec;
      lowest().shutdown(asio::socket_base::shutdown_send, ec);
      return !ec;
    }
  }

  std::string_view kind() const noexcept override { return kind_; }

  Stream& stream() noexcept { return stream_; }

 private:
  void close_socket() noexcept {
    std::error_code ignored;
    auto& socket = lowest();
    socket.shutdown(asio::socket_base::shutdown_both, ignored);
    socket.close(ignored);
  }

  // False when the handshake cannot run (no shared owner, no memory): close at once.
  bool start_closing_handshake() noexcept {
    if (this->closing)
      return true;
    auto self = this->weak_from_this().lock();
    if (!self)
      return false;
    try {
      this->closing = true;
      std::error_code ignored;
      lowest().cancel(ignored);  // a read in flight would compete with the handshake's
      auto timer = std::make_shared<asio::steady_timer>(executor(), closing_handshake_limit);
      timer->async_wait([self](std::error_code ec) {
        if (!ec)
          self->close_socket();
      });
      // Posted, so that the cancelled operations complete first.
      asio::post(executor(), [self, timer] {
        self->start([&](auto done) { self->stream_.async_shutdown(std::move(done)); },
                    [self, timer](std::error_code) {
                      timer->cancel();
                      self->close_socket();
                    });
      });
      return true;
    } catch (...) {
      return false;
    }
  }

  static constexpr std::string_view default_kind() noexcept {
    if constexpr (is_tcp) {
      return "tcp";
    } else {
      return "tls";
    }
  }

  // Starts an operation whose completion runs on the strand, or as it is without one.
  template <typename Operation, typename Completion>
  void start(Operation operation, Completion complete) {
    if (strand_)
      operation(asio::bind_executor(*strand_, std::move(complete)));
    else
      operation(std::move(complete));
  }

  auto& lowest() noexcept {
    if constexpr (detail::has_lowest_layer<Stream>::value) {
      return stream_.lowest_layer();
    } else {
      return stream_;
    }
  }

  mutable Stream stream_;  // mutable: some streams' get_executor() is not const
  // Threading::strand: a strand over the stream's executor; null for Threading::single (an
  // idle connection stays small).
  std::unique_ptr<asio::any_io_executor> strand_;
  const int descriptor_;  // of the socket under the stream, as handed over; -1 without one
  std::string kind_;
  std::atomic<std::uint64_t> written_{0};  // by the asynchronous write in flight
};

// Makes a shared AsioTransport from an accepted stream.
template <typename Stream>
std::shared_ptr<AsioTransport<Stream>> make_asio_transport(
    Stream stream, Threading threading = Threading::strand) {
  return std::make_shared<AsioTransport<Stream>>(std::move(stream), threading);
}

}  // namespace notify
