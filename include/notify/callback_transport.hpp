// CallbackTransport: a write-only Transport for frameworks that give the application a
// "write this chunk" function instead of a socket.
//
// Two flavours:
//  - WriteChunk returns once the framework has the chunk (true), or false when the connection
//    is gone, which closes the transport. The write counts as done when it returns: a
//    framework that buffers without bound hides a slow client from the sink's queue limits
//    and from the heartbeat's check for a write that moves nothing.
//  - WriteChunkAsync hands the chunk over with a `done` to call once the framework has sent
//    it (or taken it within a bound of its own): done(true), or done(false) when the
//    connection is gone. The chunk stays valid until then, or until the transport closes
//    (OnClose is called; a framework that sends from the chunk without copying it must stop
//    there, as a `done` it calls later is ignored). The next chunk is handed over
//    only after that, so the sink's queue limits and its stall check see a slow client as
//    they do over a socket. `done` may be called once, from any thread, inside the call or
//    later; a call after the transport closed changes nothing.
// Either way, events queued for the connection are handed over joined, in chunks of up to
// 64 KiB (an event larger than that alone): one call for a backlog, not one per event.
// The close function, if any, is called once when the transport closes.
//
// Thread safety: as Transport: use it from executor() only (Sinks do so). WriteChunk,
// WriteChunkAsync and OnClose are invoked from executor().
#pragma once

#include <notify/transport.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string_view>

namespace notify {

class NOTIFY_EXPORT CallbackTransport final : public Transport {
 public:
  using WriteChunk = std::function<bool(std::string_view chunk)>;
  using Done = std::function<void(bool ok)>;
  using WriteChunkAsync = std::function<void(std::string_view chunk, Done done)>;
  using OnClose = std::function<void()>;

  CallbackTransport(asio::any_io_executor executor, WriteChunk write, OnClose on_close = {});
  CallbackTransport(asio::any_io_executor executor, WriteChunkAsync write, OnClose on_close = {});
  ~CallbackTransport() override;

  asio::any_io_executor executor() const override { return executor_; }
  void async_write(BufferSpan buffers, std::shared_ptr<TransportHandler> handler) override;
  std::uint64_t write_progress() const noexcept override;
  void close() noexcept override;
  std::string_view kind() const noexcept override { return "callback"; }

 private:
  struct AsyncWrites;

  asio::any_io_executor executor_;
  WriteChunk write_;
  OnClose on_close_;
  std::shared_ptr<AsyncWrites> async_;  // with WriteChunkAsync
  bool closed_ = false;
};

}  // namespace notify
