// Sink: one client connection as the hub sees it.
//
// The base class does the shared work: a bounded outbound queue, one gathered write in
// flight at a time, the overflow policy, the hold that keeps live events back while the
// hub primes a new connection with its snapshot, and closing. A concrete sink (SseSink,
// WebSocketSink) only says which wire format it speaks and what it writes first.
//
// Writing: when nothing is in flight a flush writes the queue at once with the transport's
// non-blocking write_now() where it has one; only what the socket does not take goes
// through an asynchronous write. Sinks of a single-threaded transport are flushed by their
// context's FlushLane, one task per fan-out, instead of one posted handler each; the lane
// writes the sockets of up to 64 of them with one io_uring submission where it can.
//
// Thread safety: send(), heartbeat(), close(), end_session(), end_session_at() and the
// accessors are safe from any thread; they post onto the transport's executor, where every
// write starts and completes.
// Construction and attach are done by the host and the hub.
#pragma once

#include <notify/event.hpp>
#include <notify/export.hpp>
#include <notify/transport.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace notify {
namespace detail {
class FlushLane;
}

// What a sink does when its queue is full.
enum class OverflowPolicy {
  resync,      // drop the queue; once the connection drains, send notifications:reset + snapshot
  disconnect,  // close the connection (errc::slow_consumer); the client resumes on reconnect
};

struct QueueLimits {
  std::size_t max_events = 1024;        // events waiting for one connection
  std::size_t max_bytes = 1024 * 1024;  // bytes waiting for one connection (1 MiB)
  OverflowPolicy overflow = OverflowPolicy::resync;
};

class Sink;
class NotificationHub;

// Implemented by the hub: what a sink tells its owner.
class SinkOwner {
 public:
  virtual ~SinkOwner() = default;
  // The sink dropped its queue and has drained: prime it again with a reset snapshot.
  virtual void on_sink_resync(const std::shared_ptr<Sink>& sink) = 0;
  // The sink closed (for any reason); called once, from the sink's executor.
  virtual void on_sink_closed(const std::shared_ptr<Sink>& sink, std::error_code reason) = 0;
  // The sink asked (repair_after_prime) to be brought up to date from the store again.
  virtual void on_sink_repair(const std::shared_ptr<Sink>& sink) = 0;
  // A client sent a text message (WebSocket); called from the sink's executor.
  virtual void on_client_message(const std::shared_ptr<Sink>& sink, std::string_view text) = 0;
};

class NOTIFY_EXPORT Sink : public std::enable_shared_from_this<Sink>, private TransportHandler {
 public:
  ~Sink() override;
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // Queues an event for this connection. Never blocks on I/O. Returns false when the event
  // was not queued: the sink is closed or resyncing, or the event is at or below the
  // cursor the connection was primed with (it already has it).
  bool send(const EventPtr& event);

  // Queues an event for this connection even while it is holding or resyncing (replies to
  // a client's own messages, pongs). Returns false when closed, or when the queue is at its
  // limits (QueueLimits): a client that keeps asking without reading the answers is then
  // closed (errc::slow_consumer) whatever the overflow policy, since an answer cannot be
  // dropped and brought back later as notifications are.
  bool send_direct(const EventPtr& event);

  // Sends a heartbeat unless something was written since the last call. A connection whose
  // write has waited for the socket over three calls without moving a byte
  // (Transport::write_progress: the client has read nothing for two whole intervals) is
  // closed instead (errc::slow_consumer): a write that never ends would keep it, and its
  // queue, for good. A client that reads slowly is not: its write moves. `on_time` false (the hub's
  // sweep came late: this process was held up, and could not move the write either) starts
  // the count again instead of judging.
  void heartbeat(bool on_time = true);

  // Closes the connection: drops what is queued, writes the protocol's farewell (a
  // WebSocket close frame) after the write in flight, then closes the transport. Idempotent.
  // A sink closed before its first event writes nothing, or its preamble (the HTTP head, the
  // handshake response) and farewell_before_start(reason) when that is not null.
  void close(std::error_code reason = {});

  // Answers a connection the hub refused (attach's error code: too many connections, the
  // hub stopped, a sink already closed) in HTTP, since nothing was written yet: 429 for
  // errc::too_many_user_connections, 503 (with Retry-After) for too_many_connections and
  // hub_stopped, 409 for already_attached and connection_closed, 500 otherwise, each with
  // {"error":MESSAGE} and Connection: close; then closes. An SSE client (EventSource) does
  // not reconnect after an error status, a WebSocket client sees its handshake refused. A
  // sink that has written anything already is closed as by close(reason).
  void refuse(std::error_code reason);
  // The bytes refuse() writes.
  static std::string refusal_response(std::error_code reason);

  // Ends the session on this connection, for a host whose user logged out or whose
  // credentials expired: drops what is queued and writes the event `session:end` with
  // {"reason":REASON} (for WebSocket, then close code 4401), so that a client knows not to
  // reconnect before it authenticates again; then closes (errc::session_ended). A sink that
  // was never attached writes its preamble first (the HTTP head, the handshake response):
  // the way to refuse a connection whose credentials have already expired with an answer
  // the notify client understands. Idempotent with close(). Throws std::invalid_argument
  // unless is_valid_session_end_reason(reason).
  void end_session(std::string_view reason);
  // 1 to 64 characters of a-z, 0-9, '_', '-' and '.': a code for programs
  // ("logged_out", "token_expired"), sent as it is.
  static bool is_valid_session_end_reason(std::string_view reason) noexcept;

  // end_session("expired") once `deadline` has passed, for credentials that expire (a
  // token's `exp`): the hub checks every HubOptions::session_check_interval (1 s), so the end
  // comes within that after the deadline, with no timer per connection. Before or after
  // attach; a later call replaces the deadline. For an exact moment, call end_session() from
  // a timer of your own.
  void end_session_at(std::chrono::steady_clock::time_point deadline) noexcept;
  // Whether end_session_at()'s deadline has passed at `now` (used by the hub).
  bool session_due(std::chrono::steady_clock::time_point now) const noexcept;
  // The `session:end` event with {"reason":REASON} (used by the hub for end_sessions()).
  // Throws std::invalid_argument unless is_valid_session_end_reason(reason).
  static EventPtr session_end_event(std::string_view reason);

  bool is_open() const noexcept { return !closed_.load(std::memory_order_acquire); }
  const std::string& user() const noexcept { return user_; }
  std::uint64_t id() const noexcept { return id_; }
  // When the hub attached it (by the wall clock: a replayed end of sessions from another
  // instance is compared with it); the clock's epoch before attach.
  std::chrono::system_clock::time_point attached_at() const noexcept {
    return std::chrono::system_clock::time_point(
        std::chrono::system_clock::duration(attached_at_.load(std::memory_order_relaxed)));
  }
  WireFormat format() const noexcept { return format_; }
  // "sse" or "websocket": what the connection speaks, for metrics.
  virtual std::string_view protocol() const noexcept = 0;
  std::string_view transport_kind() const noexcept { return transport_->kind(); }
  const std::shared_ptr<Transport>& transport() const noexcept { return transport_; }
  // Message events and bytes written to this connection so far (heartbeats and protocol
  // frames count as bytes only). Counted on the executor; safe to read from any thread.
  std::uint64_t events_written() const noexcept {
    return events_written_.load(std::memory_order_relaxed);
  }
  std::uint64_t bytes_written() const noexcept {
    return bytes_written_.load(std::memory_order_relaxed);
  }

  // --- used by the hub --------------------------------------------------------------
  // Binds the sink to its owner and user. Throws std::logic_error when already attached;
  // returns errc::connection_closed, binding nothing, when the sink is closed or closing
  // (its end would never reach the owner).
  std::error_code bind(std::shared_ptr<SinkOwner> owner, std::string user, QueueLimits limits);
  // Queues the priming events (init/replay or a reset), sets the cursor below which later
  // events are dropped, and releases the events held meanwhile.
  void prime(std::vector<EventPtr> first, std::uint64_t cursor);
  // Starts holding live events again (before a repair reads the store). Returns false,
  // changing nothing, when the sink is not live or resyncing (closed, or being primed).
  // A resyncing sink resyncs again after the prime: what its queue dropped lies at or
  // below last_seq(), so a repair from there would not bring it back.
  bool hold();
  // hold() before the reset snapshot of a resync (SinkOwner::on_sink_resync).
  bool hold_for_reset();
  // The highest sequence position this connection has been brought to: the cursor it was
  // primed with or the seq of the last ordered event queued for it.
  std::uint64_t last_seq() const;
  // Asks the owner for a repair (on_sink_repair) once the prime in progress is done.
  void repair_after_prime();

 protected:
  Sink(std::shared_ptr<Transport> transport, WireFormat format);

  // Hooks for concrete sinks, called on the executor.
  // Bytes written before the first event (an HTTP head, a retry field). Default: none.
  virtual std::string preamble() const { return {}; }
  // Called once when the sink is primed for the first time (start a read loop, ...).
  virtual void on_started() {}
  // Reading, for sinks that listen to their client. start_reading() delivers what arrives
  // to on_input() until it returns false or the input ends (on_input_end(), with eof,
  // operation_aborted after a close, or a socket error). When the transport can
  // read_now(), the bytes come from a buffer the thread shares, so a quiet connection
  // holds no read buffer; otherwise the sink allocates one on its first read.
  void start_reading();
  bool reading() const noexcept { return reading_; }  // a read or wait is in flight
  virtual bool on_input(std::string_view bytes) {
    (void)bytes;
    return true;
  }
  virtual void on_input_end(std::error_code ec) { (void)ec; }
  // Whether a heartbeat should be sent now; `wrote_since_last` tells whether a message went
  // out since the previous sweep, `on_time` whether this sweep came within 1.5 intervals of
  // the last (false: this process was held up, and judges nobody's silence). Default: only
  // to idle connections.
  virtual bool heartbeat_due(bool wrote_since_last, bool on_time) {
    (void)on_time;
    return !wrote_since_last;
  }
  // The last bytes to write when the connection is closed for `reason`; nullptr for none.
  virtual EventPtr farewell(std::error_code reason) const {
    (void)reason;
    return nullptr;
  }
  // The last bytes for a connection closed before its first event, after the preamble;
  // nullptr (the default) closes it without a word, for a host that answers it instead.
  virtual EventPtr farewell_before_start(std::error_code reason) const {
    (void)reason;
    return nullptr;
  }
  // The last bytes of end_session(): `message` is the `session:end` event. Default: it alone
  // (an SSE event, after which the stream ends).
  virtual EventPtr session_farewell(const EventPtr& message, std::string_view reason) const {
    (void)reason;
    return message;
  }
  // close() with the given last bytes instead of farewell(reason).
  void close_with(std::error_code reason, EventPtr last);
  // The same, but what is queued is written first: for a close the client asked for or
  // caused, after which the answers it was sent before (pongs, replies) must still arrive.
  void close_after_queue(std::error_code reason, EventPtr last);
  std::shared_ptr<SinkOwner> owner() const { return owner_.lock(); }

  // Lets go of the transport once the sink is closed. Default: transport()->close().
  // Called on the executor after the last write completed (or failed).
  virtual void release_transport(std::error_code reason) noexcept;

  // Closes immediately from the executor with `reason` (write error, EOF, protocol error).
  void fail(std::error_code reason);
  std::shared_ptr<TransportHandler> handler_ptr() noexcept;

 private:
  enum class State : std::uint8_t { holding, live, resync_pending, closing, closed };

  // The events waiting for this connection, in order. The first is kept inline: one at a
  // time is the usual case (a paced fan-out), and queueing it then needs no allocation of
  // its own, so a connection that had one event keeps no heap block for the next.
  class PendingEvents {
   public:
    bool empty() const noexcept { return !first_; }
    std::size_t size() const noexcept { return first_ ? 1 + rest_.size() : 0; }
    void push_back(EventPtr event) {
      if (!first_)
        first_ = std::move(event);
      else
        rest_.push_back(std::move(event));
    }
    void clear() noexcept {
      first_.reset();
      rest_.clear();
    }
    // Appends the events to `out`, in order, and leaves this empty (rest_ keeps its
    // capacity for the next burst).
    void move_to(std::vector<EventPtr>& out) {
      if (!first_)
        return;
      out.push_back(std::move(first_));
      for (auto& e : rest_)
        out.push_back(std::move(e));
      rest_.clear();
    }

   private:
    EventPtr first_;  // null when empty
    std::vector<EventPtr> rest_;
  };

  void on_write(std::error_code ec, std::size_t bytes) override;
  void on_read(std::error_code ec, std::size_t bytes) override;
  // send() without the kick: queued_kick tells the caller to kick() (or to hand the sink
  // to its lane in a FlushLane::Batch, as the hub's fan-out does).
  enum class Offer : std::uint8_t { refused, queued, queued_kick };
  Offer offer(const EventPtr& event);
  bool enqueue_locked(const EventPtr& event);  // true when the pipeline must be kicked
  // Whether queueing `size` more bytes would pass the limits (the prime's events aside).
  bool over_limits_locked(std::size_t size) const noexcept;
  void overflow_locked();
  void disconnect_slow_locked();  // closes with errc::slow_consumer, dropping the queue
  // What a close does with the queue and, before the first write, with the preamble:
  // close_with() drops the queue, close_after_queue() writes it first, refuse() drops it and
  // writes `last` instead of the preamble (or closes as close_with() once anything was
  // written).
  enum class Closing { drop_queue, after_queue, instead_of_preamble };
  void begin_close(std::error_code reason, EventPtr last, Closing how);
  void drop_stalled();  // on the executor, after heartbeat() found a write stuck
  bool start_holding(bool for_reset);
  friend class detail::FlushLane;
  // registry_slot_; offer(), lane_ and prefetch_queue() in its fan-out loop.
  friend class NotificationHub;
  void kick();
  void flush();
  // Cache hints for a loop over many sinks (see src/prefetch.hpp): the lines send() and
  // flush() touch first, and the transport a write goes to. Neither reads guarded state.
  void prefetch_queue() const noexcept;
  void prefetch_transport() const noexcept;
  // The writes of one flush, or of a FlushLane's pass over many sinks: the events taken
  // from the queues and their buffers (a sink's preamble before its first event).
  struct Outgoing {
    std::vector<EventPtr> events;
    std::vector<asio::const_buffer> buffers;
  };
  // One sink's write within an Outgoing.
  struct Taken {
    std::size_t first_event = 0;
    std::size_t events = 0;
    std::size_t first_buffer = 0;
    std::size_t buffers = 0;
    std::size_t bytes = 0;
  };
  // Appends pending_ to `out`, described by `taken`; false when there is nothing to write,
  // having done what an empty queue asks for (the pipeline idles, the sink resyncs or
  // closes).
  bool take_queue(Outgoing& out, Taken& taken);
  // Writes `taken` with write_now() where the transport has it; false when all of it
  // went, true when the rest is in flight or the sink failed.
  bool write_taken(Outgoing& out, const Taken& taken);
  // Ends a write of which the socket took `written` bytes (ec: would_block when it took
  // none, or the error): false when all of it went, true when the rest goes out
  // asynchronously (with copies of its events and buffers) or the sink failed.
  bool finish_write(Outgoing& out, const Taken& taken, std::size_t written, std::error_code ec);
  // For a FlushLane that wrote `taken` itself: `result` as sendmsg()'s (bytes or -errno).
  // Then goes on as flush() does.
  void finish_lane_write(Outgoing& out, const Taken& taken, long result);
  void wrote(const EventPtr* events, std::size_t count, std::size_t bytes);
  void read_available();
  void read_available_later();
  void finish_close(std::error_code reason);

  // What one delivery touches (offer(), then the flush and its write) comes first and
  // together: a fan-out reaches thousands of connections whose state is cold by then, and
  // each cache line it spans is a wait.
  std::shared_ptr<Transport> transport_;
  detail::FlushLane* lane_ = nullptr;  // set for single-threaded transports
  mutable std::mutex mutex_;
  // Guarded by mutex_ down to limits_, except format_ and the two atomics (packed in here
  // to share the flags' cache line).
  State state_ = State::holding;
  bool started_ = false;
  bool pipeline_active_ = false;  // a flush is posted or a write is in flight
  bool want_resync_ = false;      // overflow happened while holding
  bool want_repair_ = false;      // a repair was asked for while holding
  WireFormat format_;             // set once, by the constructor
  std::atomic<bool> closed_{false};
  std::atomic<bool> wrote_since_heartbeat_{false};
  std::uint64_t floor_ = 0;     // events with 0 < seq <= floor_ are dropped
  std::uint64_t last_seq_ = 0;  // highest seq queued (or primed to)
  PendingEvents pending_;
  std::size_t pending_bytes_ = 0;  // of pending_'s events but the prime's
  std::size_t prime_events_ = 0;   // pending_'s events that prime() queued, not yet taken
  QueueLimits limits_;
  // Touched only on the executor.
  std::size_t written_now_ = 0;            // bytes of the current write that write_now() took
  std::unique_ptr<std::string> preamble_;  // until the first write has taken it
  std::atomic<std::uint64_t> events_written_{0};  // written on the executor only
  std::atomic<std::uint64_t> bytes_written_{0};
  // An asynchronous write is waiting for the socket (set and cleared on the executor), how
  // many heartbeat sweeps in a row have seen it so without progress (1: seen once), and its
  // progress (Transport::write_progress) at the last of them: the sweep's thread keeps those two.
  std::atomic<bool> write_waiting_{false};
  std::atomic<std::uint8_t> sweeps_while_waiting_{0};
  std::atomic<std::uint64_t> progress_at_sweep_{0};

  // The rest is touched when a connection is bound, held, primed or closed, and by writes
  // that wait for the socket.
  std::uint64_t id_;
  std::string user_;
  std::weak_ptr<SinkOwner> owner_;
  std::vector<EventPtr> held_;  // guarded by mutex_, as are held_bytes_ and close_reason_
  std::size_t held_bytes_ = 0;
  std::error_code close_reason_;
  // Touched only on the executor. writing_ and buffers_ hold an asynchronous write.
  std::vector<EventPtr> writing_;
  std::vector<asio::const_buffer> buffers_;
  std::unique_ptr<char[]> read_buffer_;  // only for transports that cannot read_now()
  bool reading_ = false;
  std::size_t registry_slot_ = 0;  // guarded by the hub's registry lock
  // end_session_at(): steady_clock ticks since its epoch; 0 for none.
  std::atomic<std::chrono::steady_clock::rep> session_deadline_{0};
  std::atomic<std::chrono::system_clock::rep> attached_at_{0};  // set by bind()
};

}  // namespace notify
