// FlushLane: the sinks of one single-threaded execution context that have something to
// write, flushed together by one posted task.
//
// A fan-out touches thousands of sinks; posting a handler to each would cost an allocation
// and a scheduler round trip per delivery. Instead a sink with a new queue registers here
// and the first registration after a run posts one task that flushes them all, so events
// that pile up meanwhile leave in one gathered write per connection.
//
// Thread safety: schedule() from any thread; the task runs on the context's one thread.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/execution_context.hpp>

#include <memory>
#include <mutex>
#include <vector>

namespace notify {
class Sink;

namespace detail {

class FlushLane final : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;

  explicit FlushLane(asio::execution_context& context);

  // The lane of the context `executor` belongs to; its tasks are posted to `executor`.
  static FlushLane& of(const asio::any_io_executor& executor);

  // Flushes `sink` soon, on the lane's context.
  void schedule(std::shared_ptr<Sink> sink);

 private:
  void shutdown() override;
  void run();

  std::mutex mutex_;
  asio::any_io_executor executor_;  // set by the first of()
  std::vector<std::shared_ptr<Sink>> queued_;
  bool posted_ = false;
  std::vector<std::shared_ptr<Sink>> running_;  // only touched by the task
};

}  // namespace detail
}  // namespace notify
