// A hint to the CPU to start loading a cache line that will be needed soon.
//
// A fan-out touches one connection after another, thousands of them, and each one's state is
// cold by then; asking for the next few while the current one is written hides most of that
// wait (the hub's delivery loop and FlushLane::run do this).
//
// Thread safety: pure function; it reads nothing.
#pragma once

#include <cstddef>

namespace notify::detail {

// How many elements ahead a loop over connections asks for: far enough that a line arrives
// before it is needed, near enough that it is not evicted again meanwhile.
constexpr std::size_t prefetch_distance = 4;

inline void prefetch(const void* address) noexcept {
#if defined(__GNUC__)
  __builtin_prefetch(address);
#else
  (void)address;
#endif
}

}  // namespace notify::detail
