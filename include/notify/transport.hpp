// Transport: the byte stream of one client connection, as handed over by the host.
//
// Rules every transport follows:
//  - One write and one read at a time; the caller (a Sink) guarantees it.
//  - Operations are started from the transport's executor() and complete on it, never
//    inside the call that started them.
//  - The handler passed to an operation is kept alive (shared_ptr) until it completes.
//
// Thread safety: distinct objects are safe; a shared object must only be used from its
// executor().
#pragma once

#include <notify/export.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/buffer.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <system_error>

namespace notify {

// Receives the completions of a transport's operations.
class TransportHandler {
 public:
  virtual ~TransportHandler() = default;
  virtual void on_write(std::error_code ec, std::size_t bytes) = 0;
  virtual void on_read(std::error_code ec, std::size_t bytes) = 0;
};

// A contiguous array of buffers, usable as an Asio ConstBufferSequence without copying it.
struct BufferSpan {
  const asio::const_buffer* first = nullptr;
  std::size_t count = 0;
  const asio::const_buffer* begin() const noexcept { return first; }
  const asio::const_buffer* end() const noexcept { return first + count; }
};

class NOTIFY_EXPORT Transport {
 public:
  virtual ~Transport();

  // Where this transport's operations must start and where they complete. For a
  // multi-threaded io_context this is a strand.
  virtual asio::any_io_executor executor() const = 0;

  // True when executor() is run by a single thread and needs no strand (an io_context the
  // host runs on one thread). Sinks then gather the flushes of every connection on that
  // execution context into one task per fan-out instead of one posted handler each.
  virtual bool single_threaded() const noexcept { return false; }

  // True when write_now() can write without blocking (a plain TCP socket).
  virtual bool can_write_now() const noexcept { return false; }

  // Writes what the socket takes right now without blocking, from executor() while no
  // async_write is in flight. Returns the bytes written (possibly fewer than asked, or 0
  // with asio::error::would_block); any other error is a failed connection. Transports that
  // cannot do this set asio::error::operation_not_supported.
  virtual std::size_t write_now(BufferSpan buffers, std::error_code& ec);

  // The socket descriptor write_now() sends to with a non-blocking sendmsg(), so that the
  // flush task of a single-threaded context may hand the writes of many connections to the
  // kernel at once; -1 when there is none (TLS, callbacks).
  virtual int socket_descriptor() const noexcept { return -1; }

  // Writes every byte of `buffers` (the array and the bytes stay valid until completion),
  // then calls handler->on_write(ec, bytes_written).
  virtual void async_write(BufferSpan buffers, std::shared_ptr<TransportHandler> handler) = 0;

  // How many bytes the asynchronous write in flight has handed to the connection so far, for
  // telling a client that reads slowly from one that reads nothing (Sink::heartbeat). Safe
  // from any thread. A transport that cannot tell keeps the default, 0: a write then counts
  // as stuck while it has not completed at all.
  virtual std::uint64_t write_progress() const noexcept { return 0; }

  // True when bytes from the client wait in the connection, not yet read (the socket's
  // receive queue); false when none do or the transport cannot tell. Safe from any thread.
  virtual bool input_waiting() const noexcept { return false; }

  // True when async_read_some is supported (a socket); false for write-only transports.
  virtual bool can_read() const noexcept { return false; }

  // Reads some bytes into `buffer`, then calls handler->on_read(ec, bytes_read). Transports
  // that cannot read complete with asio::error::operation_not_supported.
  virtual void async_read_some(asio::mutable_buffer buffer,
                               std::shared_ptr<TransportHandler> handler);

  // True when async_wait_readable() and read_now() work (a plain TCP socket on a
  // single-threaded io_context): a sink then reads into a buffer its thread shares and
  // keeps none of its own while the client is quiet.
  virtual bool can_read_now() const noexcept { return false; }

  // Calls handler->on_read(ec, 0) once input (or its end) can be read. Bytes already
  // there may not wake it: call it only after read_now() said would_block.
  virtual void async_wait_readable(std::shared_ptr<TransportHandler> handler);

  // Reads what has arrived without blocking: the bytes read, or 0 with
  // asio::error::would_block (nothing yet) or asio::error::eof (the client ended its side).
  virtual std::size_t read_now(asio::mutable_buffer buffer, std::error_code& ec);

  // Closes the connection; pending operations complete with an error. Never throws.
  virtual void close() noexcept = 0;

  // Ends the sending direction only (TCP FIN) while reads go on, so that a peer still
  // sending does not get a reset that would discard the last bytes written to it. Returns
  // false when the transport cannot do that (then close() is the only way out).
  virtual bool shutdown_send() noexcept { return false; }

  // A short name for metrics and logs: "tcp", "tls", "callback".
  virtual std::string_view kind() const noexcept = 0;
};

}  // namespace notify
