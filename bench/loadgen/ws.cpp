#include "ws.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstring>

namespace loadgen::ws {

std::string base64(std::string_view bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                            static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string make_key(std::mt19937_64& rng) {
  std::string raw(16, '\0');
  for (std::size_t i = 0; i < raw.size(); i += 8) {
    const std::uint64_t r = rng();
    std::memcpy(&raw[i], &r, 8);
  }
  return base64(raw);
}

std::string expected_accept(std::string_view key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input(key);
  input += guid;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest.data(), &length, EVP_sha1(), nullptr);
  return base64(std::string_view(reinterpret_cast<const char*>(digest.data()), length));
}

std::string masked_frame(Opcode opcode, std::string_view payload, std::mt19937_64& rng) {
  std::string out;
  out.reserve(payload.size() + 14);
  out += static_cast<char>(0x80 | opcode);
  const std::size_t n = payload.size();
  if (n < 126) {
    out += static_cast<char>(0x80 | n);
  } else if (n <= 0xffff) {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>((n >> 8) & 0xff);
    out += static_cast<char>(n & 0xff);
  } else {
    out += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8)
      out += static_cast<char>((n >> shift) & 0xff);
  }
  const std::uint64_t r = rng();
  char mask[4];
  std::memcpy(mask, &r, 4);
  out.append(mask, 4);
  for (std::size_t i = 0; i < n; ++i)
    out += static_cast<char>(payload[i] ^ mask[i & 3]);
  return out;
}

std::size_t parse_header(const unsigned char* p, std::size_t n, FrameHeader& h) {
  if (n < 2)
    return 0;
  h.fin = (p[0] & 0x80) != 0;
  h.opcode = p[0] & 0x0f;
  h.masked = (p[1] & 0x80) != 0;
  std::size_t len = p[1] & 0x7f;
  std::size_t header = 2;
  if (len == 126) {
    if (n < 4)
      return 0;
    len = (static_cast<std::size_t>(p[2]) << 8) | p[3];
    header = 4;
  } else if (len == 127) {
    if (n < 10)
      return 0;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v = (v << 8) | p[2 + i];
    len = static_cast<std::size_t>(v);
    header = 10;
  }
  if (h.masked)
    header += 4;
  if (n < header)
    return 0;
  h.length = len;
  return header;
}

}  // namespace loadgen::ws
