#include <notify/callback_transport.hpp>

#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace notify {

namespace {

// Events queued for a connection are joined into chunks of up to this size, so that a
// framework gets one write call (and, asynchronously, one round trip) for a backlog rather
// than one per event. A larger buffer goes alone, uncopied.
constexpr std::size_t joined_chunk_limit = 64 * 1024;

// The next chunk of `buffers` from buffers.first[next], advancing `next` past it: the buffer
// itself when it goes alone, else the buffers that fit the limit copied into `joined`.
std::string_view next_chunk(BufferSpan buffers, std::size_t& next, std::string& joined) {
  const auto view = [](const asio::const_buffer& b) {
    return std::string_view(static_cast<const char*>(b.data()), b.size());
  };
  std::size_t end = next + 1;
  std::size_t size = buffers.first[next].size();
  while (end < buffers.count && size + buffers.first[end].size() <= joined_chunk_limit)
    size += buffers.first[end++].size();
  if (end == next + 1)
    return view(buffers.first[next++]);
  joined.clear();
  joined.reserve(size);
  for (; next < end; ++next)
    joined.append(view(buffers.first[next]));
  return joined;
}

}  // namespace

// The write in flight with WriteChunkAsync. Shared with the `done` functions handed to the
// host, which may outlive the transport; touched on the executor only, but `progress`.
// The handler (the sink) is held by the `done` handed out and by a completion posted, not
// here: the sink holds the transport, which holds this, and a `done` the host drops must not
// leave that cycle behind.
struct CallbackTransport::AsyncWrites : std::enable_shared_from_this<AsyncWrites> {
  using Handler = std::shared_ptr<TransportHandler>;

  asio::any_io_executor executor;
  WriteChunkAsync write;
  // The write in flight: its handler, its buffers, the next one to hand over, what is done.
  std::weak_ptr<TransportHandler> handler;
  bool in_flight = false;
  BufferSpan buffers;
  std::size_t next = 0;  // the first buffer not yet handed over
  std::size_t written = 0;
  std::string joined;              // the chunk handed over, when it joins several buffers
  std::uint64_t chunk_number = 0;  // of the chunk handed over, so a stray `done` is known
  std::atomic<std::uint64_t> progress{0};

  void start(BufferSpan span, Handler h) {
    handler = h;
    in_flight = true;
    buffers = span;
    next = 0;
    written = 0;
    progress.store(0, std::memory_order_relaxed);
    hand_over_next(std::move(h));
  }

  void hand_over_next(Handler h) {
    if (next == buffers.count)
      return complete(h, {});
    const auto chunk = next_chunk(buffers, next, joined);
    const auto number = ++chunk_number;
    auto done = [self = shared_from_this(), number, size = chunk.size(), h](bool ok) {
      // Whichever thread calls it, the rest runs on the executor, never inside write().
      asio::post(self->executor,
                 [self, number, size, ok, h] { self->chunk_done(number, size, ok, h); });
    };
    try {
      write(chunk, std::move(done));
    } catch (...) {
      chunk_number = 0;  // a `done` it may still call is stray
      asio::post(executor,
                 [self = shared_from_this(), h] { self->complete(h, asio::error::broken_pipe); });
    }
  }

  void chunk_done(std::uint64_t number, std::size_t size, bool ok, const Handler& h) {
    if (!in_flight || number != chunk_number)
      return;        // the transport closed meanwhile, or a second call
    ++chunk_number;  // a second call of this `done` is stray
    if (!ok)
      return complete(h, asio::error::broken_pipe);
    written += size;
    progress.store(written, std::memory_order_relaxed);
    hand_over_next(h);
  }

  void complete(const Handler& h, std::error_code ec) {
    if (!in_flight)
      return;
    in_flight = false;
    handler.reset();
    std::string().swap(joined);  // a backlog's copy is not kept by an idle connection
    h->on_write(ec, written);
  }

  // On close: the write in flight completes (with an error) without waiting for its `done`.
  void abort() {
    chunk_number = 0;
    if (!in_flight)
      return;
    if (auto h = handler.lock()) {
      asio::post(executor, [self = shared_from_this(), h = std::move(h)] {
        self->complete(h, asio::error::operation_aborted);
      });
    } else {
      in_flight = false;  // nobody waits for it any more
    }
  }
};

CallbackTransport::CallbackTransport(asio::any_io_executor executor, WriteChunk write,
                                     OnClose on_close)
    : executor_(asio::make_strand(std::move(executor))),
      write_(std::move(write)),
      on_close_(std::move(on_close)) {
  if (!write_)
    throw std::invalid_argument("CallbackTransport: the write function is empty");
}

CallbackTransport::CallbackTransport(asio::any_io_executor executor, WriteChunkAsync write,
                                     OnClose on_close)
    : executor_(asio::make_strand(std::move(executor))),
      on_close_(std::move(on_close)),
      async_(std::make_shared<AsyncWrites>()) {
  if (!write)
    throw std::invalid_argument("CallbackTransport: the write function is empty");
  async_->executor = executor_;
  async_->write = std::move(write);
}

CallbackTransport::~CallbackTransport() = default;

void CallbackTransport::async_write(BufferSpan buffers, std::shared_ptr<TransportHandler> handler) {
  if (async_ && !closed_) {
    // Started from the executor: the first chunk is handed over now, and every completion
    // is posted.
    async_->start(buffers, std::move(handler));
    return;
  }
  // The chunks are handed over now; the completion is posted so that it never runs inside
  // the call that started the write.
  std::error_code ec;
  std::size_t written = 0;
  if (closed_) {
    ec = asio::error::not_connected;
  } else {
    try {
      std::string joined;
      for (std::size_t next = 0; next < buffers.count;) {
        const auto chunk = next_chunk(buffers, next, joined);
        if (!write_(chunk)) {
          ec = asio::error::broken_pipe;
          break;
        }
        written += chunk.size();
      }
    } catch (...) {
      ec = asio::error::broken_pipe;
    }
  }
  asio::post(executor_, [h = std::move(handler), ec, written] { h->on_write(ec, written); });
}

std::uint64_t CallbackTransport::write_progress() const noexcept {
  return async_ ? async_->progress.load(std::memory_order_relaxed) : 0;
}

void CallbackTransport::close() noexcept {
  if (closed_)
    return;
  closed_ = true;
  if (async_)
    async_->abort();
  if (on_close_) {
    try {
      on_close_();
    } catch (...) {
      // A host callback failing on close changes nothing: the transport is closed.
    }
  }
}

}  // namespace notify
