// AsioTransport<Stream>: a Transport over an Asio stream the host has accepted, such as
// asio::ip::tcp::socket or asio::ssl::stream<asio::ip::tcp::socket> (after its handshake).
//
// The transport owns the stream and serializes its operations on a strand, so the host may
// run its io_context on several threads.
//
// Thread safety: as Transport: use it from executor() only (Sinks do so).
#pragma once

#include <notify/transport.hpp>

#include <asio/bind_executor.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>

namespace notify {

namespace detail {
template <typename Stream, typename = void>
struct has_lowest_layer : std::false_type {};
template <typename Stream>
struct has_lowest_layer<Stream, std::void_t<decltype(std::declval<Stream&>().lowest_layer())>>
    : std::true_type {};
}  // namespace detail

template <typename Stream>
class AsioTransport final : public Transport {
 public:
  explicit AsioTransport(Stream stream, std::string_view kind = default_kind())
      : stream_(std::move(stream)),
        strand_(asio::make_strand(stream_.get_executor())),
        kind_(kind) {}

  asio::any_io_executor executor() const override { return strand_; }

  void async_write(BufferSpan buffers, std::shared_ptr<TransportHandler> handler) override {
    asio::async_write(
        stream_, buffers,
        asio::bind_executor(strand_, [h = std::move(handler)](std::error_code ec, std::size_t n) {
          h->on_write(ec, n);
        }));
  }

  bool can_read() const noexcept override { return true; }

  void async_read_some(asio::mutable_buffer buffer,
                       std::shared_ptr<TransportHandler> handler) override {
    stream_.async_read_some(
        buffer,
        asio::bind_executor(strand_, [h = std::move(handler)](std::error_code ec, std::size_t n) {
          h->on_read(ec, n);
        }));
  }

  void close() noexcept override {
    std::error_code ignored;
    auto& socket = lowest();
    socket.shutdown(asio::socket_base::shutdown_both, ignored);
    socket.close(ignored);
  }

  bool shutdown_send() noexcept override {
    std::error_code ec;
    lowest().shutdown(asio::socket_base::shutdown_send, ec);
    return !ec;
  }

  std::string_view kind() const noexcept override { return kind_; }

  Stream& stream() noexcept { return stream_; }

 private:
  static constexpr std::string_view default_kind() noexcept {
    if constexpr (std::is_same_v<Stream, asio::ip::tcp::socket>) {
      return "tcp";
    } else {
      return "tls";
    }
  }

  auto& lowest() noexcept {
    if constexpr (detail::has_lowest_layer<Stream>::value) {
      return stream_.lowest_layer();
    } else {
      return stream_;
    }
  }

  Stream stream_;
  asio::strand<asio::any_io_executor> strand_;
  std::string_view kind_;
};

// Makes a shared AsioTransport from an accepted stream.
template <typename Stream>
std::shared_ptr<AsioTransport<Stream>> make_asio_transport(Stream stream) {
  return std::make_shared<AsioTransport<Stream>>(std::move(stream));
}

}  // namespace notify
