#include "flush_lane.hpp"

#include <notify/sink.hpp>

#include "prefetch.hpp"

#include <asio/execution/context.hpp>
#include <asio/post.hpp>
#include <asio/query.hpp>

#include <algorithm>
#include <iterator>

namespace notify::detail {

asio::execution_context::id FlushLane::id;

FlushLane::FlushLane(asio::execution_context& context)
    : asio::execution_context::service(context) {}

FlushLane& FlushLane::of(const asio::any_io_executor& executor) {
  auto& lane = asio::use_service<FlushLane>(asio::query(executor, asio::execution::context));
  std::lock_guard lock(lane.mutex_);
  if (!lane.executor_)
    lane.executor_ = executor;
  return lane;
}

void FlushLane::schedule(std::shared_ptr<Sink> sink) {
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
  const auto count = running_.size();
  const auto end = std::min(count, next_ + sinks_per_turn);
  for (auto i = next_; i < end; ++i) {
    // Ask for the next sinks' state while this one is written: each is cold by now.
    if (i + prefetch_distance < count)
      running_[i + prefetch_distance]->prefetch_queue();
    if (i + prefetch_distance / 2 < count)
      running_[i + prefetch_distance / 2]->prefetch_transport();
    running_[i]->flush();
    running_[i].reset();  // its control block is in cache now, not after the whole pass
  }
  next_ = end;
  if (next_ == count && !take_queued())
    return;
  asio::post(executor_, [this] { run(); });
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
}

}  // namespace notify::detail
