#include "flush_lane.hpp"

#include <notify/sink.hpp>

#include <asio/execution/context.hpp>
#include <asio/post.hpp>
#include <asio/query.hpp>

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

void FlushLane::run() {
  {
    std::lock_guard lock(mutex_);
    running_.swap(queued_);
    posted_ = false;
  }
  for (const auto& sink : running_)
    sink->flush();
  running_.clear();
}

void FlushLane::shutdown() {
  std::vector<std::shared_ptr<Sink>> dropped;
  {
    std::lock_guard lock(mutex_);
    dropped.swap(queued_);
  }
  running_.clear();
}

}  // namespace notify::detail
