// CallbackTransport: a write-only Transport for frameworks that give the application a
// "write this chunk" function instead of a socket.
//
// The write function is called on executor(), once per buffer, in order; it returns false
// when the connection is gone, which closes the transport. The close function, if any, is
// called once when the transport closes.
//
// Thread safety: as Transport: use it from executor() only (Sinks do so). The callbacks are
// invoked from executor().
#pragma once

#include <notify/transport.hpp>

#include <functional>
#include <string_view>

namespace notify {

class NOTIFY_EXPORT CallbackTransport final : public Transport {
 public:
  using WriteChunk = std::function<bool(std::string_view chunk)>;
  using OnClose = std::function<void()>;

  CallbackTransport(asio::any_io_executor executor, WriteChunk write, OnClose on_close = {});

  asio::any_io_executor executor() const override { return executor_; }
  void async_write(BufferSpan buffers, std::shared_ptr<TransportHandler> handler) override;
  void close() noexcept override;
  std::string_view kind() const noexcept override { return "callback"; }

 private:
  asio::any_io_executor executor_;
  WriteChunk write_;
  OnClose on_close_;
  bool closed_ = false;
};

}  // namespace notify
