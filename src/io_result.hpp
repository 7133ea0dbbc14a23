// What the result of a non-blocking socket call means, in one place for write_now()'s
// sendmsg(), read_now()'s recv() and the sends a FlushLane makes through io_uring.
//
// Thread safety: pure function.
#pragma once

#include <asio/error.hpp>

#include <cerrno>
#include <cstddef>
#include <system_error>

namespace notify::detail {

// `result` is the bytes moved, or -errno. Returns the bytes; a socket that has no room or
// no input now (EAGAIN) is 0 bytes with asio::error::would_block, any other error fails
// the connection.
inline std::size_t bytes_transferred(long result, std::error_code& ec) {
  ec.clear();
  if (result >= 0)
    return static_cast<std::size_t>(result);
  if (result == -EAGAIN || result == -EWOULDBLOCK)
    ec = asio::error::would_block;
  else
    ec = std::error_code(static_cast<int>(-result), asio::error::get_system_category());
  return 0;
}

}  // namespace notify::detail
