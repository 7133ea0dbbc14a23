#include "server.hpp"

#include <asio/post.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <cstdio>

namespace demo {

constexpr unsigned char tls_handshake_record = 22;

Server::Server(std::vector<asio::io_context*> contexts, Api& api, ConnectionLimits limits,
               std::shared_ptr<asio::ssl::context> tls)
    : contexts_(std::move(contexts)),
      api_(api),
      limits_(limits),
      tls_(std::move(tls)),
      acceptor_(*contexts_.at(0)),
      retry_timer_(acceptor_.get_executor()) {}

asio::ip::tcp::endpoint Server::listen(const asio::ip::address& address, unsigned short port,
                                       std::error_code& ec) {
  const asio::ip::tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (ec)
    return {};
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec)
    return {};
  acceptor_.bind(endpoint, ec);
  if (ec)
    return {};
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return {};
  auto local = acceptor_.local_endpoint(ec);
  if (ec)
    return {};
  accept();
  return local;
}

void Server::accept() {
  auto& context = *contexts_[next_context_];
  next_context_ = (next_context_ + 1) % contexts_.size();
  acceptor_.async_accept(context, [this](std::error_code ec, asio::ip::tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void Server::on_accept(std::error_code ec, asio::ip::tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open())
    return;
  if (ec) {
    // EMFILE and friends: wait a little instead of spinning.
    std::fprintf(stderr, "notify-demo: accept: %s\n", ec.message().c_str());
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([this](std::error_code wait_ec) {
      if (!wait_ec && acceptor_.is_open())
        accept();
    });
    return;
  }
  if (tls_)
    start_tls(std::move(socket));
  else
    start_http(ClientStream(std::move(socket)));
  accept();
}

void Server::start_tls(asio::ip::tcp::socket socket) {
  // On the socket's own io_context: the handshake, then the connection, run there. The
  // deadline covers the wait for the client's first bytes and the whole handshake.
  auto executor = socket.get_executor();
  asio::post(executor, [this, socket = std::move(socket)]() mutable {
    auto stream = std::make_shared<TlsStream>(std::move(socket), *tls_);
    auto timer = std::make_shared<asio::steady_timer>(stream->get_executor());
    timer->expires_after(limits_.request_timeout);
    timer->async_wait([stream](std::error_code ec) {
      if (!ec) {  // a client that never finishes its handshake
        std::error_code ignored;
        stream->next_layer().close(ignored);
      }
    });
    stream->next_layer().async_wait(
        asio::socket_base::wait_read, [this, stream, timer](std::error_code ec) {
          if (ec)
            return;
          // A TLS connection starts with a handshake record (content type 22). Anything else
          // is most likely plain HTTP sent to this port: it gets an answer it can read.
          unsigned char first = 0;
          const auto n = stream->next_layer().receive(asio::buffer(&first, 1),
                                                      asio::socket_base::message_peek, ec);
          if (!ec && n == 1 && first != tls_handshake_record) {
            timer->cancel();
            refuse_plain_http(stream);
            return;
          }
          handshake(stream, timer);
        });
  });
}

void Server::handshake(const std::shared_ptr<TlsStream>& stream,
                       const std::shared_ptr<asio::steady_timer>& deadline) {
  stream->async_handshake(asio::ssl::stream_base::server,
                          [this, stream, deadline](std::error_code ec) {
                            deadline->cancel();
                            // A failed handshake (an unknown certificate authority, no common
                            // version) was answered by TLS itself.
                            if (!ec)
                              start_http(ClientStream(std::move(*stream)));
                          });
}

void Server::refuse_plain_http(const std::shared_ptr<TlsStream>& stream) {
  auto& tcp = stream->next_layer();
  // What the request has sent so far is read and dropped, so that closing does not reset the
  // connection under the answer.
  std::array<char, 16 * 1024> drop;
  std::error_code ignored;
  tcp.non_blocking(true, ignored);
  tcp.read_some(asio::buffer(drop), ignored);
  auto bytes = std::make_shared<std::string>(
      serialize(HttpResponse::error(400, "this port speaks TLS: use https:// (or wss://)"), false));
  asio::async_write(tcp, asio::buffer(*bytes), [stream, bytes](std::error_code, std::size_t) {
    std::error_code ignored_too;
    stream->next_layer().shutdown(asio::socket_base::shutdown_both, ignored_too);
    stream->next_layer().close(ignored_too);
  });
}

void Server::start_http(ClientStream stream) {
  auto connection = std::make_shared<HttpConnection>(std::move(stream), api_, limits_);
  if (!track(connection))
    return;  // stopping: the socket closes with the connection
  connection->start();
}

bool Server::track(const std::shared_ptr<HttpConnection>& connection) {
  std::lock_guard lock(mutex_);
  if (stopped_)
    return false;
  if (connections_.size() >= prune_at_) {
    connections_.erase(std::remove_if(connections_.begin(), connections_.end(),
                                      [](const auto& w) { return w.expired(); }),
                       connections_.end());
    prune_at_ = std::max<std::size_t>(64, connections_.size() * 2);
  }
  connections_.push_back(connection);
  return true;
}

void Server::stop() {
  std::vector<std::weak_ptr<HttpConnection>> connections;
  {
    std::lock_guard lock(mutex_);
    if (stopped_)
      return;
    stopped_ = true;
    connections.swap(connections_);
  }
  // The acceptor lives on the first io_context: close it there.
  asio::post(acceptor_.get_executor(), [this] {
    std::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
  });
  for (const auto& weak : connections) {
    if (auto connection = weak.lock())
      connection->stop();
  }
}

}  // namespace demo
