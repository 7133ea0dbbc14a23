#include "uring_writer.hpp"

#include <sys/socket.h>

#if __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#define NOTIFY_HAS_IO_URING 1
#endif

namespace notify::detail {

#if defined(NOTIFY_HAS_IO_URING)

namespace {
// A full completion queue or a short-lived lack of kernel memory; past this many tries in a
// row the ring is given up and the writes reported as failed.
constexpr int busy_retries = 1000;

template <typename T>
T* at(void* base, std::size_t offset) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + offset);
}
}  // namespace

std::unique_ptr<UringWriter> UringWriter::open(unsigned entries) {
  entries = entries < 1 ? 1 : entries;
  io_uring_params params{};
  const long fd = ::syscall(__NR_io_uring_setup, entries, &params);
  if (fd < 0)
    return nullptr;
  std::unique_ptr<UringWriter> writer(new UringWriter);
  writer->ring_ = static_cast<int>(fd);
  // Kernels since 5.4 map both rings with one mmap (IORING_FEAT_SINGLE_MMAP); older ones
  // lack sends anyway, so they are not served.
  if (!(params.features & IORING_FEAT_SINGLE_MMAP))
    return nullptr;
  const std::size_t sq_size = params.sq_off.array + params.sq_entries * sizeof(unsigned);
  const std::size_t cq_size = params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe);
  writer->sq_map_size_ = sq_size > cq_size ? sq_size : cq_size;
  void* rings = ::mmap(nullptr, writer->sq_map_size_, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_POPULATE, writer->ring_, IORING_OFF_SQ_RING);
  if (rings == MAP_FAILED)
    return nullptr;
  writer->sq_map_ = rings;
  writer->sqes_size_ = params.sq_entries * sizeof(io_uring_sqe);
  void* sqes = ::mmap(nullptr, writer->sqes_size_, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_POPULATE, writer->ring_, IORING_OFF_SQES);
  if (sqes == MAP_FAILED)
    return nullptr;
  writer->sqes_ = sqes;
  writer->sq_tail_shared_ = at<unsigned>(rings, params.sq_off.tail);
  writer->sq_mask_ = at<unsigned>(rings, params.sq_off.ring_mask);
  writer->sq_array_ = at<unsigned>(rings, params.sq_off.array);
  writer->cq_head_ = at<unsigned>(rings, params.cq_off.head);
  writer->cq_tail_ = at<unsigned>(rings, params.cq_off.tail);
  writer->cq_mask_ = at<unsigned>(rings, params.cq_off.ring_mask);
  writer->cqes_ = at<void>(rings, params.cq_off.cqes);
  writer->sq_tail_ = *writer->sq_tail_shared_;
  if (!writer->never_waits())
    return nullptr;
  return writer;
}

bool UringWriter::never_waits() {
  // Fill a socket's buffer, then ask for one send to it without waiting for it: it must
  // complete at once with -EAGAIN. A kernel that lacks the operation answers -EINVAL, and
  // one that would wait for room (an older kernel that ignores MSG_DONTWAIT here) answers
  // nothing yet; either is refused, because submit() waits for every write.
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) != 0)
    return false;
  const int small = 4096;
  ::setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  char filler[1024] = {};
  while (::send(pair[0], filler, sizeof filler, MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
  }
  add(pair[0], filler, sizeof filler, 0);
  queued_ = 0;
  __atomic_store_n(sq_tail_shared_, sq_tail_, __ATOMIC_RELEASE);
  const long submitted = ::syscall(__NR_io_uring_enter, ring_, 1u, 0u, 0u, nullptr, 0);
  bool refused = submitted != 1;
  unsigned head = *cq_head_;
  const unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
  unsigned answered = 0;
  for (; head != tail; ++head, ++answered) {
    if (static_cast<const io_uring_cqe*>(cqes_)[head & *cq_mask_].res != -EAGAIN)
      refused = true;
  }
  __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
  ::close(pair[0]);
  ::close(pair[1]);
  return !refused && answered == 1;
}

UringWriter::~UringWriter() {
  if (sqes_)
    ::munmap(sqes_, sqes_size_);
  if (sq_map_)
    ::munmap(sq_map_, sq_map_size_);
  if (ring_ >= 0)
    ::close(ring_);
}

void UringWriter::add(int descriptor, const void* data, std::size_t size, std::uint64_t tag) {
  const unsigned index = sq_tail_ & *sq_mask_;
  auto& entry = static_cast<io_uring_sqe*>(sqes_)[index];
  std::memset(&entry, 0, sizeof entry);
  entry.fd = descriptor;
  entry.msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL;
  entry.user_data = tag;
  entry.opcode = IORING_OP_SEND;
  entry.addr = reinterpret_cast<std::uintptr_t>(data);
  entry.len = static_cast<unsigned>(size);
  sq_array_[index] = index;
  ++sq_tail_;
  ++queued_;
}

std::size_t UringWriter::submit(Completion* out) {
  const unsigned count = queued_;
  if (count == 0)
    return 0;
  queued_ = 0;
  __atomic_store_n(sq_tail_shared_, sq_tail_, __ATOMIC_RELEASE);
  unsigned unsubmitted = count;
  std::size_t done = 0;
  int busy = 0;
  while (done < count) {
    const long submitted =
        ::syscall(__NR_io_uring_enter, ring_, unsubmitted, static_cast<unsigned>(count - done),
                  IORING_ENTER_GETEVENTS, nullptr, 0);
    if (submitted >= 0) {
      unsubmitted -= static_cast<unsigned>(submitted);
      busy = 0;
    } else if ((errno != EINTR && errno != EAGAIN && errno != EBUSY) || ++busy > busy_retries) {
      break;
    }
    unsigned head = *cq_head_;
    const unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
    for (; head != tail; ++head) {
      const auto& completion = static_cast<const io_uring_cqe*>(cqes_)[head & *cq_mask_];
      out[done++] = Completion{completion.user_data, completion.res};
    }
    __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
  }
  return done;
}

#else  // no io_uring on this platform

std::unique_ptr<UringWriter> UringWriter::open(unsigned) {
  return nullptr;
}
UringWriter::~UringWriter() = default;
void UringWriter::add(int, const void*, std::size_t, std::uint64_t) {}
std::size_t UringWriter::submit(Completion*) {
  return 0;
}

#endif

}  // namespace notify::detail
