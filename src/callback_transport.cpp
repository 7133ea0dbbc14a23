#include <notify/callback_transport.hpp>

#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <stdexcept>

namespace notify {

CallbackTransport::CallbackTransport(asio::any_io_executor executor, WriteChunk write,
                                     OnClose on_close)
    : executor_(asio::make_strand(std::move(executor))),
      write_(std::move(write)),
      on_close_(std::move(on_close)) {
  if (!write_)
    throw std::invalid_argument("CallbackTransport: the write function is empty");
}

void CallbackTransport::async_write(BufferSpan buffers, std::shared_ptr<TransportHandler> handler) {
  // The chunks are handed over now; the completion is posted so that it never runs inside
  // the call that started the write.
  std::error_code ec;
  std::size_t written = 0;
  if (closed_) {
    ec = asio::error::not_connected;
  } else {
    try {
      for (const auto& b : buffers) {
        if (!write_(std::string_view(static_cast<const char*>(b.data()), b.size()))) {
          ec = asio::error::broken_pipe;
          break;
        }
        written += b.size();
      }
    } catch (...) {
      ec = asio::error::broken_pipe;
    }
  }
  asio::post(executor_, [h = std::move(handler), ec, written] { h->on_write(ec, written); });
}

void CallbackTransport::close() noexcept {
  if (closed_)
    return;
  closed_ = true;
  if (on_close_) {
    try {
      on_close_();
    } catch (...) {
      // A host callback failing on close changes nothing: the transport is closed.
    }
  }
}

}  // namespace notify
