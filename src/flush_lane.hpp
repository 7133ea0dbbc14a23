// FlushLane: the sinks of one single-threaded execution context that have something to
// write, flushed together by one posted task.
//
// A fan-out touches thousands of sinks; posting a handler to each would cost an allocation
// and a scheduler round trip per delivery. Instead a sink with a new queue registers here
// and the first registration while no task is posted posts one task that flushes the
// registered sinks, so events that pile up meanwhile leave in one gathered write per
// connection.
//
// The task flushes at most sinks_per_turn sinks and posts itself again for the rest, so a
// fan-out to thousands of connections lets the context read its sockets in between: a
// publish that arrives meanwhile joins the queues of the sinks not yet written, and leaves
// with the earlier event in the same write (corking), and no request waits for a whole
// fan-out to finish.
//
// Where the kernel allows io_uring (and set_batched_writes() did not turn it off), a pass
// takes the queues of its sinks first and hands the writes of one event each to the kernel
// in one submission (UringWriter): a paced fan-out then makes one system call per pass, not
// one per connection. A queue of several events is written by its sink's own sendmsg(), and
// a write the socket does not take in full goes on as the sink's own.
//
// After fork() the child shares the parent's ring (its memory is mapped shared), so on
// notify_fork(fork_child) the lane lets go of it and opens a ring of its own when it next
// writes; a host that forks calls io_context::notify_fork() as asio requires.
//
// Thread safety: schedule(), schedule_all(), enable_batched_writes() and batched_writes()
// from any thread; the task runs on the context's one thread. A Batch belongs to the
// thread that fills it.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/execution_context.hpp>

#include <notify/sink.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "uring_writer.hpp"

namespace notify::detail {

class FlushLane final : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;
  static constexpr std::size_t sinks_per_turn = 64;

  explicit FlushLane(asio::execution_context& context);
  ~FlushLane() override;

  // The lane of the context `executor` belongs to; its tasks are posted to `executor`.
  static FlushLane& of(const asio::any_io_executor& executor);

  // Flushes `sink` soon, on the lane's context.
  void schedule(std::shared_ptr<Sink> sink);
  // schedule() for each of `sinks`, under one lock; leaves `sinks` empty.
  void schedule_all(std::vector<std::shared_ptr<Sink>>& sinks);

  // Whether passes write their sinks' sockets with one io_uring submission (the default).
  // Takes effect from the next pass.
  void enable_batched_writes(bool enabled) noexcept {
    batching_wanted_.store(enabled, std::memory_order_relaxed);
  }
  // Socket writes made through io_uring so far.
  std::uint64_t batched_writes() const noexcept {
    return batched_writes_.load(std::memory_order_relaxed);
  }

  // The sinks a fan-out loop kicked, handed to their lanes a chunk at a time: one lock per
  // chunk instead of one per connection. A sink added here is flushed only once its chunk
  // is handed over (at the latest when the batch is destroyed), so a loop adds each sink
  // right after the send that asked for the kick. A host with several single-threaded
  // contexts hands connections to them in turn, so a fan-out alternates lanes: the batch
  // fills a chunk per lane, and the other threads start writing after their first chunk,
  // while the loop goes on.
  class Batch {
   public:
    static constexpr std::size_t chunk = 128;
    Batch() = default;
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    ~Batch() { submit(); }

    void add(FlushLane& lane, const std::shared_ptr<Sink>& sink) {
      Slot& slot = slot_of(lane);
      if (slot.sinks.size() == chunk)
        slot.submit();
      // Reserved here, not in the constructor: a fan-out to no lane sink allocates nothing.
      if (slot.sinks.capacity() == 0)
        slot.sinks.reserve(chunk);
      slot.sinks.push_back(sink);
    }
    void submit() {
      for (auto& slot : slots_)
        slot.submit();
    }

   private:
    struct Slot {
      FlushLane* lane = nullptr;
      std::vector<std::shared_ptr<Sink>> sinks;
      void submit() {
        if (!sinks.empty())
          lane->schedule_all(sinks);
      }
    };

    // Connections handed to the threads in turn make a fan-out visit the lanes in the same
    // order again and again, so the search starts at the last slot: one or two comparisons.
    Slot& slot_of(FlushLane& lane) {
      const auto n = slots_.size();
      for (std::size_t k = 0, i = last_; k < n; ++k, i = i + 1 == n ? 0 : i + 1) {
        if (slots_[i].lane == &lane) {
          last_ = i;
          return slots_[i];
        }
      }
      slots_.push_back(Slot{&lane, {}});
      last_ = n;
      return slots_.back();
    }

    std::vector<Slot> slots_;
    std::size_t last_ = 0;
  };

 private:
  void shutdown() override;
  void notify_fork(asio::execution_context::fork_event event) override;
  void run();
  // Starts the next pass with the sinks queued meanwhile; false, with no task posted any
  // more, when there are none.
  bool take_queued();
  // Prefetches the sinks of running_ a few places after `i`.
  void prefetch_ahead(std::size_t i) const;
  // Flushes running_[first, end) one sink after the other.
  void flush_each(std::size_t first, std::size_t end);
  // Flushes running_[first, end) with one submission for all their socket writes.
  void flush_batched(std::size_t first, std::size_t end);
  // The ring when batched writes are wanted and the kernel allows them; null otherwise.
  UringWriter* writer();

  std::mutex mutex_;
  asio::any_io_executor executor_;  // set by the first of()
  std::vector<std::shared_ptr<Sink>> queued_;
  bool posted_ = false;  // a task is posted or running; it posts itself until both are empty
  // Only touched by the task: the sinks of this pass and how many of them are flushed.
  std::vector<std::shared_ptr<Sink>> running_;
  std::size_t next_ = 0;

  // One socket write of a batched pass; its events and buffers are in pass_.
  struct LaneWrite {
    std::size_t sink = 0;  // index into running_
    Sink::Taken taken;
    bool completed = false;
  };
  std::atomic<bool> batching_wanted_{true};
  std::atomic<std::uint64_t> batched_writes_{0};
  // Only touched by the task.
  bool batching_refused_ = false;  // the kernel refused io_uring: not asked again
  std::unique_ptr<UringWriter> writer_;
  Sink::Outgoing pass_;
  std::vector<LaneWrite> writes_;
  std::vector<UringWriter::Completion> completions_;
};

}  // namespace notify::detail
