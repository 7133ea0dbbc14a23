// What RedisBus's message format shares with the bus: times from the wire.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace notify::redis_detail {

// The wall-clock time `ms` milliseconds after the epoch; nullopt before it or past what a
// time_point holds (a malformed message or log entry must not overflow it).
std::optional<std::chrono::system_clock::time_point> time_at_unix_ms(std::int64_t ms);

}  // namespace notify::redis_detail
