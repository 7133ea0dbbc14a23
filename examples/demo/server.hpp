// Server: accepts TCP connections and gives each one an HttpConnection.
//
// Thread safety: listen() before io_context::run(); stop() from any thread (a signal
// handler), once or more.
#pragma once

#include "api.hpp"
#include "http_connection.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
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
  // `strand_per_connection`: give each connection its own strand (io_context run by several
  // threads).
  Server(asio::io_context& io, Api& api, ConnectionLimits limits, bool strand_per_connection);

  // Binds and listens; returns the local endpoint (the port chosen when `port` is 0).
  asio::ip::tcp::endpoint listen(const asio::ip::address& address, unsigned short port,
                                 std::error_code& ec);

  // Stops accepting and closes every HTTP connection still open (streams already handed to
  // the hub are the hub's to close).
  void stop();

 private:
  void accept();
  void on_accept(std::error_code ec, asio::ip::tcp::socket socket);
  bool track(const std::shared_ptr<HttpConnection>& connection);  // false once stopped

  asio::io_context& io_;
  Api& api_;
  ConnectionLimits limits_;
  bool strand_per_connection_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;  // after accept fails (out of file descriptors)

  std::mutex mutex_;
  bool stopped_ = false;
  std::vector<std::weak_ptr<HttpConnection>> connections_;
  std::size_t prune_at_ = 64;
};

}  // namespace demo
