// UringWriter: many non-blocking socket writes handed to the kernel in one system call
// (io_uring), for a FlushLane's pass over its sinks.
//
// Every write is one buffer sent with MSG_DONTWAIT (IORING_OP_SEND): it takes what the
// socket's buffer takes now and never waits, so all of them have completed when submit() returns
// and the caller keeps its buffers only for the call. A paced fan-out then pays one system call
// entry per pass instead of one per connection. Where the kernel refuses io_uring (not built in,
// disabled by sysctl, or blocked by a container's seccomp filter) open() returns null and the lane
// writes each socket with its own sendmsg().
//
// Thread safety: none; the lane's thread uses it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace notify::detail {

class UringWriter {
 public:
  struct Completion {
    std::uint64_t tag;
    long result;  // as send(): the bytes written, or -errno (-EAGAIN: the buffer was full)
  };

  // A ring for up to `entries` writes per submit(); null where io_uring is unavailable.
  static std::unique_ptr<UringWriter> open(unsigned entries);
  ~UringWriter();
  UringWriter(const UringWriter&) = delete;
  UringWriter& operator=(const UringWriter&) = delete;

  // Queues a send of `size` bytes at `data` to `descriptor`, at most open()'s `entries`
  // before a submit(). The bytes must stay valid until submit() returns.
  void add(int descriptor, const void* data, std::size_t size, std::uint64_t tag);

  // Starts the queued writes, waits for them and stores one completion each in `out` (room
  // for every write queued), in no particular order. Returns how many were stored: fewer only when
  // the kernel refused the ring itself, after which the writer must be destroyed before
  // the buffers of the writes without a completion are.
  std::size_t submit(Completion* out);

 private:
  UringWriter() = default;
  // Whether a send on this kernel completes at once when its socket is full (open()).
  bool never_waits();

  int ring_ = -1;
  unsigned queued_ = 0;
  unsigned sq_tail_ = 0;  // our copy of the submission tail, published by submit()
  void* sq_map_ = nullptr;
  std::size_t sq_map_size_ = 0;
  void* sqes_ = nullptr;  // the submission entries, mapped on their own
  std::size_t sqes_size_ = 0;
  unsigned* sq_tail_shared_ = nullptr;
  unsigned* sq_mask_ = nullptr;
  unsigned* sq_array_ = nullptr;
  unsigned* cq_head_ = nullptr;
  unsigned* cq_tail_ = nullptr;
  unsigned* cq_mask_ = nullptr;
  void* cqes_ = nullptr;
};

}  // namespace notify::detail
