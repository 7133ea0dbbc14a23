#include "flush_lane.hpp"
#include "http_error_response.hpp"
#include "io_result.hpp"
#include "prefetch.hpp"

#include <notify/error.hpp>
#include <notify/sink.hpp>

#include <asio/error.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <array>
#include <iterator>
#include <utility>
#include <stdexcept>

namespace notify {
namespace {
std::atomic<std::uint64_t> next_sink_id{1};

}  // namespace

Sink::Sink(std::shared_ptr<Transport> transport, WireFormat format)
    : transport_(std::move(transport)),
      format_(format),
      id_(next_sink_id.fetch_add(1, std::memory_order_relaxed)) {
  if (!transport_)
    throw std::invalid_argument("sink: the transport is null");
  if (transport_->single_threaded())
    lane_ = &detail::FlushLane::of(transport_->executor());
}

Sink::~Sink() = default;

std::shared_ptr<TransportHandler> Sink::handler_ptr() noexcept {
  return std::shared_ptr<TransportHandler>(shared_from_this(),
                                           static_cast<TransportHandler*>(this));
}

std::error_code Sink::bind(std::shared_ptr<SinkOwner> owner, std::string user, QueueLimits limits) {
  std::lock_guard lock(mutex_);
  if (!user_.empty())
    throw std::logic_error("sink: already attached");
  if (state_ == State::closing || state_ == State::closed)
    return errc::connection_closed;
  owner_ = std::move(owner);
  user_ = std::move(user);
  limits_ = limits;
  attached_at_.store(std::chrono::system_clock::now().time_since_epoch().count(),
                     std::memory_order_relaxed);
  return {};
}

bool Sink::send(const EventPtr& event) {
  const auto result = offer(event);
  if (result == Offer::queued_kick)
    kick();
  return result != Offer::refused;
}

Sink::Offer Sink::offer(const EventPtr& event) {
  if (!event)
    return Offer::refused;
  std::lock_guard lock(mutex_);
  switch (state_) {
    case State::closing:
    case State::closed:
    case State::resync_pending:
      return Offer::refused;
    case State::holding: {
      // Kept back until prime(); bounded like the queue.
      held_bytes_ += event->encoded_size(format_);
      held_.push_back(event);
      if (held_.size() > limits_.max_events || held_bytes_ > limits_.max_bytes) {
        held_.clear();
        held_bytes_ = 0;
        want_resync_ = true;
      }
      return Offer::queued;
    }
    case State::live:
      break;
  }
  bool kick_needed;
  if (event->seq() == 0 || event->first_seq() > floor_) {
    kick_needed = enqueue_locked(event);  // the usual case: all of it is new here
  } else {
    auto needed = trim_to_after(event, floor_);
    if (!needed)
      return Offer::refused;
    kick_needed = enqueue_locked(needed);
  }
  return kick_needed ? Offer::queued_kick : Offer::queued;
}

bool Sink::over_limits_locked(std::size_t size) const noexcept {
  // The prime's events (init and what the connection missed, or a reset) are not counted:
  // the client has not had the chance to read them yet, and dropping them for the first live
  // event would answer a client that reads with a reset.
  const auto counted = pending_.size() - prime_events_;
  return counted != 0 &&
         (counted >= limits_.max_events || pending_bytes_ + size > limits_.max_bytes);
}

bool Sink::enqueue_locked(const EventPtr& event) {
  const auto size = event->encoded_size(format_);
  if (over_limits_locked(size)) {
    overflow_locked();
  } else {
    pending_.push_back(event);
    pending_bytes_ += size;
    last_seq_ = std::max(last_seq_, event->seq());
  }
  if (pipeline_active_)
    return false;
  pipeline_active_ = true;
  return true;
}

void Sink::overflow_locked() {
  if (limits_.overflow == OverflowPolicy::disconnect) {
    disconnect_slow_locked();
    return;
  }
  pending_.clear();
  pending_bytes_ = 0;
  prime_events_ = 0;
  state_ = State::resync_pending;
}

void Sink::disconnect_slow_locked() {
  pending_.clear();
  pending_bytes_ = 0;
  prime_events_ = 0;
  held_.clear();
  held_bytes_ = 0;
  state_ = State::closing;
  close_reason_ = make_error_code(errc::slow_consumer);
  if (auto last = farewell(close_reason_))
    pending_.push_back(std::move(last));
}

void Sink::kick() {
  if (lane_) {
    lane_->schedule(shared_from_this());
    return;
  }
  asio::post(transport_->executor(), [self = shared_from_this()] { self->flush(); });
}

void Sink::prefetch_queue() const noexcept {
  // The lines from the shared_ptr control block, just before a make_shared sink (kick()
  // takes a reference to it), to the last field a delivery touches.
  const auto* line = reinterpret_cast<const char*>(this) - 16;
  const auto* last = reinterpret_cast<const char*>(&bytes_written_ + 1) - 1;
  for (; line < last; line += 64)
    detail::prefetch(line);
  detail::prefetch(last);
}

void Sink::prefetch_transport() const noexcept {
  // A write reads the transport's vtable and its socket's descriptor: the first two lines.
  const auto* transport = reinterpret_cast<const char*>(transport_.get());
  detail::prefetch(transport);
  detail::prefetch(transport + 64);
}

void Sink::flush() {
  // Reused by every flush on this thread; moved into the sink only when a write has to
  // wait for the socket. Never used across a call that could flush again.
  thread_local Outgoing scratch;
  auto& out = scratch;
  for (;;) {
    Taken taken;
    if (!take_queue(out, taken))
      return;
    const bool stop = write_taken(out, taken);  // in flight or failed: on_write() goes on
    out.events.clear();
    out.buffers.clear();
    if (stop)
      return;
  }
}

bool Sink::take_queue(Outgoing& out, Taken& taken) {
  std::shared_ptr<SinkOwner> resync_owner;
  std::error_code close_reason;
  taken.first_event = out.events.size();
  {
    std::lock_guard lock(mutex_);
    if (state_ == State::closed) {
      pipeline_active_ = false;
      return false;
    }
    if (pending_.empty()) {
      pipeline_active_ = false;
      if (state_ == State::resync_pending) {
        resync_owner = owner_.lock();
        if (!resync_owner)
          close_reason = make_error_code(errc::hub_stopped);
      } else if (state_ == State::closing) {
        close_reason = close_reason_;
      } else {
        return false;
      }
    } else {
      pending_.move_to(out.events);
      pending_bytes_ = 0;
      prime_events_ = 0;
    }
  }
  if (resync_owner) {
    resync_owner->on_sink_resync(shared_from_this());
    return false;
  }
  taken.events = out.events.size() - taken.first_event;
  if (taken.events == 0) {  // closing, with nothing left to write
    finish_close(close_reason);
    return false;
  }
  taken.first_buffer = out.buffers.size();
  taken.bytes = 0;
  if (preamble_) {
    out.buffers.push_back(asio::buffer(*preamble_));
    taken.bytes += preamble_->size();
  }
  for (std::size_t i = taken.first_event; i < out.events.size(); ++i) {
    const auto& bytes = out.events[i]->encoded(format_);
    out.buffers.push_back(asio::buffer(bytes));
    taken.bytes += bytes.size();
  }
  taken.buffers = out.buffers.size() - taken.first_buffer;
  return true;
}

bool Sink::write_taken(Outgoing& out, const Taken& taken) {
  std::error_code ec = asio::error::would_block;
  std::size_t written = 0;
  if (transport_->can_write_now()) {
    written = transport_->write_now(
        BufferSpan{out.buffers.data() + taken.first_buffer, taken.buffers}, ec);
  }
  return finish_write(out, taken, written, ec);
}

bool Sink::finish_write(Outgoing& out, const Taken& taken, std::size_t written,
                        std::error_code ec) {
  written_now_ = written;
  if (ec && ec != asio::error::would_block) {
    fail(ec);
    return true;
  }
  const auto events = out.events.begin() + static_cast<std::ptrdiff_t>(taken.first_event);
  if (written == taken.bytes) {
    wrote(&*events, taken.events, taken.bytes);
    return false;
  }
  // What the socket did not take goes out asynchronously; its events and buffers must
  // live in the sink until on_write().
  auto first = out.buffers.begin() + static_cast<std::ptrdiff_t>(taken.first_buffer);
  const auto last = first + static_cast<std::ptrdiff_t>(taken.buffers);
  std::size_t skip = written;
  while (skip >= first->size()) {
    skip -= first->size();
    ++first;
  }
  buffers_.assign(first, last);
  buffers_.front() += skip;
  writing_.assign(std::make_move_iterator(events),
                  std::make_move_iterator(events + static_cast<std::ptrdiff_t>(taken.events)));
  write_waiting_.store(true, std::memory_order_relaxed);
  transport_->async_write(BufferSpan{buffers_.data(), buffers_.size()}, handler_ptr());
  return true;
}

void Sink::finish_lane_write(Outgoing& out, const Taken& taken, long result) {
  std::error_code ec;
  const auto written = detail::bytes_transferred(result, ec);
  if (!finish_write(out, taken, written, ec))
    flush();
}

void Sink::wrote(const EventPtr* events, std::size_t count, std::size_t bytes) {
  std::size_t messages = 0;
  for (std::size_t i = 0; i < count; ++i)
    if (events[i]->kind() == Event::Kind::message)
      ++messages;
  if (messages)
    wrote_since_heartbeat_.store(true, std::memory_order_relaxed);
  preamble_.reset();
  // One writer (the executor): a plain load and store, no locked read-modify-write.
  events_written_.store(events_written_.load(std::memory_order_relaxed) + messages,
                        std::memory_order_relaxed);
  bytes_written_.store(bytes_written_.load(std::memory_order_relaxed) + bytes,
                       std::memory_order_relaxed);
}

void Sink::on_write(std::error_code ec, std::size_t bytes) {
  write_waiting_.store(false, std::memory_order_relaxed);
  sweeps_while_waiting_.store(0, std::memory_order_relaxed);
  if (ec) {
    writing_.clear();
    fail(ec);
    return;
  }
  wrote(writing_.data(), writing_.size(), written_now_ + bytes);
  // A connection that needed an asynchronous write is slow or busy; it keeps no capacity
  // once it is idle again.
  std::vector<EventPtr>().swap(writing_);
  std::vector<asio::const_buffer>().swap(buffers_);
  flush();
}

namespace {
constexpr std::size_t own_read_buffer_size = 1024;
constexpr std::size_t shared_read_buffer_size = 16 * 1024;
// Reads per wake-up before a connection with much to say lets the others run.
constexpr int reads_per_turn = 8;

// The read buffer a thread's sinks share; `busy` guards against a nested read_available().
struct SharedReadBuffer {
  std::array<char, shared_read_buffer_size> bytes;
  bool busy = false;
};
thread_local SharedReadBuffer shared_read_buffer;
}  // namespace

void Sink::start_reading() {
  if (transport_->can_read_now()) {
    read_available();
    return;
  }
  if (!read_buffer_)
    read_buffer_ = std::make_unique<char[]>(own_read_buffer_size);
  reading_ = true;
  transport_->async_read_some(asio::buffer(read_buffer_.get(), own_read_buffer_size),
                              handler_ptr());
}

void Sink::read_available() {
  auto& shared = shared_read_buffer;
  if (shared.busy) {  // called from inside on_input(): continue from a fresh handler
    read_available_later();
    return;
  }
  for (int turn = 0; turn < reads_per_turn; ++turn) {
    std::error_code ec;
    const auto n = transport_->read_now(asio::buffer(shared.bytes), ec);
    if (ec == asio::error::would_block) {
      reading_ = true;
      transport_->async_wait_readable(handler_ptr());
      return;
    }
    if (ec) {
      on_input_end(ec);
      return;
    }
    shared.busy = true;
    const bool more = on_input(std::string_view(shared.bytes.data(), n));
    shared.busy = false;
    if (!more)
      return;
  }
  read_available_later();  // much more is waiting: let other connections run first
}

void Sink::read_available_later() {
  reading_ = true;
  asio::post(transport_->executor(), [self = shared_from_this()] {
    self->reading_ = false;
    self->read_available();
  });
}

void Sink::on_read(std::error_code ec, std::size_t bytes) {
  reading_ = false;
  if (ec) {
    on_input_end(ec);
    return;
  }
  if (!read_buffer_) {  // a wait for readiness completed
    read_available();
    return;
  }
  if (on_input(std::string_view(read_buffer_.get(), bytes)))
    start_reading();
}

void Sink::heartbeat(bool on_time) {
  if (write_waiting_.load(std::memory_order_relaxed)) {
    // The same write has moved no byte over two whole intervals between sweeps: the client
    // reads nothing (or the host's write never completes). Its close frame, or anything
    // else, would wait behind that write for ever.
    const auto moved = transport_->write_progress();
    const auto before = progress_at_sweep_.exchange(moved, std::memory_order_relaxed);
    const auto seen = sweeps_while_waiting_.load(std::memory_order_relaxed);
    if (seen == 0 || before != moved || !on_time) {
      sweeps_while_waiting_.store(1, std::memory_order_relaxed);  // first seen, moved, or late
      return;
    }
    if (seen < 2) {  // one whole interval without a byte: a second one decides
      sweeps_while_waiting_.store(2, std::memory_order_relaxed);
      return;
    }
    sweeps_while_waiting_.store(3, std::memory_order_relaxed);
    asio::post(transport_->executor(), [self = shared_from_this()] { self->drop_stalled(); });
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (state_ != State::live)
      return;
  }
  if (!heartbeat_due(wrote_since_heartbeat_.exchange(false, std::memory_order_relaxed), on_time))
    return;
  send(Event::heartbeat());
}

bool Sink::send_direct(const EventPtr& event) {
  if (!event)
    return false;
  bool kick_needed = false;
  bool queued = true;
  {
    std::lock_guard lock(mutex_);
    if (state_ == State::closing || state_ == State::closed)
      return false;
    const auto size = event->encoded_size(format_);
    if (over_limits_locked(size)) {
      // A client that keeps sending (pings, messages) without reading the answers: they
      // cannot be dropped as notifications can (a resync brings those back), so it goes.
      disconnect_slow_locked();
      queued = false;
    } else {
      pending_bytes_ += size;
      pending_.push_back(event);
    }
    if (!pipeline_active_ && (state_ != State::holding || !queued)) {
      pipeline_active_ = true;
      kick_needed = true;
    }
  }
  if (kick_needed)
    kick();
  return queued;
}

void Sink::close(std::error_code reason) {
  close_with(reason, nullptr);
}

bool Sink::is_valid_session_end_reason(std::string_view reason) noexcept {
  if (reason.empty() || reason.size() > 64)
    return false;
  for (const char c : reason)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
      return false;
  return true;
}

void Sink::end_session_at(std::chrono::steady_clock::time_point deadline) noexcept {
  // A deadline at the clock's epoch itself would read as none: one tick later is the same.
  session_deadline_.store(
      std::max<std::chrono::steady_clock::rep>(deadline.time_since_epoch().count(), 1),
      std::memory_order_relaxed);
}

bool Sink::session_due(std::chrono::steady_clock::time_point now) const noexcept {
  const auto deadline = session_deadline_.load(std::memory_order_relaxed);
  return deadline != 0 && deadline <= now.time_since_epoch().count();
}

EventPtr Sink::session_end_event(std::string_view reason) {
  if (!is_valid_session_end_reason(reason))
    throw std::invalid_argument("notify: a session's end reason is 1 to 64 of a-z 0-9 _ - .");
  // The reason needs no JSON escaping: its characters are checked above.
  std::string data = "{\"reason\":\"";
  data += reason;
  data += "\"}";
  return Event::message(std::string(event_type::session_end), {}, std::move(data), 0);
}

void Sink::end_session(std::string_view reason) {
  close_with(make_error_code(errc::session_ended),
             session_farewell(session_end_event(reason), reason));
}

std::string Sink::refusal_response(std::error_code reason) {
  if (reason == errc::too_many_user_connections)
    return detail::http_error_response(429, reason.message(), "Cache-Control: no-store\r\n");
  if (reason == errc::too_many_connections || reason == errc::hub_stopped)
    return detail::http_error_response(503, reason.message(),
                                       "Cache-Control: no-store\r\nRetry-After: 5\r\n");
  const int status =
      reason == errc::already_attached || reason == errc::connection_closed ? 409 : 500;
  return detail::http_error_response(status, reason.message(), "Cache-Control: no-store\r\n");
}

void Sink::refuse(std::error_code reason) {
  begin_close(reason, Event::raw(refusal_response(reason)), Closing::instead_of_preamble);
}

void Sink::close_with(std::error_code reason, EventPtr last) {
  begin_close(reason, std::move(last), Closing::drop_queue);
}

void Sink::close_after_queue(std::error_code reason, EventPtr last) {
  begin_close(reason, std::move(last), Closing::after_queue);
}

void Sink::begin_close(std::error_code reason, EventPtr last, Closing how) {
  bool kick_needed = false;
  {
    std::lock_guard lock(mutex_);
    if (state_ == State::closing || state_ == State::closed)
      return;
    state_ = State::closing;
    close_reason_ = reason;
    if (how != Closing::after_queue) {
      pending_.clear();
      pending_bytes_ = 0;
      prime_events_ = 0;
    }
    held_.clear();
    held_bytes_ = 0;
    if (started_) {
      if (!last || how == Closing::instead_of_preamble)  // something was written: a close
        last = farewell(reason);
    } else if (how == Closing::instead_of_preamble) {
      started_ = true;  // `last` is written in place of the preamble
    } else {
      // Never primed, so the client has had no answer yet. When it should hear why, the
      // preamble (the HTTP head or handshake response) goes first, so that it sees a close
      // it can act on rather than a dropped connection.
      if (!last)
        last = farewell_before_start(reason);
      if (last) {
        started_ = true;
        if (auto head = preamble(); !head.empty())
          preamble_ = std::make_unique<std::string>(std::move(head));
      }
    }
    if (last)
      pending_.push_back(std::move(last));
    if (!pipeline_active_) {
      pipeline_active_ = true;
      kick_needed = true;
    }
  }
  if (kick_needed)
    kick();
}

void Sink::fail(std::error_code reason) {
  finish_close(reason);
}

void Sink::drop_stalled() {
  // Not when the write ended meanwhile (on_write() reset the count), even if another began.
  if (write_waiting_.load(std::memory_order_relaxed) &&
      sweeps_while_waiting_.load(std::memory_order_relaxed) >= 3)
    fail(make_error_code(errc::slow_consumer));
}

void Sink::release_transport(std::error_code) noexcept {
  transport_->close();
}

void Sink::finish_close(std::error_code reason) {
  {
    std::lock_guard lock(mutex_);
    if (state_ == State::closed)
      return;
    state_ = State::closed;
    pending_.clear();
    prime_events_ = 0;
    held_.clear();
  }
  closed_.store(true, std::memory_order_release);
  release_transport(reason);
  if (auto owner = owner_.lock())
    owner->on_sink_closed(shared_from_this(), reason);
}

bool Sink::hold() {
  return start_holding(false);
}

bool Sink::hold_for_reset() {
  return start_holding(true);
}

bool Sink::start_holding(bool reset) {
  std::lock_guard lock(mutex_);
  if (state_ != State::live && state_ != State::resync_pending)
    return false;
  // prime() resyncs again unless the prime is the reset itself; an overflow of the held
  // events that comes later sets it again.
  want_resync_ = !reset && state_ == State::resync_pending;
  state_ = State::holding;
  return true;
}

void Sink::repair_after_prime() {
  bool now = false;
  {
    std::lock_guard lock(mutex_);
    if (state_ == State::holding)
      want_repair_ = true;
    else
      now = state_ == State::live;
  }
  if (now) {
    asio::post(transport_->executor(), [self = shared_from_this()] {
      if (auto o = self->owner_.lock())
        o->on_sink_repair(self);
    });
  }
}

std::uint64_t Sink::last_seq() const {
  std::lock_guard lock(mutex_);
  return last_seq_;
}

void Sink::prime(std::vector<EventPtr> first, std::uint64_t cursor) {
  bool kick_needed = false;
  bool first_start = false;
  bool repair = false;
  {
    std::lock_guard lock(mutex_);
    if (state_ != State::holding)
      return;
    repair = std::exchange(want_repair_, false);
    const bool was_active = pipeline_active_;
    floor_ = std::max(floor_, cursor);
    last_seq_ = std::max(last_seq_, cursor);
    if (!started_) {
      started_ = true;
      first_start = true;
      if (auto head = preamble(); !head.empty())
        preamble_ = std::make_unique<std::string>(std::move(head));
    }
    state_ = State::live;
    prime_events_ += first.size();  // not counted against the limits (over_limits_locked)
    for (auto& e : first)
      pending_.push_back(std::move(e));
    for (const auto& e : held_) {
      if (state_ != State::live)
        break;
      if (auto needed = trim_to_after(e, floor_))
        enqueue_locked(needed);
    }
    held_.clear();
    held_bytes_ = 0;
    if (want_resync_ && state_ == State::live) {
      want_resync_ = false;
      overflow_locked();
    }
    if (!was_active) {
      pipeline_active_ = true;
      kick_needed = true;
    }
  }
  if (first_start) {
    asio::post(transport_->executor(), [self = shared_from_this(), kick_needed] {
      self->on_started();
      if (kick_needed)
        self->flush();
    });
  } else if (kick_needed) {
    kick();
  }
  if (repair) {
    asio::post(transport_->executor(), [self = shared_from_this()] {
      if (auto o = self->owner_.lock())
        o->on_sink_repair(self);
    });
  }
}

}  // namespace notify
