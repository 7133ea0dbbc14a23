// ClientStream: the demo's byte stream to one client, plain TCP or TLS (after its handshake).
//
// HttpConnection reads requests and writes answers through it without knowing which; a
// stream request hands the stream itself to notify (take()), which then writes the 200 or the
// 101 and everything after over the same TLS session.
//
// Thread safety: as the stream under it, used by one thread at a time (the connection's
// io_context is run by one thread).
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/write.hpp>

#include <utility>
#include <variant>

namespace demo {

using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;

class ClientStream {
 public:
  explicit ClientStream(asio::ip::tcp::socket socket) : stream_(std::move(socket)) {}
  explicit ClientStream(TlsStream stream) : stream_(std::move(stream)) {}

  // The TCP socket, under TLS or not (options, shutdown, close).
  asio::ip::tcp::socket& tcp() noexcept {
    if (auto* tls = std::get_if<TlsStream>(&stream_))
      return tls->next_layer();
    return std::get<asio::ip::tcp::socket>(stream_);
  }
  asio::any_io_executor get_executor() { return tcp().get_executor(); }

  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    std::visit([&](auto& s) { s.async_read_some(buffers, std::forward<Handler>(handler)); },
               stream_);
  }

  // All of `buffers` (asio::async_write).
  template <typename Buffers, typename Handler>
  void async_write(const Buffers& buffers, Handler&& handler) {
    std::visit([&](auto& s) { asio::async_write(s, buffers, std::forward<Handler>(handler)); },
               stream_);
  }

  // Calls `f` with the stream, moved out, as what it is (asio::ip::tcp::socket or
  // TlsStream); this object is left with nothing to use.
  template <typename F>
  void take(F&& f) {
    std::visit([&](auto& s) { f(std::move(s)); }, stream_);
  }

 private:
  std::variant<asio::ip::tcp::socket, TlsStream> stream_;
};

}  // namespace demo
