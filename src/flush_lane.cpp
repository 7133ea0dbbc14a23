#include "flush_lane.hpp"

#include <notify/batched_writes.hpp>
#include <notify/sink.hpp>

#include "prefetch.hpp"
#include "uring_writer.hpp"

#include <asio/execution/context.hpp>
#include <asio/post.hpp>
#include <asio/query.hpp>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <iterator>

namespace notify::detail {

asio::execution_context::id FlushLane::id;

FlushLane::FlushLane(asio::execution_context& context)
    : asio::execution_context::service(context) {}

FlushLane::~FlushLane() = default;

FlushLane& FlushLane::of(const asio::any_io_executor& executor) {
  auto& lane = asio::use_service<FlushLane>(asio::query(executor, asio::execution::context));
  std::lock_guard lock(lane.mutex_);
  if (!lane.executor_)
    lane.executor_ = executor;
  return lane;
}

void FlushLane::schedule(std::shared_ptr<Sink> sink) {
  assert(sink->lane_ == this);  // a sink is flushed on its own context's thread
  {
    std::lock_guard lock(mutex_);
    queued_.push_back(std::move(sink));
    if (posted_)
      return;
    posted_ = true;
  }
  // executor_ was set before any sink of this lane existed and never changes after.
  asio::post(executor_, [this] { run(); });
}

void FlushLane::schedule_all(std::vector<std::shared_ptr<Sink>>& sinks) {
  assert(std::all_of(sinks.begin(), sinks.end(),
                     [this](const std::shared_ptr<Sink>& sink) { return sink->lane_ == this; }));
  {
    std::lock_guard lock(mutex_);
    queued_.insert(queued_.end(), std::make_move_iterator(sinks.begin()),
                   std::make_move_iterator(sinks.end()));
    sinks.clear();
    if (posted_)
      return;
    posted_ = true;
  }
  asio::post(executor_, [this] { run(); });
}

void FlushLane::run() {
  if (next_ == running_.size() && !take_queued())
    return;
  const auto end = std::min(running_.size(), next_ + sinks_per_turn);
  if (writer())
    flush_batched(next_, end);
  else
    flush_each(next_, end);
  next_ = end;
  if (next_ == running_.size() && !take_queued())
    return;
  asio::post(executor_, [this] { run(); });
}

void FlushLane::prefetch_ahead(std::size_t i) const {
  // Ask for the next sinks' state while this one is handled: each is cold by now. The
  // transport's lines come later, once the sink's line with its pointer has arrived.
  const auto count = running_.size();
  if (i + prefetch_distance < count)
    running_[i + prefetch_distance]->prefetch_queue();
  if (i + prefetch_distance / 2 < count)
    running_[i + prefetch_distance / 2]->prefetch_transport();
}

void FlushLane::flush_each(std::size_t first, std::size_t end) {
  for (auto i = first; i < end; ++i) {
    prefetch_ahead(i);
    running_[i]->flush();
    running_[i].reset();  // its control block is in cache now, not after the whole pass
  }
}

void FlushLane::flush_batched(std::size_t first, std::size_t end) {
  // Each sink's queue is taken into pass_ (one array of events and buffers for the pass,
  // not one per sink). A queue of one event (what a paced fan-out writes) becomes a send on
  // the ring, submitted once the pass has taken every queue; one that gathered several
  // leaves at once through the sink's own sendmsg(), which cost less than IORING_OP_SENDMSG
  // in flat-out fan-outs over WebSocket (docs/BENCHMARKS.md, "Batched writes").
  writes_.clear();
  for (auto i = first; i < end; ++i) {
    prefetch_ahead(i);
    Sink& sink = *running_[i];
    const int descriptor = sink.transport_->socket_descriptor();
    if (descriptor < 0) {
      sink.flush();
      continue;
    }
    LaneWrite write;
    if (!sink.take_queue(pass_, write.taken))
      continue;
    if (write.taken.buffers != 1) {
      if (!sink.write_taken(pass_, write.taken))
        sink.flush();
      continue;
    }
    // The bytes are the event's own, which pass_.events keeps alive whatever pass_ grows to.
    const auto& bytes = pass_.buffers[write.taken.first_buffer];
    writer_->add(descriptor, bytes.data(), bytes.size(), writes_.size());
    write.sink = i;
    writes_.push_back(write);
  }
  if (!writes_.empty()) {
    completions_.resize(writes_.size());
    const auto done = writer_->submit(completions_.data());
    if (done < writes_.size()) {
      // The kernel refused the ring itself: stop using it (closing it ends every use of
      // these buffers) and fail the writes it did not report. Their clients reconnect
      // and resume from their cursor.
      writer_.reset();
      batching_refused_ = true;
    }
    batched_writes_.fetch_add(done, std::memory_order_relaxed);
    for (std::size_t c = 0; c < done; ++c) {
      // The kernel's work since the take has pushed the sinks out of the nearest cache.
      if (c + prefetch_distance < done)
        running_[writes_[completions_[c + prefetch_distance].tag].sink]->prefetch_queue();
      auto& write = writes_[completions_[c].tag];
      write.completed = true;
      running_[write.sink]->finish_lane_write(pass_, write.taken, completions_[c].result);
    }
    for (auto& write : writes_) {
      if (!write.completed)
        running_[write.sink]->finish_lane_write(pass_, write.taken, -EIO);
    }
  }
  pass_.events.clear();
  pass_.buffers.clear();
  for (auto i = first; i < end; ++i)
    running_[i].reset();
}

UringWriter* FlushLane::writer() {
  if (!batching_wanted_.load(std::memory_order_relaxed)) {
    writer_.reset();
    return nullptr;
  }
  if (!writer_ && !batching_refused_) {
    writer_ = UringWriter::open(sinks_per_turn);
    batching_refused_ = !writer_;
  }
  return writer_.get();
}

bool FlushLane::take_queued() {
  running_.clear();
  next_ = 0;
  std::lock_guard lock(mutex_);
  if (queued_.empty()) {
    posted_ = false;
    return false;
  }
  running_.swap(queued_);
  return true;
}

void FlushLane::shutdown() {
  std::vector<std::shared_ptr<Sink>> dropped;
  {
    std::lock_guard lock(mutex_);
    dropped.swap(queued_);
  }
  running_.clear();
  next_ = 0;
  writer_.reset();
}

void FlushLane::notify_fork(asio::execution_context::fork_event event) {
  // The parent goes on with its ring; the child must not submit to the same one. Closing
  // the child's copy leaves the parent's ring as it is.
  if (event == asio::execution_context::fork_child) {
    writer_.reset();
    batching_refused_ = false;
  }
}

}  // namespace notify::detail

namespace notify {

void set_batched_writes(asio::execution_context& context, bool enabled) {
  asio::use_service<detail::FlushLane>(context).enable_batched_writes(enabled);
}

bool batched_writes_supported() {
  static const bool supported = detail::UringWriter::open(1) != nullptr;
  return supported;
}

std::uint64_t batched_write_count(asio::execution_context& context) {
  return asio::use_service<detail::FlushLane>(context).batched_writes();
}

}  // namespace notify
