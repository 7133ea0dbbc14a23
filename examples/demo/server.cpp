#include "server.hpp"

#include <asio/post.hpp>

#include <algorithm>
#include <cstdio>

namespace demo {

Server::Server(std::vector<asio::io_context*> contexts, Api& api, ConnectionLimits limits)
    : contexts_(std::move(contexts)),
      api_(api),
      limits_(limits),
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
  auto connection = std::make_shared<HttpConnection>(std::move(socket), api_, limits_);
  if (!track(connection))
    return;  // stopping: the socket closes with the connection
  connection->start();
  accept();
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
