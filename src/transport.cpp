#include <notify/transport.hpp>

#include <asio/error.hpp>
#include <asio/post.hpp>

namespace notify {

Transport::~Transport() = default;

void Transport::async_read_some(asio::mutable_buffer, std::shared_ptr<TransportHandler> handler) {
  asio::post(executor(),
             [h = std::move(handler)] { h->on_read(asio::error::operation_not_supported, 0); });
}

void Transport::async_wait_readable(std::shared_ptr<TransportHandler> handler) {
  asio::post(executor(),
             [h = std::move(handler)] { h->on_read(asio::error::operation_not_supported, 0); });
}

std::size_t Transport::read_now(asio::mutable_buffer, std::error_code& ec) {
  ec = asio::error::operation_not_supported;
  return 0;
}

std::size_t Transport::write_now(BufferSpan, std::error_code& ec) {
  ec = asio::error::operation_not_supported;
  return 0;
}

}  // namespace notify
