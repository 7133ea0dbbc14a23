// Server: accepts TCP connections and gives each one an HttpConnection; with a TLS context,
// after the TLS handshake (bounded by ConnectionLimits::request_timeout).
//
// The server owns no threads: it accepts on the first io_context of `contexts` and hands
// each new connection to the next io_context in turn. Every io_context is run by exactly
// one thread, so nothing needs a strand and a connection's transport uses
// notify::Threading::single.
//
// Thread safety: listen() before the io_contexts run; stop() from any thread (a signal
// handler), once or more.
#pragma once

#include "api.hpp"
#include "http_connection.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

namespace demo {

class Server {
 public:
  // `contexts`: at least one; each is run by one thread. `tls`: null for plain HTTP.
  Server(std::vector<asio::io_context*> contexts, Api& api, ConnectionLimits limits,
         std::shared_ptr<asio::ssl::context> tls = nullptr);

  // Binds and listens; returns the local endpoint (the port chosen when `port` is 0).
  asio::ip::tcp::endpoint listen(const asio::ip::address& address, unsigned short port,
                                 std::error_code& ec);

  // Stops accepting and closes every HTTP connection still open (streams already handed to
  // the hub are the hub's to close).
  void stop();

 private:
  void accept();
  void on_accept(std::error_code ec, asio::ip::tcp::socket socket);
  void start_tls(asio::ip::tcp::socket socket);
  // The TLS handshake, then the HTTP connection; `deadline` is cancelled when it ends.
  void handshake(const std::shared_ptr<TlsStream>& stream,
                 const std::shared_ptr<asio::steady_timer>& deadline);
  // Plain HTTP on the TLS port: a 400 with a JSON error, then the end.
  static void refuse_plain_http(const std::shared_ptr<TlsStream>& stream);
  void start_http(ClientStream stream);
  bool track(const std::shared_ptr<HttpConnection>& connection);  // false once stopped

  std::vector<asio::io_context*> contexts_;
  std::size_t next_context_ = 0;  // touched by the accept loop only
  Api& api_;
  ConnectionLimits limits_;
  std::shared_ptr<asio::ssl::context> tls_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;  // after accept fails (out of file descriptors)

  std::mutex mutex_;
  bool stopped_ = false;
  std::vector<std::weak_ptr<HttpConnection>> connections_;
  std::size_t prune_at_ = 64;
};

}  // namespace demo
