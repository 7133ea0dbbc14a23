// What RedisBus's message format shares with the bus beyond encode_bus_message(): the
// sending bus of a session end, and times from the wire.
#pragma once

#include <notify/bus.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace notify::redis_detail {

// encode_bus_message(), and for an every_instance message the sending bus's `origin` (header
// "o"), so that the bus can recognise its own when Redis hands it back.
std::string encode_bus_message(const Envelope& envelope, std::string_view origin);

struct BusMessage {
  Envelope envelope;
  std::string origin;  // empty when the header has none
};
// decode_bus_message(), with the origin.
std::optional<BusMessage> decode_bus_message_with_origin(std::string_view message);

// The wall-clock time `ms` milliseconds after the epoch; nullopt before it or past what a
// time_point holds (a malformed message or log entry must not overflow it).
std::optional<std::chrono::system_clock::time_point> time_at_unix_ms(std::int64_t ms);

}  // namespace notify::redis_detail
