// A publisher: one keep-alive HTTP/1.1 connection that POSTs notifications one at a time
// (the next request leaves when the previous answer is in) and measures each round trip.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace loadgen {

class Publisher {
 public:
  // status: the HTTP status (0 when the connection failed).
  using Done = std::function<void(Publisher&, int status)>;

  Publisher(asio::io_context& io, asio::ip::tcp::endpoint server, std::string host, Done done);
  void connect(std::function<void(std::error_code)> then);
  // POSTs `body` to /api/notifications, with an Idempotency-Key header unless `key` is
  // empty. One at a time.
  void post(const std::string& body, const std::string& key = {});
  bool busy() const noexcept { return busy_; }
  bool broken() const noexcept { return broken_; }
  void close();

 private:
  void read_more();
  void on_read(std::error_code ec, std::size_t n);
  void finish(int status);

  asio::ip::tcp::socket socket_;
  asio::ip::tcp::endpoint server_;
  std::string host_;
  Done done_;
  std::string request_;
  std::string in_;
  char buffer_[4096];
  bool busy_ = false;
  bool broken_ = false;
};

}  // namespace loadgen
