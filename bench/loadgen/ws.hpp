// The client side of RFC 6455 that the load generator needs: the opening handshake's key
// and expected accept value, and masked frames (client-to-server frames must be masked).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace loadgen::ws {

enum Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA
};

std::string base64(std::string_view bytes);

// A fresh Sec-WebSocket-Key: base64 of 16 random bytes.
std::string make_key(std::mt19937_64& rng);

// The Sec-WebSocket-Accept a server must answer for `key`.
std::string expected_accept(std::string_view key);

// One final frame with `opcode` and `payload`, masked with a random key.
std::string masked_frame(Opcode opcode, std::string_view payload, std::mt19937_64& rng);

// A server frame header: returns its length (2..10) and fills the fields, or 0 when `n`
// bytes are not enough to tell. A masked server frame is reported through `masked`.
struct FrameHeader {
  bool fin = false;
  std::uint8_t opcode = 0;
  bool masked = false;
  std::uint64_t length = 0;
};
std::size_t parse_header(const unsigned char* p, std::size_t n, FrameHeader& h);

}  // namespace loadgen::ws
