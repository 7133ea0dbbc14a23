#include <notify/utf8.hpp>

#include <cstring>

namespace notify {
namespace {

constexpr std::uint64_t high_bits = 0x8080808080808080ULL;

}  // namespace

bool Utf8Validator::feed(std::string_view bytes) noexcept {
  if (failed_)
    return false;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto* const end = p + bytes.size();
  while (p != end) {
    if (pending_ == 0) {
      // Skips ASCII eight bytes at a time; most JSON is ASCII.
      while (end - p >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, sizeof word);
        if ((word & high_bits) != 0)
          break;
        p += 8;
      }
      if (p == end)
        break;
      const unsigned char b = *p++;
      if (b < 0x80)
        continue;
      if (b < 0xC2) {  // a continuation byte, or the lead of an overlong 2-byte form
        failed_ = true;
        return false;
      }
      if (b < 0xE0) {
        pending_ = 1;
      } else if (b < 0xF0) {
        pending_ = 2;
        if (b == 0xE0)
          low_ = 0xA0;  // below: overlong
        if (b == 0xED)
          high_ = 0x9F;  // above: surrogates
      } else if (b < 0xF5) {
        pending_ = 3;
        if (b == 0xF0)
          low_ = 0x90;  // below: overlong
        if (b == 0xF4)
          high_ = 0x8F;  // above: beyond U+10FFFF
      } else {
        failed_ = true;
        return false;
      }
      continue;
    }
    const unsigned char b = *p++;
    if (b < low_ || b > high_) {
      failed_ = true;
      return false;
    }
    --pending_;
    low_ = 0x80;
    high_ = 0xBF;
  }
  return true;
}

bool is_valid_utf8(std::string_view text) noexcept {
  Utf8Validator validator;
  return validator.feed(text) && validator.complete();
}

}  // namespace notify
