#include <notify/asio_transport.hpp>

#include "io_result.hpp"

#include <asio/error.hpp>

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

namespace notify::detail {

namespace {
// iovecs handed to one sendmsg(); a longer queue takes several calls.
constexpr std::size_t iov_batch = 128;
}  // namespace

std::size_t write_now_to_socket(int descriptor, BufferSpan buffers, std::error_code& ec) {
  ec.clear();
  std::size_t total = 0;
  std::size_t next = 0;
  iovec iov[iov_batch];
  while (next < buffers.count) {
    const std::size_t count = std::min(iov_batch, buffers.count - next);
    std::size_t asked = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const auto& b = buffers.first[next + i];
      iov[i].iov_base = const_cast<void*>(b.data());
      iov[i].iov_len = b.size();
      asked += b.size();
    }
    msghdr message{};
    message.msg_iov = iov;
    message.msg_iovlen = count;
    ssize_t written;
    do {
      written = ::sendmsg(descriptor, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (written < 0 && errno == EINTR);
    if (written < 0) {
      std::error_code failure;
      bytes_transferred(-errno, failure);
      if (total == 0 || failure != asio::error::would_block)
        ec = failure;  // a full buffer after some bytes went is no error
      return total;
    }
    total += static_cast<std::size_t>(written);
    if (static_cast<std::size_t>(written) < asked)
      return total;  // the socket buffer is full
    next += count;
  }
  return total;
}

std::size_t read_now_from_socket(int descriptor, asio::mutable_buffer buffer, std::error_code& ec) {
  ec.clear();
  ssize_t got;
  do {
    got = ::recv(descriptor, buffer.data(), buffer.size(), MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  const auto n = bytes_transferred(got < 0 ? -errno : got, ec);
  if (!ec && n == 0 && buffer.size() != 0)
    ec = asio::error::eof;
  return n;
}

std::size_t bytes_waiting(int descriptor) noexcept {
  int n = 0;
  if (descriptor < 0 || ::ioctl(descriptor, FIONREAD, &n) != 0 || n < 0)
    return 0;
  return static_cast<std::size_t>(n);
}

}  // namespace notify::detail
