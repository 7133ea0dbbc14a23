// Helpers of the WebSocket protocol tests: byte strings from hex, client (masked) frames,
// server frames read back from what a client received, and running a Decoder over a byte
// stream cut into pieces of a given size.
#pragma once

#include <notify/ws_frame.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace test::ws {

using notify::ws::CloseCode;
using notify::ws::Message;
using notify::ws::Opcode;

// One frame as a client receives it (unmasked, from the server).
struct Frame {
  Opcode opcode;
  bool rsv1;
  std::string payload;
};

// The complete server frames in `bytes`, which start with the HTTP response of the
// handshake (skipped); an incomplete last frame is left out.
inline std::vector<Frame> server_frames(std::string_view bytes) {
  std::vector<Frame> out;
  const auto head_end = bytes.find("\r\n\r\n");
  if (head_end == std::string_view::npos)
    return out;
  std::size_t i = head_end + 4;
  const auto byte = [&](std::size_t at) { return static_cast<std::uint8_t>(bytes[at]); };
  while (i + 2 <= bytes.size()) {
    std::uint64_t len = byte(i + 1) & 0x7F;
    std::size_t header = 2;
    if (len == 126) {
      if (i + 4 > bytes.size())
        break;
      len = (static_cast<std::uint64_t>(byte(i + 2)) << 8) | byte(i + 3);
      header = 4;
    } else if (len == 127) {
      if (i + 10 > bytes.size())
        break;
      len = 0;
      for (std::size_t k = 0; k < 8; ++k)
        len = (len << 8) | byte(i + 2 + k);
      header = 10;
    }
    if (i + header + len > bytes.size())
      break;
    out.push_back(Frame{static_cast<Opcode>(byte(i) & 0x0F), (byte(i) & 0x40) != 0,
                        std::string(bytes.substr(i + header, static_cast<std::size_t>(len)))});
    i += header + static_cast<std::size_t>(len);
  }
  return out;
}

// "81 05 48" -> the bytes 0x81 0x05 0x48 (spaces ignored).
inline std::string hex(std::string_view text) {
  std::string out;
  int high = -1;
  for (const char c : text) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      continue;
    }
    if (high < 0) {
      high = v;
    } else {
      out += static_cast<char>(high * 16 + v);
      high = -1;
    }
  }
  return out;
}

inline constexpr std::array<std::uint8_t, 4> rfc_mask{0x37, 0xfa, 0x21, 0x3d};

enum class LengthForm { shortest, form16, form64 };

// A client frame: `first` is the first header byte (FIN, RSV, opcode), the payload is
// masked with `mask`. `form` forces a (possibly non-minimal) length encoding.
inline std::string client_frame(std::uint8_t first, std::string_view payload,
                                std::array<std::uint8_t, 4> mask = rfc_mask,
                                LengthForm form = LengthForm::shortest) {
  std::string out;
  out += static_cast<char>(first);
  const std::uint64_t size = payload.size();
  if (form == LengthForm::shortest && size <= 125) {
    out += static_cast<char>(0x80 | size);
  } else if (form != LengthForm::form64 && size <= 0xFFFF) {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(size >> 8);
    out += static_cast<char>(size & 0xFF);
  } else {
    out += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8)
      out += static_cast<char>((size >> shift) & 0xFF);
  }
  for (const auto m : mask)
    out += static_cast<char>(m);
  for (std::size_t i = 0; i < payload.size(); ++i)
    out += static_cast<char>(static_cast<std::uint8_t>(payload[i]) ^ mask[i % 4]);
  return out;
}

inline std::uint8_t first_byte(Opcode op, bool fin = true, bool rsv1 = false) {
  return static_cast<std::uint8_t>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) |
                                   static_cast<std::uint8_t>(op));
}

inline std::string client_frame(Opcode op, std::string_view payload, bool fin = true,
                                bool rsv1 = false) {
  return client_frame(first_byte(op, fin, rsv1), payload);
}

inline std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
  std::string out;
  out += static_cast<char>(code >> 8);
  out += static_cast<char>(code & 0xFF);
  out += reason;
  return out;
}

struct Outcome {
  std::vector<Message> messages;
  std::optional<CloseCode> error;
  std::size_t consumed = 0;  // bytes fed up to and including the piece that failed
};

// Feeds `stream` in pieces of `piece` bytes (0: all at once), stopping at the first error.
inline Outcome decode(notify::ws::Decoder& decoder, std::string_view stream, std::size_t piece) {
  Outcome outcome;
  if (piece == 0)
    piece = stream.size() == 0 ? 1 : stream.size();
  while (!stream.empty()) {
    const auto part = stream.substr(0, piece);
    stream.remove_prefix(part.size());
    outcome.consumed += part.size();
    outcome.error = decoder.feed(part, outcome.messages);
    if (outcome.error)
      break;
  }
  return outcome;
}

inline bool same_messages(const std::vector<Message>& a, const std::vector<Message>& b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].opcode != b[i].opcode || a[i].payload != b[i].payload ||
        a[i].close_code != b[i].close_code)
      return false;
  }
  return true;
}

}  // namespace test::ws

namespace notify::ws {
inline std::ostream& operator<<(std::ostream& os, CloseCode code) {
  return os << "CloseCode(" << static_cast<int>(code) << ")";
}
inline std::ostream& operator<<(std::ostream& os, Opcode op) {
  return os << "Opcode(" << static_cast<int>(op) << ")";
}
}  // namespace notify::ws
