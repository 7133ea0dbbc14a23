#include "publisher.hpp"

#include <asio/connect.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace loadgen {

using asio::ip::tcp;

Publisher::Publisher(asio::io_context& io, tcp::endpoint server, std::string host, Done done)
    : socket_(io), server_(server), host_(std::move(host)), done_(std::move(done)) {}

void Publisher::connect(std::function<void(std::error_code)> then) {
  socket_.async_connect(server_, [this, then = std::move(then)](std::error_code ec) {
    if (!ec) {
      std::error_code ignored;
      socket_.set_option(tcp::no_delay(true), ignored);
    } else {
      broken_ = true;
    }
    then(ec);
  });
}

void Publisher::post(const std::string& body, const std::string& key) {
  busy_ = true;
  request_.clear();
  request_ += "POST /api/notifications HTTP/1.1\r\nHost: ";
  request_ += host_;
  if (!key.empty()) {
    request_ += "\r\nIdempotency-Key: ";
    request_ += key;
  }
  request_ += "\r\nContent-Type: application/json\r\nContent-Length: ";
  request_ += std::to_string(body.size());
  request_ += "\r\n\r\n";
  request_ += body;
  in_.clear();
  asio::async_write(socket_, asio::buffer(request_), [this](std::error_code ec, std::size_t) {
    if (ec)
      return finish(0);
    read_more();
  });
}

void Publisher::read_more() {
  socket_.async_read_some(asio::buffer(buffer_),
                          [this](std::error_code ec, std::size_t n) { on_read(ec, n); });
}

void Publisher::on_read(std::error_code ec, std::size_t n) {
  if (ec)
    return finish(0);
  in_.append(buffer_, n);
  const auto head_end = in_.find("\r\n\r\n");
  if (head_end == std::string::npos)
    return read_more();
  // "HTTP/1.1 202 ..."
  const int status = in_.size() > 12 ? std::atoi(in_.c_str() + 9) : 0;
  std::string low = in_.substr(0, head_end);
  std::transform(low.begin(), low.end(), low.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::size_t length = 0;
  if (const auto at = low.find("\r\ncontent-length:"); at != std::string::npos)
    length = std::strtoull(low.c_str() + at + 17, nullptr, 10);
  if (in_.size() < head_end + 4 + length)
    return read_more();
  if (low.find("\r\nconnection: close") != std::string::npos)
    broken_ = true;
  finish(status);
}

void Publisher::finish(int status) {
  busy_ = false;
  if (status == 0)
    broken_ = true;
  done_(*this, status);
}

void Publisher::close() {
  std::error_code ignored;
  socket_.close(ignored);
}

}  // namespace loadgen
